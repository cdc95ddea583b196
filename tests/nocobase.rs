//! A real NocoBase (2.2, from the npm registry) run through Hangar with the `nocobase` preset
//! alone: `preset` and `cwd` in hangar.toml, nothing else written by hand. Needs the code tree of
//! `scripts/install-nocobase.sh` (HANGAR_TEST_NOCOBASE, set by scripts/test.sh, or its default
//! cache folder) and the throwaway PostgreSQL of `scripts/test-db.sh`; fails when either is
//! missing, never skips.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::sql::*;
use common::*;
use serde_json::{json, Value};

/// The NocoBase app folder scripts/install-nocobase.sh made (it prints it).
fn nocobase_app() -> PathBuf {
    let app = match std::env::var("HANGAR_TEST_NOCOBASE") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => std::env::var("HOME")
            .map(|h| PathBuf::from(h).join(".cache/hangar/nocobase/2.2.15/app"))
            .unwrap_or_default(),
    };
    assert!(
        app.join(".hangar-installed").is_file(),
        "NocoBase is missing at {}: run scripts/install-nocobase.sh (or set HANGAR_TEST_NOCOBASE \
         to the app folder it prints)",
        app.display()
    );
    app
}

/// The engine's PATH with the install's Node 22 first (the preset runs `node` from PATH).
fn path_with_node(app: &std::path::Path) -> String {
    let bin = app.parent().map(|r| r.join("bin")).unwrap_or_default();
    assert!(
        bin.join("node").is_file(),
        "{} has no Node: run scripts/install-nocobase.sh",
        bin.display()
    );
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn a_nocobase_sub_app_installs_itself_signs_in_and_is_dropped_on_delete() {
    let pg = pg();
    let app = nocobase_app();
    let path = path_with_node(&app);
    let toml = format!(
        "{}[runtimes.nocobase]\npreset = \"nocobase\"\ncwd = {:?}\n",
        data_service(&pg),
        app.display().to_string()
    );
    let e = TestEngine::start_with_env(&toml, &[("PATH", &path)]);
    let name = uniq("nb");
    let (email, password) = ("operator@example.com", "not-the-default-9");
    let started = Instant::now();
    e.ok(&[
        "create",
        &name,
        "--runtime",
        "nocobase",
        "--start-mode",
        "with-main",
        "--env",
        &format!("INIT_ROOT_EMAIL={email}"),
        "--env",
        &format!("INIT_ROOT_PASSWORD={password}"),
    ]);

    // First start into an empty database: it installs itself, then answers its health check
    // under its prefix (503 with a progress message until then).
    let health = format!("/_app/{name}/api/__health_check");
    wait_until(
        "NocoBase to install itself and answer its health check",
        Duration::from_secs(600),
        || e.get(&health) == (200, "ok".to_string()),
    );
    eprintln!("nocobase: create to healthy in {:?}", started.elapsed());
    assert_eq!(e.status(&name), "running");
    let pid = e.pid(&name);
    eprintln!("nocobase: RSS {} MiB", proc_kib(pid, "VmRSS") / 1024);

    // Its own page, rendered for its prefix and its own browser-storage keys.
    let (status, page) = e.get(&format!("/_app/{name}/"));
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("src=\"/_app/{name}/assets/")),
        "{page}"
    );
    assert!(page.contains(&format!("NOCOBASE_{name}_")), "{page}");
    // The code tree's shared page is left alone.
    let shared = app.join("node_modules/@nocobase/app/dist/client/index.html");
    let shared = std::fs::read_to_string(&shared).unwrap_or_default();
    assert!(!shared.contains(&format!("/_app/{name}/")));

    // The first admin is the one given with --env, not NocoBase's public default.
    let sign_in = |account: &str, pass: &str| -> (u16, Value) {
        let r = e
            .http
            .post(e.proxy_url(&format!("/_app/{name}/api/auth:signIn")))
            .header("X-Authenticator", "basic")
            .json(&json!({"account": account, "password": pass}))
            .send()
            .expect("sign-in request");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    };
    let (status, body) = sign_in(email, password);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["user"]["email"], email, "{body}");
    assert!(body["data"]["token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    let (status, _) = sign_in("admin@nocobase.com", "admin123");
    assert_ne!(status, 200, "the public default admin must not exist");

    // Stopped within its grace: the whole group is gone.
    let stopping = Instant::now();
    e.ok(&["stop", &name]);
    eprintln!("nocobase: stopped in {:?}", stopping.elapsed());
    assert_eq!(e.status(&name), "stopped");
    assert!(!group_alive(pid));

    // Its database and role are dropped.
    let id = ident(&name);
    assert!(exists(&pg, Object::PgDatabase, &id));
    e.ok(&["delete", &name, "--drop-db", "--yes"]);
    assert_left_nothing(&pg, &id);
}

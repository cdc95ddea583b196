//! A real NocoBase (2.2, from the npm registry) run through Hangar with the `nocobase` preset
//! alone: `preset` and `cwd` in hangar.toml, nothing else written by hand. Needs the code tree of
//! `scripts/install-nocobase.sh` (HANGAR_TEST_NOCOBASE, set by scripts/test.sh, or its default
//! cache folder) and the throwaway PostgreSQL and MariaDB of `scripts/test-db.sh`; fails when
//! one is missing, never skips.
//!
//! A NocoBase boot costs 10-60 s of CPU on a small machine: each test shares one engine between
//! its apps and boots each app as few times as the checks allow.

use crate::common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::nocobase::{nocobase_app, path_with_node};
use common::sql::*;
use common::*;
use serde_json::{json, Value};

/// An engine on the data service `service` with the `nocobase` runtime, written as the README
/// says: the preset and the app folder.
fn engine(service: &str) -> (TestEngine, PathBuf) {
    let app = nocobase_app();
    let path = path_with_node(&app);
    let toml = format!(
        "{}[runtimes.nocobase]\npreset = \"nocobase\"\ncwd = {:?}\n",
        data_service(service),
        app.display().to_string()
    );
    (TestEngine::start_with_env(&toml, &[("PATH", &path)]), app)
}

/// The values `hangar create` made for the app and printed once (`KEY=VALUE` in its note).
fn made_value(create_output: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    create_output
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key} in {create_output}"))
        .to_string()
}

/// Wait until the app answers its health check under its prefix (200 `ok`).
fn wait_healthy(e: &TestEngine, name: &str) {
    let health = format!("/_app/{name}/api/__health_check");
    wait_until(
        &format!("{name} to answer its health check"),
        Duration::from_secs(600),
        || {
            // The proxy holds a request for a starting app up to its wake timeout, which may
            // pass the client's: a request that fails is "not yet".
            e.http
                .get(e.proxy_url(&health))
                .send()
                .ok()
                .filter(|r| r.status().as_u16() == 200)
                .and_then(|r| r.text().ok())
                .is_some_and(|t| t == "ok")
        },
    );
}

/// Sign in through the proxy, as NocoBase's own page does: (status, body).
fn sign_in(e: &TestEngine, name: &str, account: &str, password: &str) -> (u16, Value) {
    let r = e
        .http
        .post(e.proxy_url(&format!("/_app/{name}/api/auth:signIn")))
        .header("X-Authenticator", "basic")
        .json(&json!({"account": account, "password": password}))
        .send()
        .expect("sign-in request");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// Signs in as `email`/`password` and not as NocoBase's public default admin.
fn assert_first_admin(e: &TestEngine, name: &str, email: &str, password: &str) {
    let (status, body) = sign_in(e, name, email, password);
    assert_eq!(status, 200, "{name}: {body}");
    assert_eq!(body["data"]["user"]["email"], email, "{body}");
    assert!(body["data"]["token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    let (status, _) = sign_in(e, name, "admin@nocobase.com", "admin123");
    assert_ne!(
        status, 200,
        "{name}: the public default admin must not exist"
    );
}

/// What the waiting page shows as the app's progress (the text of its `progress` span).
fn waiting_progress(e: &TestEngine, name: &str) -> Option<String> {
    let r = e
        .http
        .get(e.proxy_url(&format!("/_app/{name}/")))
        .header("Accept", "text/html")
        .send()
        .ok()?;
    if r.status().as_u16() != 503 {
        return None;
    }
    let page = r.text().ok()?;
    let start = page.find("<span id=progress class=muted>")? + 30;
    let len = page[start..].find("</span>")?;
    Some(page[start..start + len].to_string()).filter(|p| !p.is_empty())
}

/// Stop `name` while a WebSocket client holds NocoBase's `/_app/<name>/ws` open (NocoBase then
/// ignores SIGTERM): the stop ends it within the grace, by SIGKILL.
fn assert_stops_with_a_websocket_open(e: &TestEngine, name: &str) {
    let pid = e.pid(name);
    let url = format!("ws://127.0.0.1:{}/_app/{name}/ws", e.proxy_port);
    let (ws, resp) = tokio_tungstenite::tungstenite::connect(url).expect("NocoBase's WebSocket");
    assert_eq!(resp.status().as_u16(), 101);
    let stopping = Instant::now();
    e.ok(&["stop", name]);
    let took = stopping.elapsed();
    eprintln!("nocobase: {name} stopped with a WebSocket open in {took:?}");
    assert_eq!(e.status(name), "stopped");
    assert!(
        !group_alive(pid),
        "{name}'s process group outlived the stop"
    );
    // The preset's grace is 5 s; a stop that waited for NocoBase to end by itself never ends.
    assert!(took < Duration::from_secs(30), "{took:?}");
    drop(ws);
}

#[test]
fn nocobase_on_postgres_new_database_and_schema_mode() {
    let pg = pg();
    let (e, code) = engine(&pg);
    let (a, b, c) = (uniq("nb"), uniq("ns"), uniq("nt"));
    let (email, password) = ("operator@example.com", "not-the-default-9");

    // a: new database, its first admin given with --env (nothing made, nothing shown).
    let out = e.ok(&[
        "create",
        &a,
        "--runtime",
        "nocobase",
        "--start-mode",
        "with-main",
        "--env",
        &format!("INIT_ROOT_EMAIL={email}"),
        "--env",
        &format!("INIT_ROOT_PASSWORD={password}"),
    ]);
    assert!(!out.contains("INIT_ROOT_PASSWORD="), "{out}");
    // b: schema mode, its first admin made by Hangar and shown once.
    let started = Instant::now();
    let out = e.ok(&[
        "create",
        &b,
        "--runtime",
        "nocobase",
        "--db",
        "schema",
        "--start-mode",
        "with-main",
    ]);
    let (b_email, b_password) = (
        made_value(&out, "INIT_ROOT_EMAIL"),
        made_value(&out, "INIT_ROOT_PASSWORD"),
    );
    assert_ne!(b_password, "admin123");
    assert!(b_password.len() >= 16, "{b_password}");
    // Shown once: not in the app's view afterwards.
    assert!(!e.ok(&["status", &b, "--json"]).contains(&b_password));
    // c: schema mode, never started: the neighbour b must not reach.
    e.ok(&["create", &c, "--runtime", "nocobase", "--db", "schema"]);

    // While b installs itself its waiting page shows NocoBase's own progress message (from
    // the 503 JSON of its health path), not the JSON.
    let mut seen = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        if let Some(p) = waiting_progress(&e, &b) {
            seen.get_or_insert(p);
        }
        if e.status(&b) == "running" {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let seen = seen.expect("the waiting page showed a progress message");
    eprintln!("nocobase: the waiting page showed {seen:?}");
    assert!(
        !seen.starts_with('{') && !seen.contains("APP_COMMANDING"),
        "{seen}"
    );
    wait_healthy(&e, &b);
    eprintln!(
        "nocobase: create to healthy (schema mode) in {:?}",
        started.elapsed()
    );
    wait_healthy(&e, &a);
    for app in [&a, &b] {
        assert_eq!(e.status(app), "running");
        eprintln!(
            "nocobase: {app} RSS {} MiB",
            proc_kib(e.pid(app), "VmRSS") / 1024
        );
    }

    // Each has its own page, rendered for its prefix and its own browser-storage keys; the
    // code tree's shared page is left alone.
    for app in [&a, &b] {
        let (status, page) = e.get(&format!("/_app/{app}/"));
        assert_eq!(status, 200);
        assert!(
            page.contains(&format!("src=\"/_app/{app}/assets/")),
            "{page}"
        );
        assert!(page.contains(&format!("NOCOBASE_{app}_")), "{page}");
    }
    let shared = code.join("node_modules/@nocobase/app/dist/client/index.html");
    let shared = std::fs::read_to_string(&shared).unwrap_or_default();
    assert!(!shared.contains(&format!("/_app/{a}/")));

    // The first admins: given, and made by Hangar; never NocoBase's public default.
    assert_first_admin(&e, &a, email, password);
    assert_first_admin(&e, &b, &b_email, &b_password);

    // Schema mode: b's role booted NocoBase in its schema (CREATE SCHEMA IF NOT EXISTS passed)
    // and still cannot read or change its neighbour's schema, nor c's role b's.
    let (id_b, id_c) = (ident(&b), ident(&c));
    assert!(
        count(
            &pg,
            &format!("SELECT COUNT(*) FROM pg_tables WHERE schemaname = '{id_b}'")
        ) > 50
    );
    let b_url = stored_url(&e, &b);
    let c_url = stored_url(&e, &c);
    for (url, other) in [(&c_url, &id_b), (&b_url, &id_c)] {
        let read = count_try(
            url,
            &format!("SELECT COUNT(*) FROM pg_catalog.pg_class WHERE relnamespace = '\"{other}\"'::regnamespace AND has_table_privilege(oid, 'SELECT')"),
        );
        assert_eq!(read, Ok(0), "tables of {other} readable");
        for stmt in [
            format!("CREATE TABLE \"{other}\".intruder (x int)"),
            format!("DROP SCHEMA \"{other}\" CASCADE"),
        ] {
            let err = sql_try(url, &[stmt.as_str()]).expect_err(&stmt);
            assert!(
                err.contains("permission denied") || err.contains("must be owner"),
                "{stmt}: {err}"
            );
        }
    }
    let err = count_try(&c_url, &format!("SELECT COUNT(*) FROM \"{id_b}\".users"))
        .expect_err("c reads b's users");
    assert!(err.contains("permission denied"), "{err}");

    // Installed once: after @nocobase/app's version moved (as after a new code tree: the
    // version b last ran is set back), a start upgrades it and does not install again.
    // The launcher marks the instance installed once its health says `ok` (it asks every
    // 100 ms); a restart before that would install again, so wait for the mark's line.
    wait_until(
        "the launcher to mark the instance installed",
        Duration::from_secs(60),
        || {
            e.log_text(&b)
                .contains(" out hangar: installed; later starts are plain starts")
        },
    );
    set_last_version(&e, &b, "2.2.14");
    e.ok(&["restart", &b]);
    wait_healthy(&e, &b);
    let log = e.log_text(&b);
    assert_eq!(
        // The app's own line (stream `out`), not the launcher's text in Hangar's `starting:`.
        log.matches(" out hangar: first start of this instance")
            .count(),
        1,
        "installed once: {log}"
    );
    assert!(log.contains("upgrading from 2.2.14 to 2.2.15"), "{log}");
    assert_first_admin(&e, &b, &b_email, &b_password);

    // Stopped within the grace with a browser's WebSocket open.
    assert_stops_with_a_websocket_open(&e, &a);
    assert_stops_with_a_websocket_open(&e, &b);

    // `delete --drop-db` drops the database and its role; the schemas and their roles.
    assert!(exists(&pg, Object::PgDatabase, &ident(&a)));
    for app in [&a, &b, &c] {
        let out = e.ok(&["delete", app, "--drop-db", "--yes"]);
        assert!(out.contains("dropped: PostgreSQL"), "{out}");
        assert_left_nothing(&pg, &ident(app));
    }
}

#[test]
fn nocobase_on_mariadb_installs_signs_in_and_is_dropped() {
    let my = my();
    let (e, _) = engine(&my);
    let name = uniq("nm");
    let out = e.ok(&[
        "create",
        &name,
        "--runtime",
        "nocobase",
        "--start-mode",
        "with-main",
    ]);
    let (email, password) = (
        made_value(&out, "INIT_ROOT_EMAIL"),
        made_value(&out, "INIT_ROOT_PASSWORD"),
    );
    let started = Instant::now();
    wait_healthy(&e, &name);
    eprintln!(
        "nocobase: create to healthy (MariaDB) in {:?}",
        started.elapsed()
    );
    assert_first_admin(&e, &name, &email, &password);
    let id = ident(&name);
    assert!(exists(&my, Object::MyDatabase, &id));
    let out = e.ok(&["delete", &name, "--drop-db", "--yes"]);
    assert!(out.contains("dropped: MySQL database"), "{out}");
    assert_left_nothing(&my, &id);
}

/// Set the runtime version an app last ran, as a new code tree would leave it.
fn set_last_version(e: &TestEngine, name: &str, version: &str) {
    let path = e.home_path().join("registry.db");
    rt().block_on(async {
        use sqlx::Connection;
        let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
        let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
        sqlx::query("UPDATE apps SET last_version = ? WHERE name = ?")
            .bind(version)
            .bind(name)
            .execute(&mut c)
            .await
            .unwrap();
        let _ = c.close().await;
    });
}

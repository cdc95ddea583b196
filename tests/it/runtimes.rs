//! Runtimes beyond a hand-written `[runtimes.X]`: an app made with its own program
//! (`create NAME -- PROGRAM`), `hangar.toml` read again while apps run (`reload` and the file
//! watcher), and `exec` with an app's environment. Real engine, real processes, the real proxy.

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// Python's own web server, a program Hangar knows nothing of.
fn python() -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is needed (scripts/install-deps.sh installs it)");
    assert!(out.status.success(), "python3 does not run");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn an_app_made_with_its_own_program_is_served_under_its_prefix_and_kept() {
    let mut e = TestEngine::start();
    let py = python();
    let out = e.ok(&[
        "create",
        "files",
        "--prefix",
        "strip",
        "--",
        &py,
        "-m",
        "http.server",
        "${PORT}",
        "--bind",
        "127.0.0.1",
    ]);
    assert!(out.contains("created files"), "{out}");
    // It serves its working folder, the app's data folder.
    let dir = e.home_path().join("apps/files");
    std::fs::write(dir.join("hello.txt"), "hello from python\n").unwrap();
    // An on-visit app: the visit through the proxy starts it; the prefix is stripped.
    let (status, body) = e.get("/_app/files/hello.txt");
    assert_eq!((status, body.as_str()), (200, "hello from python\n"));
    let (status, body) = e.get("/_app/files/");
    assert_eq!(status, 200);
    assert!(body.contains("hello.txt"), "{body}");
    let shown = e.ok(&["status", "files"]);
    assert!(
        shown.contains("runtime  command") && shown.contains("http.server ${PORT}"),
        "{shown}"
    );

    // Kept across an engine restart, with its program.
    e.stop_engine();
    e.spawn();
    let (status, body) = e.get("/_app/files/hello.txt");
    assert_eq!((status, body.as_str()), (200, "hello from python\n"));

    // Editable: another program (here: another folder) at its next start.
    std::fs::create_dir_all(dir.join("pub")).unwrap();
    std::fs::write(dir.join("pub/other.txt"), "the other folder\n").unwrap();
    let (code, v) = e.api(
        reqwest::Method::PATCH,
        "/apps/files",
        Some(json!({"command": {"argv": [py, "-m", "http.server", "${PORT}", "--bind", "127.0.0.1", "--directory", "pub"], "prefix": "strip"}})),
    );
    assert_eq!(code, 200, "{v}");
    e.ok(&["restart", "files"]);
    let (status, body) = e.get("/_app/files/other.txt");
    assert_eq!((status, body.as_str()), (200, "the other folder\n"));

    // `--prefix keep` and `--health`: the program sees /_app/NAME/…, probed on its path.
    e.ok(&[
        "create",
        "kept",
        "--prefix",
        "keep",
        "--health",
        "/k.txt",
        "--",
        &py,
        "-m",
        "http.server",
        "${PORT}",
        "--bind",
        "127.0.0.1",
    ]);
    let kept = e.home_path().join("apps/kept/_app/kept");
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::write(kept.join("k.txt"), "kept prefix\n").unwrap();
    let (status, body) = e.get("/_app/kept/k.txt");
    assert_eq!((status, body.as_str()), (200, "kept prefix\n"));
}

#[test]
fn a_bad_program_or_template_is_refused_at_create_and_changes_nothing() {
    let e = TestEngine::start();
    // Shell syntax in ${…} is refused when given, not at the first start.
    let err = e.fails(&["create", "bad", "--", "sh", "-c", "serve ${EXTRA:+--extra}"]);
    assert!(
        err.contains("command") && err.contains("$${EXTRA:+--extra}"),
        "{err}"
    );
    let err = e.fails(&["create", "bad", "--", "srv", "${NOT_A_VARIABLE_HERE}"]);
    assert!(err.contains("NOT_A_VARIABLE_HERE"), "{err}");
    // An app's own --env value may be named.
    e.ok(&[
        "create",
        "good",
        "--env",
        "GREETING=hi",
        "--",
        "sh",
        "-c",
        "echo ${GREETING} $$PORT",
    ]);
    let err = e.fails(&["create", "bad", "--prefix", "sideways", "--", "srv"]);
    assert!(err.contains("--prefix") && err.contains("strip"), "{err}");
    // The command runtime without a program is refused, naming what to give.
    let err = e.fails(&["create", "bad", "--runtime", "command"]);
    assert!(err.contains("-- PROGRAM"), "{err}");
    assert!(!e.listed("bad"));
}

#[test]
fn hangar_toml_is_read_again_and_running_apps_are_left_alone() {
    let e = TestEngine::start();
    let toml = e.home_path().join("hangar.toml");
    let first = std::fs::read_to_string(&toml).unwrap();
    e.ok(&["create", "r1", "--start-mode", "with-main"]);
    e.wait_status("r1", "running", Duration::from_secs(30));
    let pid = e.pid("r1");

    // A runtime added while r1 runs: `reload` says so; a new app on it starts.
    let later = demo_runtime("later", &[], "stop_timeout = 3");
    std::fs::write(&toml, format!("{first}\n{later}")).unwrap();
    let out = e.ok(&["reload"]);
    // The watcher may have read it first (300 ms after the write): then nothing is new here.
    assert!(
        out.contains("added: later") || out.contains("no runtime changed"),
        "{out}"
    );
    e.ok(&[
        "create",
        "r2",
        "--runtime",
        "later",
        "--start-mode",
        "with-main",
    ]);
    e.wait_status("r2", "running", Duration::from_secs(30));
    let (status, _) = e.get("/_app/r2/api/info");
    assert_eq!(status, 200);
    assert_eq!(e.pid("r1"), pid, "r1 was not touched");
    let r2 = e.pid("r2");

    // A broken file is refused with the key named; everything keeps running as it was.
    std::fs::write(
        &toml,
        format!(
            "{first}\n{later}\n[runtimes.broken]\ncommand = [\"sh\", \"-c\", \"x ${{A:-b}}\"]\n"
        ),
    )
    .unwrap();
    let err = e.fails(&["reload"]);
    assert!(
        err.contains("runtimes.broken.command") && err.contains("running configuration is kept"),
        "{err}"
    );
    assert_eq!((e.pid("r1"), e.pid("r2")), (pid, r2));
    let info = e.api(reqwest::Method::GET, "/engine", None).1;
    assert!(
        info["runtimes"]
            .as_array()
            .unwrap()
            .contains(&json!("later")),
        "{info}"
    );
    assert!(
        !info["runtimes"]
            .as_array()
            .unwrap()
            .contains(&json!("broken")),
        "{info}"
    );

    // Removing a runtime an app uses is refused too.
    std::fs::write(&toml, &first).unwrap();
    let err = e.fails(&["reload"]);
    assert!(
        err.contains("runtimes.later") && err.contains("r2"),
        "{err}"
    );

    // The watcher: a file written, no command given, is read again on its own.
    let watched = demo_runtime("watched", &[], "");
    std::fs::write(&toml, format!("{first}\n{later}\n{watched}")).unwrap();
    wait_until(
        "the watcher to read hangar.toml again",
        Duration::from_secs(20),
        || {
            let info = e.api(reqwest::Method::GET, "/engine", None).1;
            info["runtimes"]
                .as_array()
                .is_some_and(|r| r.contains(&json!("watched")))
        },
    );
    let out = e.ok(&["reload", "--json"]);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["added"], json!([]), "already read: {report}");
    assert_eq!((e.pid("r1"), e.pid("r2")), (pid, r2));
    let serve_log = std::fs::read_to_string(e.home_path().join("serve.log")).unwrap();
    assert!(
        serve_log.contains("hangar.toml was not reloaded") && serve_log.contains("runtimes.broken"),
        "the refusal is logged"
    );
}

#[test]
fn a_changed_runtime_applies_at_the_next_start_only() {
    let e = TestEngine::start_with(&demo_runtime(
        "rt",
        &[],
        "[runtimes.rt.env]\nCOLOUR = \"red\"",
    ));
    let toml = e.home_path().join("hangar.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    e.ok(&[
        "create",
        "c1",
        "--runtime",
        "rt",
        "--start-mode",
        "with-main",
    ]);
    e.wait_status("c1", "running", Duration::from_secs(30));
    let pid = e.pid("c1");
    let colour = |e: &TestEngine| -> String {
        let out = e.hangar(&["exec", "c1", "--", "sh", "-c", "printf %s \"$COLOUR\""]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(colour(&e), "red");
    std::fs::write(&toml, text.replace("\"red\"", "\"blue\"")).unwrap();
    let out = e.ok(&["reload"]);
    assert!(
        (out.contains("changed: rt") && out.contains("until restarted: c1"))
            || out.contains("no runtime changed"),
        "{out}"
    );
    assert_eq!(e.pid("c1"), pid, "a running app keeps running");
    assert_eq!(colour(&e), "blue", "its next start gets the new runtime");
    e.ok(&["restart", "c1"]);
    assert_ne!(e.pid("c1"), pid);
}

#[test]
fn exec_runs_a_program_with_the_apps_environment_and_passes_its_status() {
    let pg = common::sql::pg();
    let e = TestEngine::start_with(&common::sql::data_service(&pg));
    let name = common::sql::uniq("ex");
    let py = python();
    e.ok(&[
        "create",
        &name,
        "--env",
        "FOO=bar",
        "--start-mode",
        "with-main",
        "--",
        // Python itself writes what it was given, then becomes the server (no `sh` between:
        // a confined app runs only programs of its own program's folder).
        &py,
        "-c",
        "import os, sys\n\
         with open(os.path.join(os.environ['HANGAR_DATA_DIR'], 'app-env.txt'), 'w') as f:\n\
         \x20   f.write(''.join(k + '=' + v + '\\n' for k, v in os.environ.items()))\n\
         os.execv(sys.executable, [sys.executable, '-m', 'http.server', os.environ['PORT'], '--bind', '127.0.0.1'])",
    ]);
    e.wait_status(&name, "running", Duration::from_secs(30));
    let dir = e.home_path().join("apps").join(&name);
    let out = e.hangar(&[
        "exec",
        &name,
        "--",
        "sh",
        "-c",
        "env > exec-env.txt; pwd; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "its exit status comes back");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        dir.display().to_string(),
        "it runs in the app's folder"
    );
    let vars = |file: &str| -> std::collections::BTreeMap<String, String> {
        std::fs::read_to_string(dir.join(file))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let (app, exec) = (vars("app-env.txt"), vars("exec-env.txt"));
    let port = e.app(&name)["port"].as_u64().unwrap().to_string();
    assert_eq!(exec["PORT"], port);
    assert!(
        exec["DATABASE_URL"].starts_with("postgres"),
        "{}",
        exec["DATABASE_URL"]
    );
    for k in [
        "PORT",
        "DATABASE_URL",
        "DB_PASSWORD",
        "DB_USER",
        "APP_KEY",
        "FOO",
        "HANGAR_DATA_DIR",
        "PATH",
    ] {
        assert_eq!(app.get(k), exec.get(k), "{k}: the same as the app's");
    }
    // The program really reaches the app's database with those settings.
    let out = e.hangar(&[
        "exec",
        &name,
        "--",
        "sh",
        "-c",
        "psql \"$DATABASE_URL\" -tAc 'select current_user'",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), exec["DB_USER"]);
    // A program that is not there: 127, as a shell says.
    let out = e.hangar(&["exec", &name, "--", "no-such-program-here"]);
    assert_eq!(out.status.code(), Some(127));
    // The password is in no log.
    let logs =
        std::fs::read_to_string(e.home_path().join("serve.log")).unwrap() + &e.log_text(&name);
    assert!(
        !logs.contains(&exec["DB_PASSWORD"]),
        "a password reached a log"
    );
    e.ok(&["delete", &name, "--drop-db", "--yes"]);
}

//! The engine foundation, end to end through the real CLI, a real engine and real app processes.

use crate::common;

use std::time::Duration;

use common::notes::{add_note, note_bodies};
use common::*;
use serde_json::Value;

#[test]
fn create_start_list_stop_delete() {
    let e = TestEngine::start();
    let out = e.ok(&["create", "a1", "--display-name", "Shop one"]);
    assert!(out.contains("created a1"), "{out}");
    let a1 = e.app("a1");
    assert_eq!(a1["status"], "stopped");
    assert_eq!(a1["start_mode"], "on-visit");
    assert_eq!(a1["display_name"], "Shop one");
    let (_, created) = e.api(reqwest::Method::GET, "/apps/a1", None);

    e.ok(&["start", "a1"]);
    // Views are ordered by the engine's version of the app's state (the UI drops older ones).
    let (_, started) = e.api(reqwest::Method::GET, "/apps/a1", None);
    assert!(
        created["version"].as_u64() > Some(0),
        "a created app's view has a version: {created}"
    );
    assert!(
        started["version"].as_u64() > created["version"].as_u64(),
        "a later state has a higher version: {created} then {started}"
    );
    // An edit of its record is a change too.
    let (status, edited) = e.api(
        reqwest::Method::PATCH,
        "/apps/a1",
        Some(serde_json::json!({ "display_name": "Shop one" })),
    );
    assert_eq!(status, 200, "{edited}");
    assert!(
        edited["version"].as_u64() > started["version"].as_u64(),
        "an edit has a higher version: {started} then {edited}"
    );
    let list = e.list();
    let a1 = list.iter().find(|a| a["name"] == "a1").expect("a1 listed");
    assert_eq!(a1["status"], "running");
    let pid = a1["pid"].as_u64().expect("a pid") as u32;
    assert!(pid_alive(pid));
    assert!(a1["port"].as_u64().unwrap() >= 1024);
    assert!(
        list.iter().any(|a| a["name"] == "main"),
        "list shows main too"
    );

    // The app's admin page through the proxy; a note added by its form survives a restart.
    let (status, body) = e.get("/_app/a1/admin/");
    assert_eq!(status, 200);
    assert!(body.contains("a1"), "{body}");
    let resp = e
        .http
        .post(e.proxy_url("/_app/a1/admin/notes"))
        .form(&[("body", "remember the milk"), ("author", "ops")])
        .send()
        .unwrap();
    assert!(
        resp.status().is_success() || resp.status().is_redirection(),
        "{}",
        resp.status()
    );
    e.ok(&["restart", "a1"]);
    let new_pid = e.pid("a1");
    assert_ne!(new_pid, pid, "restart gives a new process");
    let (_, body) = e.get("/_app/a1/admin/");
    assert!(
        body.contains("remember the milk"),
        "the note is kept across a restart: {body}"
    );

    // Its requests are in its log, stamped.
    let logs = e.ok(&["logs", "a1", "-n", "50"]);
    assert!(
        logs.lines()
            .any(|l| l.contains(" out ") && l.contains("/_app/a1/admin/")),
        "{logs}"
    );

    let out = e.ok(&["stop", "a1"]);
    assert_eq!(
        out.trim(),
        "a1 is stopped",
        "stop answers once the app is stopped"
    );
    assert_eq!(e.status("a1"), "stopped");
    assert!(!pid_alive(new_pid));

    let db_file = e.home_path().join("apps/a1/db.sqlite");
    assert!(db_file.exists());
    let out = e.ok(&["delete", "a1", "--drop-db", "--yes"]);
    assert!(out.contains("dropped"), "{out}");
    assert!(!db_file.exists());
    assert!(!e.listed("a1"));
    let err = e.fails(&["status", "a1"]);
    assert!(err.contains("no app named"), "{err}");
}

#[test]
fn delete_without_drop_keeps_the_data_aside_and_a_new_app_starts_empty() {
    let e = TestEngine::start();
    e.ok(&["create", "k1"]);
    e.ok(&["start", "k1"]);
    add_note(&e, "k1", "old data");
    let out = e.ok(&["delete", "k1"]);
    assert!(out.contains("kept"), "{out}");
    let aside = std::fs::read_dir(e.home_path().join("apps/.deleted"))
        .unwrap()
        .count();
    assert_eq!(aside, 1);
    e.ok(&["create", "k1"]);
    e.ok(&["start", "k1"]);
    let notes = note_bodies(&e, "k1");
    assert!(
        notes.is_empty(),
        "a new app of the same name must not find the old data: {notes:?}"
    );
}

#[test]
fn drop_db_needs_confirmation_when_not_interactive() {
    let e = TestEngine::start();
    e.ok(&["create", "c1"]);
    let err = e.fails(&["delete", "c1", "--drop-db"]);
    assert!(err.contains("--yes"), "{err}");
    assert!(e.listed("c1"), "nothing deleted");
}

#[test]
fn list_json_has_the_contract_fields() {
    let e = TestEngine::start();
    e.ok(&[
        "create",
        "j1",
        "--domain",
        "j1.example.test",
        "--pin",
        "--start-mode",
        "with-main",
    ]);
    e.wait_status("j1", "running", Duration::from_secs(30));
    let list = e.list();
    let j1 = list.iter().find(|a| a["name"] == "j1").unwrap();
    let fields = [
        "name",
        "display_name",
        "status",
        "pid",
        "port",
        "start_mode",
        "domain",
        "pinned",
        "url",
        "db",
        "cpu_percent",
        "memory_bytes",
        "uptime_seconds",
        "restarts",
        "error",
        "memory_max",
        "memory_enforced_by",
        "memory_restarts",
        "nice",
        "reason",
        // Everything `status` prints (issue 28).
        "asleep",
        "urls",
        "runtime",
        "idle_timeout",
        "command",
    ];
    let obj = j1.as_object().unwrap();
    for f in fields {
        assert!(obj.contains_key(f), "missing {f} in {j1}");
    }
    assert_eq!(
        obj.len(),
        fields.len(),
        "exactly the contract's fields: {j1}"
    );
    assert_eq!(j1["domain"], "j1.example.test");
    assert_eq!(j1["pinned"], true);
    assert_eq!(j1["start_mode"], "with-main");
    assert_eq!(
        j1["url"],
        format!("http://127.0.0.1:{}/_app/j1/", e.proxy_port)
    );
    // The sampler fills CPU and memory within a few ticks.
    wait_until("memory figures", Duration::from_secs(10), || {
        e.list()
            .iter()
            .any(|a| a["name"] == "j1" && a["memory_bytes"].as_u64().unwrap_or(0) > 0)
    });
}

#[test]
fn bad_input_is_refused_with_one_clear_line() {
    let e = TestEngine::start();
    for (args, needle) in [
        (vec!["create", "1abc"], "lowercase letter"),
        (vec!["create", "Abc"], "lowercase letter"),
        (vec!["create", "main"], "reserved"),
        (vec!["create", "../etc"], "lowercase letter"),
        (
            vec!["create", "a-very-long-name-that-goes-on-and-on-and-on"],
            "39",
        ),
        (vec!["create", "p1", "--port", "80"], "1024 to 65535"),
        (vec!["create", "p1", "--port", "70000"], "1024 to 65535"),
        (
            vec!["create", "d1", "--domain", "http://x.com"],
            "host name",
        ),
        (vec!["create", "d1", "--domain", "nodot"], "host name"),
        (
            vec!["create", "m1", "--start-mode", "sometimes"],
            "with-main, on-visit",
        ),
        (vec!["create", "e1", "--env", "PORT=1"], "set by Hangar"),
        (vec!["create", "e1", "--env", "NOEQUALS"], "KEY=VALUE"),
        (
            vec!["create", "r1", "--runtime", "nope"],
            "accepted: command, demo",
        ),
        (vec!["create", "s1", "--db", "schema"], "PostgreSQL"),
        (vec!["create", "s1", "--db", "redis://x"], "accepted"),
    ] {
        let err = e.fails(&args);
        assert!(
            err.contains(needle),
            "{args:?}: expected {needle:?} in {err}"
        );
    }
    // Uniqueness: names, ports, domains.
    e.ok(&["create", "u1", "--domain", "u.example.test"]);
    let port = e.app("u1")["port"].as_u64().unwrap().to_string();
    assert!(e.fails(&["create", "u1"]).contains("already exists"));
    assert!(e
        .fails(&["create", "u2", "--port", &port])
        .contains("already used by app \"u1\""));
    assert!(e
        .fails(&["create", "u2", "--domain", "u.example.test"])
        .contains("already used by app \"u1\""));
    assert!(e
        .fails(&["create", "u2", "--port", &e.proxy_port.to_string()])
        .contains("Hangar itself"));
    // Nothing half-made: only main and u1 exist, and no folder for refused names.
    assert_eq!(e.names(), vec!["main", "u1"]);
    assert!(!e.home_path().join("apps/u2").exists());
    // The API says which field is wrong.
    let (status, body) = e.api(
        reqwest::Method::POST,
        "/apps",
        Some(serde_json::json!({"name": "Bad"})),
    );
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "name");
    let (status, body) = e.api(
        reqwest::Method::POST,
        "/apps",
        Some(serde_json::json!({"name": "x1", "colour": "red"})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{body}"
    );
}

#[test]
fn a_second_engine_on_the_same_home_is_refused() {
    let e = TestEngine::start();
    let out = serve_to_its_end(e.home_path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another engine already runs"), "{err}");
    assert!(
        err.contains(&format!("pid {}", e.engine_pid().unwrap())),
        "names the running one: {err}"
    );
}

#[test]
fn a_crashing_app_backs_off_then_ends_in_error_with_its_stderr() {
    let e = TestEngine::start_with(
        r#"
[runtimes.crashy]
command = ["sh", "-c", "echo booting; echo 'fatal: cannot open config' >&2; exit 3"]
restart_limit = 3
restart_backoff_max = 1
"#,
    );
    e.ok(&["create", "c1", "--runtime", "crashy"]);
    let err = e.fails(&["start", "c1"]);
    assert!(err.contains("crashed 3 times"), "{err}");
    let app = e.app("c1");
    assert_eq!(app["status"], "error");
    let why = app["error"].as_str().unwrap();
    assert!(
        why.contains("exited with code 3") && why.contains("fatal: cannot open config"),
        "{why}"
    );
    assert_eq!(app["restarts"], 2);
    let log = e.log_text("c1");
    assert!(
        log.contains("restarting in 1000 ms"),
        "passes through backoff: {log}"
    );
}

#[test]
fn backoff_is_visible_while_it_waits() {
    let e = TestEngine::start_with(
        r#"
[runtimes.crashy]
command = ["sh", "-c", "exit 1"]
restart_limit = 10
restart_backoff_max = 30
"#,
    );
    e.ok(&[
        "create",
        "b1",
        "--runtime",
        "crashy",
        "--start-mode",
        "with-main",
    ]);
    e.wait_status("b1", "backoff", Duration::from_secs(20));
    e.ok(&["stop", "b1"]);
    assert_eq!(e.status("b1"), "stopped");
}

#[test]
fn stopped_stays_stopped_across_engine_restarts() {
    let mut e = TestEngine::start();
    e.ok(&["create", "w1", "--start-mode", "with-main"]);
    e.ok(&["create", "w2", "--start-mode", "with-main"]);
    e.wait_status("w1", "running", Duration::from_secs(30));
    e.wait_status("w2", "running", Duration::from_secs(30));
    e.ok(&["stop", "w2"]);
    e.stop_engine();
    e.spawn();
    e.wait_status("w1", "running", Duration::from_secs(30));
    e.wait_status("main", "running", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        e.status("w2"),
        "stopped",
        "the operator stopped w2; it stays stopped"
    );
    // And a visit does not wake an app the operator stopped.
    let (status, body) = e.get("/_app/w2/admin/");
    assert_eq!(status, 503, "{body}");
    assert_eq!(e.status("w2"), "stopped");
}

#[test]
fn stop_leaves_nothing_of_the_group_alive_not_even_a_grandchild() {
    let e = TestEngine::start();
    e.ok(&["create", "g1"]);
    e.ok(&["start", "g1"]);
    let leader = e.pid("g1");
    let grandchild = e.grandchild("g1", 300);
    e.ok(&["stop", "g1"]);
    assert!(
        !group_alive(leader),
        "no member of the app's process group is left"
    );
    assert!(!pid_alive(grandchild), "the grandchild is gone too");
}

#[test]
fn an_app_that_ignores_sigterm_is_killed_after_the_stop_timeout() {
    let e = TestEngine::start_with(&demo_runtime(
        "stubborn",
        &["--ignore-sigterm"],
        "stop_timeout = 1",
    ));
    e.ok(&["create", "s1", "--runtime", "stubborn"]);
    e.ok(&["start", "s1"]);
    let pid = e.pid("s1");
    let t = std::time::Instant::now();
    e.ok(&["stop", "s1"]);
    assert!(!pid_alive(pid));
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "it waited for the stop timeout first"
    );
    assert!(e.log_text("s1").contains("sent SIGKILL"));
}

#[test]
fn an_app_that_never_gets_ready_ends_in_error_after_the_start_timeout() {
    let e = TestEngine::start_with(
        r#"
[runtimes.mute]
command = ["sleep", "600"]
start_timeout = 1
"#,
    );
    e.ok(&["create", "n1", "--runtime", "mute"]);
    let err = e.fails(&["start", "n1"]);
    assert!(err.contains("not ready after 1 s"), "{err}");
    assert_eq!(e.status("n1"), "error");
    assert!(e.app("n1")["pid"].is_null());
}

#[test]
fn the_environment_an_app_is_given() {
    let e = TestEngine::start();
    e.ok(&["create", "v1", "--env", "GREETING=hello world"]);
    e.ok(&["start", "v1"]);
    let (_, body) = e.get("/_app/v1/api/info");
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["app"], "v1");
    assert_eq!(info["base_path"], "/_app/v1");
    assert_eq!(info["db_dialect"], "sqlite");
    assert_eq!(
        info["public_url"],
        format!("http://127.0.0.1:{}/_app/v1/", e.proxy_port)
    );
    let data_dir = e.home_path().join("apps/v1");
    assert_eq!(info["data_dir"], data_dir.display().to_string());
}

/// Ten creates at once, each asking Hangar for a free port, in a range with barely room for
/// them: every one is made, each on a port of its own (two that picked one port do not end in
/// a refusal of the registry's: the second picks again).
#[test]
fn creates_at_once_each_get_a_port_of_their_own() {
    // 12 ports for main and 10 apps, below the kernel's ephemeral range and away from the
    // windows other tests' engines take (15000-29999).
    let base = (0..200)
        .map(|i| 30200 + ((std::process::id() + i * 7) % 200) as u16 * 12)
        .find(|b| (*b..*b + 12).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()))
        .expect("12 free ports in a row");
    let e = TestEngine::start_with(&format!("app_ports = \"{base}-{}\"\n", base + 11));
    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let e = &e;
        let threads: Vec<_> = (0..10)
            .map(|i| {
                s.spawn(move || {
                    let body = serde_json::json!({ "name": format!("at{i}") });
                    e.api(reqwest::Method::POST, "/apps", Some(body))
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a create thread"))
            .collect()
    });
    for (status, answer) in &answers {
        assert_eq!(*status, 201, "{answer}");
    }
    let mut ports: Vec<u64> = e
        .list()
        .iter()
        .map(|a| a["port"].as_u64().expect("a port"))
        .collect();
    assert_eq!(ports.len(), 11, "main and the ten");
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 11, "each on a port of its own: {ports:?}");
    assert!(
        ports
            .iter()
            .all(|p| (u64::from(base)..=u64::from(base) + 11).contains(p)),
        "{ports:?}"
    );
}

#[test]
fn a_port_taken_by_another_program_is_reported_before_the_start() {
    let e = TestEngine::start();
    let port = free_port();
    e.ok(&["create", "t1", "--port", &port.to_string()]);
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let err = e.fails(&["start", "t1"]);
    assert!(
        err.contains(&format!("port {port} is taken by another program")),
        "{err}"
    );
}

#[test]
fn the_api_wants_the_token_and_its_own_host() {
    let e = TestEngine::start();
    let url = format!("http://127.0.0.1:{}/api/v1/apps", e.api_port);
    assert_eq!(e.http.get(&url).send().unwrap().status(), 401);
    assert_eq!(
        e.http
            .get(&url)
            .bearer_auth("wrong")
            .send()
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        e.http
            .get(&url)
            .bearer_auth(e.token())
            .send()
            .unwrap()
            .status(),
        200
    );
    let rebinding = e
        .http
        .get(&url)
        .bearer_auth(e.token())
        .header("Host", "evil.example:80")
        .send()
        .unwrap();
    assert_eq!(rebinding.status(), 403);
    let cross_site = e
        .http
        .get(&url)
        .bearer_auth(e.token())
        .header("Origin", "http://evil.example")
        .send()
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    // The proxy never serves the API.
    let (status, _) = e.get("/api/v1/apps");
    assert_ne!(status, 200);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(e.home_path().join("token"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

/// The rules of each status are served once, from the engine's own `Status` methods, for the
/// UI: the table is the one the UI's unit test reads (`ui/src/lib/statuses.fixture.json`).
#[test]
fn the_status_rules_are_served_as_one_table() {
    let e = TestEngine::start();
    let (code, served) = e.api(reqwest::Method::GET, "/statuses", None);
    assert_eq!(code, 200, "{served}");
    let fixture: Value =
        serde_json::from_str(include_str!("../../ui/src/lib/statuses.fixture.json"))
            .expect("the fixture is JSON");
    assert_eq!(
        served, fixture,
        "the rules changed: update ui/src/lib/statuses.fixture.json (the UI's test reads it)"
    );
    let rules = hangar::run::supervisor::Status::ALL.map(|s| s.rules());
    assert_eq!(served["statuses"], serde_json::to_value(rules).unwrap());
    // Behind the token like every route.
    let url = format!("http://127.0.0.1:{}/api/v1/statuses", e.api_port);
    assert_eq!(e.http.get(&url).send().unwrap().status(), 401);
}

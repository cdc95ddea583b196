//! Issue 8's protections, each with a test that fails without it.

use crate::common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use serde_json::Value;

fn environ(pid: u32) -> Vec<(String, String)> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    raw.split(|b| *b == 0)
        .filter_map(|kv| {
            let s = String::from_utf8_lossy(kv);
            s.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

#[test]
fn an_engine_killed_with_sigkill_leaves_nothing_behind_after_its_next_start() {
    let mut e = TestEngine::start();
    e.ok(&["create", "o1", "--start-mode", "with-main"]);
    e.wait_status("o1", "running", Duration::from_secs(30));
    let leader = e.pid("o1");
    let grandchild = e.grandchild("o1", 600);

    e.crash_engine();
    // The parent-death signal ends the app itself…
    wait_until(
        "the app to end with its engine",
        Duration::from_secs(15),
        || !pid_alive(leader),
    );
    // …and the next engine ends what the app left in its group.
    e.spawn();
    wait_until(
        "the orphaned grandchild to be ended",
        Duration::from_secs(20),
        || !pid_alive(grandchild),
    );
    e.wait_status("o1", "running", Duration::from_secs(30));
    let new_leader = e.pid("o1");
    assert_ne!(new_leader, leader);
    assert!(
        e.log_text("o1").contains("listening"),
        "the with-main app is back"
    );
}

#[test]
fn a_process_that_reused_a_pid_is_never_taken_for_ours() {
    // Our own test process stands in for an unrelated process whose pid an app once had.
    let me = std::process::id();
    let real = hangar::base::process::start_time(me).unwrap();
    assert!(hangar::base::process::group_is_ours(me, real));
    assert!(
        !hangar::base::process::group_is_ours(me, real + 1),
        "another start time: not ours"
    );
}

#[test]
fn a_damaged_registry_is_a_clear_error_and_is_left_as_it_was() {
    let home = tempfile::tempdir().unwrap();
    let garbage = b"this is not an SQLite database, and Hangar must not overwrite it".repeat(100);
    std::fs::write(home.path().join("registry.db"), &garbage).unwrap();
    let out = serve_to_its_end(home.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("registry") && err.contains("cannot be opened"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(home.path().join("registry.db")).unwrap(),
        garbage,
        "never silently recreated"
    );
}

#[test]
fn a_bad_hangar_toml_is_an_error_naming_the_key() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("hangar.toml"),
        "proxy_port = 13000\n[runtimes.x]\ncommand = [\"x\"]\nprefix = \"sideways\"\n",
    )
    .unwrap();
    let out = hangar_cmd(home.path()).arg("serve").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hangar.toml")
            && err.contains("prefix")
            && err.contains("keep")
            && err.contains("strip"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn every_app_gets_its_own_secret_and_never_the_token() {
    let e = TestEngine::start();
    e.ok(&["create", "k1"]);
    e.ok(&["create", "k2"]);
    e.ok(&["start", "k1"]);
    e.ok(&["start", "k2"]);
    let token = e.token();
    let key = |name: &str| {
        let env = environ(e.pid(name));
        assert!(
            !env.iter().any(|(_, v)| v.contains(&token)),
            "the API token leaked into {name}'s environment"
        );
        env.into_iter()
            .find(|(k, _)| k == "APP_KEY")
            .map(|(_, v)| v)
            .expect("APP_KEY set")
    };
    let (k1, k2) = (key("k1"), key("k2"));
    assert!(k1.len() >= 32);
    assert_ne!(k1, k2);
}

fn raw(port: u16, request: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[test]
fn malformed_http_at_the_proxy_gets_4xx_and_the_proxy_keeps_serving() {
    let e = TestEngine::start();
    e.wait_status("main", "running", Duration::from_secs(30));
    // Request smuggling shape: both Content-Length and Transfer-Encoding, with a second request
    // hidden where a Content-Length reader would think the body ends. The proxy frames by
    // Transfer-Encoding and closes the connection (RFC 9112 §6.1): the hidden request never runs.
    let answer = raw(
        e.proxy_port,
        b"POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    assert_eq!(
        answer.matches("HTTP/1.1 ").count(),
        1,
        "one answer, then the connection closed: {answer}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !e.log_text("main").contains("/smuggled"),
        "the hidden request reached the app"
    );
    // A huge header block.
    let mut big = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 200 * 1024));
    big.extend(b"\r\n\r\n");
    let answer = raw(e.proxy_port, &big);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "huge headers refused: {answer:.80}"
    );
    // Garbage.
    let answer = raw(e.proxy_port, b"\x16\x03\x01 not http at all\r\n\r\n");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer:.80}"
    );
    // Still serving.
    let (status, _) = e.get("/_health");
    assert_eq!(status, 200);
}

#[test]
fn the_api_refuses_bad_json_with_the_reason() {
    let e = TestEngine::start();
    for body in [
        "{",
        "[]",
        "{\"name\": 5}",
        "{\"name\": \"ok1\", \"port\": \"eighty\"}",
    ] {
        let resp = e
            .http
            .post(format!("http://127.0.0.1:{}/api/v1/apps", e.api_port))
            .bearer_auth(e.token())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{body}");
        let v: Value = resp.json().unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}: {v}"
        );
    }
    assert_eq!(e.list().len(), 1, "nothing was created");
}

#[test]
fn a_data_service_that_is_down_is_a_clear_error_and_changes_nothing() {
    let dead = free_port();
    let e = TestEngine::start_with(&common::sql::data_service(&format!(
        "postgres://hangar:secret@127.0.0.1:{dead}/postgres"
    )));
    let err = e.fails(&["create", "d1"]);
    assert!(
        err.contains("data service") && err.contains("nothing was created"),
        "{err}"
    );
    assert!(!err.contains("secret"), "no password in the error: {err}");
    assert_eq!(e.list().len(), 1, "only main");
    assert!(!e.home_path().join("apps/d1").exists());
    // An app attached by URL does not need the data service.
    let sqlite = e.home_path().join("attached.db");
    e.ok(&[
        "create",
        "d2",
        "--db",
        &format!("sqlite://{}?mode=rwc", sqlite.display()),
    ]);
}

#[test]
fn a_slow_client_is_cut_off_and_others_keep_being_served() {
    let e = TestEngine::start_with("client_header_timeout = 1\n");
    e.wait_status("main", "running", Duration::from_secs(30));
    // Half a request head, then silence (slowloris).
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", e.proxy_port)).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let answer = String::from_utf8_lossy(&buf);
    assert!(
        started.elapsed() < Duration::from_secs(14),
        "the slow client was never cut off"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    let (status, _) = e.get("/_health");
    assert_eq!(status, 200);
}

/// A small tmpfs mounted over a folder for the life of the guard (root only).
struct Mount(std::path::PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_under_the_logs_loses_counted_lines_and_the_engine_keeps_going() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test mounts a small tmpfs and needs root (CI runs as root)"
    );
    let demo = demo_bin();
    let e = TestEngine::start_with(&format!(
        r#"
[runtimes.chatty]
command = ["sh", "-c", "seq 1 40000 | sed 's/^/a line that fills the disk quickly /'; exec {} serve --port $PORT"]
health = "/_health"
"#,
        demo.display()
    ));
    let logs = e.home_path().join("logs");
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&logs)
        .status()
        .expect("mount");
    assert!(status.success(), "mount -t tmpfs failed");
    let _guard = Mount(logs.clone());
    // Leave about 100 KiB free.
    std::fs::write(logs.join("filler"), vec![0u8; 900 * 1024]).unwrap();
    e.ok(&["create", "c1", "--runtime", "chatty"]);
    e.ok(&["start", "c1"]);
    let lost = |e: &TestEngine| {
        let (_, v) = e.api(reqwest::Method::GET, "/apps/c1", None);
        v["log_lines_lost"].as_u64().unwrap_or(0)
    };
    wait_until("lost lines to be counted", Duration::from_secs(30), || {
        lost(&e) > 0
    });
    // The engine is fine: it answers, the app runs and serves.
    assert_eq!(e.status("c1"), "running");
    let (status, _) = e.get("/_app/c1/api/info");
    assert_eq!(status, 200);
    // Space comes back: the next lines say how many were lost.
    std::fs::remove_file(logs.join("filler")).unwrap();
    wait_until(
        "the loss to be written down",
        Duration::from_secs(30),
        || {
            let _ = e.get("/_app/c1/api/info");
            std::fs::read_to_string(logs.join("c1.log"))
                .unwrap_or_default()
                .contains("could not be written")
        },
    );
}

// ---- Issue 15: security, round two ----------------------------------------------------------

/// An app whose domain is `127.0.0.1` (or any IP literal, or a name under `.localhost`) would
/// take every request to the front door, main and every `/_app/` path included: refused at
/// create, edit and restore, with what is accepted.
#[test]
fn a_custom_domain_is_never_an_ip_address_or_localhost() {
    let e = TestEngine::start();
    for bad in [
        "127.0.0.1",
        "[::1]",
        "::1",
        "10.0.0.7",
        "127.1",
        "0x7f.1",
        "localhost",
        "shop.localhost",
    ] {
        let err = e.fails(&["create", "d1", "--domain", bad]);
        assert!(
            err.contains("domain") && err.contains("app.example.com"),
            "{bad}: {err}"
        );
    }
    let err = e.fails(&["create", "d1", "--domain", "127.0.0.1"]);
    assert!(err.contains("IP address"), "{err}");
    e.ok(&["create", "d1", "--domain", "d1.example.test"]);
    let (s, v) = e.api(
        reqwest::Method::PATCH,
        "/apps/d1",
        Some(serde_json::json!({ "domain": "127.0.0.1" })),
    );
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["field"], "domain", "{v}");

    // A restore goes through the same rule: an archive whose manifest names 127.0.0.1.
    let out = e.ok(&["backup", "d1"]);
    let archive = out
        .split(" to ")
        .nth(1)
        .and_then(|r| r.split(" (").next())
        .unwrap()
        .to_string();
    e.ok(&["delete", "d1", "--drop-db", "--yes"]);
    let crafted = e.home_path().join("crafted.tar.gz");
    with_manifest(&archive, &crafted, |m| {
        m["app"]["domain"] = Value::String("127.0.0.1".into());
    });
    let err = e.fails(&["restore", crafted.to_str().unwrap()]);
    assert!(err.contains("IP address"), "{err}");
    assert!(
        !e.list().iter().any(|a| a["name"] == "d1"),
        "nothing was restored"
    );
    // The front door still routes by path and to main.
    let (s, body) = e.get("/api/info");
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("\"main\""), "{body}");
}

/// A process group of its own that lives until killed, standing in for an app left behind: its
/// leader's pid and start time.
fn lone_group() -> (std::process::Child, u32, u64) {
    use std::os::unix::process::CommandExt;
    let child = std::process::Command::new("sleep")
        .arg("600")
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = hangar::base::process::start_time(pid).unwrap();
    (child, pid, started)
}

/// Write an app's recorded process straight into the registry of a stopped engine.
fn record_pid(home: &std::path::Path, app: &str, pid: u32, started: u64, boot: &str) {
    use sqlx::Connection;
    common::sql::rt().block_on(async {
        let url = format!("sqlite://{}", home.join("registry.db").display());
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE apps SET pid = ?, pid_started = ? WHERE name = ?")
            .bind(i64::from(pid))
            .bind(started as i64)
            .bind(app)
            .execute(&mut db)
            .await
            .unwrap();
        sqlx::query("UPDATE apps SET pid_boot = ? WHERE name = ?")
            .bind(boot)
            .bind(app)
            .execute(&mut db)
            .await
            .expect("the registry records the boot a pid belongs to");
    });
}

/// A pid and start time recorded in another boot may name a live process of this one (pids and
/// clock ticks start again at every boot): a record from another boot is never signalled, one
/// from this boot is ended as before.
#[test]
fn a_recorded_process_from_another_boot_is_never_signalled() {
    let mut e = TestEngine::start();
    e.ok(&["create", "b1"]);
    e.ok(&["create", "b2"]);
    e.stop_engine();
    let this_boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .to_string();
    let other_boot = "00000000-0000-4000-8000-000000000000";
    assert_ne!(this_boot, other_boot);
    let (mut stranger, stranger_pid, stranger_started) = lone_group();
    let (mut ours, ours_pid, ours_started) = lone_group();
    record_pid(
        e.home_path(),
        "b1",
        stranger_pid,
        stranger_started,
        other_boot,
    );
    record_pid(e.home_path(), "b2", ours_pid, ours_started, &this_boot);

    e.spawn();
    e.wait_status("main", "running", Duration::from_secs(30));
    // Reaped here (they are this test's children), so "gone" is seen as such.
    wait_until(
        "this boot's leftover to be ended",
        Duration::from_secs(20),
        || matches!(ours.try_wait(), Ok(Some(_))),
    );
    assert!(
        matches!(stranger.try_wait(), Ok(None)) && pid_alive(stranger_pid),
        "a process recorded in another boot was signalled"
    );
    let _ = stranger.kill();
    let _ = stranger.wait();
}

/// A small node app: its health path, `read?path=P` (the file, or 403 with the error's code),
/// `write?path=P`, `signal?path=PID` (signal 0) and `tmp` (a folder made and removed in
/// `os.tmpdir()`).
const PROBE_APP: &str = r#"
const http = require('http'), fs = require('fs'), os = require('os'), path = require('path');
const base = process.env.HANGAR_BASE_PATH;
http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  const p = u.searchParams.get('path');
  try {
    if (u.pathname === base + '/_health') return res.end('ok');
    if (u.pathname === base + '/read') return res.end(fs.readFileSync(p));
    if (u.pathname === base + '/write') { fs.writeFileSync(p, 'written'); return res.end('ok'); }
    if (u.pathname === base + '/signal') { process.kill(Number(p), 0); return res.end('ok'); }
    if (u.pathname === base + '/tmp') {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), 'probe-'));
      fs.writeFileSync(path.join(d, 'f'), 'x');
      fs.rmSync(d, { recursive: true });
      return res.end('ok');
    }
    res.statusCode = 404; res.end();
  } catch (e) { res.statusCode = 403; res.end(e.code || String(e)); }
}).listen(process.env.PORT, '127.0.0.1');
"#;

/// Apps run under Landlock: a node app cannot read the token, the registry, another app's
/// database file or a backup, nor signal the engine, and still serves through the proxy,
/// reads its code, writes its data folder and its TMPDIR (in its own HOME); the same app with `confine = false`
/// reads the token (so the refusals above are the confinement's); the demo app runs confined.
#[test]
fn a_confined_app_cannot_read_the_token_or_another_apps_data_and_still_serves() {
    let (code, toml) = probe_code();
    let e = TestEngine::start_with(&toml);
    for (name, runtime) in [("a", "probe"), ("b", "demo"), ("c", "open")] {
        e.ok(&["create", name, "--runtime", runtime]);
    }
    let home = std::fs::canonicalize(e.home_path()).unwrap();
    // b: the demo app, with its SQLite database and a backup.
    e.ok(&["start", "b"]);
    assert!(home.join("apps/b/db.sqlite").is_file());
    e.ok(&["backup", "b"]);
    let backup = std::fs::read_dir(home.join("backups"))
        .unwrap()
        .flatten()
        .map(|f| f.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("b's backup");
    let ask = |app: &str, what: &str, path: &std::path::Path| probe(&e, app, what, path);
    let token = e.token();
    let engine = e.engine_pid().expect("the engine's pid");
    for secret in [
        home.join("token"),
        home.join("registry.db"),
        home.join("apps/b/db.sqlite"),
        backup.clone(),
    ] {
        let (status, body) = ask("a", "read", &secret);
        assert_eq!(
            (status, body.as_str()),
            (403, "EACCES"),
            "a confined app read {}",
            secret.display()
        );
    }
    let (status, _) = ask("a", "write", &home.join("apps/b/planted"));
    assert_eq!(
        status, 403,
        "a confined app wrote into another app's folder"
    );
    assert!(!home.join("apps/b/planted").exists());
    let engine_pid = std::path::PathBuf::from(engine.to_string());
    assert_eq!(
        ask("a", "signal", &engine_pid),
        (403, "EPERM".into()),
        "a confined app may signal the engine"
    );

    // What it needs still works: its data folder, its code, the system, a temporary folder.
    let mine = home.join("apps/a/note");
    assert_eq!(ask("a", "write", &mine), (200, "ok".into()));
    assert_eq!(ask("a", "read", &mine), (200, "written".into()));
    assert_eq!(
        ask("a", "read", &code.path().join("probe.js")),
        (200, PROBE_APP.to_string())
    );
    assert_eq!(
        ask("a", "read", std::path::Path::new("/etc/hostname")).0,
        200
    );
    assert_eq!(
        ask("a", "tmp", std::path::Path::new("")),
        (200, "ok".into())
    );
    assert!(
        e.log_text("a").contains("confined by Landlock"),
        "{}",
        e.log_text("a")
    );

    // Unconfined by its runtime's setting, the same app reads the token: said in its log.
    assert_eq!(ask("c", "read", &home.join("token")).1.trim(), token);
    assert_eq!(ask("c", "signal", &engine_pid), (200, "ok".into()));
    assert!(e
        .log_text("c")
        .contains("not confined: runtimes.open.confine = false"));
    // The embedded demo runtime runs confined as well.
    e.wait_status("main", "running", Duration::from_secs(30));
    for demo in ["main", "b"] {
        assert!(
            e.log_text(demo).contains("confined by Landlock"),
            "{}",
            e.log_text(demo)
        );
    }
}

/// Ask the probe app `app` to do `what` (`read`, `write`, `signal`, `tmp`) with `path`:
/// (status, body).
fn probe(e: &TestEngine, app: &str, what: &str, path: &std::path::Path) -> (u16, String) {
    let resp = e
        .http
        .get(e.proxy_url(&format!("/_app/{app}/{what}")))
        .query(&[("path", path.display().to_string())])
        .send()
        .expect("proxy request");
    (resp.status().as_u16(), resp.text().unwrap_or_default())
}

/// A folder with the probe app, readable by every user; its `probe` runtime (confined) and its
/// `open` runtime (`confine = false`) for `hangar.toml`.
fn probe_code() -> (tempfile::TempDir, String) {
    use std::os::unix::fs::PermissionsExt;
    let code = tempfile::tempdir().expect("code folder");
    std::fs::set_permissions(code.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(code.path().join("probe.js"), PROBE_APP).unwrap();
    let rt = |name: &str, extra: &str| {
        format!(
            "[runtimes.{name}]\ncommand = [\"node\", \"probe.js\"]\ncwd = {:?}\n{extra}\n",
            code.path().display().to_string()
        )
    };
    let toml = format!("{}{}", rt("probe", ""), rt("open", "confine = false"));
    (code, toml)
}

/// On engine `e` (its hangar.toml from [`probe_code`]; `root`: it runs as root): a confined app cannot read another
/// app's `/proc/PID/environ` (its `DATABASE_URL` and `APP_KEY`) nor the engine's; the same app
/// unconfined reads the other app's (and, under a normal user's engine, the engine's), so the
/// refusals are the confinement's.
fn a_confined_app_cannot_read_environments(e: &TestEngine, root: bool) {
    for (name, runtime) in [("a", "probe"), ("b", "demo"), ("c", "open")] {
        e.ok(&["create", name, "--runtime", runtime]);
    }
    e.ok(&["start", "b"]);
    let b = e.pid("b");
    let key = environ(b)
        .into_iter()
        .find(|(k, _)| k == "APP_KEY")
        .map(|(_, v)| v)
        .expect("b's APP_KEY");
    assert!(environ(b).iter().any(|(k, _)| k == "DATABASE_URL"));
    let engine = e.engine_pid().expect("the engine's pid");
    for pid in [b, engine] {
        let env = std::path::PathBuf::from(format!("/proc/{pid}/environ"));
        assert_eq!(
            probe(e, "a", "read", &env),
            (403, "EACCES".to_string()),
            "a confined app read {}",
            env.display()
        );
        let (status, body) = probe(e, "c", "read", &env);
        // An app of a root engine has no capabilities, and reading a process that holds more
        // (the root engine) takes CAP_SYS_PTRACE: even unconfined it reads only its peers'.
        if pid == engine && root {
            assert_eq!(
                (status, body.as_str()),
                (403, "EACCES"),
                "{}",
                env.display()
            );
            continue;
        }
        assert_eq!(
            status,
            200,
            "unconfined, {} is readable: {body}",
            env.display()
        );
        if pid == b {
            assert!(body.contains(&format!("APP_KEY={key}")), "{body}");
        } else {
            assert!(body.contains("HANGAR_LOG=info"), "{body}");
        }
    }
}

/// Landlock keeps one domain from another's `/proc/PID/environ` for an engine that runs as a
/// normal user (here `nobody`, through `setpriv`).
#[test]
fn as_a_normal_user_a_confined_app_cannot_read_another_apps_environment() {
    let (_code, toml) = probe_code();
    let e = TestEngine::start_as_user(&toml, 65534);
    a_confined_app_cannot_read_environments(&e, false);
    assert!(
        !e.log_text("a").contains("runs as root"),
        "{}",
        e.log_text("a")
    );
}

/// As root, an app kept CAP_SYS_ADMIN and CAP_PERFMON, and with either Landlock's refusal
/// did not hold (measured on Linux 6.18); a root engine's apps now run with no capabilities
/// (bounding set cleared), and the app's log says so.
#[test]
fn as_root_a_confined_app_cannot_read_another_apps_environment() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test is about an engine that runs as root (CI runs as root)"
    );
    let (_code, toml) = probe_code();
    let e = TestEngine::start_with(&toml);
    a_confined_app_cannot_read_environments(&e, true);
    assert!(
        e.log_text("a")
            .contains("runs as root with no capabilities"),
        "{}",
        e.log_text("a")
    );
    let caps = std::fs::read_to_string(format!("/proc/{}/status", e.pid("a"))).unwrap();
    let bounding = caps
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .expect("CapBnd");
    assert_eq!(bounding & (1 << 21 | 1 << 38), 0, "{bounding:x}");
}

/// A confined app whose shell wrapper runs a program kept where no app reaches (here in the
/// engine user's `~/.ssh`, a key store) exits with 126 before it answers: the start's error and
/// its log say the confinement is the likely cause and what to do; the same wrapper unconfined
/// starts.
#[test]
fn a_start_that_the_confinement_stops_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let me = tempfile::tempdir().unwrap();
    let script = me.path().join(".ssh/serve.sh");
    std::fs::create_dir_all(script.parent().unwrap()).unwrap();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec {} serve --port \"$PORT\"\n",
            demo_bin().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let rt = |name: &str, extra: &str| {
        format!(
            "[runtimes.{name}]\ncommand = [\"sh\", \"-c\", \"exec {}\"]\nhealth = \"/_health\"\nrestart_limit = 1\n{extra}\n",
            script.display()
        )
    };
    let home = me.path().display().to_string();
    let e = TestEngine::start_with_env(
        &format!("{}{}", rt("wrapped", ""), rt("open", "confine = false")),
        &[("HOME", &home)],
    );
    e.ok(&["create", "w", "--runtime", "wrapped"]);
    let err = e.fails(&["start", "w"]);
    let said = "exited with code 126 before it was ready; it runs confined by Landlock (runtimes.wrapped.confine): it writes only its data folder, its HOME there, /tmp and the folders runtimes.wrapped.writable lists, and reads nothing in Hangar's home or its user's key stores; add a folder it writes to writable, or set confine = false";
    assert!(err.contains(said), "{err}");
    assert!(e.log_text("w").contains(said), "{}", e.log_text("w"));
    e.ok(&["create", "o", "--runtime", "open"]);
    e.ok(&["start", "o"]);
    assert!(!e.log_text("o").contains("confined by Landlock"));
}

/// Every `/proc/PID/cmdline` readable now that holds `needle`.
fn cmdlines_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for p in procs.flatten() {
        if let Ok(raw) = std::fs::read(p.path().join("cmdline")) {
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            if line.contains(needle) {
                found.push(line);
            }
        }
    }
    found
}

/// `hangar open` gave the browser its one-time login link in argv, which every local user can
/// read in `/proc/*/cmdline`; now the browser gets a private redirect file (0600) that holds
/// it, and the engine's output (what journald or logs/engine.log keep) has no login code.
#[test]
fn hangar_open_never_puts_the_login_code_on_a_command_line() {
    use std::os::unix::fs::PermissionsExt;
    let e = TestEngine::start();
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("argv");
    let page = dir.path().join("page.html");
    let browser = dir.path().join("browser.sh");
    std::fs::write(
        &browser,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {r}.tmp\nf=\"${{1#file://}}\"\ncat \"$f\" > {p}\nmv {r}.tmp {r}\nsleep 1\n",
            r = record.display(),
            p = page.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();

    // Watch every command line while `hangar open` and the browser run.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seen.extend(cmdlines_with("login?code="));
                std::thread::sleep(Duration::from_millis(2));
            }
            seen
        })
    };
    let out = hangar_cmd(e.home_path())
        .args(["open"])
        .env("BROWSER", browser.to_str().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    wait_until("the browser ran", Duration::from_secs(10), || {
        record.exists()
    });
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    assert!(seen.is_empty(), "a login code on a command line: {seen:?}");

    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("code="), "{stdout}");
    let argv = std::fs::read_to_string(&record).unwrap();
    let given = argv.trim();
    assert!(
        given.starts_with("file://"),
        "the browser got a file: {given}"
    );
    let file = std::path::PathBuf::from(given.trim_start_matches("file://"));
    assert!(file.starts_with(e.home_path()), "{}", file.display());
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the redirect file is private");
    let dir_mode = std::fs::metadata(file.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    // The file sends the browser to a working one-time link.
    let html = std::fs::read_to_string(&page).unwrap();
    let start = html
        .find("http://127.0.0.1:")
        .expect("the link in the file");
    let link: String = html[start..]
        .chars()
        .take_while(|c| !matches!(c, '"' | '<' | '&' | '\''))
        .collect();
    let code = link
        .split_once("/login?code=")
        .map(|(_, c)| c.to_string())
        .unwrap_or_else(|| panic!("{link}"));
    let resp = exchange(&e, &code, None);
    assert_eq!(resp.status().as_u16(), 200, "the link logs in");
    // The engine's own output (kept by journald, or in logs/engine.log) has no login code.
    let serve_log = std::fs::read_to_string(e.home_path().join("serve.log")).unwrap();
    assert!(!serve_log.contains("code="), "{serve_log}");
    assert!(serve_log.contains("hangar open"), "{serve_log}");
}

/// The panel's login code, traded at `POST /login` as the panel's page does; the answer.
fn exchange(e: &TestEngine, code: &str, origin: Option<&str>) -> reqwest::blocking::Response {
    let mut req = e
        .http
        .post(format!("http://127.0.0.1:{}/login", e.api_port))
        .json(&serde_json::json!({ "code": code }));
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    req.send().unwrap()
}

/// A fresh login code, as `hangar open` and the desktop shell get one.
fn login_code(e: &TestEngine) -> String {
    let (s, v) = e.api(reqwest::Method::POST, "/login-code", None);
    assert_eq!(s, 200, "{v}");
    v["code"].as_str().unwrap().to_string()
}

/// Cookies ignore ports: whatever cookie the panel's login left, every app's own port on
/// 127.0.0.1 receives it (`http://127.0.0.1:<app port>/api/v1/x.png`). So the login sets none
/// that is worth anything: the code is traded for a panel session (not the token), which the
/// page keeps in its origin's storage and sends as a bearer. A request replayed with cookies
/// only — the old token cookie, or the session as a cookie — with the panel's own Host and
/// Origin and a same-origin fetch, is refused.
#[test]
fn a_request_with_only_cookies_is_refused_and_the_login_gives_a_session_not_the_token() {
    let e = TestEngine::start();
    let token = e.token();
    let base = format!("http://127.0.0.1:{}", e.api_port);
    let url = format!("{base}/api/v1/apps");

    let code = login_code(&e);
    let resp = exchange(&e, &code, Some(&base));
    assert_eq!(resp.status().as_u16(), 200);
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .collect();
    let v: Value = resp.json().unwrap();
    let session = v["session"].as_str().unwrap().to_string();
    assert_eq!(session.len(), 64, "{v}");
    assert_ne!(
        session, token,
        "the page gets a session of its own, not the token"
    );
    assert!(!v.to_string().contains(&token), "{v}");
    // The only cookie it sets deletes the one older panels left.
    for c in &cookies {
        assert!(!c.contains(&token) && !c.contains(&session), "{c}");
        assert!(
            c.starts_with("hangar_token=;") && c.contains("Max-Age=0"),
            "{c}"
        );
    }

    let panel = |auth: Option<&str>, cookie: Option<&str>| {
        let mut req = e
            .http
            .get(&url)
            .header("Origin", &base)
            .header("Sec-Fetch-Site", "same-origin");
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        req.send().unwrap().status().as_u16()
    };
    assert_eq!(panel(Some(&session), None), 200, "the session as a bearer");
    assert_eq!(panel(Some(&token), None), 200, "the CLI's bearer token");
    for cookie in [
        format!("hangar_token={token}"),
        format!("hangar_token={session}"),
        format!("hangar_session={session}"),
    ] {
        assert_eq!(panel(None, Some(&cookie)), 401, "cookies alone: {cookie}");
    }
    assert_eq!(panel(Some("0123"), None), 401);

    // The code works once; another site may not trade one; a malformed body says what to send.
    let again = exchange(&e, &code, Some(&base));
    assert_eq!(again.status().as_u16(), 403);
    assert!(again.text().unwrap().contains("hangar open"));
    let fresh = login_code(&e);
    let foreign = exchange(&e, &fresh, Some("http://127.0.0.1:1"));
    assert_eq!(foreign.status().as_u16(), 403);
    let rebound = e
        .http
        .post(format!("{base}/login"))
        .header("Host", "rebind.attacker.example")
        .json(&serde_json::json!({ "code": fresh }))
        .send()
        .unwrap();
    assert_eq!(rebound.status().as_u16(), 403);
    assert_eq!(
        exchange(&e, &fresh, None).status().as_u16(),
        200,
        "still unused"
    );
    let bad = e
        .http
        .post(format!("{base}/login"))
        .body("code=x")
        .send()
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);

    // A session ends at logout; the token does not.
    let out = e
        .http
        .post(format!("{base}/api/v1/logout"))
        .bearer_auth(&session)
        .send()
        .unwrap();
    assert_eq!(out.status().as_u16(), 204);
    assert_eq!(panel(Some(&session), None), 401, "ended");
    assert_eq!(panel(Some(&token), None), 200);
}

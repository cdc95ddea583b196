//! Issue 24's process half, each with a test that fails without its fix: an app's processes
//! (a session of their own, no capabilities under a root engine, every child ended with the
//! app) and hostile archives (no loader or interpreter variables, nothing runs before the
//! operator starts it, the runtime's version command confined as the app is).

use crate::common;

use std::time::Duration;

use common::sql::uniq;
use common::*;
use serde_json::Value;

/// Fields of `/proc/PID/stat` after the command name: (session, tty_nr).
fn session_and_tty(pid: u32) -> (u32, i64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // state ppid pgrp session tty_nr
    (rest[3].parse().unwrap(), rest[4].parse().unwrap())
}

/// A capability set of `/proc/PID/status` (`CapEff`, `CapBnd`, …), as a number.
fn caps(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// With `hangar serve` typed into a shell, an app had the shell's terminal as its controlling
/// terminal (TIOCSTI could type into it): now each app leads a session of its own, with none.
#[test]
fn an_app_runs_in_a_session_of_its_own_without_the_engines_terminal() {
    let e = TestEngine::start_on_terminal("");
    let engine = e.engine_pid().expect("the engine's pid");
    assert_ne!(
        session_and_tty(engine).1,
        0,
        "the engine has a controlling terminal"
    );
    let app = uniq("tty");
    e.ok(&["create", &app]);
    e.ok(&["start", &app]);
    let pid = e.pid(&app);
    assert_eq!(
        session_and_tty(pid),
        (pid, 0),
        "a session of its own (sid = pid) and no controlling terminal"
    );
    // Its children too (they inherit the session).
    let child = e.grandchild(&app, 60);
    assert_eq!(session_and_tty(child), (pid, 0));
    e.ok(&["stop", &app]);
    wait_until(
        "the app's child to end with it",
        Duration::from_secs(30),
        || !pid_alive(child),
    );
}

/// A program that reports whether it may open a raw socket (CAP_NET_RAW) into its data
/// folder, then serves 200 on `$PORT`.
const RAW_APP: &str = r#"
import os, socket, http.server
try:
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
    r = "opened"
except OSError as e:
    r = "refused: %d" % e.errno
open(os.path.join(os.environ["HANGAR_DATA_DIR"], "raw.txt"), "w").write(r)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// As root, an app kept (nearly) every capability: CAP_NET_RAW sniffed the CLI's bearer token
/// off loopback. Now a root engine's apps, confined or not, have none: bounding, permitted,
/// effective, inheritable and ambient sets all empty, and a raw socket is refused.
#[test]
fn apps_of_a_root_engine_run_with_no_capabilities() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test is about an engine that runs as root (CI runs as root)"
    );
    let code = tempfile::tempdir().unwrap();
    std::fs::write(code.path().join("raw.py"), RAW_APP).unwrap();
    let toml = format!(
        "[runtimes.raw]\ncommand = [\"/usr/bin/python3\", \"raw.py\"]\ncwd = {:?}\nconfine = false\n",
        code.path().display().to_string()
    );
    let e = TestEngine::start_with(&toml);
    let (raw, demo) = (uniq("raw"), uniq("cap"));
    e.ok(&["create", &raw, "--runtime", "raw"]);
    e.ok(&["create", &demo]);
    for app in [&raw, &demo] {
        e.ok(&["start", app]);
        let pid = e.pid(app);
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(caps(pid, set), 0, "{app}: {set}");
        }
        assert!(
            e.log_text(app)
                .contains("runs as root with no capabilities"),
            "{}",
            e.log_text(app)
        );
    }
    let said = std::fs::read_to_string(e.home_path().join("apps").join(&raw).join("raw.txt"))
        .expect("the app wrote what it could do");
    assert_eq!(said, "refused: 1", "EPERM for a raw socket");
}

/// Processes whose environment holds `HANGAR_APP=app` and whose command is `sleep`.
fn sleeps_of(app: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let marker = format!("HANGAR_APP={app}");
        if comm.trim() == "sleep" && env.split(|b| *b == 0).any(|v| v == marker.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// A child that calls `setsid()` leaves the app's process group: it outlived `hangar stop`
/// (and could keep the app's port). Now a stop ends it too, as do the app's own exit and the
/// next start of an engine that was killed. (Unconfined: the point is the processes, and the
/// wrapper's program is named only in its argv.)
#[test]
fn a_child_that_leaves_the_process_group_ends_with_the_app() {
    let demo = demo_bin().display().to_string();
    let toml = format!(
        "[runtimes.escape]\ncommand = [\"sh\", \"-c\", \"setsid sleep 1000 & exec \\\"$0\\\" serve --port \\\"$PORT\\\"\", {demo:?}]\nconfine = false\n"
    );
    let mut e = TestEngine::start_with(&toml);
    let app = uniq("esc");
    e.ok(&["create", &app, "--runtime", "escape"]);
    e.ok(&["start", &app]);
    let pid = e.pid(&app);
    wait_until("the escaped child to run", Duration::from_secs(30), || {
        !sleeps_of(&app).is_empty()
    });
    let escaped = sleeps_of(&app)[0];
    let (sid, _) = session_and_tty(escaped);
    assert_ne!(sid, pid, "it left the app's session and process group");
    e.ok(&["stop", &app]);
    wait_until(
        "the escaped child to end with the stop",
        Duration::from_secs(30),
        || !pid_alive(escaped),
    );
    assert!(sleeps_of(&app).is_empty());

    // An exit on its own: what the app left behind ends too before the restart.
    e.ok(&["start", &app]);
    wait_until("a new escaped child", Duration::from_secs(30), || {
        !sleeps_of(&app).is_empty()
    });
    let escaped = sleeps_of(&app)[0];
    let (s, _) = e.get(&format!("/_app/{app}/api/exit?code=1"));
    assert_eq!(s, 200);
    wait_until(
        "the crashed app's escaped child to end",
        Duration::from_secs(60),
        || !pid_alive(escaped),
    );

    // An engine killed outright: the next one ends what the app's run left in its cgroup.
    e.wait_status(&app, "running", Duration::from_secs(60));
    wait_until("a new escaped child", Duration::from_secs(30), || {
        !sleeps_of(&app).is_empty()
    });
    let escaped = sleeps_of(&app)[0];
    e.crash_engine();
    std::thread::sleep(Duration::from_millis(300));
    assert!(pid_alive(escaped), "it outlived the engine");
    e.spawn();
    wait_until(
        "the next engine to end the escaped child",
        Duration::from_secs(60),
        || !pid_alive(escaped),
    );
}

/// A runtime whose version command runs `bash`, and an upgrade command, so a restore that
/// records a last version has the version asked before the start.
fn versioned_runtime() -> String {
    demo_runtime(
        "v",
        &[],
        "version_command = [\"bash\", \"-c\", \"echo 2.0\"]\nupgrade = [\"true\"]",
    )
}

/// An archive is whatever a file holds. Its manifest set `BASH_ENV` (and `LD_PRELOAD`) to a
/// script in its own data folder, started with the engine, and recorded a last version: the
/// restore started it at once and the version command ran the script, unconfined. Now those
/// variables are left out and said so, and the restored app stays stopped until started.
#[test]
fn a_restored_archive_brings_no_loader_variables_and_stays_stopped() {
    let e = TestEngine::start_with(&versioned_runtime());
    let app = uniq("arc");
    e.ok(&["create", &app, "--runtime", "v"]);
    let data = e.home_path().join("apps").join(&app);
    // The script writes beside the token: only an unconfined process can.
    let pwned = e.home_path().join("pwned");
    std::fs::write(
        data.join("evil.sh"),
        format!("echo ran > {}\n", pwned.display()),
    )
    .unwrap();
    let out = e.ok(&["backup", &app]);
    let archive = out
        .split(" to ")
        .nth(1)
        .unwrap()
        .split(" (")
        .next()
        .unwrap()
        .to_string();
    e.ok(&["delete", &app, "--yes"]);
    let crafted = e.home_path().join("crafted.tar.gz");
    let evil = e.home_path().join("apps").join(&app).join("evil.sh");
    with_manifest(&archive, &crafted, |m| {
        m["app"]["start_mode"] = Value::from("with-main");
        m["app"]["last_version"] = Value::from("1.0");
        m["app"]["env"]["BASH_ENV"] = Value::from(evil.display().to_string());
        m["app"]["env"]["LD_PRELOAD"] = Value::from(evil.display().to_string());
        m["app"]["env"]["GREETING"] = Value::from("hello");
    });
    let out = e.ok(&["restore", crafted.to_str().unwrap()]);
    assert!(out.contains("BASH_ENV, LD_PRELOAD"), "{out}");
    assert!(out.contains(&format!("hangar start {app}")), "{out}");
    let (_, shown) = e.api(reqwest::Method::GET, &format!("/apps/{app}"), None);
    let env = shown["env"].as_object().cloned().unwrap_or_default();
    assert!(env.contains_key("GREETING"), "{shown}");
    assert!(
        !env.contains_key("BASH_ENV") && !env.contains_key("LD_PRELOAD"),
        "{shown}"
    );
    assert!(e.log_text(&app).contains("BASH_ENV, LD_PRELOAD"));

    // Nothing runs by itself: not now, not at the engine's next start, not on a visit.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(e.status(&app), "stopped");
    let (status, _) = e.get(&format!("/_app/{app}/"));
    assert_ne!(status, 200, "a visit does not wake it");
    assert_eq!(e.status(&app), "stopped");
    assert!(!pwned.exists(), "nothing of the archive ran");

    // The operator starts it: the version is asked (and the upgrade runs), still nothing of
    // the archive's variables.
    e.ok(&["start", &app]);
    assert!(!pwned.exists(), "the version command ran without BASH_ENV");
}

/// A runtime's version command ran with unconfined access to the home (the token): now it
/// runs under the app's own Landlock ruleset, as its start does.
#[test]
fn a_runtimes_version_command_runs_confined_as_the_app() {
    let toml = demo_runtime(
        "peek",
        &[],
        "version_command = [\"sh\", \"-c\", \"cat ${HANGAR_DATA_DIR}/../../token > ${HANGAR_DATA_DIR}/seen 2>/dev/null; echo 1.0\"]",
    );
    let e = TestEngine::start_with(&toml);
    let app = uniq("ver");
    e.ok(&["create", &app, "--runtime", "peek"]);
    e.ok(&["start", &app]);
    let seen = e.home_path().join("apps").join(&app).join("seen");
    wait_until(
        "the version command to have run",
        Duration::from_secs(30),
        || seen.exists(),
    );
    let got = std::fs::read_to_string(&seen).unwrap();
    assert!(
        !got.contains(&e.token()),
        "the version command read the token"
    );
    assert_eq!(got, "", "its read of the token was refused");
}

/// `import nocobase` registered an `autoStart` row as started with the engine: the next engine
/// start ran it. Imported apps now stay stopped until the operator starts them.
#[test]
fn an_imported_app_stays_stopped_until_started() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.sqlite");
    let sub = uniq("imp");
    let url = format!("sqlite://{}?mode=rwc", main.display());
    common::sql::rt().block_on(async {
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE applications (name TEXT PRIMARY KEY, displayName TEXT, cname TEXT, pinned BOOLEAN, status TEXT, options TEXT)")
            .execute(&mut db)
            .await
            .unwrap();
        sqlx::query("INSERT INTO applications (name, displayName, pinned, status, options) VALUES (?, 'Imported', 0, 'running', '{\"autoStart\": true}')")
            .bind(&sub)
            .execute(&mut db)
            .await
            .unwrap();
    });
    let mut e = TestEngine::start_with(&demo_runtime("nb", &[], ""));
    let from = format!("sqlite://{}", main.display());
    e.ok(&["import", "nocobase", "--from", &from, "--runtime", "nb"]);
    assert_eq!(e.app(&sub)["start_mode"], "with-main");
    e.stop_engine();
    e.spawn();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(e.status(&sub), "stopped", "not started with the engine");
    e.ok(&["start", &sub]);
    assert_eq!(e.status(&sub), "running");
}

/// A backup's database dump holds the app's data: it is 0600 in the archive as in staging
/// (SQLite's `VACUUM INTO` made it 0644).
#[test]
fn a_backups_dump_is_readable_by_hangars_user_only() {
    let e = TestEngine::start();
    let app = uniq("dmp");
    e.ok(&["create", &app]);
    e.ok(&["start", &app]);
    let out = e.ok(&["backup", &app]);
    let archive = out
        .split(" to ")
        .nth(1)
        .unwrap()
        .split(" (")
        .next()
        .unwrap()
        .to_string();
    let f = std::fs::File::open(&archive).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mode = tar
        .entries()
        .unwrap()
        .flatten()
        .find(|en| en.path().is_ok_and(|p| p.as_os_str() == "db.sqlite"))
        .map(|en| en.header().mode().unwrap())
        .expect("the dump is in the archive");
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

/// `/proc/PID/cmdline` is every user's to read: a command that expands a secret onto it is
/// warned about at create (and at reload, for a runtime).
#[test]
fn a_command_that_puts_a_secret_on_its_command_line_is_warned_about() {
    let e = TestEngine::start();
    let demo = demo_bin().display().to_string();
    let app = uniq("sec");
    let out = e.ok(&[
        "create",
        &app,
        "--",
        &demo,
        "serve",
        "--port",
        "${PORT}",
        "--key",
        "${APP_KEY}",
    ]);
    assert!(
        out.contains("${APP_KEY}") && out.contains("/proc/PID/cmdline"),
        "{out}"
    );
    let quiet = uniq("sec");
    let out = e.ok(&["create", &quiet, "--", &demo, "serve", "--port", "${PORT}"]);
    assert!(!out.contains("/proc/PID/cmdline"), "{out}");

    // A runtime added to hangar.toml (read again by the watcher, or `hangar reload`).
    let toml = e.home_path().join("hangar.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        format!(
            "{text}{}",
            demo_runtime("leaky", &["--key", "${APP_KEY}"], "")
        ),
    )
    .unwrap();
    let _ = e.hangar(&["reload"]);
    let log = e.home_path().join("serve.log");
    wait_until("the reload's warning", Duration::from_secs(30), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("runtimes.leaky.command puts ${APP_KEY} on its command line")
    });
}

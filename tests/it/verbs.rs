//! Every verb answers what it is asked (issue 28), through the real `hangar` binary on a real
//! engine: times and spans read by one checked parser, one JSON document per verb, usage errors
//! as clap's, the engine's own start-up error, a program that is not there, asleep apart from
//! stopped, live streams that end in one line, logs without colour codes, clean paths, reload
//! after the watcher, a machine without systemd.

use crate::common;

use std::io::BufRead;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not one JSON document ({e}): {out}"))
}

/// `hangar logs --since` far back neither panics the engine nor loses it; a month 13 is a bad
/// date, not a bad unit; a metrics range reads as the same spans.
#[test]
fn log_times_are_read_by_one_checked_parser() {
    let e = TestEngine::start();
    e.ok(&["create", "web"]);
    e.ok(&["start", "web"]);
    for far in ["99999999999d", "99999999999999999999999999d"] {
        let out = e.ok(&["logs", "web", "--since", far]);
        assert!(out.contains("ready"), "every line since then: {out}");
        let out = e.ok(&["logs", "web", "--until", far]);
        assert!(out.trim().is_empty(), "nothing before then: {out}");
    }
    let err = e.fails(&["logs", "web", "--since", "2026-13-01T00:00:00Z"]);
    assert!(err.contains("not a valid date and time"), "{err}");
    assert!(err.contains("month") && !err.contains("unit"), "{err}");
    let err = e.fails(&["logs", "web", "--since", "yesterday"]);
    assert!(
        err.contains("--since") || err.contains("since \"yesterday\""),
        "{err}"
    );
    // The same spans in a metrics range; too long a one is refused, never a panic.
    let (status, body) = e.api(reqwest::Method::GET, "/apps/web/metrics?range=1h30m", None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = e.api(
        reqwest::Method::GET,
        "/apps/web/metrics?range=99999999999d",
        None,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("up to 7d"), "{body}");
    // The engine is still there.
    assert_eq!(e.status("web"), "running");
}

/// `start A B --json` with one failing: one JSON document on stdout (the per-app results), the
/// summary on stderr, exit status 1. The same for stop.
#[test]
fn a_bulk_verb_prints_one_json_document_even_when_one_fails() {
    let e = TestEngine::start_with(
        r#"
[runtimes.broken]
command = ["sh", "-c", "echo cannot start >&2; exit 3"]
restart_limit = 1
"#,
    );
    e.ok(&["create", "good"]);
    e.ok(&["create", "bad", "--runtime", "broken"]);
    let out = e.hangar(&["start", "good", "bad", "--json"]);
    assert!(!out.status.success());
    let r = json_of(&stdout(&out));
    assert_eq!(r["ok"], 1, "{r}");
    assert_eq!(r["failed"], 1, "{r}");
    assert!(
        stderr(&out).contains("1 of 2 apps failed to start: bad"),
        "{}",
        stderr(&out)
    );
    // One app alone: its refusal is the one document.
    let out = e.hangar(&["start", "bad", "--json"]);
    assert!(!out.status.success());
    let r = json_of(&stdout(&out));
    assert!(r["error"].as_str().is_some_and(|m| !m.is_empty()), "{r}");
}

/// Usage errors exit 2, as clap's own, and start no engine.
#[test]
fn usage_errors_exit_2_and_start_no_engine() {
    let home = tempfile::tempdir().expect("temp home");
    for (args, words) in [
        (vec!["start"], "give the apps to start"),
        (vec!["stop", "--json"], "give the apps to stop"),
        (vec!["restart"], "give the apps to restart"),
        (vec!["edit", "web"], "nothing to change"),
        (vec!["edit", "web", "--restart"], "nothing to change"),
    ] {
        let out = hangar_cmd(home.path()).args(&args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with("error: ") && err.contains(words),
            "{args:?}: {err}"
        );
        assert!(
            err.contains(&format!("Usage: hangar {}", args[0])),
            "{args:?}: {err}"
        );
    }
    assert!(
        !home.path().join("engine.json").exists() && !home.path().join("logs").exists(),
        "no engine was started"
    );
}

/// A hangar.toml the engine refuses: the CLI that starts the engine tells the engine's own
/// error (naming the key) instead of waiting for an engine that will never answer.
#[test]
fn a_broken_config_is_told_by_the_cli_that_starts_the_engine() {
    let home = tempfile::tempdir().expect("temp home");
    std::fs::write(
        home.path().join("hangar.toml"),
        format!(
            "proxy_port = {}\napi_port = {}\nsampler = \"fast\"\n",
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    let out = hangar_cmd(home.path())
        .args(["list"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert!(last.contains("the engine could not start"), "{err}");
    assert!(
        last.contains("sampler") && last.contains("\"fast\""),
        "{err}"
    );
    assert!(!last.contains("did not come up"), "{err}");
}

/// `create NAME -- PROGRAM` with a program that is not there is refused at create, naming it.
#[test]
fn create_refuses_a_program_that_is_not_there() {
    let e = TestEngine::start();
    let err = e.fails(&[
        "create",
        "ghost",
        "--",
        "/no/such/program",
        "--port",
        "${PORT}",
    ]);
    assert!(err.contains("/no/such/program"), "{err}");
    let err = e.fails(&["create", "ghost", "--", "no-such-program-hangar"]);
    assert!(
        err.contains("no-such-program-hangar") && err.contains("PATH"),
        "{err}"
    );
    assert!(!e.listed("ghost"));
    // A program that is there: on PATH, or by its path.
    let demo = demo_bin().display().to_string();
    e.ok(&["create", "own", "--", &demo, "serve", "--port", "${PORT}"]);
    assert!(e.listed("own"));
}

/// `list` and `status` say asleep for an app a visit starts, stopped for one the operator
/// stopped; `status --json` carries everything `status` prints.
#[test]
fn list_and_status_tell_asleep_from_stopped() {
    let e = TestEngine::start();
    e.ok(&["create", "lazy"]);
    e.ok(&["create", "web"]);
    e.ok(&["start", "web"]);
    e.ok(&["stop", "web"]);
    let table = e.ok(&["list"]);
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("a row for {name}: {table}"))
            .to_string()
    };
    assert_eq!(
        row("lazy").split_whitespace().nth(1),
        Some("asleep"),
        "{table}"
    );
    assert_eq!(
        row("web").split_whitespace().nth(1),
        Some("stopped"),
        "{table}"
    );
    assert!(e.ok(&["status", "lazy"]).contains("asleep"));
    assert!(!e.ok(&["status", "web"]).contains("asleep"));
    let lazy = e.app("lazy");
    assert_eq!(
        lazy["status"], "stopped",
        "the machine's status stays: {lazy}"
    );
    assert_eq!(lazy["asleep"], true, "{lazy}");
    assert_eq!(e.app("web")["asleep"], false);
    // Everything `status` prints: its runtime, addresses, idle stop and own program too.
    let demo = demo_bin().display().to_string();
    e.ok(&["create", "own", "--", &demo, "serve", "--port", "${PORT}"]);
    let own = e.app("own");
    assert_eq!(own["runtime"], "command", "{own}");
    assert!(
        own["urls"].as_array().is_some_and(|u| !u.is_empty()),
        "{own}"
    );
    assert_eq!(own["command"][0], demo.as_str(), "{own}");
    assert!(own.get("idle_timeout").is_some(), "{own}");
    let text = e.ok(&["status", "own"]);
    for (key, field) in [("runtime", "runtime"), ("urls", "urls")] {
        assert!(text.contains(key), "{text}");
        assert!(own.get(field).is_some(), "{own}");
    }
}

/// Read a child's first line of standard output (it runs).
fn first_line(child: &mut std::process::Child) -> String {
    let out = child.stdout.take().expect("piped stdout");
    let mut r = std::io::BufReader::new(out);
    let mut line = String::new();
    r.read_line(&mut line).expect("read a line");
    // Keep reading in the background so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while r.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    line
}

/// `logs -f` and `monit` end with one clear line when the engine ends.
#[test]
fn live_streams_end_in_one_line_when_the_engine_ends() {
    let mut e = TestEngine::start();
    e.ok(&["create", "web"]);
    e.ok(&["start", "web"]);
    let spawn = |args: &[&str]| {
        hangar_cmd(e.home_path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hangar")
    };
    let mut follow = spawn(&["logs", "web", "-f"]);
    let mut monit = spawn(&["monit"]);
    assert!(!first_line(&mut follow).is_empty());
    assert!(!first_line(&mut monit).is_empty());
    e.stop_engine();
    for (what, child) in [("logs -f", follow), ("monit", monit)] {
        let out = child.wait_with_output().expect("wait");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
        assert!(
            err.contains("the engine ended") || err.contains("the engine closed the stream"),
            "{what}: {err}"
        );
        assert!(!err.contains("error decoding"), "{what}: {err}");
    }
}

/// The engine's own log lines carry no terminal colour codes when kept in a file.
#[test]
fn kept_engine_logs_have_no_colour_codes() {
    let e = TestEngine::start();
    e.ok(&["create", "web"]);
    e.ok(&["start", "web"]);
    let log = std::fs::read_to_string(e.home_path().join("serve.log")).unwrap_or_default();
    assert!(log.contains("INFO"), "tracing lines were written: {log}");
    assert!(!log.contains('\u{1b}'), "no escape codes: {log}");
}

/// `backup --all -o ./bk` prints paths as the operator reads them.
#[test]
fn backup_to_a_relative_folder_prints_clean_paths() {
    let e = TestEngine::start();
    e.ok(&["create", "web"]);
    let cwd = tempfile::tempdir().expect("temp cwd");
    let out = hangar_cmd(e.home_path())
        .current_dir(cwd.path())
        .args(["backup", "--all", "-o", "./bk"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("backed up web to"), "{text}");
    assert!(!text.contains("/./"), "{text}");
    let dir = cwd.path().join("bk");
    assert!(
        text.contains(&dir.display().to_string()),
        "{text} names {}",
        dir.display()
    );
}

/// `hangar reload` just after the watcher applied a change says so, not "nothing changed".
#[test]
fn reload_after_the_watcher_tells_what_it_applied() {
    let e = TestEngine::start();
    let toml = e.home_path().join("hangar.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str(&demo_runtime("extra", &[], ""));
    std::fs::write(&toml, text).unwrap();
    let log = e.home_path().join("serve.log");
    wait_until(
        "the watcher to apply the change",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("runtimes apply to the next start")
        },
    );
    let out = e.ok(&["reload"]);
    assert!(out.contains("nothing new since its last change"), "{out}");
    assert!(out.contains("added extra"), "{out}");
    let r = json_of(&e.ok(&["reload", "--json"]));
    assert!(
        r["applied_before"]
            .as_str()
            .is_some_and(|s| s.contains("extra")),
        "{r}"
    );
}

/// `startup` where systemd does not run says so and writes nothing.
#[test]
fn startup_without_systemd_writes_nothing() {
    if Path::new("/run/systemd/system").is_dir() {
        eprintln!("systemd runs here: nothing to check");
        return;
    }
    let home = tempfile::tempdir().expect("temp home");
    let config = tempfile::tempdir().expect("temp config");
    let out = hangar_cmd(home.path())
        .env("XDG_CONFIG_HOME", config.path())
        .args(["startup", "--user"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("systemd is not running") && err.contains("nothing was written"),
        "{err}"
    );
    assert!(
        !config.path().join("systemd").exists(),
        "nothing was written"
    );
}

/// pm2's habits: `logs --out` and `--err` show one stream, the last N of it.
#[test]
fn logs_out_and_err_show_one_stream() {
    let demo = demo_bin().display().to_string();
    let e = TestEngine::start_with(&format!(
        r#"
[runtimes.chatty]
command = ["sh", "-c", "echo to-out; echo to-err >&2; exec \"$0\" serve --port \"$1\"", "{demo}", "${{PORT}}"]
confine = false
"#
    ));
    e.ok(&["create", "talk", "--runtime", "chatty"]);
    e.ok(&["start", "talk"]);
    wait_until("both lines in the log", Duration::from_secs(10), || {
        let t = e.log_text("talk");
        t.contains("to-out") && t.contains("to-err")
    });
    let out = e.ok(&["logs", "talk", "--out"]);
    assert!(out.contains("to-out") && !out.contains("to-err"), "{out}");
    assert!(
        out.lines().all(|l| l.split(' ').nth(1) == Some("out")),
        "{out}"
    );
    let err = e.ok(&["logs", "talk", "--err", "--json"]);
    assert!(err.contains("to-err") && !err.contains("to-out"), "{err}");
    assert!(err.lines().all(|l| json_of(l)["stream"] == "err"), "{err}");
    let one = e.ok(&["logs", "talk", "--out", "-n", "1"]);
    assert_eq!(one.lines().count(), 1, "{one}");
    // Every app's lines, one stream.
    let all = e.ok(&["logs", "--err"]);
    assert!(all.contains("to-err") && !all.contains("to-out"), "{all}");
    let out = e.hangar(&["logs", "talk", "--out", "--err"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The log reads in the order things happened: the app's `listening on` before Hangar's
/// `ready`, and after a restart the old process's last line before the new one's `ready`.
#[test]
fn the_log_keeps_the_order_things_happened_in() {
    let e = TestEngine::start();
    e.ok(&["create", "web"]);
    e.ok(&["start", "web"]);
    for _ in 0..3 {
        e.ok(&["restart", "web"]);
    }
    e.ok(&["stop", "web"]);
    // The file is written by the log writer's thread a moment after `stop` answers: wait for
    // the last run's lines, then read the order they landed in.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while e
        .log_text("web")
        .matches(" out hangar-demo stopped")
        .count()
        < 4
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let text = e.log_text("web");
    let lines: Vec<&str> = text.lines().collect();
    let ready: Vec<usize> = (0..lines.len())
        .filter(|i| lines[*i].contains(" sys ready in "))
        .collect();
    let listening: Vec<usize> = (0..lines.len())
        .filter(|i| lines[*i].contains(" out hangar-demo ") && lines[*i].contains("listening on"))
        .collect();
    let stopped: Vec<usize> = (0..lines.len())
        .filter(|i| lines[*i].contains(" out hangar-demo stopped"))
        .collect();
    assert_eq!(ready.len(), 4, "{text}");
    assert_eq!(listening.len(), 4, "{text}");
    assert_eq!(stopped.len(), 4, "{text}");
    for k in 0..4 {
        assert!(
            listening[k] < ready[k],
            "run {k}: listening before ready:\n{text}"
        );
        if k > 0 {
            assert!(
                stopped[k - 1] < ready[k],
                "run {k}: the old process's end first:\n{text}"
            );
        }
    }
}

/// A crash loop's reason quotes each stderr line once; the app's `error` state and reason
/// survive an engine restart (it is not started again until the operator says so).
#[test]
fn an_error_and_its_reason_survive_an_engine_restart() {
    let mut e = TestEngine::start_with(
        r#"
[runtimes.crashy]
command = ["sh", "-c", "echo boom >&2; exit 3"]
restart_limit = 3
"#,
    );
    e.ok(&["create", "bad", "--runtime", "crashy"]);
    let out = e.hangar(&["start", "bad"]);
    assert!(!out.status.success());
    let before = e.app("bad");
    assert_eq!(before["status"], "error", "{before}");
    let why = before["error"].as_str().unwrap_or_default().to_string();
    assert!(why.contains("boom"), "{why}");
    assert_eq!(why.matches("boom").count(), 1, "each line once: {why}");
    e.stop_engine();
    e.spawn();
    let after = e.app("bad");
    assert_eq!(after["status"], "error", "{after}");
    assert_eq!(after["error"].as_str(), Some(why.as_str()), "{after}");
    assert!(e.ok(&["list"]).contains(&format!("bad: {why}")));
    // Stopped by the operator: the error is gone, and stays gone after a restart.
    e.ok(&["stop", "bad"]);
    e.stop_engine();
    e.spawn();
    let again = e.app("bad");
    assert_eq!(again["status"], "stopped", "{again}");
    assert!(again["error"].is_null(), "{again}");
}

//! CPU, memory and logs per app, end to end: a real engine, real app processes (hangar-demo
//! run as a grandchild by a small shell runtime), the real CLI and API.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A runtime whose leader is a shell: `sh` → subshell → hangar-demo (the grandchild), and a
/// second subshell that waits for `$HANGAR_DATA_DIR/go` and runs it with the app's stdout.
fn wrapper(dir: &Path) -> PathBuf {
    let script = dir.join("wrap.sh");
    std::fs::write(
        &script,
        r#"#!/bin/sh
demo="$1"
(
  while [ ! -f "$HANGAR_DATA_DIR/go" ]; do sleep 0.2; done
  sh "$HANGAR_DATA_DIR/go"
) &
( "$demo" serve --port "$PORT"; true ) &
wait
"#,
    )
    .unwrap();
    script
}

/// A shell wrapper that runs the demo app from the build folder (confined, as every app).
fn runtime_toml(script: &Path, extra: &str) -> String {
    format!(
        "[runtimes.wrapped]\ncommand = [\"sh\", {:?}, {:?}]\nhealth = \"/_health\"\n{extra}\n",
        script.display().to_string(),
        demo_bin().display().to_string()
    )
}

/// The hangar-demo process of the app whose leader is `leader` (same process group).
fn demo_pid(leader: u32) -> u32 {
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        if f[2] == leader.to_string() && stat.contains("(hangar-demo)") {
            return pid;
        }
    }
    panic!("no hangar-demo in process group {leader}");
}

/// utime + stime of one process, in seconds (the truth the sampler is held against).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// An SSE reader on a thread: every `data:` payload with the time it arrived.
struct Sse {
    got: std::sync::Arc<std::sync::Mutex<Vec<(Instant, String)>>>,
    /// When set, the reader notes this process's CPU seconds as each payload arrives.
    probe: std::sync::Arc<std::sync::atomic::AtomicU32>,
    probed: std::sync::Arc<std::sync::Mutex<Vec<(Instant, String, f64)>>>,
}

impl Sse {
    fn open(e: &TestEngine, path: &str) -> Sse {
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let g = got.clone();
        let probe = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let probed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (pr, pd) = (probe.clone(), probed.clone());
        let url = format!("http://127.0.0.1:{}/api/v1{path}", e.api_port);
        let token = e.token();
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(None)
                .build()
                .unwrap();
            let Ok(resp) = client.get(url).bearer_auth(token).send() else {
                return;
            };
            let mut r = BufReader::new(resp);
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if let Some(d) = line.strip_prefix("data:") {
                    let now = Instant::now();
                    let d = d.trim_start().trim_end_matches('\n').to_string();
                    let pid = pr.load(std::sync::atomic::Ordering::Relaxed);
                    if pid != 0 {
                        pd.lock().unwrap().push((now, d.clone(), cpu_seconds(pid)));
                    }
                    g.lock().unwrap().push((now, d));
                }
            }
        });
        Sse { got, probe, probed }
    }

    fn items(&self) -> Vec<(Instant, String)> {
        self.got.lock().unwrap().clone()
    }
}

fn cpu_and_memory_of_a_grandchild(sampler: &str) {
    let dir = tempfile::tempdir().unwrap();
    let script = wrapper(dir.path());
    let e = TestEngine::start_with(&format!(
        "sampler = \"{sampler}\"\n{}",
        runtime_toml(&script, "")
    ));
    let (st, host) = e.api(reqwest::Method::GET, "/host", None);
    assert_eq!(st, 200);
    assert_eq!(host["sampler"], sampler);
    e.ok(&["create", "w1", "--runtime", "wrapped"]);
    e.ok(&["start", "w1"]);
    let leader = e.pid("w1");
    let demo = demo_pid(leader);
    assert_ne!(demo, leader);

    // Watching: the sampler goes to one tick a second.
    let sse = Sse::open(&e, "/metrics/stream");
    let (st, _) = e.get("/_app/w1/api/burn?ms=9000&background=1");
    assert_eq!(st, 200);
    std::thread::sleep(Duration::from_millis(1500));
    // The truth is read from /proc as each tick arrives, so both cover the same intervals.
    sse.probe.store(demo, std::sync::atomic::Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(5500));
    sse.probe.store(0, std::sync::atomic::Ordering::Relaxed);
    let ticks: Vec<(Instant, f64, f64)> = sse
        .probed
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(at, d, c)| {
            let v: Value = serde_json::from_str(d).ok()?;
            Some((*at, v["apps"]["w1"]["cpu_percent"].as_f64()?, *c))
        })
        .collect();
    assert!(
        ticks.len() >= 4,
        "one tick a second while watched: {ticks:?}"
    );
    let (first, last) = (ticks[0], ticks[ticks.len() - 1]);
    let truth = (last.2 - first.2) / (last.0 - first.0).as_secs_f64() * 100.0;
    let measured = ticks[1..].iter().map(|t| t.1).sum::<f64>() / (ticks.len() - 1) as f64;
    assert!(truth > 5.0, "the burn did burn: {truth}");
    assert!(
        (measured - truth).abs() <= truth * 0.2,
        "{sampler}: measured {measured:.1}% against {truth:.1}% (ticks {:?})",
        ticks.iter().map(|t| t.1).collect::<Vec<_>>()
    );

    // Memory held by the grandchild is counted in the app's figure.
    let (st, _) = e.get("/_app/w1/api/hold?mb=200");
    assert_eq!(st, 200);
    let held = proc_kib(demo, "VmRSS") * 1024;
    assert!(held >= 200 << 20);
    wait_until(
        "the list to show the held memory",
        Duration::from_secs(15),
        || e.app("w1")["memory_bytes"].as_u64().unwrap_or(0) >= held,
    );
    let list = e.ok(&["list"]);
    assert!(list.contains("MiB"), "{list}");

    // The history has the 1 s points, and the host its own.
    let (st, h) = e.api(reqwest::Method::GET, "/apps/w1/metrics?range=5m", None);
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["resolution"], "1s");
    let points = h["points"].as_array().unwrap();
    assert!(
        points.iter().any(|p| p["cpu"].as_f64().unwrap() > 20.0),
        "{h}"
    );
    assert!(
        points
            .iter()
            .any(|p| p["mem"].as_u64().unwrap() >= 200 << 20),
        "{h}"
    );
    assert!(
        h["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["kind"] == "start"),
        "{h}"
    );
    let (st, h) = e.api(reqwest::Method::GET, "/apps/@host/metrics?range=5m", None);
    assert_eq!(st, 200);
    assert!(!h["points"].as_array().unwrap().is_empty());
    let (st, bad) = e.api(reqwest::Method::GET, "/apps/w1/metrics?range=9d", None);
    assert_eq!(st, 400);
    assert!(bad["error"]["message"]
        .as_str()
        .unwrap()
        .contains("accepted"));
}

#[test]
fn cpu_and_memory_of_a_grandchild_proc() {
    cpu_and_memory_of_a_grandchild("proc");
}

#[test]
fn cpu_and_memory_of_a_grandchild_sysinfo() {
    cpu_and_memory_of_a_grandchild("sysinfo");
}

#[test]
fn history_and_timeline_survive_an_engine_restart() {
    let mut e = TestEngine::start();
    e.ok(&["create", "a1"]);
    e.ok(&["start", "a1"]);
    let sse = Sse::open(&e, "/metrics/stream");
    wait_until("a few ticks", Duration::from_secs(20), || {
        sse.items()
            .iter()
            .filter(|(_, d)| d.contains("\"a1\""))
            .count()
            >= 3
    });
    e.ok(&["restart", "a1"]);
    e.ok(&["stop", "a1"]);
    wait_until("the stop on the stream", Duration::from_secs(10), || {
        sse.items()
            .iter()
            .any(|(_, d)| d.contains("\"kind\":\"stop\""))
    });
    e.stop_engine();
    e.spawn();
    for range in ["1h", "7d"] {
        let (st, h) = e.api(
            reqwest::Method::GET,
            &format!("/apps/a1/metrics?range={range}"),
            None,
        );
        assert_eq!(st, 200, "{h}");
        let points = h["points"].as_array().unwrap();
        assert!(
            !points.is_empty(),
            "{range}: points kept across the restart: {h}"
        );
        assert!(points.iter().any(|p| p["mem"].as_u64().unwrap() > 0), "{h}");
        let kinds: Vec<&str> = h["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["kind"].as_str())
            .collect();
        for k in ["start", "restart", "stop"] {
            assert!(kinds.contains(&k), "{range}: {k} in {kinds:?}");
        }
    }
}

/// Every line of an app's log files, oldest first.
fn all_lines(home: &Path, name: &str) -> Vec<String> {
    let base = home.join("logs").join(format!("{name}.log"));
    let mut files = vec![base.clone()];
    let mut i = 1;
    while Path::new(&format!("{}.{i}", base.display())).exists() {
        files.push(PathBuf::from(format!("{}.{i}", base.display())));
        i += 1;
    }
    files.reverse();
    let mut out = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        out.extend(
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(|s| s.to_string()),
        );
    }
    out
}

#[test]
fn rotation_under_load_loses_no_line_and_search_reaches_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let script = wrapper(dir.path());
    let e = TestEngine::start_with(&runtime_toml(
        &script,
        "log_max_bytes = 262144\nlog_keep = 200",
    ));
    e.ok(&["create", "w2", "--runtime", "wrapped"]);
    e.ok(&["start", "w2"]);
    let data = e.home_path().join("apps/w2");
    const N: u32 = 200_000;
    std::fs::write(
        data.join("go"),
        format!("echo needle-in-the-oldest-file\nseq -f 'load %g' 1 {N}\necho load-done\n"),
    )
    .unwrap();
    wait_until("every line written", Duration::from_secs(60), || {
        e.log_text("w2").contains("load-done")
    });
    let lines = all_lines(e.home_path(), "w2");
    let nums: Vec<u32> = lines
        .iter()
        .filter_map(|l| l.split_once(" out load ").and_then(|(_, n)| n.parse().ok()))
        .collect();
    assert_eq!(nums.len() as u32, N, "no line lost");
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "in order");
    assert!(!lines.iter().any(|l| l.contains("lines were dropped")));
    let logs = e.home_path().join("logs");
    assert!(logs.join("w2.log.5").exists(), "rotated several times");
    for f in std::fs::read_dir(&logs).unwrap().flatten() {
        if f.file_name().to_string_lossy().starts_with("w2.log") {
            assert!(f.metadata().unwrap().len() <= 262144, "{:?}", f.path());
        }
    }
    // The oldest line is in a rotated file, and `hangar logs --grep` finds it.
    assert!(!e.log_text("w2").contains("needle-in-the-oldest-file"));
    let found = e.ok(&["logs", "w2", "--grep", "needle-in-the-oldest"]);
    assert_eq!(found.lines().count(), 1, "{found}");
    assert!(found.contains(" out needle-in-the-oldest-file"), "{found}");
    let found = e.ok(&[
        "logs",
        "w2",
        "--grep",
        "^load 1234[0-9]$",
        "--regex",
        "--since",
        "1h",
    ]);
    assert_eq!(found.lines().count(), 10, "{found}");
    let found = e.ok(&[
        "logs",
        "w2",
        "--grep",
        "needle",
        "--until",
        "2000-01-01T00:00:00Z",
    ]);
    assert!(found.trim().is_empty(), "{found}");
    let err = e.fails(&["logs", "w2", "--grep", "(", "--regex"]);
    assert!(err.contains("regular expression"), "{err}");
}

#[test]
fn a_stalled_subscriber_does_not_slow_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let script = wrapper(dir.path());
    let e = TestEngine::start_with(&runtime_toml(&script, ""));
    e.ok(&["create", "w3", "--runtime", "wrapped"]);
    e.ok(&["start", "w3"]);
    // A follower that never reads.
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", e.api_port)).unwrap();
    write!(
        stalled,
        "GET /api/v1/apps/w3/logs/follow HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n\r\n",
        e.api_port,
        e.token()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    const N: u32 = 300_000;
    std::fs::write(
        e.home_path().join("apps/w3/go"),
        format!("seq -f 'flood %g' 1 {N}\necho flood-done\n"),
    )
    .unwrap();
    wait_until(
        "the app's output all written",
        Duration::from_secs(60),
        || e.log_text("w3").contains("flood-done"),
    );
    let lines = all_lines(e.home_path(), "w3");
    let count = lines.iter().filter(|l| l.contains(" out flood ")).count();
    assert_eq!(count as u32, N, "no line lost for the file");
    // The app still answers, and a new follower gets lines.
    let (st, _) = e.get("/_app/w3/api/info");
    assert_eq!(st, 200);
    let fresh = Sse::open(&e, "/apps/w3/logs/follow?n=1");
    wait_until("a fresh follower's line", Duration::from_secs(10), || {
        !fresh.items().is_empty()
    });
    // The stalled one, once it reads, is told how many lines it missed.
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match stalled.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        if String::from_utf8_lossy(&seen).contains("lines skipped") {
            break;
        }
    }
    assert!(
        String::from_utf8_lossy(&seen).contains("lines skipped"),
        "the stalled viewer gets a marker"
    );
}

#[test]
fn an_external_log_file_is_followed_through_truncation_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let script = wrapper(dir.path());
    let e = TestEngine::start_with(&runtime_toml(&script, "logs = [\"ext/**/*.log\"]"));
    e.ok(&["create", "w4", "--runtime", "wrapped"]);
    let ext = e.home_path().join("apps/w4/ext/app");
    std::fs::create_dir_all(&ext).unwrap();
    let file = ext.join("app.log");
    std::fs::write(&file, "written before the start\n").unwrap();
    e.ok(&["start", "w4"]);
    let append = |s: &str| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    };
    let shows = |want: &str| {
        wait_until(
            &format!("{want:?} in the app's log"),
            Duration::from_secs(10),
            || {
                e.ok(&["logs", "w4", "-n", "100"])
                    .lines()
                    .any(|l| l.contains(" file [ext/app/app.log] ") && l.ends_with(want))
            },
        )
    };
    std::thread::sleep(Duration::from_millis(500));
    append("ext one\n");
    shows("ext one");
    // Truncated in place (copytruncate), then written again.
    std::fs::write(&file, "").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    append("ext two\n");
    shows("ext two");
    // Rotated: renamed away out of the pattern, a new file under the same name.
    append("ext three\n");
    std::fs::rename(&file, ext.join("app.log.1")).unwrap();
    append("ext four\n");
    shows("ext four");
    shows("ext three");
    // A file created later in a new folder is found too.
    let later = e.home_path().join("apps/w4/ext/later/x.log");
    std::fs::create_dir_all(later.parent().unwrap()).unwrap();
    std::fs::write(&later, "ext five\n").unwrap();
    wait_until("the later file", Duration::from_secs(10), || {
        e.ok(&["logs", "w4", "--grep", "ext five"])
            .contains("file [ext/later/x.log] ext five")
    });
    assert!(!e
        .ok(&["logs", "w4", "-n", "100"])
        .contains("written before the start"));
}

#[test]
fn a_megabyte_line_ansi_and_invalid_utf8_pass_through() {
    let dir = tempfile::tempdir().unwrap();
    let script = wrapper(dir.path());
    let e = TestEngine::start_with(&runtime_toml(&script, ""));
    e.ok(&["create", "w5", "--runtime", "wrapped"]);
    e.ok(&["start", "w5"]);
    let follow = Sse::open(&e, "/apps/w5/logs/follow");
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(
        e.home_path().join("apps/w5/go"),
        "head -c 1000000 /dev/zero | tr '\\000' 'x'; echo\nprintf '\\377\\376bad bytes\\n'\nprintf '\\033[31mred\\033[0m\\n'\necho after-all\n",
    )
    .unwrap();
    wait_until(
        "the lines on the live stream",
        Duration::from_secs(30),
        || follow.items().iter().any(|(_, d)| d.contains("after-all")),
    );
    let lines: Vec<Value> = follow
        .items()
        .iter()
        .filter_map(|(_, d)| serde_json::from_str(d).ok())
        .collect();
    let texts: Vec<&str> = lines.iter().filter_map(|l| l["text"].as_str()).collect();
    let big = texts
        .iter()
        .find(|t| t.len() >= 1_000_000)
        .expect("the 1 MB line");
    assert_eq!(big.len(), 1_000_000);
    assert!(big.bytes().all(|b| b == b'x'));
    assert!(
        texts.contains(&"\u{FFFD}\u{FFFD}bad bytes"),
        "{:?}",
        &texts[texts.len().saturating_sub(4)..]
            .iter()
            .map(|t| &t[..t.len().min(40)])
            .collect::<Vec<_>>()
    );
    assert!(texts.contains(&"\x1b[31mred\x1b[0m"), "ANSI kept");
    // The same through the CLI, from the files.
    let out = e.ok(&["logs", "w5", "-n", "4"]);
    assert!(out.contains("\x1b[31mred\x1b[0m"), "{out:.200}");
    assert!(out.lines().any(|l| l.len() > 1_000_000));
    let found = e.ok(&["logs", "w5", "--grep", "bad bytes"]);
    assert!(found.contains("\u{FFFD}\u{FFFD}bad bytes"), "{found}");
}

#[test]
fn monit_draws_every_app() {
    let e = TestEngine::start();
    e.ok(&["create", "m1"]);
    e.ok(&["start", "m1"]);
    let out = e.ok(&["monit", "--count", "2"]);
    assert!(out.contains("host"), "{out}");
    assert!(out.contains("m1"), "{out}");
    assert!(out.contains("running"), "{out}");
    assert!(!out.contains('\x1b'), "no ANSI without a terminal: {out}");
}

//! Integration tests of the real `hangar-demo` binary: each test starts it as a process on a
//! port it picks itself (`--port 0`, read back from the startup line) and talks HTTP to it.
//!
//! The PostgreSQL and MySQL tests need the throwaway servers of `scripts/test-db.sh`:
//!     eval "$(scripts/test-db.sh start)"
//! Without HANGAR_TEST_PG_URL / HANGAR_TEST_MYSQL_URL they fail and say so; they never skip.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sqlx::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_hangar-demo");
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Variables the caller's environment might hold that would change what the binary does.
const CLEARED_ENV: &[&str] = &[
    "PORT",
    "APP_PORT",
    "HANGAR_APP",
    "HANGAR_BASE_PATH",
    "HANGAR_PUBLIC_URL",
    "HANGAR_DATA_DIR",
    "HANGAR_DEMO_SCHEMA",
    "DATABASE_URL",
    "DB_SCHEMA",
];

fn command(envs: &[(&str, &str)], args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    for name in CLEARED_ENV {
        command.env_remove(name);
    }
    command.envs(envs.iter().copied()).args(args);
    command
}

/// Runs the binary to completion: (status, stdout, stderr).
fn run(envs: &[(&str, &str)], args: &[&str]) -> (ExitStatus, String, String) {
    let output = command(envs, args)
        .stdin(Stdio::null())
        .output()
        .expect("run hangar-demo");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Collects a pipe's lines in the background, so the app never blocks on a full pipe.
fn collect_lines(
    pipe: impl std::io::Read + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
    ready: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if let Some(ready) = &ready {
                if line.contains(" listening on 127.0.0.1:") {
                    let _ = ready.send(line.clone());
                }
            }
            lines.lock().expect("lines lock").push(line);
        }
    });
}

/// A running `hangar-demo serve`.
struct Demo {
    child: Child,
    port: u16,
    mount: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Demo {
    /// Starts `hangar-demo serve --port 0 ARGS` and waits for its startup line.
    fn start(envs: &[(&str, &str)], args: &[&str]) -> Demo {
        let mut full_args = vec!["serve", "--port", "0"];
        full_args.extend_from_slice(args);
        let mut child = command(envs, &full_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hangar-demo");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        collect_lines(
            child.stdout.take().expect("stdout pipe"),
            stdout.clone(),
            Some(ready_tx),
        );
        collect_lines(
            child.stderr.take().expect("stderr pipe"),
            stderr.clone(),
            None,
        );
        let line = match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "hangar-demo did not start (status {status:?})\nstdout:\n{}\nstderr:\n{}",
                    stdout.lock().expect("lock").join("\n"),
                    stderr.lock().expect("lock").join("\n")
                );
            }
        };
        // "hangar-demo <version> listening on 127.0.0.1:<port> base=<M> db=<dialect>"
        let after = line
            .split(" listening on 127.0.0.1:")
            .nth(1)
            .expect("startup line");
        let port: u16 = after
            .split(' ')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in the startup line");
        let mount = after
            .split(" base=")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .expect("base in the startup line")
            .to_string();
        Demo {
            child,
            port,
            mount,
            stdout,
            stderr,
        }
    }

    /// The URL of `path` below the mount path.
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}{}", self.port, self.mount, path)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stdout_text(&self) -> String {
        self.stdout.lock().expect("lock").join("\n")
    }

    fn stderr_text(&self) -> String {
        self.stderr.lock().expect("lock").join("\n")
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to end by itself.
    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the pipe readers catch the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "hangar-demo still running after {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                self.stdout_text(),
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, and the exit status of the graceful shutdown.
    fn stop(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(STOP_TIMEOUT)
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

async fn get_json(url: &str) -> Value {
    let response = client().get(url).send().await.expect("GET");
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response.json().await.expect("JSON body")
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn sqlite_url(dir: &Path, file: &str) -> String {
    format!("sqlite://{}", dir.join(file).display())
}

// ---- the notes app -------------------------------------------------------------------------

/// Adds one note through the HTML form and one through the JSON API; returns their ids.
async fn add_two_notes(demo: &Demo, tag: &str) -> (i64, i64) {
    let http = client();
    let form = http
        .post(demo.url("/admin/notes"))
        .form(&[
            ("body", format!("form <{tag}> & more")),
            ("author", "ann".into()),
        ])
        .send()
        .await
        .expect("POST form");
    assert_eq!(form.status(), 303);
    assert_eq!(location(&form), "./");

    let created = http
        .post(demo.url("/api/notes"))
        .json(&json!({ "body": format!("json {tag} ✓"), "author": "bot" }))
        .send()
        .await
        .expect("POST json");
    assert_eq!(created.status(), 201);
    let note: Value = created.json().await.expect("note");
    assert_eq!(note["body"], format!("json {tag} ✓"));

    let notes = get_json(&demo.url("/api/notes")).await;
    let notes = notes.as_array().expect("array");
    let form_note = notes
        .iter()
        .find(|n| n["body"] == format!("form <{tag}> & more"))
        .expect("form note listed");
    assert_eq!(
        note["id"],
        notes.last().expect("a note")["id"],
        "oldest first, newest last"
    );
    (
        form_note["id"].as_i64().expect("id"),
        note["id"].as_i64().expect("id"),
    )
}

#[tokio::test]
async fn notes_form_json_and_restart_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No mode=rwc in the URL: the app must create the file itself.
    let url = sqlite_url(dir.path(), "notes.sqlite");
    let envs = [("DATABASE_URL", url.as_str()), ("HANGAR_APP", "a<1>")];
    let mut demo = Demo::start(&envs, &[]);

    let health = get_json(&demo.url("/_health")).await;
    assert_eq!(health, json!({ "status": "ok" }));

    let root = client().get(demo.url("/")).send().await.expect("GET /");
    assert_eq!(root.status(), 302);
    assert_eq!(location(&root), "/admin/");

    add_two_notes(&demo, "one").await;

    let empty = client()
        .post(demo.url("/api/notes"))
        .json(&json!({ "body": "   " }))
        .send()
        .await
        .expect("POST empty");
    assert_eq!(empty.status(), 400);
    let error: Value = empty.json().await.expect("JSON error");
    assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()));

    let broken = client()
        .post(demo.url("/api/notes"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("POST broken");
    assert_eq!(broken.status(), 400);
    assert!(broken.json::<Value>().await.expect("JSON")["error"].is_string());

    let empty_form = client()
        .post(demo.url("/admin/notes"))
        .form(&[("body", ""), ("author", "x")])
        .send()
        .await
        .expect("POST empty form");
    assert_eq!(empty_form.status(), 400);

    let page = client()
        .get(demo.url("/admin/"))
        .send()
        .await
        .expect("GET admin")
        .text()
        .await
        .expect("page");
    assert!(page.contains("<title>a&lt;1&gt; · notes</title>"), "{page}");
    assert!(page.contains("form &lt;one&gt; &amp; more"));
    assert!(page.contains("ann"));
    assert!(!page.contains("<one>"));
    assert!(page.contains("action=\"notes\""));

    assert!(demo.stop().success(), "SIGTERM ends with status 0");
    let log = demo.stdout_text();
    assert!(log.contains("POST /admin/notes 303 "), "{log}");
    assert!(log.contains("POST /api/notes 201 "), "{log}");
    assert!(log.contains("GET /_health 200 "), "{log}");

    // The notes survive a restart.
    let demo = Demo::start(&envs, &[]);
    let notes = get_json(&demo.url("/api/notes")).await;
    let bodies: Vec<&str> = notes
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|n| n["body"].as_str())
        .collect();
    assert_eq!(bodies, ["form <one> & more", "json one ✓"]);
}

#[tokio::test]
async fn default_database_is_a_file_in_the_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data dir #1");
    let data_str = data.to_str().expect("utf-8 path");
    let demo = Demo::start(&[("HANGAR_DATA_DIR", data_str)], &[]);
    add_two_notes(&demo, "default").await;
    assert!(
        data.join("demo.sqlite").is_file(),
        "demo.sqlite in {data:?}"
    );
    let info = get_json(&demo.url("/api/info")).await;
    assert_eq!(info["data_dir"], data_str);
    assert_eq!(info["db_dialect"], "sqlite");
}

#[tokio::test]
async fn routes_live_under_the_base_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path(), "a1.sqlite");
    let envs = [
        ("DATABASE_URL", url.as_str()),
        ("HANGAR_BASE_PATH", "/_app/a1"),
        ("HANGAR_APP", "a1"),
        ("HANGAR_PUBLIC_URL", "http://localhost:13000/_app/a1/"),
    ];
    let demo = Demo::start(&envs, &[]);
    assert_eq!(demo.mount, "/_app/a1");
    let http = client();
    let base = format!("http://127.0.0.1:{}", demo.port);

    assert_eq!(
        get_json(&demo.url("/_health")).await,
        json!({ "status": "ok" })
    );
    let outside = http
        .get(format!("{base}/_health"))
        .send()
        .await
        .expect("GET");
    assert_eq!(outside.status(), 404);
    let outside = http
        .get(format!("{base}/admin/"))
        .send()
        .await
        .expect("GET");
    assert_eq!(outside.status(), 404);

    for root in [format!("{base}/_app/a1/"), format!("{base}/_app/a1")] {
        let response = http.get(&root).send().await.expect("GET root");
        assert_eq!(response.status(), 302, "{root}");
        assert_eq!(location(&response), "/_app/a1/admin/");
    }
    let admin = http.get(demo.url("/admin")).send().await.expect("GET");
    assert_eq!(admin.status(), 302);
    assert_eq!(
        location(&admin),
        "admin/",
        "relative: works with or without the prefix"
    );

    add_two_notes(&demo, "mounted").await;
    let page = http
        .get(demo.url("/admin/"))
        .send()
        .await
        .expect("GET admin")
        .text()
        .await
        .expect("page");
    assert!(!page.contains("href=\"/"), "only relative links");
    assert!(!page.contains("action=\"/"), "only relative actions");
    assert!(page.contains("href=\"../api/info\""));

    let cookie = http.get(demo.url("/api/cookie")).send().await.expect("GET");
    assert_eq!(cookie.status(), 200);
    assert_eq!(
        cookie
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok()),
        Some("demo=1; Path=/_app/a1/")
    );
    let redirect = http
        .get(demo.url("/api/redirect"))
        .send()
        .await
        .expect("GET");
    assert_eq!(redirect.status(), 302);
    assert_eq!(location(&redirect), "/_app/a1/admin/");

    let info = get_json(&demo.url("/api/info")).await;
    assert_eq!(info["app"], "a1");
    assert_eq!(info["base_path"], "/_app/a1");
    assert_eq!(info["port"], demo.port);
    assert_eq!(info["pid"], demo.pid());
    assert_eq!(info["schema_version"], 2);
    assert_eq!(info["version"], "0.1.0+schema.2");
    assert_eq!(info["public_url"], "http://localhost:13000/_app/a1/");
    for key in ["db_dialect", "data_dir"] {
        assert!(info[key].is_string(), "{key} in {info}");
    }

    // --mount wins over HANGAR_BASE_PATH; at the root, the cookie path is "/".
    let root = Demo::start(&envs, &["--mount", ""]);
    assert_eq!(root.mount, "");
    let cookie = http.get(root.url("/api/cookie")).send().await.expect("GET");
    assert_eq!(
        cookie
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok()),
        Some("demo=1; Path=/")
    );
    let redirect = http
        .get(root.url("/api/redirect"))
        .send()
        .await
        .expect("GET");
    assert_eq!(location(&redirect), "/admin/");
}

// ---- schema versions -----------------------------------------------------------------------

/// v1 binary installs v1 → v2 binary refuses (exit 3) → upgrade → v2 serves the old notes,
/// with authors from then on → a v1 binary now refuses the newer schema.
async fn schema_upgrade_round_trip(url: &str, extra_env: &[(&str, &str)]) {
    let with = |more: &[(&'static str, &'static str)]| {
        let mut envs: Vec<(&str, &str)> = vec![("DATABASE_URL", url)];
        envs.extend_from_slice(extra_env);
        envs.extend_from_slice(more);
        envs
    };
    let v1 = with(&[("HANGAR_DEMO_SCHEMA", "1")]);
    let v2 = with(&[]);

    let mut old = Demo::start(&v1, &[]);
    let info = get_json(&old.url("/api/info")).await;
    assert_eq!(info["schema_version"], 1);
    assert_eq!(info["version"], "0.1.0+schema.1");
    let (form_id, json_id) = add_two_notes(&old, "v1").await;
    assert!(old.stop().success());

    let (status, _, stderr) = run(&v2, &["serve", "--port", "0"]);
    assert_eq!(status.code(), Some(3), "older schema is refused: {stderr}");
    assert!(
        stderr.contains(
            "error: database schema is version 1 but this hangar-demo needs 2; run 'hangar-demo upgrade'"
        ),
        "{stderr}"
    );

    let (status, stdout, stderr) = run(&v2, &["upgrade"]);
    assert!(status.success(), "upgrade: {stdout}\n{stderr}");
    assert!(
        stdout.contains("schema step 2: add column notes.author"),
        "{stdout}"
    );
    assert!(stdout.contains("schema is now version 2"), "{stdout}");
    let (status, stdout, _) = run(&v2, &["upgrade"]);
    assert!(status.success());
    assert!(
        stdout.contains("nothing to do"),
        "upgrade is idempotent: {stdout}"
    );

    let mut new = Demo::start(&v2, &[]);
    let notes = get_json(&new.url("/api/notes")).await;
    let ids: Vec<i64> = notes
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|n| n["id"].as_i64())
        .collect();
    assert_eq!(ids, [form_id, json_id], "the v1 notes are kept");
    assert!(notes
        .as_array()
        .expect("array")
        .iter()
        .all(|n| n["author"] == ""));
    let created: Value = client()
        .post(new.url("/api/notes"))
        .json(&json!({ "body": "after upgrade", "author": "zoë" }))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("note");
    assert_eq!(created["author"], "zoë");
    assert!(new.stop().success());

    let new = Demo::start(&v2, &[]);
    let notes = get_json(&new.url("/api/notes")).await;
    assert_eq!(notes.as_array().map(Vec::len), Some(3));
    assert_eq!(notes[2]["author"], "zoë");
    drop(new);

    let (status, _, stderr) = run(&v1, &["serve", "--port", "0"]);
    assert_eq!(status.code(), Some(3), "newer schema is refused: {stderr}");
    assert!(stderr.contains("database schema is version 2 but this hangar-demo needs 1"));
    let (status, _, _) = run(&v1, &["upgrade"]);
    assert_eq!(status.code(), Some(3), "upgrade never downgrades");
}

#[tokio::test]
async fn schema_upgrade_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path(), "upgrade.sqlite");
    schema_upgrade_round_trip(&url, &[]).await;
}

#[test]
fn upgrade_installs_an_empty_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path(), "fresh.sqlite");
    let (status, stdout, stderr) = run(&[("DATABASE_URL", &url)], &["upgrade"]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("schema step 1"), "{stdout}");
    assert!(stdout.contains("schema is now version 2"), "{stdout}");
}

#[test]
fn version_names_the_schema() {
    let (status, stdout, _) = run(&[], &["--version"]);
    assert!(status.success());
    assert_eq!(stdout.trim(), "hangar-demo 0.1.0+schema.2");
    let (status, stdout, _) = run(&[("HANGAR_DEMO_SCHEMA", "1")], &["--version"]);
    assert!(status.success());
    assert_eq!(stdout.trim(), "hangar-demo 0.1.0+schema.1");
    let (status, _, stderr) = run(&[("HANGAR_DEMO_SCHEMA", "9")], &["--version"]);
    assert!(!status.success());
    assert!(stderr.contains("HANGAR_DEMO_SCHEMA"), "{stderr}");
}

#[test]
fn serve_needs_a_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path(), "x.sqlite");
    let (status, _, stderr) = run(&[("DATABASE_URL", &url)], &["serve"]);
    assert!(!status.success());
    assert!(stderr.contains("PORT"), "{stderr}");
}

// ---- boot, signals, process behaviour ------------------------------------------------------

#[tokio::test]
async fn boot_delay_then_healthy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path(), "boot.sqlite");
    let demo = Demo::start(&[("DATABASE_URL", &url)], &["--boot-delay-ms", "1500"]);
    let response = client()
        .get(demo.url("/_health"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["status"], "booting");
    let message = body["message"].as_str().expect("message");
    assert!(
        message.starts_with("loading plugins (") && message.ends_with("/5)"),
        "{message}"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = client()
            .get(demo.url("/_health"))
            .send()
            .await
            .expect("GET");
        if response.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still booting");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = demo.stdout_text();
    assert!(log.contains("loading plugins (1/5)"), "{log}");
}

#[test]
fn fail_boot_exits_1() {
    let started = Instant::now();
    let (status, _, stderr) = run(&[("PORT", "1")], &["serve", "--fail-boot"]);
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("error: cannot boot: simulated failure"),
        "{stderr}"
    );
    assert!(started.elapsed() >= Duration::from_millis(90));
}

#[tokio::test]
async fn ignore_sigterm_keeps_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path(), "stubborn.sqlite");
    let mut demo = Demo::start(&[("DATABASE_URL", &url)], &["--ignore-sigterm"]);
    demo.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        get_json(&demo.url("/_health")).await,
        json!({ "status": "ok" })
    );
    assert!(demo.child.try_wait().expect("try_wait").is_none());
    assert!(demo.stdout_text().contains("ignoring"));
    demo.signal("KILL");
    let status = demo.wait_exit(STOP_TIMEOUT);
    assert!(!status.success());
}

#[tokio::test]
async fn burn_hold_spawn_and_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path(), "load.sqlite");
    let mut demo = Demo::start(&[("DATABASE_URL", &url)], &[]);

    let started = Instant::now();
    let burned = get_json(&demo.url("/api/burn?ms=200")).await;
    assert_eq!(burned, json!({ "burned_ms": 200 }));
    assert!(started.elapsed() >= Duration::from_millis(200));
    let started = Instant::now();
    let background = get_json(&demo.url("/api/burn?ms=300&background=1")).await;
    assert_eq!(background["background"], true);
    assert!(started.elapsed() < Duration::from_millis(250));

    let held = get_json(&demo.url("/api/hold?mb=16")).await;
    assert_eq!(held, json!({ "held_mb": 16 }));
    let held = get_json(&demo.url("/api/hold?mb=8")).await;
    assert_eq!(held, json!({ "held_mb": 24 }));
    let released = get_json(&demo.url("/api/release")).await;
    assert_eq!(released["held_mb"], 0);

    let spawned = get_json(&demo.url("/api/spawn?secs=5")).await;
    let child_pid = spawned["pid"].as_u64().expect("pid");
    let stat = std::fs::read_to_string(format!("/proc/{child_pid}/stat")).expect("child alive");
    // Field 4 of /proc/PID/stat is the parent pid (after the ")" that ends the name).
    let ppid = stat
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().nth(1))
        .expect("ppid");
    assert_eq!(ppid, demo.pid().to_string(), "sleep is the app's child");

    let bad = client()
        .get(demo.url("/api/burn?ms=lots"))
        .send()
        .await
        .expect("GET");
    assert_eq!(bad.status(), 400);

    let exiting = get_json(&demo.url("/api/exit?code=7")).await;
    assert_eq!(exiting["exiting"], 7);
    let status = demo.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(7));
    let _ = Command::new("kill").arg(child_pid.to_string()).status();
}

// ---- streaming, proxy helpers, websocket ---------------------------------------------------

#[tokio::test]
async fn streams_ten_mebibytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path(), "stream.sqlite");
    let demo = Demo::start(&[("DATABASE_URL", &url)], &[]);
    let response = client()
        .get(demo.url("/api/stream?mb=10"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/octet-stream")
    );
    let mut total: usize = 0;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("chunk");
        for (i, byte) in chunk.iter().enumerate() {
            let offset = (total + i) % (64 * 1024);
            assert_eq!(*byte, (offset % 251) as u8, "byte {}", total + i);
        }
        total += chunk.len();
    }
    assert_eq!(total, 10 * 1024 * 1024);
}

#[tokio::test]
async fn echo_streams_the_body_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path(), "echo.sqlite");
    let demo = Demo::start(&[("DATABASE_URL", &url)], &[]);

    // Bulk: 8 MiB comes back unchanged.
    let payload: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let echoed = client()
        .post(demo.url("/api/echo"))
        .body(payload.clone())
        .send()
        .await
        .expect("POST")
        .bytes()
        .await
        .expect("body");
    assert!(echoed == payload, "echo changed the body");

    // Streaming: the first part comes back before the second part is even sent.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body_stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let request = client()
        .post(demo.url("/api/echo"))
        .body(reqwest::Body::wrap_stream(body_stream))
        .send();
    let pending = tokio::spawn(request);
    tx.send(Ok(b"first part|".to_vec())).await.expect("send");
    let mut response = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("answer before the body ends")
        .expect("task")
        .expect("response");
    let first = tokio::time::timeout(Duration::from_secs(10), response.chunk())
        .await
        .expect("first part echoed while the request is still open")
        .expect("chunk")
        .expect("some data");
    assert_eq!(&first[..], b"first part|");
    tx.send(Ok(b"second part".to_vec())).await.expect("send");
    drop(tx);
    let mut rest = Vec::new();
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, b"second part");
}

#[tokio::test]
async fn sse_slow_and_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path(), "sse.sqlite");
    let demo = Demo::start(&[("DATABASE_URL", &url)], &[]);
    let http = client();

    let started = Instant::now();
    let response = http
        .get(demo.url("/api/sse?count=3&interval_ms=100"))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let text = response.text().await.expect("events");
    let ticks: Vec<&str> = text.lines().filter(|l| l.starts_with("data: ")).collect();
    assert_eq!(ticks, ["data: tick 1", "data: tick 2", "data: tick 3"]);
    assert!(started.elapsed() >= Duration::from_millis(200));

    let started = Instant::now();
    let slow = http
        .get(demo.url("/api/slow?ms=300"))
        .send()
        .await
        .expect("GET");
    assert_eq!(slow.status(), 200);
    assert_eq!(slow.text().await.expect("text"), "slow done");
    assert!(started.elapsed() >= Duration::from_millis(300));

    let headers: Value = http
        .get(demo.url("/api/headers"))
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(headers["x-forwarded-for"], "203.0.113.9");
    assert_eq!(headers["x-forwarded-proto"], "https");
    assert_eq!(headers["host"], format!("127.0.0.1:{}", demo.port));
}

#[tokio::test]
async fn websocket_echoes_text_and_binary() {
    use tokio_tungstenite::tungstenite::Message;

    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path(), "ws.sqlite");
    let demo = Demo::start(
        &[("DATABASE_URL", &url), ("HANGAR_BASE_PATH", "/_app/ws")],
        &[],
    );
    let ws_url = format!("ws://127.0.0.1:{}/_app/ws/ws", demo.port);
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .expect("websocket handshake");
    socket
        .send(Message::Text("hello ✓".into()))
        .await
        .expect("send text");
    socket
        .send(Message::Binary(vec![0u8, 1, 2, 255].into()))
        .await
        .expect("send binary");
    let mut replies = Vec::new();
    while replies.len() < 2 {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("reply in time")
            .expect("open")
            .expect("message");
        if message.is_text() || message.is_binary() {
            replies.push(message);
        }
    }
    assert_eq!(replies[0], Message::Text("hello ✓".into()));
    assert_eq!(replies[1], Message::Binary(vec![0u8, 1, 2, 255].into()));
    socket.close(None).await.expect("close");
}

// ---- PostgreSQL and MySQL (servers from scripts/test-db.sh) --------------------------------

fn server_url(var: &str) -> String {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{var} is not set: this test needs the throwaway database servers. \
             Run `eval \"$(scripts/test-db.sh start)\"` in the workspace root, then the tests again."
        ),
    }
}

/// The server URL with its database name replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[authority_start..]
        .find('/')
        .map(|i| authority_start + i)
        .unwrap_or(base.len());
    format!("{}/{database}{query}", &base[..host_end])
}

fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

#[tokio::test]
async fn notes_on_postgres() {
    let server = server_url("HANGAR_TEST_PG_URL");
    let name = unique_name("hangar_demo_test");
    let mut admin = sqlx::PgConnection::connect(&server)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .expect("create database");
    let url = with_database(&server, &name);

    // A database of its own: the whole schema story.
    schema_upgrade_round_trip(&url, &[]).await;

    // Schema mode: the tables go into DB_SCHEMA (a name that needs quoting).
    let schema = "tenant \"one\"";
    let mut db = sqlx::PgConnection::connect(&url).await.expect("connect");
    sqlx::query("CREATE SCHEMA \"tenant \"\"one\"\"\"")
        .execute(&mut db)
        .await
        .expect("create schema");
    {
        let demo = Demo::start(&[("DATABASE_URL", &url), ("DB_SCHEMA", schema)], &[]);
        add_two_notes(&demo, "schema").await;
        let info = get_json(&demo.url("/api/info")).await;
        assert_eq!(info["db_dialect"], "postgres");
        assert!(
            !info.to_string().contains("hangar-test"),
            "no password in {info}"
        );
    }
    let in_schema: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM \"tenant \"\"one\"\"\".notes")
        .fetch_one(&mut db)
        .await
        .expect("notes in the schema");
    assert_eq!(in_schema, 2);
    let in_public: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM public.notes")
        .fetch_one(&mut db)
        .await
        .expect("notes in public");
    assert_eq!(in_public, 3, "public keeps only the first app's notes");
    let _ = db.close().await;

    let (status, _, stderr) = run(
        &[("DATABASE_URL", &url), ("DB_SCHEMA", "missing")],
        &["upgrade"],
    );
    assert!(!status.success());
    assert!(stderr.contains("\"missing\""), "{stderr}");

    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop database");
}

#[tokio::test]
async fn notes_on_mysql() {
    let server = server_url("HANGAR_TEST_MYSQL_URL");
    let name = unique_name("hangar_demo_test");
    let mut admin = sqlx::MySqlConnection::connect(&server)
        .await
        .expect("connect to the test MySQL/MariaDB");
    sqlx::query(&format!("CREATE DATABASE `{name}`"))
        .execute(&mut admin)
        .await
        .expect("create database");
    let url = with_database(&server, &name);

    schema_upgrade_round_trip(&url, &[]).await;

    let demo = Demo::start(&[("DATABASE_URL", &url)], &[]);
    let info = get_json(&demo.url("/api/info")).await;
    assert_eq!(info["db_dialect"], "mysql");
    assert!(
        !info.to_string().contains("hangar-test"),
        "no password in {info}"
    );
    // Text beyond Latin-1 survives (utf8mb4 tables).
    let created: Value = client()
        .post(demo.url("/api/notes"))
        .json(&json!({ "body": "emoji 🎉 and 漢字", "author": "ünï" }))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("note");
    let notes = get_json(&demo.url("/api/notes")).await;
    let last = notes.as_array().and_then(|n| n.last()).expect("a note");
    assert_eq!(last["id"], created["id"]);
    assert_eq!(last["body"], "emoji 🎉 and 漢字");
    assert_eq!(last["author"], "ünï");
    drop(demo);

    sqlx::query(&format!("DROP DATABASE `{name}`"))
        .execute(&mut admin)
        .await
        .expect("drop database");
}

#[test]
fn database_urls_are_rewritten() {
    assert_eq!(
        with_database("postgres://u:p@127.0.0.1:5/postgres", "x"),
        "postgres://u:p@127.0.0.1:5/x"
    );
    assert_eq!(
        with_database("mysql://root:p@127.0.0.1:3/mysql?ssl-mode=disabled", "y"),
        "mysql://root:p@127.0.0.1:3/y?ssl-mode=disabled"
    );
}

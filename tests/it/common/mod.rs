//! The harness every integration test shares: a real `hangar serve` on a temporary home with
//! free ports, the real `hangar` CLI against it, and plain HTTP clients. Nothing is mocked.
#![allow(dead_code)]

pub mod nocobase;
pub mod notes;
pub mod sql;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn hangar_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hangar"))
}

/// `hangar --home HOME`, finding `hangar-demo` beside it; the caller adds the verb.
pub fn hangar_cmd(home: &Path) -> Command {
    let mut c = Command::new(hangar_bin());
    c.arg("--home")
        .arg(home)
        .env("HANGAR_DEMO_BIN", demo_bin())
        .stdin(Stdio::null());
    c
}

/// `hangar serve` on `home` with two free ports, run to its end: for an engine that must refuse
/// to start.
pub fn serve_to_its_end(home: &Path) -> Output {
    hangar_cmd(home)
        .args([
            "serve",
            "--proxy-port",
            &free_port().to_string(),
            "--api-port",
            &free_port().to_string(),
        ])
        .output()
        .expect("run hangar serve")
}

/// `hangar-demo`, built beside `hangar` (`cargo build --workspace`).
pub fn demo_bin() -> PathBuf {
    let p = hangar_bin().with_file_name("hangar-demo");
    assert!(
        p.is_file(),
        "{} is missing: build it first with `cargo build --workspace`",
        p.display()
    );
    p
}

/// A runtime of `hangar-demo` written in hangar.toml, with extra arguments and keys.
pub fn demo_runtime(name: &str, args: &[&str], extra: &str) -> String {
    let mut cmd = vec![
        demo_bin().display().to_string(),
        "serve".into(),
        "--port".into(),
        "${PORT}".into(),
    ];
    cmd.extend(args.iter().map(|s| s.to_string()));
    let cmd: Vec<String> = cmd.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "[runtimes.{name}]\ncommand = [{}]\n{extra}\n",
        cmd.join(", ")
    )
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Two free ports for an engine (proxy, API) below the kernel's ephemeral range (32768 up),
/// which the many outgoing connections of a test run draw their source ports from: a port
/// taken from there can be someone's source port by the time the engine binds it.
pub fn engine_ports() -> (u16, u16) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let slot = (std::process::id().wrapping_mul(31) + n.wrapping_mul(7)) % 2000;
        let base = 11000 + (slot * 2) as u16;
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(base) && free(base + 1) {
            return (base, base + 1);
        }
    }
    (free_port(), free_port())
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

pub struct TestEngine {
    pub home: tempfile::TempDir,
    pub proxy_port: u16,
    pub api_port: u16,
    child: Option<Child>,
    pub http: reqwest::blocking::Client,
    /// Extra environment for the engine process (it passes e.g. HANGAR_DEMO_SCHEMA on to apps).
    pub env: Vec<(String, String)>,
    /// The user the engine runs as (`setpriv`), and the folder that user runs `hangar` and
    /// `hangar-demo` from; `None`: the test's own user.
    user: Option<(u32, tempfile::TempDir)>,
    /// The engine runs with a terminal of its own as its controlling terminal (as `hangar
    /// serve` typed into a shell does): the terminal's master side, held open while it runs.
    terminal: Option<Option<std::os::fd::OwnedFd>>,
}

impl TestEngine {
    pub fn start() -> TestEngine {
        Self::start_with("")
    }

    /// Start an engine whose `hangar.toml` is `toml` plus the two ports.
    pub fn start_with(toml: &str) -> TestEngine {
        Self::start_with_env(toml, &[])
    }

    /// Like [`TestEngine::start_with`], with extra environment for the engine process.
    pub fn start_with_env(toml: &str, env: &[(&str, &str)]) -> TestEngine {
        Self::start_full(toml, env, None)
    }

    /// Like [`TestEngine::start_with`], the engine run as the user `uid` (the test runs as
    /// root): the home is that user's (also its `HOME`), and it runs copies of `hangar` and
    /// `hangar-demo` from a folder it can reach. The CLI still runs as the test's user.
    pub fn start_as_user(toml: &str, uid: u32) -> TestEngine {
        Self::start_full(toml, &[], Some(uid))
    }

    /// Like [`TestEngine::start_with`], the engine in a session whose controlling terminal is a
    /// pseudo-terminal the test holds (as `hangar serve` typed into a shell).
    pub fn start_on_terminal(toml: &str) -> TestEngine {
        Self::start_inner(toml, &[], None, true)
    }

    fn start_full(toml: &str, env: &[(&str, &str)], uid: Option<u32>) -> TestEngine {
        Self::start_inner(toml, env, uid, false)
    }

    fn start_inner(
        toml: &str,
        env: &[(&str, &str)],
        uid: Option<u32>,
        terminal: bool,
    ) -> TestEngine {
        let home = tempfile::tempdir().expect("temp home");
        let (proxy_port, api_port) = engine_ports();
        // Each engine of a test run takes its app ports from a window of its own.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let window = 15000 + ((std::process::id() * 7 + n * 13) % 150) * 100;
        // A test that sets its own `app_ports` keeps it.
        let ports = if toml.contains("app_ports") {
            String::new()
        } else {
            format!("app_ports = \"{}-{}\"\n", window, window + 99)
        };
        std::fs::write(
            home.path().join("hangar.toml"),
            format!("proxy_port = {proxy_port}\napi_port = {api_port}\n{ports}{toml}"),
        )
        .unwrap();
        let mut e = TestEngine {
            home,
            proxy_port,
            api_port,
            child: None,
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            user: uid.map(|uid| (uid, reachable_binaries())),
            terminal: terminal.then_some(None),
        };
        if let Some(uid) = uid {
            for p in [
                e.home.path().to_path_buf(),
                e.home.path().join("hangar.toml"),
            ] {
                std::os::unix::fs::chown(&p, Some(uid), Some(uid)).expect("chown the home");
            }
        }
        e.spawn();
        e
    }

    pub fn home_path(&self) -> &Path {
        self.home.path()
    }

    /// Set (or replace) a variable of the engine's environment, for the next [`TestEngine::spawn`].
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// (Re)start the engine process on this home and wait for its API.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home.path().join("serve.log"))
            .unwrap();
        let mut cmd = match &self.user {
            None => hangar_cmd(self.home.path()),
            Some((uid, bins)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={uid}"))
                    .args(["--clear-groups", "--"])
                    .arg(bins.path().join("hangar"))
                    .arg("--home")
                    .arg(self.home.path())
                    .env("HANGAR_DEMO_BIN", bins.path().join("hangar-demo"))
                    .env("HOME", self.home.path())
                    .stdin(Stdio::null());
                c
            }
        };
        let mut slave_side = None;
        if let Some(held) = &mut self.terminal {
            use std::os::fd::{AsRawFd, FromRawFd};
            use std::os::unix::process::CommandExt;
            // SAFETY: posix_openpt and friends on a descriptor this block owns.
            let (master, slave) = unsafe {
                let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
                assert!(m >= 0, "a pseudo-terminal");
                assert_eq!(libc::grantpt(m), 0);
                assert_eq!(libc::unlockpt(m), 0);
                let name = std::ffi::CStr::from_ptr(libc::ptsname(m)).to_owned();
                let s = libc::open(
                    name.as_ptr(),
                    libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
                );
                assert!(s >= 0, "the pseudo-terminal's slave side");
                (
                    std::os::fd::OwnedFd::from_raw_fd(m),
                    std::os::fd::OwnedFd::from_raw_fd(s),
                )
            };
            let fd = slave.as_raw_fd();
            // SAFETY: setsid and ioctl only, between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setsid() < 0 || libc::ioctl(fd, libc::TIOCSCTTY, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            // The slave side is the engine's controlling terminal; this process keeps the
            // master open (closing it would hang the terminal up and end the engine).
            *held = Some(master);
            slave_side = Some(slave); // until the spawn: the child's pre_exec uses its number
        }
        let child = cmd
            .arg("serve")
            .env("HANGAR_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn hangar serve");
        drop(slave_side);
        self.child = Some(child);
        // Ready when this very process has written engine.json (a crashed engine's may linger)
        // and its API answers.
        let info = self.home.path().join("engine.json");
        let pid = self.child.as_ref().map(|c| c.id() as u64);
        let log = self.home.path().join("serve.log");
        let what = format!("the engine's API (its log: {})", log.display());
        wait_until(&what, Duration::from_secs(90), || {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "the engine exited ({status}) before it was ready: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            let ours = std::fs::read_to_string(&info)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| v["pid"].as_u64() == pid);
            ours && std::net::TcpStream::connect(("127.0.0.1", self.api_port)).is_ok()
        });
    }

    /// Stop the engine with SIGTERM (as a service manager would) and wait for it.
    pub fn stop_engine(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
            panic!("the engine did not stop within 60 s of SIGTERM");
        }
    }

    /// Kill the engine with SIGKILL, as a crash would.
    pub fn crash_engine(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn engine_pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn hangar(&self, args: &[&str]) -> Output {
        hangar_cmd(self.home.path())
            .args(args)
            .output()
            .expect("run hangar")
    }

    /// Run the CLI, expect success, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.hangar(args);
        assert!(
            out.status.success(),
            "hangar {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run the CLI, expect failure with exactly one line on stderr; return that line.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.hangar(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "hangar {args:?} should have failed; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "one line on stderr, got: {err}"
        );
        err
    }

    pub fn list(&self) -> Vec<Value> {
        let out = self.ok(&["list", "--json"]);
        serde_json::from_str::<Value>(&out)
            .expect("list --json is JSON")
            .as_array()
            .cloned()
            .expect("an array")
    }

    /// The names `list --json` shows, in its order.
    pub fn names(&self) -> Vec<String> {
        self.list()
            .iter()
            .map(|a| a["name"].as_str().expect("a name").to_string())
            .collect()
    }

    pub fn listed(&self, name: &str) -> bool {
        self.list().iter().any(|a| a["name"] == name)
    }

    pub fn app(&self, name: &str) -> Value {
        let out = self.ok(&["status", name, "--json"]);
        serde_json::from_str(&out).expect("status --json is JSON")
    }

    /// The pid of a running app's process (its group's leader).
    pub fn pid(&self, name: &str) -> u32 {
        let app = self.app(name);
        let pid = app["pid"]
            .as_u64()
            .unwrap_or_else(|| panic!("a pid: {app}"));
        u32::try_from(pid).expect("a pid fits u32")
    }

    /// Have a running `hangar-demo` app start a grandchild that sleeps `secs`; the grandchild's
    /// pid, alive.
    pub fn grandchild(&self, name: &str, secs: u32) -> u32 {
        let (status, body) = self.get(&format!("/_app/{name}/api/spawn?secs={secs}"));
        assert_eq!(status, 200, "{body}");
        let pid = serde_json::from_str::<Value>(&body).unwrap()["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or_else(|| panic!("a pid: {body}"));
        assert!(pid_alive(pid));
        pid
    }

    pub fn status(&self, name: &str) -> String {
        self.app(name)["status"].as_str().unwrap_or("").to_string()
    }

    pub fn wait_status(&self, name: &str, status: &str, timeout: Duration) {
        wait_until(&format!("{name} to be {status}"), timeout, || {
            self.status(name) == status
        });
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.home.path().join("token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// An authenticated API call.
    pub fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(
                method,
                format!("http://127.0.0.1:{}/api/v1{path}", self.api_port),
            )
            .bearer_auth(self.token());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().expect("API request");
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub fn proxy_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.proxy_port)
    }

    /// GET through the proxy: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(self.proxy_url(path))
            .send()
            .expect("proxy request");
        (resp.status().as_u16(), resp.text().unwrap_or_default())
    }

    pub fn log_text(&self, name: &str) -> String {
        std::fs::read_to_string(self.home.path().join("logs").join(format!("{name}.log")))
            .unwrap_or_default()
    }
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop_engine();
        }
    }
}

/// A folder any user can reach with `hangar` and `hangar-demo` in it (linked, else copied: the
/// build folder may be under a home only its owner enters).
fn reachable_binaries() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("a folder for the binaries");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for bin in [hangar_bin(), demo_bin()] {
        let to = dir.path().join(bin.file_name().expect("a file name"));
        if std::fs::hard_link(&bin, &to).is_err() {
            std::fs::copy(&bin, &to).expect("copy a binary");
        }
    }
    dir
}

/// Is any process alive (not a zombie) in process group `pgid`?
pub fn group_alive(pgid: u32) -> bool {
    hangar::base::process::group_alive(pgid)
}

pub fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

/// The nice value of `pid` (field 19 of /proc/PID/stat).
pub fn nice_of(pid: u32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(16).unwrap().parse().unwrap()
}

/// A line of /proc/<pid>/status in KiB (VmRSS, VmHWM).
pub fn proc_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// `archive` with its manifest (the first entry, JSON) changed by `edit`, written to `to`.
pub fn with_manifest(archive: &str, to: &std::path::Path, edit: impl Fn(&mut Value)) {
    let f = std::fs::File::open(archive).unwrap();
    let mut input = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let out = std::fs::File::create(to).unwrap();
    let mut output = tar::Builder::new(flate2::write::GzEncoder::new(
        out,
        flate2::Compression::fast(),
    ));
    for (i, entry) in input.entries().unwrap().enumerate() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        if i == 0 {
            let mut manifest: Value = serde_json::from_slice(&bytes).unwrap();
            edit(&mut manifest);
            bytes = serde_json::to_vec(&manifest).unwrap();
            header.set_size(bytes.len() as u64);
            header.set_cksum();
        }
        output.append(&header, bytes.as_slice()).unwrap();
    }
    output.into_inner().unwrap().finish().unwrap();
}

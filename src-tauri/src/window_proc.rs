//! The windows live in a child process, `hangar-desktop --window`, so the process that hosts the
//! engine and the tray never loads WebKit or GL: once its windows are gone, the tray costs what
//! `--hidden` costs (see BENCHMARKS.md "## Desktop"). The window process attaches to the engine
//! over the API, as the shell does beside `hangar serve`.
//!
//! The two talk in lines over the child's stdin and stdout:
//! - host → window: `show SEQ`, `logs SEQ NAME` (a window to open), `progress LEFT TOTAL` (a quit
//!   under way), `tray 1|0` (the desktop's tray came or went), and end of input: exit now.
//! - window → host: `idle SEQ` (no window left after request SEQ), `quit` (the user asked to quit
//!   Hangar), `autostart` (start at login was switched).
//!
//! Invariants: at most one window process per host. It ends only when the host closes its input:
//! the host does so on `idle SEQ` when SEQ is the last request it sent (a request crossing the
//! `idle` is never lost: it keeps the process), and when it quits. Every queue is bounded. A
//! window process that ends unasked is reported, so a host without a tray quits instead of
//! lingering unreachable.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};

use crate::menu_model::QuitProgress;
use crate::tray::TrayProbe;

/// Requests and news queued for the other side, at most.
pub const QUEUE: usize = 64;
/// A line of the protocol is at most this long (app names are short; anything longer is noise).
pub const MAX_LINE: usize = 512;

/// From the host to the window process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToWindow {
    Show(u64),
    Logs(u64, String),
    Progress(QuitProgress),
    Tray(bool),
}

/// From the window process to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToHost {
    Idle(u64),
    Quit,
    Autostart,
}

impl ToWindow {
    pub fn encode(&self) -> String {
        match self {
            ToWindow::Show(seq) => format!("show {seq}"),
            ToWindow::Logs(seq, name) => format!("logs {seq} {name}"),
            ToWindow::Progress(q) => format!("progress {} {}", q.left, q.total),
            ToWindow::Tray(available) => format!("tray {}", u8::from(*available)),
        }
    }

    pub fn parse(line: &str) -> Option<ToWindow> {
        let mut w = line.trim_end().split(' ');
        let r = match (w.next()?, w.next(), w.next()) {
            ("show", Some(seq), None) => ToWindow::Show(seq.parse().ok()?),
            ("logs", Some(seq), Some(name)) if !name.is_empty() => {
                ToWindow::Logs(seq.parse().ok()?, name.to_string())
            }
            ("progress", Some(left), Some(total)) => ToWindow::Progress(QuitProgress {
                left: left.parse().ok()?,
                total: total.parse().ok()?,
            }),
            ("tray", Some("1"), None) => ToWindow::Tray(true),
            ("tray", Some("0"), None) => ToWindow::Tray(false),
            _ => return None,
        };
        w.next().is_none().then_some(r)
    }
}

impl ToHost {
    pub fn encode(&self) -> String {
        match self {
            ToHost::Idle(seq) => format!("idle {seq}"),
            ToHost::Quit => "quit".into(),
            ToHost::Autostart => "autostart".into(),
        }
    }

    pub fn parse(line: &str) -> Option<ToHost> {
        let mut w = line.trim_end().split(' ');
        let r = match (w.next()?, w.next()) {
            ("idle", Some(seq)) => ToHost::Idle(seq.parse().ok()?),
            ("quit", None) => ToHost::Quit,
            ("autostart", None) => ToHost::Autostart,
            _ => return None,
        };
        w.next().is_none().then_some(r)
    }
}

/// What the window process says about the desktop app (`shell_info`): the host's engine mode,
/// pid and tray, handed over at spawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    pub mode: String,
    pub pid: u32,
    pub tray: TrayProbe,
}

/// What the window process `id` said or did, for the host's loop to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    Quit,
    Autostart,
    /// No window left after request `seq`: see [`WindowProcess::idle`].
    Idle {
        id: u64,
        seq: u64,
    },
    /// It exited; `status` says how. See [`WindowProcess::ended`].
    Ended {
        id: u64,
        status: String,
    },
}

/// How the host starts its window process.
#[derive(Debug, Clone)]
pub struct Spawn {
    pub exe: PathBuf,
    pub home: PathBuf,
    pub release_after: Duration,
    pub builtin_ui: bool,
    /// Variables the host set for itself only (see `lean::HOST_ENV_DEFAULTS`): the window
    /// process gets the user's environment without them.
    pub unset_env: Vec<&'static str>,
}

struct Running {
    id: u64,
    pid: u32,
    tx: mpsc::Sender<String>,
    /// The last window request sent.
    seq: u64,
    /// Becomes true when the process has ended.
    done: watch::Receiver<bool>,
}

/// The host's side: spawns the window process when a window is wanted and hands it requests.
pub struct WindowProcess {
    spawn: Spawn,
    /// Where its tasks run (requests come from any thread, the main one too).
    rt: tokio::runtime::Handle,
    facts: Mutex<HostFacts>,
    running: Mutex<Option<Running>>,
    next_id: AtomicU64,
    events: mpsc::Sender<HostEvent>,
}

impl WindowProcess {
    /// The host's facts and its event queue (read by the host's loop).
    pub fn new(
        spawn: Spawn,
        facts: HostFacts,
        rt: tokio::runtime::Handle,
    ) -> (WindowProcess, mpsc::Receiver<HostEvent>) {
        let (events, rx) = mpsc::channel(QUEUE);
        let wp = WindowProcess {
            spawn,
            rt,
            facts: Mutex::new(facts),
            running: Mutex::new(None),
            next_id: AtomicU64::new(1),
            events,
        };
        (wp, rx)
    }

    /// The tray changed (found or lost): the window process running now is told, and one
    /// started from now on is given it.
    pub fn set_tray(&self, tray: TrayProbe) {
        let available = tray.available;
        self.facts.lock().unwrap_or_else(|p| p.into_inner()).tray = tray;
        self.tell(ToWindow::Tray(available));
    }

    /// The window process's pid, while one runs.
    pub fn pid(&self) -> Option<u32> {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|r| r.pid)
    }

    /// Show the main window (starting the window process when none runs).
    pub fn show(&self) -> std::io::Result<()> {
        self.request(ToWindow::Show)
    }

    /// Open `name`'s log window (starting the window process when none runs).
    pub fn logs(&self, name: &str) -> std::io::Result<()> {
        self.request(|seq| ToWindow::Logs(seq, name.to_string()))
    }

    /// Tell the window process how far a quit is; nothing when none runs.
    pub fn progress(&self, q: QuitProgress) {
        self.tell(ToWindow::Progress(q));
    }

    /// News for the window process running now, if any (not a window request: no process is
    /// started for it).
    fn tell(&self, m: ToWindow) {
        if let Some(r) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let _ = r.tx.try_send(m.encode());
        }
    }

    fn request(&self, make: impl FnOnce(u64) -> ToWindow) -> std::io::Result<()> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.as_ref().is_some_and(|r| *r.done.borrow()) {
            *running = None;
        }
        if running.is_none() {
            *running = Some(self.start()?);
        }
        let Some(r) = running.as_mut() else {
            return Err(std::io::Error::other("no window process"));
        };
        r.seq += 1;
        r.tx.try_send(make(r.seq).encode())
            .map_err(|e| std::io::Error::other(format!("the window process is busy: {e}")))
    }

    /// Start the window process and the tasks that feed it and read it. Called with `running`
    /// locked.
    fn start(&self) -> std::io::Result<Running> {
        let _rt = self.rt.enter();
        let facts = self.facts.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let facts = serde_json::to_string(&facts).map_err(std::io::Error::other)?;
        let mut cmd = tokio::process::Command::new(&self.spawn.exe);
        cmd.arg("--window")
            .arg("--home")
            .arg(&self.spawn.home)
            .arg("--window-host")
            .arg(facts)
            .arg("--release-after")
            .arg(self.spawn.release_after.as_secs().to_string());
        if self.spawn.builtin_ui {
            cmd.arg("--builtin-ui");
        }
        for k in &self.spawn.unset_env {
            cmd.env_remove(k);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let pid = child.id().unwrap_or(0);
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.start_kill();
            return Err(std::io::Error::other("the window process has no pipes"));
        };
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        tracing::info!(pid, "window process started");
        let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                let line = format!("{line}\n");
                if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                    break;
                }
            }
            // Dropping stdin: end of input, the window process exits.
        });
        let (done_tx, done) = watch::channel(false);
        let host = HostSide {
            id,
            events: self.events.clone(),
            done_tx,
        };
        tokio::spawn(host.read(stdout, child));
        Ok(Running {
            id,
            pid,
            tx,
            seq: 0,
            done,
        })
    }

    /// The window process `id` said it has no window left after request `seq`: if nothing was
    /// asked since, let it go (its input is closed and it exits).
    pub fn idle(&self, id: u64, seq: u64) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.as_ref().is_some_and(|r| r.id == id && r.seq == seq) {
            *running = None;
            tracing::info!("no window left: the window process ends");
            return true;
        }
        false
    }

    /// The window process `id` ended; true when it was the current one (it ended unasked).
    pub fn ended(&self, id: u64) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.as_ref().is_some_and(|r| r.id == id) {
            *running = None;
            return true;
        }
        false
    }

    /// Close the window process's input and wait (at most `patience`, then kill it) until it
    /// has exited. For the end of a quit.
    pub async fn close(&self, patience: Duration) {
        let Some(r) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return;
        };
        let Running { pid, tx, done, .. } = r;
        drop(tx);
        let mut done = done;
        let ended = tokio::time::timeout(patience, done.wait_for(|d| *d)).await;
        if ended.is_err() && pid > 0 {
            tracing::warn!(pid, "the window process did not exit: killing it");
            // SAFETY: kill(2) on our own child's pid, which is not reaped before `done`.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
}

/// The host's reader of one window process: its lines become events; its end is reported.
struct HostSide {
    id: u64,
    events: mpsc::Sender<HostEvent>,
    done_tx: watch::Sender<bool>,
}

impl HostSide {
    async fn read(self, stdout: tokio::process::ChildStdout, mut child: tokio::process::Child) {
        let id = self.id;
        let mut lines = BufReader::new(stdout).lines();
        loop {
            let event = match lines.next_line().await {
                Ok(Some(line)) if line.len() <= MAX_LINE => match ToHost::parse(&line) {
                    Some(ToHost::Quit) => HostEvent::Quit,
                    Some(ToHost::Autostart) => HostEvent::Autostart,
                    Some(ToHost::Idle(seq)) => HostEvent::Idle { id, seq },
                    None => {
                        tracing::debug!("window process said {line:?}");
                        continue;
                    }
                },
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            };
            if self.events.send(event).await.is_err() {
                break;
            }
        }
        let status = match child.wait().await {
            Ok(s) => s.to_string(),
            Err(e) => e.to_string(),
        };
        let _ = self.done_tx.send(true);
        let _ = self.events.send(HostEvent::Ended { id, status }).await;
    }
}

/// The window process's side: requests arrive on stdin (read by the shell's loop), news leaves
/// on stdout.
pub struct HostLink {
    facts: HostFacts,
    /// The last window request handled.
    last_seq: AtomicU64,
    out: Mutex<std::io::Stdout>,
}

impl HostLink {
    pub fn new(facts: HostFacts) -> HostLink {
        HostLink {
            facts,
            last_seq: AtomicU64::new(0),
            out: Mutex::new(std::io::stdout()),
        }
    }

    pub fn facts(&self) -> &HostFacts {
        &self.facts
    }

    /// Request `seq` is being handled.
    pub fn saw(&self, seq: u64) {
        self.last_seq.store(seq, Ordering::SeqCst);
    }

    /// Tell the host. A host that is gone closes our input too, which ends this process.
    pub fn send(&self, m: ToHost) {
        use std::io::Write;
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if writeln!(out, "{}", m.encode())
            .and_then(|_| out.flush())
            .is_err()
        {
            tracing::debug!("the host is gone");
        }
    }

    /// No window is left: the host may let this process go.
    pub fn idle(&self) {
        self.send(ToHost::Idle(self.last_seq.load(Ordering::SeqCst)));
    }
}

/// The window process's requests, read from stdin until it ends; a line longer than
/// [`MAX_LINE`] or not understood is skipped.
pub async fn next_request(
    lines: &mut tokio::io::Lines<BufReader<tokio::io::Stdin>>,
) -> Option<ToWindow> {
    loop {
        let line = lines.next_line().await.ok()??;
        if line.len() > MAX_LINE {
            continue;
        }
        match ToWindow::parse(&line) {
            Some(r) => return Some(r),
            None => tracing::debug!("the host said {line:?}"),
        }
    }
}

/// The lines of this process's stdin.
pub fn stdin_lines() -> tokio::io::Lines<BufReader<tokio::io::Stdin>> {
    BufReader::new(tokio::io::stdin()).lines()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_reads_back_as_written() {
        let to_window = [
            ToWindow::Show(1),
            ToWindow::Logs(7, "blog".into()),
            ToWindow::Logs(8, "a_b-c9".into()),
            ToWindow::Progress(QuitProgress { left: 2, total: 5 }),
            ToWindow::Tray(true),
            ToWindow::Tray(false),
        ];
        for m in to_window {
            assert_eq!(ToWindow::parse(&m.encode()), Some(m.clone()), "{m:?}");
        }
        for m in [
            ToHost::Idle(0),
            ToHost::Idle(42),
            ToHost::Quit,
            ToHost::Autostart,
        ] {
            assert_eq!(ToHost::parse(&m.encode()), Some(m.clone()), "{m:?}");
        }
    }

    /// A stand-in window process (a real child, /bin/sh): `show N` → `idle N`, `logs …` →
    /// `quit`, `progress …` → exits with status 3, `tray A` → `idle 9A`; it exits at the end of
    /// its input. Written once, before any test starts one (a file being written cannot be
    /// executed).
    fn stand_in() -> WindowProcess {
        static SCRIPT: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
        let dir = SCRIPT.get_or_init(write_stand_in).path();
        let (wp, events) = WindowProcess::new(
            Spawn {
                exe: dir.join("window"),
                home: dir.to_path_buf(),
                release_after: Duration::from_secs(1),
                builtin_ui: false,
                unset_env: Vec::new(),
            },
            HostFacts {
                mode: "in-process".into(),
                pid: std::process::id(),
                tray: TrayProbe {
                    available: true,
                    why: "test".into(),
                },
            },
            tokio::runtime::Handle::current(),
        );
        EVENTS.with(|e| *e.borrow_mut() = Some(events));
        wp
    }

    fn write_stand_in() -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("window");
        std::fs::write(
            &exe,
            "#!/bin/sh\nwhile read -r line; do\n  case \"$line\" in\n    show*) echo \"idle ${line#show }\" ;;\n    logs*) echo quit ;;\n    progress*) exit 3 ;;\n    tray*) echo \"idle 9${line#tray }\" ;;\n  esac\ndone\n",
        )
        .unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    thread_local! {
        static EVENTS: std::cell::RefCell<Option<mpsc::Receiver<HostEvent>>> = const { std::cell::RefCell::new(None) };
    }

    async fn next_event() -> HostEvent {
        let mut rx = EVENTS.with(|e| e.borrow_mut().take()).expect("events");
        let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("an event within 20 s")
            .expect("the queue is open");
        EVENTS.with(|e| *e.borrow_mut() = Some(rx));
        ev
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_idle_process_is_let_go_unless_a_request_crossed_it() {
        let wp = stand_in();
        wp.show().unwrap();
        let first = wp.pid().expect("a process runs");
        let HostEvent::Idle { id, seq: 1 } = next_event().await else {
            panic!("expected idle 1")
        };
        // A second request went out before the host read `idle 1`: the process stays.
        wp.show().unwrap();
        assert!(!wp.idle(id, 1), "idle 1 crossed request 2");
        assert_eq!(wp.pid(), Some(first));
        let HostEvent::Idle { id: id2, seq: 2 } = next_event().await else {
            panic!("expected idle 2")
        };
        assert_eq!(id2, id);
        assert!(wp.idle(id, 2), "nothing crossed idle 2");
        assert_eq!(wp.pid(), None);
        // Let go: its input closes, it exits, and that end was asked for.
        let HostEvent::Ended { id: gone, .. } = next_event().await else {
            panic!("expected the end")
        };
        assert_eq!(gone, id);
        assert!(!wp.ended(gone), "an end the host asked for is not news");
        // The next request starts a new process.
        wp.show().unwrap();
        assert!(wp.pid().is_some_and(|p| p != first));
        wp.close(Duration::from_secs(20)).await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_quit_asked_in_a_window_and_an_unasked_end_reach_the_host() {
        let wp = stand_in();
        wp.logs("blog").unwrap();
        assert_eq!(next_event().await, HostEvent::Quit);
        wp.progress(QuitProgress { left: 1, total: 2 });
        let HostEvent::Ended { id, status } = next_event().await else {
            panic!("expected the end")
        };
        assert!(status.contains('3'), "{status}");
        assert!(wp.ended(id), "it ended unasked");
        assert_eq!(wp.pid(), None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn tray_news_reaches_a_running_process_and_starts_none() {
        let wp = stand_in();
        let lost = |available| TrayProbe {
            available,
            why: "test".into(),
        };
        wp.set_tray(lost(false));
        assert_eq!(wp.pid(), None, "news alone starts no window process");
        wp.show().unwrap();
        assert!(matches!(next_event().await, HostEvent::Idle { seq: 1, .. }));
        wp.set_tray(lost(false));
        assert!(matches!(
            next_event().await,
            HostEvent::Idle { seq: 90, .. }
        ));
        wp.set_tray(lost(true));
        assert!(matches!(
            next_event().await,
            HostEvent::Idle { seq: 91, .. }
        ));
        assert!(wp.facts.lock().unwrap().tray.available);
        wp.close(Duration::from_secs(20)).await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn close_ends_the_process_and_waits_for_it() {
        let wp = stand_in();
        wp.show().unwrap();
        let pid = wp.pid().expect("a process runs");
        wp.close(Duration::from_secs(20)).await;
        assert_eq!(wp.pid(), None);
        // Reaped: no such process any more.
        // SAFETY: kill with signal 0 only checks that the pid exists.
        let exists = unsafe { libc::kill(pid as i32, 0) } == 0;
        assert!(!exists, "the window process {pid} is still there");
    }

    #[test]
    fn anything_else_is_refused() {
        for line in [
            "",
            "show",
            "show x",
            "show 1 2",
            "logs 1",
            "logs x blog",
            "logs 1 blog extra",
            "progress 1",
            "progress -1 2",
            "Show 1",
            "open 1",
            "tray",
            "tray 2",
            "tray yes",
            "tray 1 0",
        ] {
            assert_eq!(ToWindow::parse(line), None, "{line:?}");
        }
        for line in [
            "",
            "idle",
            "idle x",
            "idle 1 2",
            "quit now",
            "QUIT",
            "autostart on",
        ] {
            assert_eq!(ToHost::parse(line), None, "{line:?}");
        }
    }
}

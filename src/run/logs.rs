//! Each app's output: stamped, written to rotating files, offered to live subscribers.
//!
//! Where the work happens: every app's pipes are read on one thread of their own (`pipes`, a
//! single-threaded runtime), and every app's file is written by one writer thread (`Writer`),
//! which paces an app's lines to one write per [`LINGER`] and writes Hangar's own at once. A trickle of
//! lines (an app logging each request) is read every [`READ_LINGER`], a burst at once: a few lines
//! cost one wake-up of the pipes' thread and a batch one of the writer, no worker of the engine's
//! runtime and no thread per batch.
//!
//! Invariants: no viewer ever blocks the app (live lines go to a bounded broadcast; a subscriber
//! that falls behind gets a marker with the number of lines it missed); the file is the record:
//! a pipe's lines wait for the file writer when its queue is full (the app then writes at disk
//! speed, as it would to a file of its own), but never longer than [`WRITER_STALL`]: a writer
//! stuck that long (a hung disk) has lines dropped, counted and reported in the file, without
//! waiting again until the queue has room; memory is bounded (the file queue in bytes,
//! [`QUEUE_BYTES`]; the broadcast ring, the recent-lines ring and the line length in lines).

use crate::base::config::Rotation;
use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::broadcast;

/// Which stream a line came from. `sys` lines are Hangar's own words about the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Out,
    Err,
    Sys,
    /// A line of a log file the app writes itself (the runtime's `logs`); its text starts with
    /// the file's path in brackets: `[storage/logs/app.log] text`.
    File,
}

impl Stream {
    /// A stream's name as [`Stream::as_str`] writes it; `None` for any other text.
    pub fn parse(s: &str) -> Option<Stream> {
        [Stream::Out, Stream::Err, Stream::Sys, Stream::File]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Out => "out",
            Stream::Err => "err",
            Stream::Sys => "sys",
            Stream::File => "file",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogLine {
    /// RFC 3339 UTC with milliseconds.
    pub ts: String,
    pub stream: Stream,
    pub text: String,
}

impl LogLine {
    pub fn now(stream: Stream, text: String) -> LogLine {
        LogLine {
            ts: timestamp(),
            stream,
            text,
        }
    }

    /// `2026-11-24T02:10:32.123Z out text` — the on-disk form.
    pub fn to_file_line(&self) -> String {
        format!("{} {} {}\n", self.ts, self.stream.as_str(), self.text)
    }

    pub fn parse_file_line(line: &str) -> LogLine {
        let mut parts = line.splitn(3, ' ');
        let ts = parts.next().unwrap_or("");
        let stream = parts.next().and_then(Stream::parse);
        match stream {
            Some(stream) => LogLine {
                ts: ts.to_string(),
                stream,
                text: parts.next().unwrap_or("").to_string(),
            },
            None => LogLine {
                ts: String::new(),
                stream: Stream::Out,
                text: line.to_string(),
            },
        }
    }
}

pub fn timestamp() -> String {
    use std::cell::RefCell;
    thread_local! {
        // The formatted second, reused by every line of that second on this thread.
        static SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let now = time::OffsetDateTime::now_utc();
    let secs = now.unix_timestamp();
    SECOND.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            let f =
                time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
            c.1 = now.format(&f).unwrap_or_default();
            c.0 = secs;
        }
        // Every line is stamped: one allocation of the exact size, no formatting machinery.
        let ms = now.millisecond();
        let mut ts = String::with_capacity(c.1.len() + 5);
        ts.push_str(&c.1);
        ts.push('.');
        for d in [ms / 100, ms / 10 % 10, ms % 10] {
            ts.push(char::from(b'0' + d as u8));
        }
        ts.push('Z');
        ts
    })
}

/// Lines longer than this are cut into pieces (each piece still a whole line in the file).
pub const MAX_LINE: usize = 1024 * 1024;
/// The most one app's file queue holds, in bytes: each line counted with its stamp and its
/// bookkeeping, from the moment it is queued until it is written. A flood of long lines waits
/// here (a pipe) or is dropped and counted, never held in memory past it. A line longer than
/// this (only a 1 MiB line whose invalid UTF-8 was widened) is taken into an empty queue.
pub const QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// How long the file writer lets lines gather after the first of a batch (unless one of
/// Hangar's own lines comes: see [`Plan`]).
const LINGER: Duration = Duration::from_millis(10);
/// A pipe's read buffer.
const READ_BUF: usize = 64 * 1024;
/// How long a pipe is left after a small read before it is read again (see [`pump`]): the
/// lines of a trickle reach viewers up to this much later, stamped when read.
const READ_LINGER: Duration = Duration::from_millis(40);
/// How long a pipe's line waits for a full file queue before it is dropped.
pub const WRITER_STALL: Duration = Duration::from_secs(1);
/// Live lines kept for viewers that are behind. Every app has this ring from the start, so it is
/// kept small: a slot is one pointer-sized line, and a viewer further behind gets a marker.
const LIVE: usize = 1024;
const RECENT: usize = 200;
/// Longest text kept in the recent-lines ring.
const RECENT_LINE: usize = 16 * 1024;

/// The rotation in force, changeable while the writer runs (hangar.toml per runtime).
#[derive(Debug)]
struct RotationCell {
    max_bytes: AtomicU64,
    keep: AtomicU64,
}

impl RotationCell {
    fn get(&self) -> Rotation {
        Rotation {
            max_bytes: self.max_bytes.load(Ordering::Relaxed).max(1),
            keep: self.keep.load(Ordering::Relaxed).max(1) as usize,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a queued line holds in memory: its text, its stamp, the line and its `Arc`.
fn queued_size(line: &LogLine) -> usize {
    line.text.capacity()
        + line.ts.capacity()
        + std::mem::size_of::<LogLine>()
        + 2 * std::mem::size_of::<usize>()
}

/// Lines of one app waiting for the file.
#[derive(Default)]
struct Pending {
    lines: Vec<Arc<LogLine>>,
    /// Bytes of `lines` and of the batch being written (given back once it is written).
    bytes: usize,
    /// The most `bytes` has been.
    peak: usize,
    /// The file writer knows of this queue (it is in [`Plan::listed`], or being written):
    /// a new line need not tell it.
    listed: bool,
}

/// What the file writer keeps of one app's file.
#[derive(Default)]
struct FileState {
    file: Option<(std::fs::File, u64)>,
    /// Drops already told in the file.
    reported: u64,
    /// Lines a failed write lost, not yet told in the file (told once writing works again).
    untold: u64,
    last_error: String,
}

/// What an app's log shares with the file writer.
struct Queue {
    path: PathBuf,
    rotation: RotationCell,
    pending: Mutex<Pending>,
    /// Told when written lines made room.
    room: tokio::sync::Notify,
    dropped: AtomicU64,
    unwritten: AtomicU64,
    /// Only the writer thread locks it.
    file: Mutex<FileState>,
    /// Tests hold the writer back from this queue, as a disk that hangs would.
    #[cfg(test)]
    hold: std::sync::atomic::AtomicBool,
}

impl Queue {
    /// Queue a line for the file; a full queue gives it back. The writer is told of the first
    /// line of a batch (it then lingers) and of every one of Hangar's own (written at once).
    fn enqueue(self: &Arc<Self>, line: Arc<LogLine>) -> Result<(), Arc<LogLine>> {
        let size = queued_size(&line);
        let urgent = line.stream == Stream::Sys;
        let first = {
            let mut p = lock(&self.pending);
            if p.bytes > 0 && p.bytes + size > QUEUE_BYTES {
                return Err(line);
            }
            p.bytes += size;
            p.peak = p.peak.max(p.bytes);
            p.lines.push(line);
            !std::mem::replace(&mut p.listed, true)
        };
        if first || urgent {
            writer().tell(first.then(|| self.clone()), urgent);
        }
        Ok(())
    }

    /// Write what is queued (on the writer thread), then give its bytes back.
    fn write_out(&self) {
        let mut batch = {
            let mut p = lock(&self.pending);
            p.listed = false;
            #[cfg(test)]
            if self.hold.load(Ordering::Relaxed) {
                return;
            }
            std::mem::take(&mut p.lines)
        };
        if batch.is_empty() {
            return;
        }
        let size: usize = batch.iter().map(|l| queued_size(l)).sum();
        let mut st = lock(&self.file);
        let now_dropped = self.dropped.load(Ordering::Relaxed);
        if now_dropped > st.reported {
            batch.push(Arc::new(LogLine::now(
                Stream::Sys,
                format!(
                    "{} lines were dropped: the log writer fell behind",
                    now_dropped - st.reported
                ),
            )));
            st.reported = now_dropped;
        }
        let told = st.untold;
        if told > 0 {
            batch.insert(
                0,
                Arc::new(LogLine::now(
                    Stream::Sys,
                    format!(
                        "{told} lines could not be written to this log ({})",
                        st.last_error
                    ),
                )),
            );
        }
        let (f, lost, error) = write_batch(&self.path, self.rotation.get(), st.file.take(), &batch);
        st.file = f;
        if lost == 0 {
            st.untold = 0;
        } else {
            // The notice itself may be among the lost lines: keep the count whole.
            let notice_lost = u64::from(told > 0);
            let new = lost - notice_lost.min(lost);
            self.unwritten.fetch_add(new, Ordering::Relaxed);
            if st.untold == 0 {
                tracing::warn!(log = %self.path.display(), "log lines cannot be written: {}", error.clone().unwrap_or_default());
            }
            st.untold += new;
            st.last_error = error.unwrap_or_default();
        }
        drop(st);
        drop(batch);
        {
            let mut p = lock(&self.pending);
            p.bytes = p.bytes.saturating_sub(size);
        }
        self.room.notify_waiters();
    }
}

/// When the file writer writes, as a pure state: writes are paced to at most one per [`LINGER`].
/// Lines that come after a quiet spell (a trickle, already gathered by the pipes' read linger)
/// are written at once, so one batch costs one wake-up of the writer; lines that come sooner
/// after the last write (a burst, many apps at once) wait until [`LINGER`] after it and go out
/// together. One of Hangar's own lines is written at once, so the operation that wrote it
/// ("stopped", "sent SIGKILL") may return and whoever reads the file then (`hangar logs`) finds
/// it there. Viewers are never delayed: they get each line as it comes ([`AppLog::push`]).
#[derive(Default)]
struct Plan {
    listed: Vec<Arc<Queue>>,
    /// When the last batch was written.
    last: Option<Instant>,
    urgent: bool,
    /// The writer waits for news: the next line must wake it.
    idle: bool,
}

/// What the writer does next.
enum Step {
    /// Wait until told.
    Wait,
    /// Wait until then, or until one of Hangar's own lines comes.
    Linger(Instant),
    Write(Vec<Arc<Queue>>),
}

impl Plan {
    /// A queue got its first line (`Some`), or one of Hangar's own (`urgent`): whether the
    /// writer must be woken for it.
    fn tell(&mut self, queue: Option<Arc<Queue>>, urgent: bool) -> bool {
        if let Some(q) = queue {
            self.listed.push(q);
        }
        let wake = self.idle || (urgent && !self.urgent);
        self.urgent |= urgent;
        self.idle = false;
        wake
    }

    fn next(&mut self, now: Instant) -> Step {
        if self.listed.is_empty() {
            self.idle = true;
            self.urgent = false;
            return Step::Wait;
        }
        if let Some(until) = self.last.map(|w| w + LINGER) {
            if !self.urgent && now < until {
                return Step::Linger(until);
            }
        }
        self.urgent = false;
        self.last = Some(now);
        Step::Write(std::mem::take(&mut self.listed))
    }
}

/// The file writer: one thread for every app's log. Files are written off the async workers,
/// and a busy app's lines cost one hand-off per batch, not one per line.
struct Writer {
    plan: Mutex<Plan>,
    wake: std::sync::Condvar,
}

impl Writer {
    fn tell(&self, queue: Option<Arc<Queue>>, urgent: bool) {
        let wake = lock(&self.plan).tell(queue, urgent);
        if wake {
            self.wake.notify_one();
        }
    }

    fn run(&self) {
        let mut plan = lock(&self.plan);
        loop {
            match plan.next(Instant::now()) {
                Step::Wait => {
                    plan = self.wake.wait(plan).unwrap_or_else(|p| p.into_inner());
                }
                Step::Linger(until) => {
                    let left = until.saturating_duration_since(Instant::now());
                    plan = self
                        .wake
                        .wait_timeout(plan, left)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
                Step::Write(queues) => {
                    drop(plan);
                    for q in &queues {
                        q.write_out();
                    }
                    drop(queues);
                    plan = lock(&self.plan);
                }
            }
        }
    }
}

/// The engine's one file writer, started with the first log.
fn writer() -> &'static Writer {
    static WRITER: std::sync::OnceLock<&'static Writer> = std::sync::OnceLock::new();
    WRITER.get_or_init(|| {
        let w: &'static Writer = Box::leak(Box::new(Writer {
            plan: Mutex::new(Plan::default()),
            wake: std::sync::Condvar::new(),
        }));
        if let Err(e) = std::thread::Builder::new()
            .name("hangar-log-writer".into())
            .spawn(move || w.run())
        {
            // Without it lines queue up to the cap, then are dropped and counted.
            tracing::error!("cannot start the log writer thread: {e}");
        }
        w
    })
}

/// The runtime every app's pipes are read on: one thread of its own, so a line an app prints
/// wakes that one thread and no worker of the engine's runtime.
fn pipes() -> Option<&'static tokio::runtime::Handle> {
    static PIPES: std::sync::OnceLock<Option<tokio::runtime::Handle>> = std::sync::OnceLock::new();
    PIPES
        .get_or_init(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| tracing::error!("cannot start the log pipes' runtime: {e}"))
                .ok()?;
            let handle = rt.handle().clone();
            std::thread::Builder::new()
                .name("hangar-log-pipes".into())
                .spawn(move || rt.block_on(std::future::pending::<()>()))
                .map_err(|e| tracing::error!("cannot start the log pipes' thread: {e}"))
                .ok()?;
            Some(handle)
        })
        .as_ref()
}

/// Read one of a child's pipes into its log ([`pump`]) on the log pipes' thread; the task ends
/// when the pipe does.
pub fn spawn_pump(
    fd: std::io::Result<std::os::fd::OwnedFd>,
    stream: Stream,
    log: Arc<AppLog>,
) -> tokio::task::JoinHandle<()> {
    // One of the app's pipes from now on, so a `settle` right after the spawn waits for it.
    let id = log.drain.join();
    let run = async move {
        match fd.and_then(|fd| Pipe::new(fd, log.drain.clone(), id)) {
            Ok(pipe) => pump(pipe, stream, log).await,
            Err(e) => {
                log.drain.leave(id);
                log.sys(format!("cannot read the app's {}: {e}", stream.as_str()))
            }
        }
    };
    match pipes() {
        Some(h) => h.spawn(run),
        None => tokio::spawn(run),
    }
}

/// One app's log: the file writer's queue, the live feed and a small ring of recent lines.
pub struct AppLog {
    queue: Arc<Queue>,
    live: broadcast::Sender<Arc<LogLine>>,
    recent: Mutex<VecDeque<Arc<LogLine>>>,
    /// The writer was found stuck: drop without waiting until its queue has room again.
    stalled: std::sync::atomic::AtomicBool,
    /// The app's pipes, asked to hand over what they hold before one of Hangar's own lines.
    drain: Arc<Drain>,
}

/// How long one of Hangar's own lines waits for the app's pipes to be read ([`AppLog::settle`]).
const SETTLE: Duration = Duration::from_millis(500);

/// The pipes of one app's processes and what they were asked: each reads what its pipe holds
/// when asked (up to "nothing more now", or its end) and says so.
#[derive(Default)]
struct Drain {
    /// The last request's number; each pipe takes the requests through its receiver.
    asked: std::sync::OnceLock<tokio::sync::watch::Sender<u64>>,
    /// Each open pipe: its id and the last request it answered.
    pipes: Mutex<Vec<(u64, u64)>>,
    next_id: AtomicU64,
    answered: tokio::sync::Notify,
}

impl Drain {
    fn asked(&self) -> &tokio::sync::watch::Sender<u64> {
        self.asked.get_or_init(|| tokio::sync::watch::channel(0).0)
    }

    fn join(&self) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let now = *self.asked().borrow();
        lock(&self.pipes).push((id, now));
        id
    }

    fn answer(&self, id: u64, request: u64) {
        if let Some(p) = lock(&self.pipes).iter_mut().find(|p| p.0 == id) {
            p.1 = p.1.max(request);
        }
        self.answered.notify_waiters();
    }

    fn leave(&self, id: u64) {
        lock(&self.pipes).retain(|p| p.0 != id);
        self.answered.notify_waiters();
    }

    /// Ask every open pipe, and wait (at most [`SETTLE`]) until each answered or ended.
    async fn settle(&self) {
        if lock(&self.pipes).is_empty() {
            return;
        }
        let mut request = 0;
        self.asked().send_modify(|n| {
            *n += 1;
            request = *n;
        });
        let all = async {
            loop {
                let answered = self.answered.notified();
                tokio::pin!(answered);
                answered.as_mut().enable();
                if lock(&self.pipes).iter().all(|p| p.1 >= request) {
                    return;
                }
                answered.await;
            }
        };
        let _ = tokio::time::timeout(SETTLE, all).await;
    }
}

impl AppLog {
    /// Open the log at `path` (the file is opened with its first line).
    pub fn open(path: PathBuf, rotation: Rotation) -> Arc<AppLog> {
        let (live, _) = broadcast::channel(LIVE);
        Arc::new(AppLog {
            queue: Arc::new(Queue {
                path,
                rotation: RotationCell {
                    max_bytes: AtomicU64::new(rotation.max_bytes),
                    keep: AtomicU64::new(rotation.keep as u64),
                },
                pending: Mutex::new(Pending::default()),
                room: tokio::sync::Notify::new(),
                dropped: AtomicU64::new(0),
                unwritten: AtomicU64::new(0),
                file: Mutex::new(FileState::default()),
                #[cfg(test)]
                hold: std::sync::atomic::AtomicBool::new(false),
            }),
            live,
            recent: Mutex::new(VecDeque::with_capacity(RECENT)),
            stalled: std::sync::atomic::AtomicBool::new(false),
            drain: Arc::new(Drain::default()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.queue.path
    }

    /// Change the rotation; the next line written follows it.
    pub fn set_rotation(&self, r: Rotation) {
        let cell = &self.queue.rotation;
        cell.max_bytes.store(r.max_bytes, Ordering::Relaxed);
        cell.keep.store(r.keep as u64, Ordering::Relaxed);
    }

    pub fn rotation(&self) -> Rotation {
        self.queue.rotation.get()
    }

    /// Offer a line to viewers and queue it for the file; never waits (a full queue drops it).
    /// Hangar's own lines ([`AppLog::sys`]) come this way and reach the file without delay.
    pub fn push(&self, stream: Stream, text: String) {
        let line = self.offer(stream, text);
        if self.queue.enqueue(line).is_err() {
            self.queue.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// As [`AppLog::push`], but a full queue is waited for (up to [`WRITER_STALL`]), so a burst
    /// of output loses nothing: the pipe (and so the app) follows the disk's pace.
    pub async fn push_wait(&self, stream: Stream, text: String) {
        let mut line = self.offer(stream, text);
        // Most lines find room: only a full queue pays for the wait's set-up.
        match self.queue.enqueue(line) {
            Ok(()) => {
                self.stalled.store(false, Ordering::Relaxed);
                return;
            }
            Err(l) => line = l,
        }
        let deadline = tokio::time::Instant::now() + WRITER_STALL;
        loop {
            let room = self.queue.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.queue.enqueue(line) {
                Ok(()) => {
                    self.stalled.store(false, Ordering::Relaxed);
                    return;
                }
                Err(l) => line = l,
            }
            if self.stalled.load(Ordering::Relaxed)
                || tokio::time::timeout_at(deadline, room).await.is_err()
            {
                self.stalled.store(true, Ordering::Relaxed);
                self.queue.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }

    /// As [`AppLog::push_wait`], for a blocking thread (the followers of an app's own files).
    pub fn push_blocking(&self, stream: Stream, text: String) {
        let mut line = self.offer(stream, text);
        let deadline = std::time::Instant::now() + WRITER_STALL;
        loop {
            match self.queue.enqueue(line) {
                Ok(()) => return,
                Err(l) if std::time::Instant::now() < deadline => {
                    line = l;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => {
                    self.queue.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    fn offer(&self, stream: Stream, text: String) -> Arc<LogLine> {
        let line = Arc::new(LogLine::now(stream, text));
        // The ring is for a quick look (and a crash report): long lines are cut there, so it
        // stays small however long the lines are; others are shared with the queue.
        let kept = if line.text.len() > RECENT_LINE {
            let mut cut = RECENT_LINE;
            while !line.text.is_char_boundary(cut) {
                cut -= 1;
            }
            Arc::new(LogLine {
                ts: line.ts.clone(),
                stream: line.stream,
                text: format!("{}…", &line.text[..cut]),
            })
        } else {
            line.clone()
        };
        {
            let mut r = lock(&self.recent);
            if r.len() == RECENT {
                r.pop_front();
            }
            r.push_back(kept);
        }
        let _ = self.live.send(line.clone());
        line
    }

    pub fn sys(&self, text: impl Into<String>) {
        self.push(Stream::Sys, text.into());
    }

    /// Have the app's pipes read what they hold now (their lines pushed first), waiting at most
    /// [`SETTLE`]: one of Hangar's own lines written next ("ready", "stopped") lands after
    /// every line the app wrote before it.
    pub async fn settle(&self) {
        self.drain.settle().await;
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogLine>> {
        self.live.subscribe()
    }

    /// The last `n` lines kept in memory (at most 200), optionally of one stream.
    pub fn recent(&self, n: usize, stream: Option<Stream>) -> Vec<LogLine> {
        let r = lock(&self.recent);
        let mut v: Vec<LogLine> = r
            .iter()
            .rev()
            .filter(|l| stream.is_none_or(|s| l.stream == s))
            .take(n)
            .map(|l| (**l).clone())
            .collect();
        v.reverse();
        v
    }

    /// Lines a failed write (a full disk) lost.
    pub fn unwritten(&self) -> u64 {
        self.queue.unwritten.load(Ordering::Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }

    /// Bytes waiting for the file now, and the most there ever were (at most [`QUEUE_BYTES`]).
    pub fn queued_bytes(&self) -> (usize, usize) {
        let p = lock(&self.queue.pending);
        (p.bytes, p.peak)
    }
}

fn open_append(path: &Path) -> Option<(std::fs::File, u64)> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ok()?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    Some((f, len))
}

pub fn rotated(path: &Path, i: usize) -> PathBuf {
    PathBuf::from(format!("{}.{i}", path.display()))
}

/// Write a batch, rotating before a line would pass the size limit (no line is ever split
/// across files). Lines go out in one write per file; a write that fails (a full disk) loses
/// its lines, and their number is returned so the writer can count and report them.
fn write_batch(
    path: &Path,
    rotation: Rotation,
    file: Option<(std::fs::File, u64)>,
    batch: &[Arc<LogLine>],
) -> (Option<(std::fs::File, u64)>, u64, Option<String>) {
    let mut file = file.or_else(|| open_append(path));
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut pending = 0u64;
    let mut lost = 0u64;
    let mut error = None;
    let mut flush =
        |file: &mut Option<(std::fs::File, u64)>, buf: &mut Vec<u8>, pending: &mut u64| {
            if *pending == 0 {
                return;
            }
            match file {
                Some((f, _)) => {
                    if let Err(e) = f.write_all(buf) {
                        lost += *pending;
                        error = Some(e.to_string());
                    }
                }
                None => {
                    lost += *pending;
                    error = Some(format!("cannot open {}", path.display()));
                }
            }
            buf.clear();
            *pending = 0;
        };
    for line in batch {
        // ts + space + stream + space + text + newline
        let len = line.ts.len() + line.stream.as_str().len() + line.text.len() + 3;
        let full = file
            .as_ref()
            .is_some_and(|(_, size)| *size > 0 && *size + len as u64 > rotation.max_bytes);
        if full {
            flush(&mut file, &mut buf, &mut pending);
            drop(file.take());
            // Rotations beyond `keep` (left by a larger setting before) go first.
            let mut extra = rotation.keep + 1;
            while extra < 10_000 && std::fs::remove_file(rotated(path, extra)).is_ok() {
                extra += 1;
            }
            for i in (1..rotation.keep).rev() {
                let _ = std::fs::rename(rotated(path, i), rotated(path, i + 1));
            }
            let _ = std::fs::rename(path, rotated(path, 1));
            file = open_append(path);
        }
        if file.is_none() {
            file = open_append(path);
        }
        buf.extend_from_slice(line.ts.as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(line.stream.as_str().as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(line.text.as_bytes());
        buf.push(b'\n');
        pending += 1;
        if let Some((_, size)) = &mut file {
            *size += len as u64;
        }
        if buf.len() >= 256 * 1024 {
            flush(&mut file, &mut buf, &mut pending);
        }
    }
    flush(&mut file, &mut buf, &mut pending);
    (file, lost, error)
}

/// What [`pump`] reads: a byte source that can be left alone for a while.
pub trait Source: AsyncRead + Unpin {
    /// Leave the source for `d`: nothing it does meanwhile may cost a wake-up. By default it
    /// only sleeps (the source stays registered).
    fn rest(&mut self, d: Duration) -> impl std::future::Future<Output = ()> {
        tokio::time::sleep(d)
    }

    /// A request to hand over what the source holds ([`AppLog::settle`]): the next read reads
    /// it at once, whatever the source's readiness says, and answers the request when nothing
    /// is left. By default nothing to do (only a child's pipe takes part).
    fn ask(&mut self, _request: u64) {}

    /// The requests this source answers, when it takes part.
    fn requests(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

impl Source for &[u8] {}

/// A socket (`bench/logs.rs` feeds the pump through one).
impl Source for tokio::net::UnixStream {}

/// A child's pipe on the pipes' thread. While it rests it is out of that thread's epoll set:
/// a registered pipe wakes its reader's thread at every write the app makes (an edge per write),
/// so a read linger alone would save the reads but not the wake-ups.
pub struct Pipe {
    state: PipeState,
    drain: Arc<Drain>,
    /// Its place among the app's pipes ([`Drain`]).
    id: u64,
    /// The request to answer at the next read that finds nothing (0: none).
    asked: u64,
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.drain.leave(self.id);
    }
}

enum PipeState {
    Watched(tokio::net::unix::pipe::Receiver),
    Resting(std::os::fd::OwnedFd),
    /// Taking it out or putting it back failed: read as ended.
    Gone,
}

impl Pipe {
    /// The pipe `fd`, already one of the app's pipes as `id` ([`Drain::join`]).
    fn new(fd: std::os::fd::OwnedFd, drain: Arc<Drain>, id: u64) -> std::io::Result<Pipe> {
        let state = PipeState::Watched(tokio::net::unix::pipe::Receiver::from_owned_fd(fd)?);
        Ok(Pipe {
            state,
            drain,
            id,
            asked: 0,
        })
    }

    /// A read of the descriptor itself, past the reactor's idea of its readiness (which may
    /// not have seen the latest write yet): what the pipe holds now, or `WouldBlock`.
    fn read_now(&self, buf: &mut tokio::io::ReadBuf<'_>) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let fd = match &self.state {
            PipeState::Watched(r) => r.as_raw_fd(),
            PipeState::Resting(fd) => fd.as_raw_fd(),
            PipeState::Gone => return Ok(()),
        };
        let room = buf.initialize_unfilled();
        // SAFETY: `room` is initialised memory of `room.len()` bytes we own for the call.
        let n = unsafe { libc::read(fd, room.as_mut_ptr().cast(), room.len()) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        buf.advance(n as usize);
        Ok(())
    }
}

impl Source for Pipe {
    fn ask(&mut self, request: u64) {
        self.asked = self.asked.max(request);
    }

    fn requests(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.drain.asked().subscribe())
    }

    async fn rest(&mut self, d: Duration) {
        if let PipeState::Watched(r) = std::mem::replace(&mut self.state, PipeState::Gone) {
            self.state = match r.into_nonblocking_fd() {
                Ok(fd) => PipeState::Resting(fd),
                Err(e) => {
                    tracing::warn!("cannot set a pipe aside: {e}");
                    PipeState::Gone
                }
            };
        }
        tokio::time::sleep(d).await;
    }
}

impl AsyncRead for Pipe {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        // Asked to hand over what it holds: read it now; nothing left answers the request.
        if self.asked > 0 {
            match self.read_now(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let request = std::mem::take(&mut self.asked);
                    self.drain.answer(self.id, request);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // Bytes, or the end (the pump ends and the pipe leaves): the request stays
                // until a read finds nothing.
                other => return std::task::Poll::Ready(other),
            }
        }
        if matches!(self.state, PipeState::Resting(_)) {
            if let PipeState::Resting(fd) = std::mem::replace(&mut self.state, PipeState::Gone) {
                match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
                    Ok(r) => self.state = PipeState::Watched(r),
                    Err(e) => return std::task::Poll::Ready(Err(e)),
                }
            }
        }
        match &mut self.state {
            PipeState::Watched(r) => std::pin::Pin::new(r).poll_read(cx, buf),
            // An ended read: the pump stops.
            _ => std::task::Poll::Ready(Ok(())),
        }
    }
}

/// A request to hand over what a source holds (`AppLog::settle`): it ends a pump's rest and
/// its wait for bytes. Never, for a source that takes no requests.
async fn asked(r: &mut Option<tokio::sync::watch::Receiver<u64>>) {
    match r {
        Some(r) => {
            if r.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// Drain one of a child's pipes into its log, cutting lines at [`MAX_LINE`].
///
/// After a small read (an app printing a line now and then) the pipe is left for
/// [`READ_LINGER`] before it is read again, so a trickle of lines costs one wake-up of the pipes'
/// thread per few lines rather than one per line; a full read (a burst) is followed at once.
pub async fn pump(reader: impl Source, stream: Stream, log: Arc<AppLog>) {
    let mut requests = reader.requests();
    let mut reader = BufReader::with_capacity(READ_BUF, reader);
    // A request made between the spawn and now is answered by the first read.
    if let Some(r) = &requests {
        let request = *r.borrow();
        reader.get_mut().ask(request);
    }
    let mut line: Vec<u8> = Vec::new();
    let mut small = false;
    loop {
        let refill = reader.buffer().is_empty();
        if refill && small {
            tokio::select! {
                () = reader.get_mut().rest(READ_LINGER) => {}
                () = asked(&mut requests) => {}
            }
        }
        if let Some(r) = requests
            .as_mut()
            .filter(|r| r.has_changed().unwrap_or(false))
        {
            let request = *r.borrow_and_update();
            reader.get_mut().ask(request);
        }
        let filled = tokio::select! {
            biased;
            r = reader.fill_buf() => r.map(|c| c.len()),
            () = asked(&mut requests) => continue,
        };
        let Ok(_) = filled else {
            break;
        };
        let Ok(chunk) = reader.fill_buf().await else {
            break;
        };
        if chunk.is_empty() {
            break;
        }
        if refill {
            small = chunk.len() < READ_BUF / 4;
        }
        let room = MAX_LINE - line.len();
        match chunk.iter().position(|b| *b == b'\n') {
            Some(i) if i <= room => {
                line.extend_from_slice(&chunk[..i]);
                reader.consume(i + 1);
                emit(&mut line, stream, &log).await;
            }
            _ => {
                let take = chunk.len().min(room);
                line.extend_from_slice(&chunk[..take]);
                reader.consume(take);
                if line.len() >= MAX_LINE {
                    emit(&mut line, stream, &log).await;
                }
            }
        }
    }
    if !line.is_empty() {
        emit(&mut line, stream, &log).await;
    }
}

async fn emit(line: &mut Vec<u8>, stream: Stream, log: &AppLog) {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    // Valid UTF-8 (nearly every line) is checked by the fast path and copied once.
    let text = match std::str::from_utf8(line) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(line).into_owned(),
    };
    log.push_wait(stream, text).await;
    line.clear();
}

/// The last `n` lines of an app's log files (current, then older rotations as needed).
pub fn tail(path: &Path, n: usize) -> Vec<LogLine> {
    let mut out: Vec<LogLine> = Vec::new();
    for f in log_files(path).into_iter().rev() {
        if out.len() >= n {
            break;
        }
        let Ok(lines) = tail_file(&f, n - out.len()) else {
            break;
        };
        let mut older: Vec<LogLine> = lines.iter().map(|l| LogLine::parse_file_line(l)).collect();
        older.append(&mut out);
        out = older;
    }
    out
}

fn tail_file(path: &Path, n: usize) -> std::io::Result<Vec<String>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut chunk = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(chunk);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        Read::by_ref(&mut f)
            .take(len - start)
            .read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf);
        let mut lines: Vec<&str> = text.lines().collect();
        if start > 0 && !lines.is_empty() {
            lines.remove(0); // maybe partial
        }
        if lines.len() >= n || start == 0 || chunk >= 64 * 1024 * 1024 {
            let skip = lines.len().saturating_sub(n);
            return Ok(lines[skip..].iter().map(|s| s.to_string()).collect());
        }
        chunk *= 4;
    }
}

/// An app's log files, oldest first: `NAME.log.K` … `NAME.log.1`, `NAME.log`.
pub fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut files = vec![path.to_path_buf()];
    let mut i = 1;
    while i <= 10_000 && rotated(path, i).exists() {
        files.push(rotated(path, i));
        i += 1;
    }
    files.reverse();
    files
}

/// A regex error in one line (its own text draws the pattern over several).
pub fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid")
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

/// What a search asks for.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Substring, or a regular expression when `regex`.
    pub pattern: String,
    pub regex: bool,
    /// Only lines stamped at or after / before (RFC 3339, compared as our stamps are written).
    pub since: Option<String>,
    pub until: Option<String>,
    /// At most this many matches: the newest ones.
    pub limit: usize,
    /// Only lines of this stream (`logs --out`, `--err`).
    pub stream: Option<Stream>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchResult {
    pub lines: Vec<LogLine>,
    /// More lines matched than `limit`; the oldest were left out.
    pub truncated: bool,
    pub files_searched: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("{0}")]
    Invalid(String),
}

/// Turn `since`/`until` input into a stamp comparable with ours: RFC 3339 (any offset), or a
/// time ago such as `10m`, `2h`, `7d` (`base::clock`'s one reader of times).
pub fn parse_time(s: &str, key: &str) -> Result<String, SearchError> {
    let t = crate::base::clock::parse_moment(s, key).map_err(|e| SearchError::Invalid(e.0))?;
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .map_err(|e| SearchError::Invalid(format!("{key}: {e}")))
}

/// Search an app's log files (rotations included), oldest first; the newest `limit` matches
/// are returned in order. Reads line by line: memory stays bounded by `limit` and the longest
/// line.
pub fn search(path: &Path, q: &SearchQuery) -> Result<SearchResult, SearchError> {
    use std::io::BufRead;
    let re = if q.regex {
        Some(
            regex::RegexBuilder::new(&q.pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| {
                    SearchError::Invalid(format!(
                        "the pattern is not a valid regular expression: {}",
                        regex_error(&e)
                    ))
                })?,
        )
    } else {
        None
    };
    let limit = q.limit.clamp(1, 100_000);
    let mut found: VecDeque<LogLine> = VecDeque::new();
    let mut truncated = false;
    let mut files_searched = 0;
    let since_sys = q.since.as_deref().and_then(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
    });
    for f in log_files(path) {
        let Ok(file) = std::fs::File::open(&f) else {
            continue;
        };
        // A file last written before `since` holds nothing newer.
        if let (Some(since), Ok(m)) = (since_sys, file.metadata().and_then(|m| m.modified())) {
            if time::OffsetDateTime::from(m) < since {
                continue;
            }
        }
        files_searched += 1;
        let mut reader = std::io::BufReader::with_capacity(256 * 1024, file);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            let text = String::from_utf8_lossy(&buf);
            let line = LogLine::parse_file_line(&text);
            if q.since.is_some() || q.until.is_some() {
                if line.ts.is_empty() {
                    continue;
                }
                if q.since.as_deref().is_some_and(|s| line.ts.as_str() < s) {
                    continue;
                }
                if q.until.as_deref().is_some_and(|u| line.ts.as_str() > u) {
                    continue;
                }
            }
            if q.stream.is_some_and(|s| line.stream != s) {
                continue;
            }
            let hit = match &re {
                Some(re) => re.is_match(&line.text),
                None => line.text.contains(q.pattern.as_str()),
            };
            if hit {
                if found.len() == limit {
                    found.pop_front();
                    truncated = true;
                }
                found.push_back(line);
            }
        }
    }
    Ok(SearchResult {
        lines: found.into(),
        truncated,
        files_searched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_rfc3339_utc_with_milliseconds_and_round_trips_through_the_file() {
        for _ in 0..50 {
            let ts = timestamp();
            let b = ts.as_bytes();
            assert_eq!(b.len(), 24, "{ts}");
            for (i, c) in b.iter().enumerate() {
                let want_digit = !matches!(i, 4 | 7 | 10 | 13 | 16 | 19 | 23);
                assert_eq!(c.is_ascii_digit(), want_digit, "{ts} at {i}");
            }
            assert_eq!(&ts[19..20], ".");
            assert!(ts.ends_with('Z'), "{ts}");
            let parsed =
                time::OffsetDateTime::parse(&ts, &time::format_description::well_known::Rfc3339)
                    .expect("RFC 3339");
            let ago = time::OffsetDateTime::now_utc() - parsed;
            assert!(
                ago >= time::Duration::ZERO && ago < time::Duration::seconds(5),
                "{ts}"
            );
            let line = LogLine::now(Stream::Out, "é text".into());
            assert_eq!(
                LogLine::parse_file_line(line.to_file_line().trim_end()),
                line
            );
            std::thread::sleep(Duration::from_micros(300));
        }
    }

    fn queue(dir: &Path) -> Arc<Queue> {
        AppLog::open(dir.join("q.log"), Rotation::default())
            .queue
            .clone()
    }

    /// The writer's plan on made-up instants: when it waits, lingers and writes.
    #[test]
    fn writes_are_paced_but_hangars_own_lines_are_written_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (queue(dir.path()), queue(dir.path()));
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut plan = Plan::default();
        assert!(matches!(plan.next(t0), Step::Wait));
        // After a quiet spell an app's lines wake the writer and are written at once.
        assert!(plan.tell(Some(a.clone()), false), "an idle writer is woken");
        assert!(matches!(plan.next(t0), Step::Write(q) if q.len() == 1));
        assert!(matches!(plan.next(t0), Step::Wait));
        // Lines sooner than LINGER after that write, of this app or another, linger until then.
        assert!(plan.tell(Some(a.clone()), false));
        assert!(matches!(plan.next(ms(1)), Step::Linger(u) if u == t0 + LINGER));
        assert!(
            !plan.tell(Some(b.clone()), false),
            "a lingering writer is not woken"
        );
        assert!(matches!(plan.next(ms(2)), Step::Linger(u) if u == t0 + LINGER));
        // At the end of the linger both are written, in one go.
        match plan.next(t0 + LINGER) {
            Step::Write(q) => assert_eq!(q.len(), 2),
            _ => panic!("the batch is written after the linger"),
        }
        assert!(matches!(plan.next(t0 + LINGER), Step::Wait));
        // One of Hangar's own lines, alone or while an app's lines linger: written at once.
        let w = t0 + LINGER;
        assert!(plan.tell(Some(a.clone()), true));
        assert!(matches!(plan.next(w), Step::Write(q) if q.len() == 1));
        assert!(matches!(plan.next(w), Step::Wait));
        assert!(plan.tell(Some(a.clone()), false));
        assert!(matches!(plan.next(w), Step::Linger(_)));
        assert!(plan.tell(None, true), "the lingering writer is woken");
        assert!(!plan.tell(None, true), "once is enough");
        assert!(matches!(plan.next(w), Step::Write(q) if q.len() == 1));
        assert!(matches!(plan.next(w), Step::Wait));
        // A trickle's batch long after the last write goes out at once again.
        let later = w + LINGER * 3;
        assert!(plan.tell(Some(b), false));
        assert!(matches!(plan.next(later), Step::Write(q) if q.len() == 1));
    }

    /// Issue 15: the file queue is bounded in bytes. A flood of long lines while the writer is
    /// held (a hung disk) keeps the queue under its cap; what does not fit is dropped, counted,
    /// and told in the file once the writer moves again.
    #[tokio::test]
    async fn a_flood_of_long_lines_stays_under_the_queue_cap_and_drops_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flood.log");
        let log = AppLog::open(path.clone(), Rotation::default());
        log.queue.hold.store(true, Ordering::Relaxed);
        const N: usize = 64;
        let long = "y".repeat(512 * 1024);
        for i in 0..N {
            log.push(Stream::Out, format!("{i:04} {long}"));
        }
        let (bytes, peak) = log.queued_bytes();
        assert!(
            bytes <= QUEUE_BYTES && peak <= QUEUE_BYTES,
            "{bytes} {peak}"
        );
        let kept = N - log.dropped() as usize;
        assert!(kept >= 1 && log.dropped() > 0, "kept {kept} of {N}");
        assert!(
            bytes >= kept * long.len(),
            "every byte held is counted: {bytes} for {kept} lines"
        );
        // A waiting push (a pipe) is refused too once it has waited WRITER_STALL, and the
        // next ones do not wait again while the writer is stuck.
        let t = std::time::Instant::now();
        log.push_wait(Stream::Out, long.clone()).await;
        log.push_wait(Stream::Out, long.clone()).await;
        assert!(t.elapsed() >= WRITER_STALL);
        assert_eq!(N - log.dropped() as usize, kept - 2);
        // The writer moves again: the lines kept are written, the drops told.
        log.queue.hold.store(false, Ordering::Relaxed);
        log.sys("moving again");
        let dropped = log.dropped();
        let mut lines = Vec::new();
        for _ in 0..500 {
            lines = tail(&path, N + 10);
            if lines.iter().any(|l| l.text.contains("moving again")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let written = lines.iter().filter(|l| l.stream == Stream::Out).count();
        assert_eq!(written, kept);
        assert!(
            lines
                .iter()
                .any(|l| l.text
                    == format!("{dropped} lines were dropped: the log writer fell behind")),
            "{:?}",
            lines
                .iter()
                .map(|l| &l.text[..l.text.len().min(60)])
                .collect::<Vec<_>>()
        );
        assert_eq!(
            log.queued_bytes().0,
            0,
            "written lines give their bytes back"
        );
    }

    #[tokio::test]
    async fn pump_cuts_lines_and_keeps_bad_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let log = AppLog::open(dir.path().join("a.log"), Rotation::default());
        let mut data = b"one\r\ntwo\n\xff\xfebad\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        data.extend(b"\nlast");
        let mut sub = log.subscribe();
        pump(&data[..], Stream::Out, log.clone()).await;
        let mut r = Vec::new();
        while let Ok(l) = sub.try_recv() {
            r.push((*l).clone());
        }
        let texts: Vec<&str> = r.iter().map(|l| l.text.as_str()).collect();
        // the recent ring keeps long lines cut
        assert!(log.recent(10, None)[3].text.len() <= RECENT_LINE + 3);
        assert_eq!(texts[0], "one");
        assert_eq!(texts[1], "two");
        assert!(texts[2].ends_with("bad"));
        assert_eq!(texts[3].len(), MAX_LINE);
        assert_eq!(texts[4], "x".repeat(10));
        assert_eq!(texts[5], "last");
    }

    #[tokio::test]
    async fn search_reaches_rotations_and_time_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let log = AppLog::open(
            path.clone(),
            Rotation {
                max_bytes: 2048,
                keep: 20,
            },
        );
        log.push(Stream::Out, "needle-old \x1b[31mred\x1b[0m".into());
        for i in 0..300 {
            log.push(Stream::Out, format!("filler {i}"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(rotated(&path, 3).exists());
        let q = SearchQuery {
            pattern: "needle-old".into(),
            limit: 10,
            ..Default::default()
        };
        let r = search(&path, &q).unwrap();
        assert_eq!(r.lines.len(), 1);
        assert!(r.lines[0].text.contains("\x1b[31m"), "ANSI kept");
        let q = SearchQuery {
            pattern: r"^filler 2\d$".into(),
            regex: true,
            limit: 5,
            ..Default::default()
        };
        let r = search(&path, &q).unwrap();
        assert_eq!(r.lines.len(), 5);
        assert!(r.truncated);
        assert_eq!(r.lines[4].text, "filler 29");
        let q = SearchQuery {
            pattern: "needle-old".into(),
            limit: 10,
            stream: Some(Stream::Err),
            ..Default::default()
        };
        assert!(search(&path, &q).unwrap().lines.is_empty(), "an out line");
        let q = SearchQuery {
            pattern: "needle".into(),
            limit: 5,
            since: Some(parse_time("1h", "since").unwrap()),
            until: Some(parse_time("2000-01-01T00:00:00Z", "until").unwrap()),
            ..Default::default()
        };
        assert!(search(&path, &q).unwrap().lines.is_empty());
        assert!(search(
            &path,
            &SearchQuery {
                pattern: "(".into(),
                regex: true,
                limit: 1,
                ..Default::default()
            }
        )
        .is_err());
        // a smaller keep removes the rotations beyond it at the next rotation
        log.set_rotation(Rotation {
            max_bytes: 2048,
            keep: 2,
        });
        for i in 0..100 {
            log.push(Stream::Out, format!("more {i}"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!rotated(&path, 3).exists());
        assert_eq!(log_files(&path).len(), 3);
    }

    #[tokio::test]
    async fn rotation_loses_no_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let log = AppLog::open(
            path.clone(),
            Rotation {
                max_bytes: 4096,
                keep: 50,
            },
        );
        for i in 0..2000 {
            log.push(Stream::Out, format!("line {i}"));
            if i % 500 == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(log.dropped(), 0);
        let all = tail(&path, 100_000);
        // tail reads the current file and up to 9 rotations; check continuity of what it read
        let nums: Vec<usize> = all
            .iter()
            .filter_map(|l| l.text.strip_prefix("line ")?.parse().ok())
            .collect();
        assert_eq!(*nums.last().unwrap(), 1999);
        for w in nums.windows(2) {
            assert_eq!(w[1], w[0] + 1);
        }
        for f in std::fs::read_dir(dir.path()).unwrap() {
            assert!(f.unwrap().metadata().unwrap().len() <= 4096);
        }
    }
}

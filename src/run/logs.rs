//! Each app's output: stamped, written to rotating files, offered to live subscribers.
//!
//! Invariants: no viewer ever blocks the app (live lines go to a bounded broadcast; a subscriber
//! that falls behind gets a marker with the number of lines it missed); the file is the record:
//! a pipe's lines wait for the file writer when its bounded queue is full (the app then writes
//! at disk speed, as it would to a file of its own), but never longer than [`WRITER_STALL`]: a
//! writer stuck that long (a hung disk) has lines dropped, counted and reported in the file,
//! without waiting again until the queue has room; memory is bounded (queue, broadcast ring,
//! recent-lines ring, line length).

use crate::base::config::Rotation;
use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{broadcast, mpsc};

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
        let stream = match parts.next() {
            Some("out") => Some(Stream::Out),
            Some("err") => Some(Stream::Err),
            Some("sys") => Some(Stream::Sys),
            Some("file") => Some(Stream::File),
            _ => None,
        };
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
        format!("{}.{:03}Z", c.1, now.millisecond())
    })
}

/// Lines longer than this are cut into pieces (each piece still a whole line in the file).
pub const MAX_LINE: usize = 1024 * 1024;
const CHANNEL: usize = 8192;
/// Lines written to the file in one go at most.
const MAX_BATCH: usize = 1024;
/// How long the file writer lets an app's lines gather after the first of a batch (unless one of
/// Hangar's own lines comes: see `writer`).
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);
/// How long a pipe's line waits for a full file writer before it is dropped.
pub const WRITER_STALL: std::time::Duration = std::time::Duration::from_secs(1);
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

/// One app's log: the file writer's queue, the live feed and a small ring of recent lines.
pub struct AppLog {
    path: PathBuf,
    rotation: Arc<RotationCell>,
    tx: mpsc::Sender<Arc<LogLine>>,
    live: broadcast::Sender<Arc<LogLine>>,
    recent: Mutex<VecDeque<LogLine>>,
    dropped: Arc<AtomicU64>,
    unwritten: Arc<AtomicU64>,
    /// The writer was found stuck: drop without waiting until its queue has room again.
    stalled: std::sync::atomic::AtomicBool,
    /// Told when one of Hangar's own lines is queued: the writer writes it without lingering.
    own_line: Arc<tokio::sync::Notify>,
}

impl AppLog {
    /// Open the log at `path` and start its writer task.
    pub fn open(path: PathBuf, rotation: Rotation) -> Arc<AppLog> {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let (live, _) = broadcast::channel(LIVE);
        let dropped = Arc::new(AtomicU64::new(0));
        let cell = Arc::new(RotationCell {
            max_bytes: AtomicU64::new(rotation.max_bytes),
            keep: AtomicU64::new(rotation.keep as u64),
        });
        let unwritten = Arc::new(AtomicU64::new(0));
        let own_line = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(writer(
            path.clone(),
            cell.clone(),
            rx,
            Queues {
                dropped: dropped.clone(),
                unwritten: unwritten.clone(),
                own_line: own_line.clone(),
            },
        ));
        Arc::new(AppLog {
            path,
            rotation: cell,
            tx,
            live,
            recent: Mutex::new(VecDeque::with_capacity(RECENT)),
            dropped,
            unwritten,
            stalled: std::sync::atomic::AtomicBool::new(false),
            own_line,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Change the rotation; the next line written follows it.
    pub fn set_rotation(&self, r: Rotation) {
        self.rotation
            .max_bytes
            .store(r.max_bytes, Ordering::Relaxed);
        self.rotation.keep.store(r.keep as u64, Ordering::Relaxed);
    }

    pub fn rotation(&self) -> Rotation {
        self.rotation.get()
    }

    /// Offer a line to viewers and queue it for the file; never waits (a full queue drops it).
    /// Hangar's own lines ([`AppLog::sys`]) come this way and reach the file without delay.
    pub fn push(&self, stream: Stream, text: String) {
        let line = self.offer(stream, text);
        if self.tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        if stream == Stream::Sys {
            self.own_line.notify_one();
        }
    }

    /// As [`AppLog::push`], but a full queue is waited for (up to [`WRITER_STALL`]), so a burst
    /// of output loses nothing: the pipe (and so the app) follows the disk's pace.
    pub async fn push_wait(&self, stream: Stream, text: String) {
        let line = self.offer(stream, text);
        let line = match self.tx.try_send(line) {
            Ok(()) => {
                self.stalled.store(false, Ordering::Relaxed);
                return;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(mpsc::error::TrySendError::Full(line)) => line,
        };
        if self.stalled.load(Ordering::Relaxed) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match tokio::time::timeout(WRITER_STALL, self.tx.send(line)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.stalled.store(true, Ordering::Relaxed);
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// As [`AppLog::push_wait`], for a blocking thread (the followers of an app's own files).
    pub fn push_blocking(&self, stream: Stream, text: String) {
        let mut line = self.offer(stream, text);
        let deadline = std::time::Instant::now() + WRITER_STALL;
        loop {
            match self.tx.try_send(line) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(l)) if std::time::Instant::now() < deadline => {
                    line = l;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(_) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    fn offer(&self, stream: Stream, text: String) -> Arc<LogLine> {
        let line = Arc::new(LogLine::now(stream, text));
        if let Ok(mut r) = self.recent.lock() {
            if r.len() == RECENT {
                r.pop_front();
            }
            // The ring is for a quick look (and a crash report): long lines are cut there, so
            // it stays small however long the lines are.
            let kept = if line.text.len() > RECENT_LINE {
                let mut cut = RECENT_LINE;
                while !line.text.is_char_boundary(cut) {
                    cut -= 1;
                }
                LogLine {
                    ts: line.ts.clone(),
                    stream: line.stream,
                    text: format!("{}…", &line.text[..cut]),
                }
            } else {
                (*line).clone()
            };
            r.push_back(kept);
        }
        let _ = self.live.send(line.clone());
        line
    }

    pub fn sys(&self, text: impl Into<String>) {
        self.push(Stream::Sys, text.into());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogLine>> {
        self.live.subscribe()
    }

    /// The last `n` lines kept in memory (at most 200), optionally of one stream.
    pub fn recent(&self, n: usize, stream: Option<Stream>) -> Vec<LogLine> {
        let r = match self.recent.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        let mut v: Vec<LogLine> = r
            .iter()
            .rev()
            .filter(|l| stream.is_none_or(|s| l.stream == s))
            .take(n)
            .cloned()
            .collect();
        v.reverse();
        v
    }

    /// Lines a failed write (a full disk) lost.
    pub fn unwritten(&self) -> u64 {
        self.unwritten.load(Ordering::Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The batch the file writer writes next, starting with `first`: what is queued, then, unless one
/// of Hangar's own lines is among it, what is queued after [`LINGER`], or as soon as `own_line`
/// says one of Hangar's own lines was queued; at most [`MAX_BATCH`] lines.
///
/// Lingering makes one write, and one hand-off to a blocking thread, per batch of a busy app
/// instead of one per line (the engine's CPU per line is mostly those hand-offs); an app's lines
/// do not wake the writer while it lingers. Viewers are not delayed: they get each line as it
/// comes (`offer`). Hangar's own lines are not delayed either: the operation that wrote one
/// ("stopped", "sent SIGKILL") may return at once, and whoever reads the file then (`hangar
/// logs`) must find it there.
async fn gather(
    rx: &mut mpsc::Receiver<Arc<LogLine>>,
    first: Arc<LogLine>,
    own_line: &tokio::sync::Notify,
) -> Vec<Arc<LogLine>> {
    let mut batch = vec![first];
    drain(rx, &mut batch);
    if batch.len() >= MAX_BATCH || batch.iter().any(|l| l.stream == Stream::Sys) {
        return batch;
    }
    tokio::select! {
        _ = tokio::time::sleep(LINGER) => {}
        _ = own_line.notified() => {}
    }
    drain(rx, &mut batch);
    batch
}

/// Move what is queued into `batch`, up to [`MAX_BATCH`] lines.
fn drain(rx: &mut mpsc::Receiver<Arc<LogLine>>, batch: &mut Vec<Arc<LogLine>>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(l) => batch.push(l),
            Err(_) => break,
        }
    }
}

/// What the file writer shares with its [`AppLog`] besides the queue.
struct Queues {
    dropped: Arc<AtomicU64>,
    unwritten: Arc<AtomicU64>,
    own_line: Arc<tokio::sync::Notify>,
}

async fn writer(
    path: PathBuf,
    rotation: Arc<RotationCell>,
    mut rx: mpsc::Receiver<Arc<LogLine>>,
    queues: Queues,
) {
    let Queues {
        dropped,
        unwritten,
        own_line,
    } = queues;
    let mut reported = 0u64;
    // Lines a failed write lost, not yet told in the file (told once writing works again).
    let mut untold = 0u64;
    let mut last_error = String::new();
    let mut file: Option<(std::fs::File, u64)> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = gather(&mut rx, first, &own_line).await;
        let now_dropped = dropped.load(Ordering::Relaxed);
        if now_dropped > reported {
            batch.push(Arc::new(LogLine::now(
                Stream::Sys,
                format!(
                    "{} lines were dropped: the log writer fell behind",
                    now_dropped - reported
                ),
            )));
            reported = now_dropped;
        }
        if untold > 0 {
            batch.insert(
                0,
                Arc::new(LogLine::now(
                    Stream::Sys,
                    format!("{untold} lines could not be written to this log ({last_error})"),
                )),
            );
        }
        let told = untold;
        let path2 = path.clone();
        let f = file.take();
        let rotation = rotation.get();
        // File I/O off the async workers.
        let Ok((f, lost, error)) =
            tokio::task::spawn_blocking(move || write_batch(&path2, rotation, f, &batch)).await
        else {
            continue;
        };
        file = f;
        if lost == 0 {
            untold = 0;
        } else {
            // The notice itself may be among the lost lines: keep the count whole.
            let notice_lost = u64::from(told > 0);
            let new = lost - notice_lost.min(lost);
            unwritten.fetch_add(new, Ordering::Relaxed);
            if untold == 0 {
                tracing::warn!(log = %path.display(), "log lines cannot be written: {}", error.clone().unwrap_or_default());
            }
            untold += new;
            last_error = error.unwrap_or_default();
        }
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

/// Drain one of a child's pipes into its log, cutting lines at [`MAX_LINE`].
pub async fn pump(reader: impl AsyncRead + Unpin, stream: Stream, log: Arc<AppLog>) {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut line: Vec<u8> = Vec::new();
    while let Ok(chunk) = reader.fill_buf().await {
        if chunk.is_empty() {
            break;
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
    log.push_wait(stream, String::from_utf8_lossy(line).into_owned())
        .await;
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
/// time ago such as `10m`, `2h`, `7d`.
pub fn parse_time(s: &str, key: &str) -> Result<String, SearchError> {
    use time::format_description::well_known::Rfc3339;
    let t = if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        t
    } else {
        let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
        let n: i64 = num.parse().map_err(|_| {
            SearchError::Invalid(format!(
                "{key} {s:?} is not accepted; accepted: an RFC 3339 time (2026-11-24T02:10:00Z) or a time ago such as 30s, 10m, 2h, 7d"
            ))
        })?;
        let secs = match unit {
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            "d" => n * 86400,
            _ => {
                return Err(SearchError::Invalid(format!(
                    "{key} {s:?}: the unit must be s, m, h or d"
                )))
            }
        };
        time::OffsetDateTime::now_utc() - time::Duration::seconds(secs)
    };
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

    fn line(stream: Stream, text: &str) -> Arc<LogLine> {
        Arc::new(LogLine::now(stream, text.into()))
    }

    /// On tokio's paused clock, which moves only when every task waits: how long `gather`
    /// waited is exact.
    #[tokio::test(start_paused = true)]
    async fn an_apps_lines_gather_but_hangars_own_lines_are_written_at_once() {
        let (tx, mut rx) = mpsc::channel(2 * MAX_BATCH);
        let own = Arc::new(tokio::sync::Notify::new());
        // Only an app's lines: they gather for LINGER.
        let t0 = tokio::time::Instant::now();
        let b = gather(&mut rx, line(Stream::Out, "a"), &own).await;
        assert_eq!(b.len(), 1);
        assert_eq!(t0.elapsed(), LINGER);
        // An app's lines arriving meanwhile do not end the wait.
        let t0 = tokio::time::Instant::now();
        let late = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            late.send(line(Stream::Out, "b")).await.unwrap();
        });
        let b = gather(&mut rx, line(Stream::Out, "a"), &own).await;
        assert_eq!(b.len(), 2);
        assert_eq!(t0.elapsed(), LINGER);
        // One of Hangar's own lines already queued: no wait at all.
        tx.send(line(Stream::Out, "b")).await.unwrap();
        tx.send(line(Stream::Sys, "stopped")).await.unwrap();
        let t0 = tokio::time::Instant::now();
        let b = gather(&mut rx, line(Stream::Out, "a"), &own).await;
        assert_eq!(b.len(), 3);
        assert_eq!(t0.elapsed(), std::time::Duration::ZERO);
        // One arriving while the app's lines gather ends the wait then, not at LINGER.
        let t0 = tokio::time::Instant::now();
        let late = tx.clone();
        let told = own.clone();
        // (The timer counts whole milliseconds; LINGER is 2.)
        let one_ms = std::time::Duration::from_millis(1);
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            late.send(line(Stream::Err, "e")).await.unwrap();
            tokio::time::sleep(one_ms).await;
            late.send(line(Stream::Sys, "sent SIGKILL")).await.unwrap();
            told.notify_one();
        });
        let b = gather(&mut rx, line(Stream::Out, "a"), &own).await;
        let texts: Vec<&str> = b.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a", "e", "sent SIGKILL"]);
        assert_eq!(t0.elapsed(), one_ms);
        assert!(one_ms < LINGER);
        // A full batch is not held back; the rest waits for the next.
        for i in 0..MAX_BATCH + 10 {
            tx.send(line(Stream::Out, &i.to_string())).await.unwrap();
        }
        let t0 = tokio::time::Instant::now();
        let b = gather(&mut rx, line(Stream::Out, "a"), &own).await;
        assert_eq!(b.len(), MAX_BATCH);
        assert_eq!(t0.elapsed(), std::time::Duration::ZERO);
        let b = gather(&mut rx, line(Stream::Out, "a"), &own).await;
        assert_eq!(b.len(), 12);
    }

    #[tokio::test]
    async fn only_hangars_own_lines_tell_the_writer_to_stop_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let log = AppLog::open(dir.path().join("a.log"), Rotation::default());
        let told = || async {
            // `timeout` polls the wait once before looking at the clock: a stored permit counts.
            tokio::time::timeout(std::time::Duration::ZERO, log.own_line.notified())
                .await
                .is_ok()
        };
        log.push(Stream::Out, "an app's line".into());
        log.push(Stream::Err, "another".into());
        // One thread: the writer's linger (2 ms) ends before this sleep does, and the writer is
        // no longer waiting for news when Hangar's line comes: the news is kept for it.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!told().await, "an app's lines are not news to the writer");
        log.sys("stopped");
        assert!(told().await, "Hangar's own line tells the writer");
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

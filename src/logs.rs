//! Each app's output: stamped, written to rotating files, offered to live subscribers.
//!
//! Invariants: the app is never blocked (pipes are drained by their own task; lines go to a
//! bounded channel with `try_send`, and a full channel counts the line as dropped and says so in
//! the file); memory is bounded (channel, broadcast ring, recent-lines ring, line length);
//! a subscriber that falls behind gets a marker with the number of lines it missed.

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
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Out => "out",
            Stream::Err => "err",
            Stream::Sys => "sys",
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
    let now = time::OffsetDateTime::now_utc();
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&f).unwrap_or_default()
}

/// Lines longer than this are cut into pieces (each piece still a whole line in the file).
pub const MAX_LINE: usize = 1024 * 1024;
const CHANNEL: usize = 8192;
const LIVE: usize = 4096;
const RECENT: usize = 200;

#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    pub max_bytes: u64,
    pub keep: usize,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_bytes: 10 * 1024 * 1024,
            keep: 5,
        }
    }
}

/// One app's log: the file writer's queue, the live feed and a small ring of recent lines.
pub struct AppLog {
    path: PathBuf,
    tx: mpsc::Sender<LogLine>,
    live: broadcast::Sender<LogLine>,
    recent: Mutex<VecDeque<LogLine>>,
    dropped: Arc<AtomicU64>,
}

impl AppLog {
    /// Open the log at `path` and start its writer task.
    pub fn open(path: PathBuf, rotation: Rotation) -> Arc<AppLog> {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let (live, _) = broadcast::channel(LIVE);
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(writer(path.clone(), rotation, rx, dropped.clone()));
        Arc::new(AppLog {
            path,
            tx,
            live,
            recent: Mutex::new(VecDeque::with_capacity(RECENT)),
            dropped,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn push(&self, stream: Stream, text: String) {
        let line = LogLine::now(stream, text);
        if let Ok(mut r) = self.recent.lock() {
            if r.len() == RECENT {
                r.pop_front();
            }
            r.push_back(line.clone());
        }
        let _ = self.live.send(line.clone());
        if self.tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn sys(&self, text: impl Into<String>) {
        self.push(Stream::Sys, text.into());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LogLine> {
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

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn writer(
    path: PathBuf,
    rotation: Rotation,
    mut rx: mpsc::Receiver<LogLine>,
    dropped: Arc<AtomicU64>,
) {
    let mut reported = 0u64;
    let mut file: Option<(std::io::BufWriter<std::fs::File>, u64)> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 1024 {
            match rx.try_recv() {
                Ok(l) => batch.push(l),
                Err(_) => break,
            }
        }
        let now_dropped = dropped.load(Ordering::Relaxed);
        if now_dropped > reported {
            batch.push(LogLine::now(
                Stream::Sys,
                format!(
                    "{} lines were dropped: the log writer fell behind",
                    now_dropped - reported
                ),
            ));
            reported = now_dropped;
        }
        let path = path.clone();
        let f = file.take();
        // File I/O off the async workers.
        file = tokio::task::spawn_blocking(move || write_batch(&path, rotation, f, &batch))
            .await
            .ok()
            .flatten();
    }
    if let Some((mut f, _)) = file {
        let _ = f.flush();
    }
}

fn open_append(path: &Path) -> Option<(std::io::BufWriter<std::fs::File>, u64)> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ok()?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    Some((std::io::BufWriter::with_capacity(64 * 1024, f), len))
}

fn rotated(path: &Path, i: usize) -> PathBuf {
    PathBuf::from(format!("{}.{i}", path.display()))
}

fn write_batch(
    path: &Path,
    rotation: Rotation,
    file: Option<(std::io::BufWriter<std::fs::File>, u64)>,
    batch: &[LogLine],
) -> Option<(std::io::BufWriter<std::fs::File>, u64)> {
    let mut file = file.or_else(|| open_append(path));
    for line in batch {
        let text = line.to_file_line();
        if let Some((_, size)) = &file {
            // Rotate before a line would pass the limit, so no line is ever split across files.
            if *size > 0 && size + text.len() as u64 > rotation.max_bytes {
                if let Some((mut f, _)) = file.take() {
                    let _ = f.flush();
                }
                for i in (1..rotation.keep).rev() {
                    let _ = std::fs::rename(rotated(path, i), rotated(path, i + 1));
                }
                let _ = std::fs::rename(path, rotated(path, 1));
                file = open_append(path);
            }
        }
        match &mut file {
            Some((f, size)) => {
                if f.write_all(text.as_bytes()).is_ok() {
                    *size += text.len() as u64;
                }
            }
            None => file = open_append(path),
        }
    }
    if let Some((f, _)) = &mut file {
        let _ = f.flush();
    }
    file
}

/// Drain one of a child's pipes into its log, cutting lines at [`MAX_LINE`].
pub async fn pump(reader: impl AsyncRead + Unpin, stream: Stream, log: Arc<AppLog>) {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let chunk = match reader.fill_buf().await {
            Ok(c) => c,
            Err(_) => break,
        };
        if chunk.is_empty() {
            break;
        }
        let room = MAX_LINE - line.len();
        match chunk.iter().position(|b| *b == b'\n') {
            Some(i) if i <= room => {
                line.extend_from_slice(&chunk[..i]);
                reader.consume(i + 1);
                emit(&mut line, stream, &log);
            }
            _ => {
                let take = chunk.len().min(room);
                line.extend_from_slice(&chunk[..take]);
                reader.consume(take);
                if line.len() >= MAX_LINE {
                    emit(&mut line, stream, &log);
                }
            }
        }
    }
    if !line.is_empty() {
        emit(&mut line, stream, &log);
    }
}

fn emit(line: &mut Vec<u8>, stream: Stream, log: &AppLog) {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    log.push(stream, String::from_utf8_lossy(line).into_owned());
    line.clear();
}

/// The last `n` lines of an app's log files (current, then older rotations as needed).
pub fn tail(path: &Path, n: usize) -> Vec<LogLine> {
    let mut out: Vec<LogLine> = Vec::new();
    let mut files = vec![path.to_path_buf()];
    files.extend((1..=9).map(|i| rotated(path, i)));
    for f in files {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pump_cuts_lines_and_keeps_bad_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let log = AppLog::open(dir.path().join("a.log"), Rotation::default());
        let mut data = b"one\r\ntwo\n\xff\xfebad\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        data.extend(b"\nlast");
        pump(&data[..], Stream::Out, log.clone()).await;
        let r = log.recent(10, None);
        let texts: Vec<&str> = r.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts[0], "one");
        assert_eq!(texts[1], "two");
        assert!(texts[2].ends_with("bad"));
        assert_eq!(texts[3].len(), MAX_LINE);
        assert_eq!(texts[4], "x".repeat(10));
        assert_eq!(texts[5], "last");
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

//! Log files beyond stdout and stderr: the files an app writes itself (its runtime's `logs`
//! globs), followed into the app's own log; each app's rotation from hangar.toml; and the
//! global cap over all log files.
//!
//! Invariants:
//! - a followed file is tracked by its inode, not its name: a file renamed away (rotated) is read
//!   to its end before it is let go, a new file under the old name is read from its start, a
//!   file that shrank (truncated in place) is read again from its start;
//! - files present when following begins are read from their end (old content is not replayed);
//! - `notify` wakes the follower as soon as a file changes; a scan every second catches what a
//!   watcher can miss (a directory created later, an overflowed event queue);
//! - bounded: at most [`MAX_FILES`] files per app, at most [`MAX_READ`] bytes read per file per
//!   pass, lines cut at [`crate::run::logs::MAX_LINE`]; lines enter the app's log, which never blocks.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::run::logs::{AppLog, Stream, MAX_LINE};
use crate::run::Core;

pub const MAX_FILES: usize = 256;
const MAX_READ: u64 = 16 * 1024 * 1024;

struct Tail {
    patterns: Vec<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The followers of every app's own log files.
#[derive(Default)]
pub struct LogFiles {
    tails: Mutex<HashMap<String, Tail>>,
}

/// Apply `name`'s runtime settings to its log: rotation, and the files it writes itself.
pub async fn configure(engine: &Core, name: &str) {
    let Ok(app) = engine.registry.get(name).await else {
        return;
    };
    // The runtimes in force: one added or changed by a reload applies here too.
    let Ok(runtime) = engine.runtimes.of(&app) else {
        return;
    };
    let runtime = &runtime;
    let rt_name = &runtime.name;
    let Some(handle) = engine.supervisor.get(name) else {
        return;
    };
    handle.log.set_rotation(runtime.log_rotation);
    let patterns = if runtime.logs.is_empty() {
        Vec::new()
    } else {
        let env = match crate::run::launch::app_env(
            &engine.home,
            &app,
            runtime,
            engine.config.proxy_port,
        ) {
            Ok(e) => e,
            Err(e) => {
                handle
                    .log
                    .sys(format!("its log files are not followed: {e}"));
                return;
            }
        };
        let cwd = match crate::run::launch::working_dir(&engine.home, &app, runtime, &env) {
            Ok(c) => c,
            Err(e) => {
                handle
                    .log
                    .sys(format!("its log files are not followed: {e}"));
                return;
            }
        };
        match crate::run::launch::expand_all(
            &runtime.logs,
            &env,
            &format!("runtimes.{rt_name}.logs"),
        ) {
            Ok(globs) => globs.iter().map(|g| absolute_pattern(&cwd, g)).collect(),
            Err(e) => {
                handle
                    .log
                    .sys(format!("its log files are not followed: {e}"));
                return;
            }
        }
    };
    let mut tails = engine
        .log_files
        .tails
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if patterns.is_empty() {
        tails.remove(name);
        return;
    }
    if tails.get(name).is_some_and(|t| t.patterns == patterns) {
        return;
    }
    let base = engine.home.app_dir(name);
    let task = tokio::spawn(follow(patterns.clone(), base, handle.log.clone()));
    tails.insert(name.to_string(), Tail { patterns, task });
}

/// Stop following `name`'s files (the app was deleted).
pub fn forget(engine: &Core, name: &str) {
    engine
        .log_files
        .tails
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(name);
}

fn absolute_pattern(cwd: &Path, glob: &str) -> String {
    if Path::new(glob).is_absolute() {
        glob.to_string()
    } else {
        format!(
            "{}/{}",
            glob::Pattern::escape(&cwd.display().to_string()).trim_end_matches('/'),
            glob
        )
    }
}

/// The folder to watch for a pattern: its literal leading part, or the nearest existing
/// ancestor of it.
fn watch_root(pattern: &str) -> PathBuf {
    let mut root = PathBuf::from("/");
    for comp in Path::new(pattern).components().skip(1) {
        let s = comp.as_os_str().to_string_lossy();
        if s.contains(['*', '?', '[', '{']) {
            break;
        }
        root.push(comp);
    }
    // The root without its escapes ([[] etc. only appear past a literal part we stop at).
    while !root.exists() {
        if !root.pop() {
            break;
        }
    }
    root
}

struct Followed {
    path: PathBuf,
    file: std::fs::File,
    offset: u64,
    partial: Vec<u8>,
    label: String,
}

/// Everything a follower knows, moved in and out of blocking scans.
struct State {
    patterns: Vec<String>,
    base: PathBuf,
    files: HashMap<(u64, u64), Followed>,
    log: Arc<AppLog>,
    first: bool,
}

async fn follow(patterns: Vec<String>, base: PathBuf, log: Arc<AppLog>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            let _ = tx.try_send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("cannot watch log files ({e}); polling every second instead");
            None
        }
    };
    let mut watched: Vec<PathBuf> = Vec::new();
    let mut state = State {
        patterns,
        base,
        files: HashMap::new(),
        log,
        first: true,
    };
    loop {
        // (Re)watch the roots: one may have come into existence since.
        if let Some(w) = watcher.as_mut() {
            use notify::Watcher;
            let roots: Vec<PathBuf> = state.patterns.iter().map(|p| watch_root(p)).collect();
            if roots != watched {
                for r in &watched {
                    let _ = w.unwatch(r);
                }
                for r in &roots {
                    if let Err(e) = w.watch(r, notify::RecursiveMode::Recursive) {
                        tracing::debug!("cannot watch {}: {e}", r.display());
                    }
                }
                watched = roots;
            }
        }
        state = match tokio::task::spawn_blocking(move || {
            scan(&mut state);
            state
        })
        .await
        {
            Ok(s) => s,
            Err(_) => return,
        };
        tokio::select! {
            _ = rx.recv() => {
                // Let a burst of writes settle into one pass.
                tokio::time::sleep(Duration::from_millis(2)).await;
                while rx.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

fn scan(st: &mut State) {
    let first = std::mem::replace(&mut st.first, false);
    // What matches now, by inode.
    let mut now: HashMap<(u64, u64), (PathBuf, u64)> = HashMap::new();
    for pattern in &st.patterns {
        let Ok(paths) = glob::glob(pattern) else {
            continue;
        };
        for p in paths.flatten() {
            if now.len() >= MAX_FILES {
                break;
            }
            if let Ok(m) = std::fs::metadata(&p) {
                if m.is_file() {
                    now.insert((m.dev(), m.ino()), (p, m.len()));
                }
            }
        }
    }
    // Files no longer matched (renamed out of the pattern, deleted): read to their end, let go.
    let gone: Vec<(u64, u64)> = st
        .files
        .keys()
        .filter(|k| !now.contains_key(k))
        .copied()
        .collect();
    for k in gone {
        if let Some(mut f) = st.files.remove(&k) {
            read_new(&mut f, &st.log, u64::MAX);
            flush_partial(&mut f, &st.log);
        }
    }
    for (key, (path, len)) in now {
        match st.files.get_mut(&key) {
            Some(f) => {
                if f.path != path {
                    f.label = label(&st.base, &path);
                    f.path = path;
                }
                if len < f.offset {
                    // Truncated in place: what is there now is new.
                    f.offset = 0;
                    f.partial.clear();
                    st.log.push(
                        Stream::File,
                        format!(
                            "[{}] (the file was truncated; following from its start)",
                            f.label
                        ),
                    );
                }
                read_new(f, &st.log, len);
            }
            None => {
                let Ok(file) = std::fs::File::open(&path) else {
                    continue;
                };
                let mut f = Followed {
                    label: label(&st.base, &path),
                    path,
                    file,
                    offset: if first { len } else { 0 },
                    partial: Vec::new(),
                };
                read_new(&mut f, &st.log, len);
                st.files.insert(key, f);
            }
        }
    }
}

fn label(base: &Path, path: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Read from the offset to the end (or `len`, bounded by [`MAX_READ`]), emitting whole lines.
fn read_new(f: &mut Followed, log: &AppLog, len: u64) {
    let end = len.min(f.offset.saturating_add(MAX_READ));
    if end <= f.offset && len != u64::MAX {
        return;
    }
    if f.file.seek(SeekFrom::Start(f.offset)).is_err() {
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut budget = if len == u64::MAX {
        MAX_READ
    } else {
        end - f.offset
    };
    while budget > 0 {
        let want = budget.min(buf.len() as u64) as usize;
        let n = match f.file.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        f.offset += n as u64;
        budget -= n as u64;
        let mut chunk = &buf[..n];
        while let Some(i) = chunk.iter().position(|b| *b == b'\n') {
            f.partial.extend_from_slice(&chunk[..i]);
            emit(f, log);
            chunk = &chunk[i + 1..];
        }
        f.partial.extend_from_slice(chunk);
        while f.partial.len() >= MAX_LINE {
            let rest = f.partial.split_off(MAX_LINE);
            emit(f, log);
            f.partial = rest;
        }
    }
}

fn flush_partial(f: &mut Followed, log: &AppLog) {
    if !f.partial.is_empty() {
        emit(f, log);
    }
}

fn emit(f: &mut Followed, log: &AppLog) {
    if f.partial.last() == Some(&b'\r') {
        f.partial.pop();
    }
    let text = String::from_utf8_lossy(&f.partial);
    log.push_blocking(Stream::File, format!("[{}] {text}", f.label));
    f.partial.clear();
}

/// Keep all log files together under `log_total_max_bytes`: delete the oldest rotated files
/// (never a file being written) until they fit.
pub fn enforce_total_cap(engine: &Core) {
    let cap = engine.config.log_total_max_bytes;
    let dir = engine.home.logs_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut total = 0u64;
    let mut rotated: Vec<(std::time::SystemTime, u64, PathBuf)> = Vec::new();
    for e in entries.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if !m.is_file() {
            continue;
        }
        total += m.len();
        let name = e.file_name().to_string_lossy().into_owned();
        let is_rotation = name
            .rsplit_once('.')
            .is_some_and(|(head, n)| head.ends_with(".log") && n.parse::<u32>().is_ok());
        if is_rotation {
            rotated.push((
                m.modified().unwrap_or(std::time::UNIX_EPOCH),
                m.len(),
                e.path(),
            ));
        }
    }
    if total <= cap {
        return;
    }
    rotated.sort();
    for (_, len, path) in rotated {
        if total <= cap {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total = total.saturating_sub(len);
            tracing::info!(file = %path.display(), "removed: all logs together passed log_total_max_bytes ({cap})");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_patterns() {
        let d = tempfile::tempdir().unwrap();
        let p = absolute_pattern(d.path(), "storage/logs/**/*.log");
        assert!(p.ends_with("/storage/logs/**/*.log"));
        assert_eq!(watch_root(&p), d.path());
        std::fs::create_dir_all(d.path().join("storage/logs")).unwrap();
        assert_eq!(watch_root(&p), d.path().join("storage/logs"));
    }

    #[tokio::test]
    async fn follows_through_truncation_and_rotation() {
        let d = tempfile::tempdir().unwrap();
        let logs = d.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let app_log = AppLog::open(d.path().join("app.log"), Default::default());
        let file = logs.join("app.log");
        std::fs::write(&file, "old line\n").unwrap();
        let task = tokio::spawn(follow(
            vec![absolute_pattern(d.path(), "logs/*.log")],
            d.path().to_path_buf(),
            app_log.clone(),
        ));
        let texts = |log: &AppLog| -> Vec<String> {
            log.recent(200, Some(Stream::File))
                .into_iter()
                .map(|l| l.text)
                .collect()
        };
        let wait = |want: &'static str| {
            let log = app_log.clone();
            async move {
                for _ in 0..300 {
                    if texts(&log).iter().any(|t| t.ends_with(want)) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                panic!("never saw {want:?}: {:?}", texts(&log));
            }
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        use std::io::Write;
        let append = |s: &str| {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&file)
                .unwrap();
            f.write_all(s.as_bytes()).unwrap();
        };
        append("one\n");
        wait("one").await;
        // truncate in place
        std::fs::write(&file, "").unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        append("two\n");
        wait("two").await;
        // rotate: rename away (out of the pattern) after a last line, new file under the name
        append("three\n");
        std::fs::rename(&file, logs.join("app.log.1")).unwrap();
        append("four\n");
        wait("four").await;
        wait("three").await;
        let t = texts(&app_log);
        assert!(!t.iter().any(|l| l.contains("old line")), "{t:?}");
        assert!(t.iter().all(|l| l.starts_with("[logs/app.log] ")), "{t:?}");
        task.abort();
    }
}

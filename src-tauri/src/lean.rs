//! Keeping the shell small while it sits in the tray (Linux, WebKitGTK).
//!
//! Two things cost the most there, measured with `bench/desktop-memory.sh`:
//! - GL: on machines without a GPU driver Mesa's software renderer (llvmpipe) maps libLLVM into
//!   the shell as soon as WebKit's compositor sets up EGL. The control panel needs no GPU, so the
//!   shell turns WebKit's accelerated compositing off unless the user decided otherwise.
//! - WebKit's network process: it outlives every webview (WebKit does not end it, and Tauri keeps
//!   the web context on Linux so a new window reuses it). Once no webview is left, the shell ends
//!   it; WebKit starts a new one with the next window.

/// Environment defaults applied at start, before GTK or WebKit read them: (name, value).
pub const ENV_DEFAULTS: &[(&str, &str)] = &[("WEBKIT_DISABLE_COMPOSITING_MODE", "1")];

/// The defaults from [`ENV_DEFAULTS`] that `get` (the environment) does not set yet.
pub fn missing_env_defaults(
    get: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Vec<(&'static str, &'static str)> {
    ENV_DEFAULTS
        .iter()
        .copied()
        .filter(|(k, _)| get(k).is_none())
        .collect()
}

/// Apply [`ENV_DEFAULTS`] the user did not set. Call first thing in `main`, while the process
/// has one thread (setting the environment is not thread-safe).
pub fn apply_env_defaults() -> Vec<(&'static str, &'static str)> {
    let set = missing_env_defaults(|k| std::env::var_os(k));
    for (k, v) in &set {
        std::env::set_var(k, v);
    }
    set
}

/// This process's direct children whose executable is named `exe_name`.
#[cfg(target_os = "linux")]
pub fn children_named(exe_name: &str) -> Vec<i32> {
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": the command may hold spaces and parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if ppid != Some(me.as_str()) {
            continue;
        }
        let named = std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .and_then(|p| p.file_name().map(|n| n == exe_name))
            .unwrap_or(false);
        if named {
            out.push(pid);
        }
    }
    out
}

/// End WebKit's network process, which stays after the last webview went. Only this process's
/// own children are looked at; call it only when no webview is left (on the main thread, so no
/// window can be in the making).
#[cfg(target_os = "linux")]
pub fn end_webkit_network_process() -> usize {
    let pids = children_named("WebKitNetworkProcess");
    for pid in &pids {
        // SAFETY: kill(2) with a pid read just now from /proc as our own child; WebKit reaps it.
        let r = unsafe { libc::kill(*pid, libc::SIGTERM) };
        if r == 0 {
            tracing::info!(pid, "no webview left: ended WebKit's network process");
        } else {
            tracing::warn!(
                pid,
                "cannot end WebKit's network process: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    pids.len()
}

#[cfg(not(target_os = "linux"))]
pub fn end_webkit_network_process() -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_only_what_the_user_left_unset() {
        let none = missing_env_defaults(|_| None);
        assert_eq!(none, vec![("WEBKIT_DISABLE_COMPOSITING_MODE", "1")]);
        // Set to anything (even "0", which turns compositing back on): left alone.
        let user =
            missing_env_defaults(|k| (k == "WEBKIT_DISABLE_COMPOSITING_MODE").then(|| "0".into()));
        assert!(user.is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn children_are_found_by_executable_name_and_parent() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep runs");
        let pid = child.id() as i32;
        let found = children_named("sleep");
        let other = children_named("WebKitNetworkProcess");
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&pid), "{found:?} lacks {pid}");
        assert!(!other.contains(&pid));
    }
}

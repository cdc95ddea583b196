//! Keeping the shell small while it sits in the tray (Linux, WebKitGTK).
//!
//! The windows live in a child process by default (`window_proc`), whose end takes WebKit's
//! memory with it; the rest is here. What costs the most, measured with
//! `bench/desktop-memory.sh`:
//! - GTK's GL probe: opening the X display, GDK looks for GLX visuals, which loads Mesa's driver
//!   and libLLVM (~45 MB resident under Xvfb) into a process that never draws with GL. The
//!   process that shows no window (the host of the window process) turns GDK's GL off; its
//!   window process gets the user's setting back.
//! - GL: on machines without a GPU driver Mesa's software renderer (llvmpipe) maps libLLVM into
//!   the shell as soon as WebKit's compositor sets up EGL. The control panel needs no GPU, so the
//!   shell turns WebKit's accelerated compositing off unless the user decided otherwise.
//! - WebKit's network process: it outlives every webview (WebKit does not end it, and Tauri keeps
//!   the web context on Linux so a new window reuses it). Once no webview is left, the shell ends
//!   it; WebKit starts a new one with the next window.
//! - Library pages touched while a window was open (WebKit's, this binary's; with windows in a
//!   child process, mapped here too by the kernel's fault-around while the child used them): once
//!   no webview is left, or the window process ended, the shell asks the kernel to page out its
//!   read-only file mappings (`MADV_PAGEOUT`);
//!   the kernel only drops pages no other process maps, and what the engine still runs faults
//!   back in from the page cache or disk.

/// Environment defaults applied at start, before GTK or WebKit read them: (name, value).
pub const ENV_DEFAULTS: &[(&str, &str)] = &[("WEBKIT_DISABLE_COMPOSITING_MODE", "1")];

/// More defaults for the process that keeps the engine and the tray and shows no window.
pub const HOST_ENV_DEFAULTS: &[(&str, &str)] = &[("GDK_GL", "disable")];

/// The defaults from `defaults` that `get` (the environment) does not set yet.
pub fn missing_env_defaults(
    defaults: &[(&'static str, &'static str)],
    get: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Vec<(&'static str, &'static str)> {
    defaults
        .iter()
        .copied()
        .filter(|(k, _)| get(k).is_none())
        .collect()
}

/// Apply those of `defaults` ([`ENV_DEFAULTS`], [`HOST_ENV_DEFAULTS`]) the user did not set;
/// returns what was set. Call in `main` while the process has one thread (setting the
/// environment is not thread-safe).
pub fn apply_env_defaults(
    defaults: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    let set = missing_env_defaults(defaults, |k| std::env::var_os(k));
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

/// Ask the kernel to page out this process's read-only file-backed mappings (shared libraries,
/// the binary). Advice only: nothing is unmapped, pages come back on the next access. Returns
/// the bytes advised.
#[cfg(target_os = "linux")]
pub fn page_out_file_mappings() -> usize {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let mut advised = 0;
    for (start, len) in maps.lines().filter_map(read_only_file_mapping) {
        // SAFETY: madvise with MADV_PAGEOUT only reclaims pages of a range this process maps;
        // it changes no contents (a range gone meanwhile just fails with ENOMEM).
        let r = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_PAGEOUT) };
        if r == 0 {
            advised += len;
        }
    }
    advised
}

#[cfg(not(target_os = "linux"))]
pub fn page_out_file_mappings() -> usize {
    0
}

/// (start, length) of a `/proc/PID/maps` line that maps a file without write access.
pub fn read_only_file_mapping(line: &str) -> Option<(usize, usize)> {
    let mut f = line.split_whitespace();
    let range = f.next()?;
    let perms = f.next()?;
    let path = f.nth(3)?; // after offset, device and inode
    if !path.starts_with('/') || perms.contains('w') {
        return None;
    }
    let (a, b) = range.split_once('-')?;
    let (a, b) = (
        usize::from_str_radix(a, 16).ok()?,
        usize::from_str_radix(b, 16).ok()?,
    );
    (b > a).then_some((a, b - a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_only_what_the_user_left_unset() {
        let none = missing_env_defaults(ENV_DEFAULTS, |_| None);
        assert_eq!(none, vec![("WEBKIT_DISABLE_COMPOSITING_MODE", "1")]);
        // Set to anything (even "0", which turns compositing back on): left alone.
        let user = missing_env_defaults(ENV_DEFAULTS, |k| {
            (k == "WEBKIT_DISABLE_COMPOSITING_MODE").then(|| "0".into())
        });
        assert!(user.is_empty());
        let host = missing_env_defaults(HOST_ENV_DEFAULTS, |_| None);
        assert_eq!(host, vec![("GDK_GL", "disable")]);
        let user = missing_env_defaults(HOST_ENV_DEFAULTS, |k| (k == "GDK_GL").then(|| "".into()));
        assert!(user.is_empty());
    }

    #[test]
    fn only_read_only_file_mappings_are_paged_out() {
        let lib = "7f1000000000-7f1000002000 r-xp 00001000 fe:01 123 /usr/lib/libx.so.1";
        assert_eq!(
            read_only_file_mapping(lib),
            Some((0x7f10_0000_0000, 0x2000))
        );
        for other in [
            "7f1000000000-7f1000002000 rw-p 00001000 fe:01 123 /usr/lib/libx.so.1",
            "7f1000000000-7f1000002000 rw-s 00000000 00:01 7 /SYSV00000000 (deleted)",
            "55d000000000-55d000001000 rw-p 00000000 00:00 0 [heap]",
            "7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]",
            "7f1000000000-7f1000002000 r--p 00000000 00:00 0",
            "garbage",
        ] {
            assert_eq!(read_only_file_mapping(other), None, "{other}");
        }
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

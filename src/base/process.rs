//! Processes and process groups on Linux: spawn in a group of its own, signal the group,
//! identify a pid beyond reuse (pid + start time from `/proc/<pid>/stat`, and the boot it ran
//! in: both start again at every boot).

use std::sync::OnceLock;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// A proxy holds two sockets per connection, and every app three pipes: lift the soft limit on
/// open files to the hard one (a desktop session's soft limit is often 1024). Apps inherit it.
pub fn raise_open_files_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// The start time of `pid` (clock ticks since boot, field 22 of `/proc/<pid>/stat`).
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and ')'; fields after the last ')' are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Is the process `pid` the same one we started (same start time), and not a zombie?
pub fn is_same(pid: u32, started: u64) -> bool {
    start_time(pid) == Some(started) && !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z')))
        .unwrap_or(false)
}

/// Send `sig` to the process group `pgid`. A group that is gone is not an error.
pub fn signal_group(pgid: u32, sig: Signal) {
    if pgid <= 1 {
        return; // never signal init or "every process"
    }
    let _ = killpg(Pid::from_raw(pgid as i32), sig);
}

/// Does any process (other than a zombie) remain in group `pgid`?
pub fn group_alive(pgid: u32) -> bool {
    if pgid <= 1 {
        return false;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(i) = stat.rfind(')') else { continue };
        let mut fields = stat[i + 2..].split(' ');
        let state = fields.next();
        let group = fields.nth(1).and_then(|s| s.parse::<u32>().ok());
        if group == Some(pgid) && state != Some("Z") {
            return true;
        }
    }
    false
}

/// Is the group `pgid`, whose leader started at `started`, still the group we made?
///
/// While any member of a group lives, the kernel does not hand its id to a new process, so:
/// leader alive with the recorded start time → ours; leader gone but members left → still ours
/// (orphaned grandchildren); leader pid alive with another start time → a new process reused
/// the pid after our whole group ended → not ours.
pub fn group_is_ours(pgid: u32, started: u64) -> bool {
    match start_time(pgid) {
        Some(t) => t == started,
        None => true,
    }
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), read once; `None` where the kernel
/// gives none.
pub fn boot_id() -> Option<&'static str> {
    static BOOT: OnceLock<Option<String>> = OnceLock::new();
    BOOT.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}

/// A process group an engine recorded: its leader's pid and start time, and the boot they
/// belong to (`None`: recorded by an engine that did not note it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub pid: u32,
    pub started: u64,
    pub boot: Option<String>,
}

impl Recorded {
    /// May this record's group be signalled? Only when it was recorded in this very boot (a pid
    /// and start time from another boot may be a live process of this one) and the group is
    /// still the one recorded ([`group_is_ours`]). A record whose boot is unknown never is.
    pub fn is_ours(&self) -> bool {
        let this_boot =
            matches!((self.boot.as_deref(), boot_id()), (Some(b), Some(now)) if b == now);
        this_boot && group_is_ours(self.pid, self.started)
    }
}

/// SIGTERM the group, wait up to `grace` for it to empty, then SIGKILL what is left.
/// Returns true when SIGKILL was needed.
pub async fn end_group(pgid: u32, grace: Duration) -> bool {
    signal_group(pgid, Signal::SIGTERM);
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if !group_alive(pgid) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal_group(pgid, Signal::SIGKILL);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_stable() {
        let me = std::process::id();
        let t = start_time(me).unwrap();
        assert!(is_same(me, t));
        assert!(!is_same(me, t + 1));
    }

    #[test]
    fn only_a_record_of_this_boot_is_ours() {
        let me = std::process::id();
        let started = start_time(me).unwrap();
        let now = boot_id().expect("Linux has a boot id").to_string();
        let record = |boot: Option<&str>| Recorded {
            pid: me,
            started,
            boot: boot.map(str::to_string),
        };
        assert!(record(Some(&now)).is_ours());
        assert!(!record(Some("00000000-0000-4000-8000-000000000000")).is_ours());
        assert!(!record(None).is_ours(), "an unknown boot is never ours");
    }
}

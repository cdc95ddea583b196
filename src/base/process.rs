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

/// The variable that marks every process of one start of an app (its value is new at each
/// start): a process that left the app's process group, and its cgroup where it has none, is
/// still found by it ([`marked`]).
pub const INSTANCE_VAR: &str = "HANGAR_INSTANCE";

/// At most this much of a process's environment is read when looking for a marker.
const ENVIRON_BYTES: u64 = 256 * 1024;

/// Every process (pid, start time) whose environment holds `INSTANCE_VAR=marker`, but the
/// caller's own. Only what this process may read is seen: a process of another user (for an
/// engine that is not root), or one that replaced or cleared its environment, is not.
pub fn marked(marker: &str) -> Vec<(u32, u64)> {
    use std::io::Read;
    let needle = format!("{INSTANCE_VAR}={marker}");
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let mut env = Vec::new();
        let read = std::fs::File::open(format!("/proc/{pid}/environ"))
            .and_then(|f| f.take(ENVIRON_BYTES).read_to_end(&mut env));
        if read.is_err() {
            continue;
        }
        if env.split(|&b| b == 0).any(|v| v == needle.as_bytes()) {
            if let Some(t) = start_time(pid) {
                found.push((pid, t));
            }
        }
    }
    found
}

/// Send `sig` to one process, if it is still the one found (pid and start time).
fn signal_one(pid: u32, started: u64, sig: Signal) {
    if pid > 1 && is_same(pid, started) {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), sig);
    }
}

/// Every process of one run of an app: its process group, its cgroup (when it has one) and
/// whatever carries its start's marker ([`INSTANCE_VAR`]), so a child that called `setsid()`
/// ends with the app.
pub struct AppProcesses<'a> {
    /// The group's id: the pid of its first process.
    pub pgid: u32,
    pub group: Option<&'a crate::base::cgroup::AppGroup>,
    /// The value of [`INSTANCE_VAR`] this run was given.
    pub marker: Option<&'a str>,
}

impl AppProcesses<'_> {
    /// The processes outside the process group: the cgroup's members and the marked ones.
    fn strays(&self) -> Vec<(u32, u64)> {
        let mut found: Vec<(u32, u64)> = Vec::new();
        if let Some(g) = self.group {
            found.extend(
                g.members()
                    .into_iter()
                    .filter_map(|p| start_time(p).map(|t| (p, t))),
            );
        }
        if let Some(m) = self.marker {
            for p in marked(m) {
                if !found.iter().any(|(q, _)| *q == p.0) {
                    found.push(p);
                }
            }
        }
        found.retain(|(p, _)| group_of(*p) != Some(self.pgid));
        found
    }

    /// Is any of them left?
    fn alive(&self, strays: &[(u32, u64)]) -> bool {
        group_alive(self.pgid)
            || strays.iter().any(|(p, t)| is_same(*p, *t))
            || self.group.is_some_and(|g| !g.members().is_empty())
    }

    /// SIGTERM every one, wait up to `grace` for all to be gone, then SIGKILL what is left
    /// (the cgroup killed whole where the kernel can). Returns true when SIGKILL was needed.
    pub async fn end(&self, grace: Duration) -> bool {
        let strays = self.strays();
        signal_group(self.pgid, Signal::SIGTERM);
        for (p, t) in &strays {
            signal_one(*p, *t, Signal::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline {
            if !self.alive(&strays) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill();
        true
    }

    /// SIGKILL every one at once (the process group, the cgroup, the marked).
    pub fn kill(&self) {
        signal_group(self.pgid, Signal::SIGKILL);
        if let Some(g) = self.group {
            g.kill();
        }
        // Looked for again: one may have been made since the SIGTERM.
        for (p, t) in self.strays() {
            signal_one(p, t, Signal::SIGKILL);
        }
    }

    /// Is anything of the app left (its group, its cgroup, a marked process)?
    pub fn any_left(&self) -> bool {
        self.alive(&self.strays())
    }
}

/// The process group of `pid` (field 5 of `/proc/<pid>/stat`).
fn group_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(2)?.parse().ok()
}

/// What a root engine does about its apps' capabilities (asked once per engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppCaps {
    /// Not root: an app's exec gives it none (no file capabilities under Landlock's
    /// `no_new_privs`), nothing to clear but the inheritable and ambient sets.
    NotRoot,
    /// Root with CAP_SETPCAP: each app's bounding, inheritable and ambient sets are cleared
    /// before exec, so it runs with no capability at all.
    Cleared,
    /// Root without CAP_SETPCAP: the bounding set cannot be cleared; apps keep it.
    CannotClear,
}

/// The capability clearing the bounding set takes.
const CAP_SETPCAP: u32 = 8;

impl AppCaps {
    /// This engine's case.
    pub fn of_engine() -> AppCaps {
        static CAPS: OnceLock<AppCaps> = OnceLock::new();
        *CAPS.get_or_init(|| {
            // SAFETY: geteuid has no failure and touches no memory.
            if unsafe { libc::geteuid() } != 0 {
                return AppCaps::NotRoot;
            }
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let eff = status
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .unwrap_or(0);
            if eff & (1 << CAP_SETPCAP) != 0 {
                AppCaps::Cleared
            } else {
                tracing::warn!("Hangar runs as root without CAP_SETPCAP: apps keep the capabilities of its bounding set (run Hangar as a normal user)");
                AppCaps::CannotClear
            }
        })
    }

    /// What an app's log says about it (nothing for a normal user's engine).
    pub fn line(self) -> Option<&'static str> {
        match self {
            AppCaps::NotRoot => None,
            AppCaps::Cleared => Some("runs as root with no capabilities: its bounding, inheritable and ambient sets are cleared before exec"),
            AppCaps::CannotClear => Some("runs as root and keeps the capabilities of Hangar's bounding set: clearing it needs CAP_SETPCAP, which Hangar lacks; run Hangar as a normal user"),
        }
    }

    /// Between fork and exec: clear the ambient and inheritable sets, and the whole bounding
    /// set when [`AppCaps::Cleared`]. Only system calls on plain values and a stack buffer:
    /// async-signal-safe.
    pub fn apply(self) -> std::io::Result<()> {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        const VERSION_3: u32 = 0x2008_0522;
        let last_os = std::io::Error::last_os_error;
        // SAFETY: prctl and capget/capset on buffers that live on this stack frame.
        unsafe {
            if self == AppCaps::Cleared {
                for cap in 0..64 {
                    if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0 {
                        // EINVAL: past the kernel's last capability.
                        if *libc::__errno_location() == libc::EINVAL {
                            break;
                        }
                        return Err(last_os());
                    }
                }
            }
            // Clearing the ambient set needs no privilege; a kernel without it says EINVAL.
            if libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            ) != 0
                && *libc::__errno_location() != libc::EINVAL
            {
                return Err(last_os());
            }
            let mut head = Header {
                version: VERSION_3,
                pid: 0,
            };
            let mut data = [Data {
                effective: 0,
                permitted: 0,
                inheritable: 0,
            }; 2];
            if libc::syscall(
                libc::SYS_capget,
                &mut head as *mut Header,
                data.as_mut_ptr(),
            ) != 0
            {
                return Err(last_os());
            }
            if data.iter().any(|d| d.inheritable != 0) {
                for d in &mut data {
                    d.inheritable = 0;
                }
                if libc::syscall(libc::SYS_capset, &mut head as *mut Header, data.as_ptr()) != 0 {
                    return Err(last_os());
                }
            }
        }
        Ok(())
    }
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

    /// Without a cgroup, a process that left the app's process group (`setsid`) is found by
    /// the marker in its environment and ended with the group.
    #[tokio::test]
    async fn a_marked_process_outside_the_group_ends_with_it() {
        use std::os::unix::process::CommandExt;
        let marker = crate::base::secret::random_hex(16);
        let mut leader = std::process::Command::new("sh")
            .args(["-c", "setsid sleep 600 & echo $!; exec sleep 600"])
            .env(INSTANCE_VAR, &marker)
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = leader.id();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(leader.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let escaped: u32 = line.trim().parse().unwrap();
        // `setsid` has made its own session once the marker is seen outside the group.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while group_of(escaped) == Some(pgid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_ne!(group_of(escaped), Some(pgid), "it left the group");
        assert!(marked(&marker).iter().any(|(p, _)| *p == escaped));
        let procs = AppProcesses {
            pgid,
            group: None,
            marker: Some(&marker),
        };
        assert!(procs.any_left());
        procs.end(Duration::from_secs(5)).await;
        let _ = leader.wait();
        // Reaped by init (its parent, sh, is gone); what is left is at most a zombie.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while start_time(escaped).is_some() && !is_zombie(escaped) {
            assert!(
                std::time::Instant::now() < deadline,
                "the escaped child still runs"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!procs.any_left());
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

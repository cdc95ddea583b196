//! An app's cgroups (Linux): one group per app, so every process it ever starts is known and
//! ends with it, and the kernel's side of its memory limit.
//!
//! Where the system lets Hangar make cgroups, each app runs in a group of its own under
//! `hangar-<home tag>/` beside the engine's own group. In the unified hierarchy (cgroup v2) the
//! group needs no controller: every process the app makes is inside, `setsid()` or not, and a
//! stop ends the group whole (`cgroup.kill`, or SIGKILL to each member on a kernel before
//! 5.14). The app's first process joins its groups itself between fork and exec (see
//! `run::launch`), so every child it ever makes is inside.
//!
//! The memory limit itself is the sampler's: a tree over it for a few samples in a row is
//! restarted gracefully (SIGTERM, as any stop). The kernel holds a hard ceiling a little above
//! it ([`ceiling`]), so a tree that races past the limit faster than the sampler looks is
//! stopped by the kernel instead of taking the machine's memory: in the v2 group when the
//! memory controller can be handed down to it (`memory.max`, `memory.oom.group = 1` so the
//! whole app goes at once), else in a group of cgroup v1's memory hierarchy
//! (`memory.limit_in_bytes`). Where no group can be made the sampler's check still applies,
//! [`Cgroups::detect`] says why, and a stop still finds a process that left the app's process
//! group by the marker in its environment (`process::INSTANCE_VAR`).
//!
//! Invariant: Hangar only makes, writes and removes directories under its own
//! `hangar-<tag>` folders; it never moves a process that is not an app's first.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

/// The kernel's hard ceiling for a limit of `limit` bytes: a quarter more, and at least
/// 64 MiB more (room for the sampler to see the limit passed and restart it gracefully).
pub fn ceiling(limit: u64) -> u64 {
    limit.saturating_add((limit / 4).max(64 << 20))
}

/// Which cgroup interface limits an app's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    V2,
    V1,
}

/// Where Hangar makes the apps' groups.
#[derive(Debug, Clone)]
pub struct Cgroups {
    /// `…/hangar-<tag>` in the unified hierarchy, and whether its groups have the memory
    /// controller.
    v2: Option<(PathBuf, bool)>,
    /// `…/hangar-<tag>` in cgroup v1's memory hierarchy, when v2 cannot limit memory.
    v1: Option<PathBuf>,
    /// Why the kernel cannot hold a memory limit here (`None`: it can).
    memory_why: Option<String>,
}

/// One app's groups, ready for its process to join.
#[derive(Debug, Clone)]
pub struct AppGroup {
    /// Its group in the unified hierarchy: every process of the app.
    v2: Option<PathBuf>,
    /// Its group in v1's memory hierarchy, when that holds its limit.
    v1: Option<PathBuf>,
    /// Which group holds its memory limit (`None`: no limit, or the kernel cannot).
    pub memory: Option<Kind>,
    /// `cgroup.procs` of each group, for the child to write its own pid into.
    pub procs: Vec<CString>,
}

/// A short stable tag of a home folder, so two engines on two homes never share a group.
fn tag(home: &Path) -> String {
    // FNV-1a, 32 bits: stable across runs and builds.
    let mut h: u32 = 0x811c_9dc5;
    for b in home.as_os_str().as_encoded_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// The mount points of the cgroup file systems: (cgroup2 mount, v1 memory mount).
fn mounts() -> (Option<PathBuf>, Option<PathBuf>) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return (None, None);
    };
    let (mut v2, mut v1) = (None, None);
    for line in info.lines() {
        // … mount_point … - fstype source super_options
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let point = left.split(' ').nth(4).map(PathBuf::from);
        let mut r = right.split(' ');
        let fstype = r.next();
        let opts = r.nth(1).unwrap_or("");
        match fstype {
            Some("cgroup2") if v2.is_none() => v2 = point,
            Some("cgroup") if v1.is_none() && opts.split(',').any(|o| o == "memory") => v1 = point,
            _ => {}
        }
    }
    (v2, v1)
}

/// The engine's own group in a hierarchy: the path after `ID:CONTROLLERS:` in
/// `/proc/self/cgroup` for the line whose controllers `pick` accepts.
fn own_group(pick: impl Fn(&str) -> bool) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        pick(controllers).then(|| path.trim_start_matches('/').to_string())
    })
}

impl Cgroups {
    /// Can Hangar make groups here? `Err` says why not (shown in `status`).
    pub fn detect(home: &Path) -> Result<Cgroups, String> {
        let name = format!("hangar-{}", tag(home));
        let (v2_mount, v1_mount) = mounts();
        let mut why = Vec::new();
        let mut v2 = None;
        if let Some(mount) = v2_mount {
            match own_group(|c| c.is_empty()) {
                Some(own) => {
                    let base = mount.join(own);
                    match Self::make_v2(&base, &name) {
                        Ok(made) => v2 = Some(made),
                        Err(e) => why.push(format!("cgroup v2 at {}: {e}", base.display())),
                    }
                }
                None => why.push("cgroup v2: this process is in no v2 group".into()),
            }
        }
        if let Some((_, false)) = &v2 {
            why.push(
                "cgroup v2: the memory controller cannot be handed down to the apps' groups".into(),
            );
        }
        let mut v1 = None;
        if !matches!(v2, Some((_, true))) {
            if let Some(mount) = v1_mount {
                let own = own_group(|c| c.split(',').any(|x| x == "memory")).unwrap_or_default();
                let base = mount.join(own);
                let root = base.join(&name);
                match std::fs::create_dir(&root) {
                    Ok(()) => v1 = Some(root),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => v1 = Some(root),
                    Err(e) => why.push(format!("cgroup v1 memory at {}: {e}", base.display())),
                }
            }
        }
        if v2.is_none() && v1.is_none() {
            if why.is_empty() {
                why.push("no cgroup file system is mounted".into());
            }
            return Err(why.join("; "));
        }
        // Only a test that Hangar may: its folders are made again by the first app's group,
        // and go with the last (an empty one is removed now; one that holds groups an earlier
        // run left stays for `left_by_earlier_run`).
        for root in [v2.as_ref().map(|(r, _)| r), v1.as_ref()]
            .into_iter()
            .flatten()
        {
            let _ = std::fs::remove_dir(root);
        }
        let memory_why = match (&v2, &v1) {
            (Some((_, true)), _) | (_, Some(_)) => None,
            _ => Some(why.join("; ")),
        };
        Ok(Cgroups { v2, v1, memory_why })
    }

    /// Make Hangar's folder under `base` (the engine's own group); hand it the memory
    /// controller when the engine's group can (refused when that group holds processes and is
    /// not the root): whether its groups have it.
    fn make_v2(base: &Path, name: &str) -> Result<(PathBuf, bool), String> {
        let root = base.join(name);
        match std::fs::create_dir(&root) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot make {}: {e}", root.display())),
        }
        let controllers =
            std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
        let mut memory = controllers.split_whitespace().any(|c| c == "memory");
        for dir in [base, root.as_path()] {
            if !memory {
                break;
            }
            let enabled =
                std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
            if !enabled.split_whitespace().any(|c| c == "memory") {
                memory = std::fs::write(dir.join("cgroup.subtree_control"), "+memory").is_ok();
            }
        }
        Ok((root, memory))
    }

    /// Which kernel interface holds a memory ceiling, for `status`; `Err` says why none does.
    pub fn memory(&self) -> Result<&'static str, &str> {
        match (&self.v2, &self.v1, &self.memory_why) {
            (Some((_, true)), _, _) => Ok("cgroup v2 memory.max"),
            (_, Some(_), _) => Ok("cgroup v1 memory.limit_in_bytes"),
            (_, _, why) => Err(why.as_deref().unwrap_or("no memory controller")),
        }
    }

    /// Make (or reuse) `app`'s group, with the hard ceiling `bytes` when it has a limit.
    pub fn prepare(&self, app: &str, bytes: Option<u64>) -> io::Result<AppGroup> {
        let mut group = AppGroup {
            v2: None,
            v1: None,
            memory: None,
            procs: Vec::new(),
        };
        if let Some((root, memory)) = &self.v2 {
            // Hangar's folder goes when its last app's group does (see `AppGroup::remove`).
            if !root.exists() {
                std::fs::create_dir(root)?;
                if *memory {
                    std::fs::write(root.join("cgroup.subtree_control"), "+memory")?;
                }
            }
            let dir = make_dir(&root.join(app))?;
            if *memory {
                // A limit of an earlier run is lifted when this one has none.
                let max = bytes.map_or("max".to_string(), |b| b.to_string());
                std::fs::write(dir.join("memory.max"), max)?;
                if bytes.is_some() {
                    // Best effort: older kernels have no group OOM kill.
                    let _ = std::fs::write(dir.join("memory.oom.group"), "1");
                    group.memory = Some(Kind::V2);
                }
            }
            group.procs.push(procs_of(&dir)?);
            group.v2 = Some(dir);
        }
        if let (Some(root), Some(bytes), None) = (&self.v1, bytes, group.memory) {
            if !root.exists() {
                std::fs::create_dir(root)?;
            }
            let dir = make_dir(&root.join(app))?;
            std::fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string())?;
            group.memory = Some(Kind::V1);
            group.procs.push(procs_of(&dir)?);
            group.v1 = Some(dir);
        }
        Ok(group)
    }
}

impl Cgroups {
    /// `app`'s groups as an earlier run left them (an engine that was killed), if their folders
    /// are there; nothing is made.
    pub fn left_by_earlier_run(&self, app: &str) -> Option<AppGroup> {
        let there = |root: Option<&PathBuf>| root.map(|r| r.join(app)).filter(|d| d.is_dir());
        let group = AppGroup {
            v2: there(self.v2.as_ref().map(|(r, _)| r)),
            v1: there(self.v1.as_ref()),
            memory: None,
            procs: Vec::new(),
        };
        (group.v2.is_some() || group.v1.is_some()).then_some(group)
    }
}

/// `dir`, made unless it is there.
fn make_dir(dir: &Path) -> io::Result<PathBuf> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(dir.to_path_buf()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(dir.to_path_buf()),
        Err(e) => Err(e),
    }
}

/// The `cgroup.procs` of `dir`, as the child writes it.
fn procs_of(dir: &Path) -> io::Result<CString> {
    CString::new(dir.join("cgroup.procs").as_os_str().as_encoded_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// The pids a `cgroup.procs` file lists.
fn pids_in(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

impl AppGroup {
    /// The group that holds every process of the app: the v2 one, else the v1 one.
    fn whole(&self) -> Option<&Path> {
        self.v2.as_deref().or(self.v1.as_deref())
    }

    /// How many times the kernel killed a process of this group for its limit (0 when the
    /// kernel does not say).
    pub fn oom_kills(&self) -> u64 {
        let (dir, file) = match self.memory {
            Some(Kind::V2) => (self.v2.as_deref(), "memory.events"),
            Some(Kind::V1) => (self.v1.as_deref(), "memory.oom_control"),
            None => return 0,
        };
        dir.and_then(|d| std::fs::read_to_string(d.join(file)).ok())
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("oom_kill "))
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Is `pid` in each of this app's groups?
    pub fn holds(&self, pid: u32) -> bool {
        [&self.v2, &self.v1]
            .into_iter()
            .flatten()
            .all(|d| pids_in(d).contains(&pid))
    }

    /// Every process in the app's group.
    pub fn members(&self) -> Vec<u32> {
        self.whole().map(pids_in).unwrap_or_default()
    }

    /// SIGKILL every process of the group at once: `cgroup.kill` (Linux 5.14 on), else each
    /// member (a process forked meanwhile is caught by the caller's next look).
    pub fn kill(&self) {
        if let Some(d) = &self.v2 {
            if std::fs::write(d.join("cgroup.kill"), "1").is_ok() {
                return;
            }
        }
        for pid in self.members() {
            if pid > 1 {
                // SAFETY: kill on a plain pid taken from the group's own list.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
        }
    }

    /// Remove the groups once no process is left in them (the kernel refuses otherwise; a
    /// process just killed takes a moment to go, waited for up to a second), and Hangar's
    /// folder when no other app's group is left in it.
    pub fn remove(&self) {
        for _ in 0..50 {
            if self.members().is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        for dir in [&self.v2, &self.v1].into_iter().flatten() {
            if std::fs::remove_dir(dir).is_ok() {
                if let Some(root) = dir.parent() {
                    let _ = std::fs::remove_dir(root);
                }
            }
        }
    }
}

/// Between fork and exec: move the calling process into each group whose `cgroup.procs` is in
/// `procs`. Only async-signal-safe calls (getpid, open, write, close); no allocation.
pub fn join_self(procs: &[CString]) -> io::Result<()> {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let mut digits = [0u8; 20];
    let mut n = pid.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    // Each group is tried; the first failure is returned.
    let mut first_err = None;
    for procs in procs {
        // SAFETY: `procs` is a valid NUL-terminated path; the buffer outlives the write.
        unsafe {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                first_err.get_or_insert_with(io::Error::last_os_error);
                continue;
            }
            let wrote = libc::write(
                fd,
                digits[i..].as_ptr() as *const libc::c_void,
                digits.len() - i,
            );
            let err = io::Error::last_os_error();
            libc::close(fd);
            if wrote < 0 {
                first_err.get_or_insert(err);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_stable_and_differ_per_home() {
        assert_eq!(tag(Path::new("/h/a")), tag(Path::new("/h/a")));
        assert_ne!(tag(Path::new("/h/a")), tag(Path::new("/h/b")));
        assert_eq!(tag(Path::new("/h/a")).len(), 8);
    }

    #[test]
    fn the_ceiling_leaves_the_sampler_room() {
        assert_eq!(ceiling(100 << 20), 164 << 20);
        assert_eq!(ceiling(1 << 30), (1 << 30) + (256 << 20));
        assert_eq!(ceiling(u64::MAX), u64::MAX);
    }
}

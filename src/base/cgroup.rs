//! The kernel's side of an app's memory limit: a memory cgroup per app (Linux).
//!
//! The limit itself is the sampler's: a tree over it for a few samples in a row is restarted
//! gracefully (SIGTERM, as any stop). The kernel holds a hard ceiling a little above it
//! ([`ceiling`]), so a tree that races past the limit faster than the sampler looks is stopped
//! by the kernel instead of taking the machine's memory.
//!
//! Where the system lets Hangar make cgroups, each app with a memory limit runs in a group of
//! its own under `hangar-<home tag>/` beside the engine's own group: cgroup v2 when the unified
//! hierarchy has the memory controller (`memory.max`, `memory.oom.group = 1` so the whole app
//! goes at once), else cgroup v1's memory hierarchy (`memory.limit_in_bytes`). The app's first
//! process joins its group itself between fork and exec (see `run::launch`), so every child it
//! ever makes is inside. Where no group can be made the sampler's check still applies, and
//! [`Cgroups::detect`] says why the kernel does not.
//!
//! Invariant: Hangar only makes, writes and removes directories under its own
//! `hangar-<tag>` folder; it never moves a process that is not an app's first.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

/// The kernel's hard ceiling for a limit of `limit` bytes: a quarter more, and at least
/// 64 MiB more (room for the sampler to see the limit passed and restart it gracefully).
pub fn ceiling(limit: u64) -> u64 {
    limit.saturating_add((limit / 4).max(64 << 20))
}

/// Which cgroup interface limits the apps' memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    V2,
    V1,
}

/// Where Hangar makes the apps' groups.
#[derive(Debug, Clone)]
pub struct Cgroups {
    kind: Kind,
    /// `…/hangar-<tag>`: one folder per app below it.
    root: PathBuf,
}

/// One app's group, ready for its process to join.
#[derive(Debug, Clone)]
pub struct AppGroup {
    kind: Kind,
    dir: PathBuf,
    /// `cgroup.procs` of the group, for the child to write its own pid into.
    pub procs: CString,
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
    /// Can Hangar make memory groups here? `Err` says why not (shown in `status`).
    pub fn detect(home: &Path) -> Result<Cgroups, String> {
        let name = format!("hangar-{}", tag(home));
        let (v2, v1) = mounts();
        let mut why = Vec::new();
        if let Some(mount) = v2 {
            match own_group(|c| c.is_empty()) {
                Some(own) => {
                    let base = mount.join(own);
                    match Self::make_v2(&base, &name) {
                        Ok(root) => {
                            return Ok(Cgroups {
                                kind: Kind::V2,
                                root,
                            })
                        }
                        Err(e) => why.push(format!("cgroup v2 at {}: {e}", base.display())),
                    }
                }
                None => why.push("cgroup v2: this process is in no v2 group".into()),
            }
        }
        if let Some(mount) = v1 {
            let own = own_group(|c| c.split(',').any(|x| x == "memory")).unwrap_or_default();
            let base = mount.join(own);
            let root = base.join(&name);
            match std::fs::create_dir(&root) {
                Ok(()) => {
                    return Ok(Cgroups {
                        kind: Kind::V1,
                        root,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Ok(Cgroups {
                        kind: Kind::V1,
                        root,
                    })
                }
                Err(e) => why.push(format!("cgroup v1 memory at {}: {e}", base.display())),
            }
        }
        if why.is_empty() {
            why.push("no cgroup file system with the memory controller is mounted".into());
        }
        Err(why.join("; "))
    }

    fn make_v2(base: &Path, name: &str) -> Result<PathBuf, String> {
        let controllers = std::fs::read_to_string(base.join("cgroup.controllers"))
            .map_err(|e| format!("cannot read cgroup.controllers: {e}"))?;
        if !controllers.split_whitespace().any(|c| c == "memory") {
            return Err("the memory controller is not available to this group".into());
        }
        let root = base.join(name);
        match std::fs::create_dir(&root) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot make {}: {e}", root.display())),
        }
        // The engine's group hands the memory controller down to Hangar's, which hands it to
        // each app's (refused when the engine's group holds processes and is not the root).
        for dir in [base, root.as_path()] {
            let enabled =
                std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
            if !enabled.split_whitespace().any(|c| c == "memory") {
                std::fs::write(dir.join("cgroup.subtree_control"), "+memory").map_err(|e| {
                    let _ = std::fs::remove_dir(&root);
                    format!(
                        "cannot enable the memory controller in {}: {e}",
                        dir.display()
                    )
                })?;
            }
        }
        Ok(root)
    }

    /// Which kernel interface holds the ceiling, for `status`.
    pub fn describe(&self) -> &'static str {
        match self.kind {
            Kind::V2 => "cgroup v2 memory.max",
            Kind::V1 => "cgroup v1 memory.limit_in_bytes",
        }
    }

    /// Make (or reuse) `app`'s group with the hard ceiling `bytes`.
    pub fn prepare(&self, app: &str, bytes: u64) -> io::Result<AppGroup> {
        // Hangar's folder goes when its last app's group does (see `AppGroup::remove`).
        if !self.root.exists() {
            std::fs::create_dir(&self.root)?;
            if self.kind == Kind::V2 {
                std::fs::write(self.root.join("cgroup.subtree_control"), "+memory")?;
            }
        }
        let dir = self.root.join(app);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        match self.kind {
            Kind::V2 => {
                std::fs::write(dir.join("memory.max"), bytes.to_string())?;
                // Best effort: older kernels have no group OOM kill.
                let _ = std::fs::write(dir.join("memory.oom.group"), "1");
            }
            Kind::V1 => {
                std::fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string())?;
            }
        }
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_encoded_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(AppGroup {
            kind: self.kind,
            dir,
            procs,
        })
    }
}

impl AppGroup {
    /// How many times the kernel killed a process of this group for its limit (0 when the
    /// kernel does not say).
    pub fn oom_kills(&self) -> u64 {
        let file = match self.kind {
            Kind::V2 => "memory.events",
            Kind::V1 => "memory.oom_control",
        };
        std::fs::read_to_string(self.dir.join(file))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("oom_kill "))
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Is `pid` in this group?
    pub fn holds(&self, pid: u32) -> bool {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .map(|t| t.lines().any(|l| l.trim() == pid.to_string()))
            .unwrap_or(false)
    }

    /// Remove the group once no process is left in it (the kernel refuses otherwise), and
    /// Hangar's folder when no other app's group is left in it.
    pub fn remove(&self) {
        if std::fs::remove_dir(&self.dir).is_ok() {
            if let Some(root) = self.dir.parent() {
                let _ = std::fs::remove_dir(root);
            }
        }
    }
}

/// Between fork and exec: move the calling process into the group whose `cgroup.procs` is
/// `procs`. Only async-signal-safe calls (getpid, open, write, close); no allocation.
pub fn join_self(procs: &CString) -> io::Result<()> {
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
    // SAFETY: `procs` is a valid NUL-terminated path; the buffer outlives the write.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let wrote = libc::write(
            fd,
            digits[i..].as_ptr() as *const libc::c_void,
            digits.len() - i,
        );
        let err = io::Error::last_os_error();
        libc::close(fd);
        if wrote < 0 {
            return Err(err);
        }
    }
    Ok(())
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

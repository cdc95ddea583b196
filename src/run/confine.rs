//! Apps confined by Landlock (Linux): what an app process may read, write and run, worked out
//! and turned into a Landlock ruleset in the engine before the fork, and applied in the child
//! just before exec.
//!
//! An app reads and runs everything on the system except what is left out ([`Plan::holes`]):
//! Hangar's home (all of it but the app's own data folder: not the token, the registry, other
//! apps' data folders, backups or logs), the key stores of its user ([`KEY_STORES`] under the
//! engine's home folder, and for a root engine under every `/home/*` too), those users' own
//! default Hangar homes ([`DEFAULT_HOME`]: another engine's) and `/dev` (where it
//! lists folders and uses [`DEVICES`]). Landlock only allows, so the system is granted from `/`
//! entry by entry around what is left out: only the folders on the way to a hole are opened up
//! ([`Builder::around`]; symbolic links are not followed, their targets are granted where they
//! are); entries made later in such a folder are out of reach. It writes its data folder (its
//! `HOME` is a folder of its own in it, [`Plan::app_home`], with the `XDG_*` folders and
//! `TMPDIR`), `/tmp` and `/var/tmp` ([`SYSTEM_WRITE`], around the holes the same way), an
//! attached SQLite file (`DB_STORAGE`, with its journal files; its folder only when nothing else
//! is in it) and what its runtime lists in `writable`.
//! A runtime's `cwd` is read, never written (the code every instance shares). From Landlock ABI
//! 6 on an app also cannot signal a process outside its own, nor reach an abstract Unix socket
//! made outside them.
//!
//! Other processes' `/proc/PID/environ` (another app's `DATABASE_URL` and `APP_KEY`, the
//! engine's environment): Landlock refuses a process in one domain the ptrace-class access to a
//! process outside its domain, which is what reading it takes. Measured on Linux 6.18: for an
//! engine that runs as a normal user that holds; as root, an app that keeps `CAP_SYS_ADMIN` or
//! `CAP_PERFMON` reads it anyway (dropping `CAP_SYS_PTRACE` changes nothing), so a root engine's
//! apps run with no capabilities at all (`base::process::AppCaps`, applied by `run::launch`
//! for every app, confined or not). Not closed:
//! the rest of `/proc` (command lines, the process list) stays readable, and Landlock does not
//! govern connecting to a pathname Unix socket (Hangar makes none).
//!
//! Invariants: between fork and exec only async-signal-safe calls run (`prctl`, one syscall on a
//! ruleset already made); what is read to make a plan is bounded ([`MAX_ENTRIES`] entries of a
//! folder, [`MAX_DEPTH`] folders deep, [`MAX_HOMES`] users); a kernel without Landlock runs the
//! app unconfined and the start says so; any other failure to confine fails the start, naming
//! `runtimes.<name>.confine`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The key stores in a user's home folder, never granted: keys, cloud and cluster credentials,
/// tokens of package registries and forges, password stores and browser profiles.
pub const KEY_STORES: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".kube",
    ".docker",
    ".password-store",
    ".local/share/keyrings",
    ".netrc",
    ".git-credentials",
    ".config/gh",
    ".npmrc",
    ".pypirc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".vault-token",
    ".terraform.d",
    ".pki",
    ".mozilla",
    ".thunderbird",
    ".config/chromium",
    ".config/google-chrome",
    ".config/BraveSoftware",
];

/// The devices an app reads and writes (and `ioctl`s): the rest of `/dev` it only lists.
pub const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
    "/dev/shm",
];

/// What the system lets every program write besides its own folders.
pub const SYSTEM_WRITE: &[&str] = &["/tmp", "/var/tmp"];

/// Toolchains that find themselves through `HOME` by default, as (variable, folder in the
/// user's home): an app whose `HOME` moved is told where they are when they are there.
const TOOLCHAINS: &[(&str, &str)] = &[
    ("PYENV_ROOT", ".pyenv"),
    ("NVM_DIR", ".nvm"),
    ("ASDF_DATA_DIR", ".asdf"),
    ("RUSTUP_HOME", ".rustup"),
    ("CARGO_HOME", ".cargo"),
    ("VOLTA_HOME", ".volta"),
];

/// Where a user's own Hangar home is by default (in their home folder): another engine's home,
/// never granted either.
const DEFAULT_HOME: &str = ".local/share/hangar";

/// Variables a confined app is not given: the addresses of its user's key agents.
const AGENT_VARS: &[&str] = &["SSH_AUTH_SOCK", "GPG_AGENT_INFO"];

/// At most this many entries of one folder on the way to a hole are granted one by one; the
/// rest are left out and said so.
const MAX_ENTRIES: usize = 4096;
/// Folders deeper than this below a granted root are not opened up (left out whole).
const MAX_DEPTH: usize = 64;
/// At most this many home folders under `/home` have their key stores left out (root engine).
const MAX_HOMES: usize = 256;

/// What a grant allows beneath its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Read files, list folders, run programs.
    Read,
    /// Everything Landlock governs: also write, make, remove, rename, link and `ioctl` devices.
    ReadWrite,
    /// List folders only (`/dev`).
    List,
}

/// What one app may reach.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Canonical paths and what each allows beneath it.
    pub grants: Vec<(PathBuf, Access)>,
    /// What is left out (canonical): Hangar's home, the key stores, `/dev` (for reading).
    pub holes: Vec<PathBuf>,
    /// The folders it writes, as its start line says them: (path, opened up entry by entry
    /// because it holds a hole).
    pub writes: Vec<(PathBuf, bool)>,
    /// The home folders whose key stores are left out.
    pub user_homes: Vec<PathBuf>,
    /// What was left out and why, for the app's log.
    pub notes: Vec<String>,
    /// The app's own `HOME`: `home` in its data folder.
    pub app_home: PathBuf,
}

/// The parts of one launch that decide a plan.
pub struct Launch<'a> {
    /// Hangar's home.
    pub home: &'a Path,
    /// The app's own data folder (inside the home).
    pub data_dir: &'a Path,
    /// The runtime's working folder (read only, like the rest of the system).
    pub cwd: &'a Path,
    /// The folders its runtime lets it write (`writable`).
    pub writable: &'a [PathBuf],
    /// The app's environment (`DB_STORAGE`: an attached SQLite file).
    pub env: &'a BTreeMap<String, String>,
    /// The home folders whose key stores are left out ([`user_homes`]).
    pub user_homes: &'a [PathBuf],
}

/// The home folders whose key stores an app never reads: the engine's own (`HOME`, else the
/// user database's), and for an engine that runs as root every folder in `/home` and `/root`
/// as well (at most [`MAX_HOMES`]).
pub fn user_homes() -> Vec<PathBuf> {
    let mut homes: Vec<PathBuf> = dirs::home_dir().into_iter().collect();
    // SAFETY: geteuid has no failure and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        homes.push(PathBuf::from("/root"));
        if let Ok(entries) = std::fs::read_dir("/home") {
            homes.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .take(MAX_HOMES)
                    .map(|e| e.path()),
            );
        }
    }
    let mut unique = Vec::new();
    for h in homes {
        if !unique.contains(&h) {
            unique.push(h);
        }
    }
    unique
}

/// `p` with its links resolved, or as it is when it is not there.
fn canon(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The grants of one launch.
pub fn plan(l: &Launch) -> Plan {
    let own = canon(l.data_dir);
    let user_homes: Vec<PathBuf> = l.user_homes.iter().map(|h| canon(h)).collect();
    let mut homes = vec![canon(l.home)];
    homes.extend(user_homes.iter().map(|u| canon(&u.join(DEFAULT_HOME))));
    let mut secret = homes.clone();
    for u in &user_homes {
        for k in KEY_STORES {
            let p = u.join(k);
            // One that is there may be a link, or lie behind one: its real path too.
            if std::fs::symlink_metadata(&p).is_ok() {
                let real = canon(&p);
                if real != p {
                    secret.push(real);
                }
            }
            secret.push(p);
        }
    }
    let mut b = Builder {
        homes,
        own,
        secret,
        dev: PathBuf::from("/dev"),
        seen: std::collections::HashSet::new(),
        plan: Plan {
            user_homes,
            app_home: l.data_dir.join("home"),
            ..Plan::default()
        },
    };
    b.plan.holes = b.secret.clone();
    b.plan.holes.push(b.dev.clone());
    // Writes first: a path written is not granted again for reading.
    b.write(l.data_dir);
    for p in SYSTEM_WRITE {
        b.write(Path::new(p));
    }
    for p in l.writable {
        b.write(p);
    }
    if let Some(db) = l.env.get("DB_STORAGE") {
        b.write_sqlite(Path::new(db));
    }
    // Reads: the whole system around the holes.
    b.around(Path::new("/"), Access::Read, 0);
    // Devices: /dev listed, the common ones used.
    b.push(b.dev.clone(), Access::List);
    for d in DEVICES {
        if let Ok(real) = std::fs::canonicalize(d) {
            b.push(real, Access::ReadWrite);
        }
    }
    let cwd = canon(l.cwd);
    if !cwd.starts_with(&b.own) && b.hole_of(&cwd, Access::Read).is_some() {
        b.plan.notes.push(format!(
            "its working folder {} is inside {}: not granted",
            l.cwd.display(),
            b.what(&cwd)
        ));
    }
    b.plan
}

struct Builder {
    /// Hangar's home (then the users' default ones) and the app's own data folder in it
    /// (canonical).
    homes: Vec<PathBuf>,
    own: PathBuf,
    /// What is never granted: the home, the key stores.
    secret: Vec<PathBuf>,
    /// Left out of the reads (the devices are granted one by one).
    dev: PathBuf,
    seen: std::collections::HashSet<(PathBuf, Access)>,
    plan: Plan,
}

impl Builder {
    /// The hole `p` lies in for a grant of `access`, if any.
    fn hole_of(&self, p: &Path, access: Access) -> Option<&Path> {
        self.secret
            .iter()
            .find(|h| p.starts_with(h))
            .map(PathBuf::as_path)
            .or_else(|| (access == Access::Read && p.starts_with(&self.dev)).then_some(&*self.dev))
    }

    /// Whether a hole lies beneath `p` (strictly or not) for a grant of `access`.
    fn holds_hole(&self, p: &Path, access: Access) -> bool {
        self.secret.iter().any(|h| h.starts_with(p))
            || (access == Access::Read && self.dev.starts_with(p))
    }

    /// What a path in a hole is, as a note says it.
    fn what(&self, p: &Path) -> &'static str {
        if self.homes.iter().any(|h| p.starts_with(h)) {
            "Hangar's home"
        } else {
            "a key store"
        }
    }

    /// Let the app write `path` (its own data folder, or a folder outside the holes).
    fn write(&mut self, path: &Path) {
        let Ok(real) = std::fs::canonicalize(path) else {
            return; // not there: nothing to grant
        };
        if real.starts_with(&self.own) {
            if !self.plan.writes.iter().any(|(w, _)| real.starts_with(w)) {
                self.plan.writes.push((real.clone(), false));
            }
            self.push(real, Access::ReadWrite);
            return;
        }
        if self.hole_of(&real, Access::ReadWrite).is_some() {
            let what = self.what(&real);
            self.plan
                .notes
                .push(format!("{} is inside {what}: not granted", path.display()));
            return;
        }
        let opened = self.holds_hole(&real, Access::ReadWrite);
        self.plan.writes.push((real.clone(), opened));
        self.around(&real, Access::ReadWrite, 0);
    }

    /// An attached SQLite file (`DB_STORAGE`, which an import takes from a row it read): the
    /// file itself and its journal, WAL and shared-memory files, never its folder's other
    /// files. Its folder is written only when it holds nothing else (SQLite makes and removes
    /// its journal there); otherwise the note says what SQLite cannot do.
    fn write_sqlite(&mut self, db: &Path) {
        const COMPANIONS: [&str; 4] = ["", "-journal", "-wal", "-shm"];
        let Some((dir, name)) = db.parent().zip(db.file_name()) else {
            return;
        };
        if std::fs::canonicalize(dir).is_ok_and(|d| d.starts_with(&self.own)) {
            return; // in its data folder, written whole
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
            self.write(dir);
            return;
        }
        for o in &own {
            self.write(&dir.join(o));
        }
        self.plan.notes.push(format!(
            "{} holds other files: only {name} and its -journal, -wal and -shm files are granted (SQLite cannot make a new journal there: give the database a folder of its own, or keep it in WAL mode)",
            dir.display()
        ));
    }

    /// Grant `real` (canonical) with `access`, around the holes: whole when none lies beneath
    /// it, else its entries one by one (links skipped), each the same way.
    fn around(&mut self, real: &Path, access: Access, depth: usize) {
        if self.hole_of(real, access).is_some() {
            return;
        }
        // The holes beneath it: only these are looked at below (a few, not every hole).
        let mut beneath: Vec<PathBuf> = self
            .secret
            .iter()
            .filter(|h| h.starts_with(real))
            .cloned()
            .collect();
        if access == Access::Read && self.dev.starts_with(real) {
            beneath.push(self.dev.clone());
        }
        self.expand(real, beneath, access, depth);
    }

    /// Grant `real`, none of `holes` (those beneath it) included.
    fn expand(&mut self, real: &Path, holes: Vec<PathBuf>, access: Access, depth: usize) {
        if holes.is_empty() {
            self.push(real.to_path_buf(), access);
            return;
        }
        if depth >= MAX_DEPTH {
            return;
        }
        let Ok(entries) = std::fs::read_dir(real) else {
            return;
        };
        for (n, entry) in entries.flatten().enumerate() {
            if n == MAX_ENTRIES {
                self.plan.notes.push(format!(
                    "{} has more than {MAX_ENTRIES} entries: the rest are not granted",
                    real.display()
                ));
                break;
            }
            // A link is resolved when it is used: its target is granted (or not) where it is.
            if entry.file_type().map_or(true, |t| t.is_symlink()) {
                continue;
            }
            let path = entry.path();
            let below: Vec<PathBuf> = holes
                .iter()
                .filter(|h| h.starts_with(&path))
                .cloned()
                .collect();
            if below.contains(&path) {
                continue; // a hole itself
            }
            self.expand(&path, below, access, depth + 1);
        }
    }

    fn push(&mut self, real: PathBuf, access: Access) {
        // Reading is part of writing: a path written already needs no second rule.
        let written =
            access == Access::Read && self.seen.contains(&(real.clone(), Access::ReadWrite));
        if !written && self.seen.insert((real.clone(), access)) {
            self.plan.grants.push((real, access));
        }
    }
}

impl Plan {
    /// One sentence for the app's log: what it may write and what it may read.
    pub fn describe(&self, abi: u32) -> String {
        let writes = self
            .writes
            .iter()
            .map(|(p, opened)| {
                if *opened {
                    format!(
                        "{} (what it holds now, around Hangar's home and the key stores)",
                        p.display()
                    )
                } else {
                    p.display().to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let homes = self
            .user_homes
            .iter()
            .map(|h| h.display().to_string())
            .collect::<Vec<_>>();
        let stores = if homes.is_empty() {
            String::new()
        } else {
            format!(
                ", nor the key stores in {} ({}, {}, {} and {} more)",
                homes.join(", "),
                KEY_STORES[0],
                KEY_STORES[1],
                KEY_STORES[2],
                KEY_STORES.len() - 3
            )
        };
        let scopes = if abi >= 6 {
            "; it signals, and reaches abstract Unix sockets of, its own processes only"
        } else {
            ""
        };
        let mut s = format!(
            "confined by Landlock (ABI {abi}): it writes {writes} (its HOME is {}) and the common devices, and reads and runs the rest of the system but not Hangar's home (other apps' folders, the token, the registry){stores}{scopes}",
            self.app_home.display()
        );
        for n in &self.notes {
            s.push_str("; ");
            s.push_str(n);
        }
        s
    }

    /// What the app's environment changes to: its own `HOME`, `XDG_*` folders and `TMPDIR`
    /// ([`Plan::app_home`]), where its toolchains are (when `HOME` found them, [`TOOLCHAINS`]),
    /// and no key agents ([`AGENT_VARS`]). A variable its runtime or its own env set (its
    /// value differs from the engine's, `engine`) is left as it is. `Some` sets, `None` removes.
    pub fn env_changes(
        &self,
        env: &BTreeMap<String, String>,
        engine: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<(String, Option<String>)> {
        let set_by_app = |k: &str| env.get(k).is_some_and(|v| engine(k).as_ref() != Some(v));
        let h = &self.app_home;
        let mut out = Vec::new();
        for (k, dir) in self.home_folders() {
            if !set_by_app(k) {
                out.push((k.to_string(), Some(dir.display().to_string())));
            }
        }
        if let Some(user) = self.user_homes.first() {
            for (k, dir) in TOOLCHAINS {
                let at = user.join(dir);
                if !env.contains_key(*k) && !at.starts_with(h) && at.is_dir() {
                    out.push((k.to_string(), Some(at.display().to_string())));
                }
            }
        }
        for k in AGENT_VARS {
            if env.contains_key(*k) && !set_by_app(k) {
                out.push((k.to_string(), None));
            }
        }
        out
    }

    /// The app's `HOME` and the folders in it it is given, as (variable, folder).
    fn home_folders(&self) -> Vec<(&'static str, PathBuf)> {
        let h = &self.app_home;
        vec![
            ("HOME", h.clone()),
            ("XDG_CONFIG_HOME", h.join(".config")),
            ("XDG_CACHE_HOME", h.join(".cache")),
            ("XDG_DATA_HOME", h.join(".local/share")),
            ("XDG_STATE_HOME", h.join(".local/state")),
            ("TMPDIR", h.join("tmp")),
        ]
    }
}

/// Give `env` what a confined start of the app whose data folder is `data_dir` gives its
/// environment ([`Plan::env_changes`]: its own `HOME`, …), its folders made: for `hangar exec`,
/// so a program run "as the app" sees the same `HOME`.
pub fn give_own_home(
    data_dir: &Path,
    env: &mut BTreeMap<String, String>,
) -> Result<(), ConfineError> {
    let plan = Plan {
        app_home: data_dir.join("home"),
        user_homes: user_homes().iter().map(|h| canon(h)).collect(),
        ..Plan::default()
    };
    let engine = |k: &str| std::env::var(k).ok();
    for (k, v) in plan.env_changes(env, &engine) {
        match v {
            Some(v) => env.insert(k, v),
            None => env.remove(&k),
        };
    }
    for (_, dir) in plan.home_folders() {
        std::fs::create_dir_all(&dir).map_err(|source| ConfineError::Home { dir, source })?;
    }
    Ok(())
}

/// How one launch runs: confined by a ruleset, or not, and the line that says so in its log.
#[derive(Debug)]
pub enum Confinement {
    On {
        ruleset: Ruleset,
        line: String,
        /// What its environment changes to ([`Plan::env_changes`]): `Some` sets, `None` removes.
        env: Vec<(String, Option<String>)>,
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

    /// What the app's environment changes to (its own `HOME`, …): `Some` sets, `None` removes.
    pub fn env(&self) -> &[(String, Option<String>)] {
        match self {
            Confinement::On { env, .. } => env,
            Confinement::Off(_) => &[],
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
                "it runs confined by Landlock (runtimes.{runtime}.confine): it writes only its data folder, its HOME there, /tmp and the folders runtimes.{runtime}.writable lists, and reads nothing in Hangar's home or its user's key stores; add a folder it writes to writable, or set confine = false"
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
    let engine = |k: &str| std::env::var(k).ok();
    let env = plan.env_changes(l.env, &engine);
    let ruleset = Ruleset::new(&plan, abi)?;
    for (_, dir) in plan.home_folders() {
        std::fs::create_dir_all(&dir).map_err(|source| ConfineError::Home { dir, source })?;
    }
    Ok(Confinement::On {
        ruleset,
        line,
        env,
        runtime: runtime.to_string(),
    })
}

/// Why an app could not be confined on a kernel that has Landlock.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("cannot make the app's own HOME folder {dir}: {source}")]
    Home {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
    const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
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
                scoped: if abi >= 6 {
                    SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET
                } else {
                    0
                },
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
                    Access::List => READ_DIR,
                };
                if !file.metadata().is_ok_and(|m| m.is_dir()) {
                    allowed &= FILE_RIGHTS;
                }
                if allowed & all == 0 {
                    continue; // nothing to allow (the kernel refuses an empty rule)
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

    /// What a plan allows at `path`: the widest grant on it or a folder above it.
    fn granted(p: &Plan, path: &Path) -> Option<Access> {
        let path = std::fs::canonicalize(path).unwrap();
        let found: Vec<Access> = p
            .grants
            .iter()
            .filter(|(g, _)| path.starts_with(g))
            .map(|(_, a)| *a)
            .collect();
        [Access::ReadWrite, Access::Read, Access::List]
            .into_iter()
            .find(|a| found.contains(a))
    }

    /// A Hangar home and a user's home folder (with a key store, a toolchain, a link into the
    /// Hangar home) side by side in `outer`: (hangar home, own data folder, user home).
    fn layout(outer: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let home = outer.join("hangar");
        let own = home.join("apps/a");
        let user = outer.join("me");
        for d in [
            own.clone(),
            home.join("apps/b"),
            user.join(".ssh"),
            user.join(".config/gh"),
            user.join(".config/editor"),
            user.join(".pyenv/versions/3.11/bin"),
            user.join(".local/share/hangar"),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(home.join("token"), "t").unwrap();
        std::fs::write(home.join("apps/b/db.sqlite"), "b").unwrap();
        std::fs::write(user.join(".ssh/id_rsa"), "key").unwrap();
        std::fs::write(user.join(".local/share/hangar/token"), "another engine's").unwrap();
        std::fs::write(user.join(".config/gh/hosts.yml"), "token").unwrap();
        std::fs::write(user.join(".config/editor/settings"), "").unwrap();
        std::fs::write(user.join(".pyenv/versions/3.11/bin/python3"), "").unwrap();
        std::os::unix::fs::symlink(&home, user.join("hangar-link")).unwrap();
        (home, own, user)
    }

    /// The system is read around the holes: Hangar's home (but the app's own folder), the
    /// user's key stores (also through a link) and /dev (listed, a few devices used); a
    /// toolchain in the user's home is read; the cwd is read, not written.
    #[test]
    fn everything_is_read_but_hangars_home_and_the_key_stores() {
        let outer = tempfile::tempdir().unwrap();
        let (home, own, user) = layout(outer.path());
        let env = BTreeMap::new();
        let p = plan(&Launch {
            home: &home,
            data_dir: &own,
            cwd: Path::new("/usr/lib"),
            writable: &[],
            env: &env,
            user_homes: std::slice::from_ref(&user),
        });
        assert_eq!(granted(&p, &own), Some(Access::ReadWrite));
        for secret in [
            home.join("token"),
            home.join("apps/b/db.sqlite"),
            home.clone(),
            user.join(".ssh/id_rsa"),
            user.join(".config/gh/hosts.yml"),
            user.join("hangar-link/token"),
            user.join(".local/share/hangar/token"),
        ] {
            assert_eq!(granted(&p, &secret), None, "{}: {p:?}", secret.display());
        }
        // This outer folder lies in /tmp: its other entries are written too.
        assert!(granted(&p, &user.join(".pyenv/versions/3.11/bin/python3")).is_some());
        assert!(granted(&p, &user.join(".config/editor/settings")).is_some());
        for read in ["/usr/lib", "/etc/hostname", "/proc/self/status"] {
            assert_eq!(granted(&p, Path::new(read)), Some(Access::Read), "{read}");
        }
        assert_eq!(granted(&p, Path::new("/dev/null")), Some(Access::ReadWrite));
        assert_eq!(granted(&p, Path::new("/dev")), Some(Access::List));
        if Path::new("/dev/loop0").exists() {
            assert_eq!(granted(&p, Path::new("/dev/loop0")), Some(Access::List));
        }
        // No grant on a folder that holds a hole: "/" is opened up entry by entry.
        assert!(p.grants.iter().all(|(g, _)| g != Path::new("/")), "{p:?}");
        assert!(p.holes.contains(&std::fs::canonicalize(&home).unwrap()));
    }

    /// A runtime's writable folder is written, around a hole it holds; one inside the home is
    /// refused with a note; an attached SQLite file's folder is written.
    #[test]
    fn writable_folders_are_written_around_the_holes() {
        let outer = tempfile::tempdir().unwrap();
        let (home, own, user) = layout(outer.path());
        let shared = outer.path().join("shared");
        std::fs::create_dir_all(&shared).unwrap();
        let env: BTreeMap<String, String> = [(
            "DB_STORAGE".to_string(),
            own.join("db.sqlite").display().to_string(),
        )]
        .into();
        let writable = [
            shared.clone(),
            outer.path().to_path_buf(),
            home.join("apps/b"),
        ];
        let p = plan(&Launch {
            home: &home,
            data_dir: &own,
            cwd: &own,
            writable: &writable,
            env: &env,
            user_homes: std::slice::from_ref(&user),
        });
        assert_eq!(granted(&p, &shared), Some(Access::ReadWrite));
        assert_eq!(granted(&p, &home.join("apps/b")), None);
        assert_eq!(granted(&p, &user.join(".ssh")), None);
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("apps/b is inside Hangar's home")),
            "{:?}",
            p.notes
        );
        let outer_real = std::fs::canonicalize(outer.path()).unwrap();
        assert!(p.writes.contains(&(outer_real, true)), "{:?}", p.writes);
    }

    /// The start line says in one sentence what the app writes and reads, also with Hangar's
    /// home under /tmp (it once read "writes ; reads ;").
    #[test]
    fn the_start_line_says_what_it_writes_and_reads() {
        let outer = tempfile::tempdir().unwrap();
        let (home, own, user) = layout(outer.path());
        let env = BTreeMap::new();
        let p = plan(&Launch {
            home: &home,
            data_dir: &own,
            cwd: &own,
            writable: &[],
            env: &env,
            user_homes: std::slice::from_ref(&user),
        });
        let line = p.describe(6);
        let own = std::fs::canonicalize(&own).unwrap();
        let user = std::fs::canonicalize(&user).unwrap();
        let expected = format!(
            "confined by Landlock (ABI 6): it writes {own}, /tmp (what it holds now, around Hangar's home and the key stores), /var/tmp (its HOME is {own}/home) and the common devices, and reads and runs the rest of the system but not Hangar's home (other apps' folders, the token, the registry), nor the key stores in {user} (.ssh, .gnupg, .aws and {} more); it signals, and reaches abstract Unix sockets of, its own processes only",
            KEY_STORES.len() - 3,
            own = own.display(),
            user = user.display(),
        );
        assert_eq!(line, expected);
        assert!(!line.contains("writes ;"));
    }

    /// A confined app gets a HOME of its own (XDG folders and TMPDIR in it), the toolchains its
    /// user's HOME held, and no key agent; what its runtime or its own env set stays.
    #[test]
    fn a_confined_app_gets_a_home_of_its_own() {
        let outer = tempfile::tempdir().unwrap();
        let (home, own, user) = layout(outer.path());
        let env: BTreeMap<String, String> = [
            ("HOME", user.display().to_string()),
            ("SSH_AUTH_SOCK", "/tmp/ssh-x/agent.1".to_string()),
            ("XDG_CACHE_HOME", "/srv/cache".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let p = plan(&Launch {
            home: &home,
            data_dir: &own,
            cwd: &own,
            writable: &[],
            env: &env,
            user_homes: std::slice::from_ref(&user),
        });
        // The engine's own HOME and agent were inherited; XDG_CACHE_HOME was the runtime's.
        let engine_home = user.display().to_string();
        let engine = |k: &str| match k {
            "HOME" => Some(engine_home.clone()),
            "SSH_AUTH_SOCK" => Some("/tmp/ssh-x/agent.1".to_string()),
            _ => None,
        };
        let changes: BTreeMap<String, Option<String>> =
            p.env_changes(&env, &engine).into_iter().collect();
        let at = |s: &str| Some(own.join(s).display().to_string());
        assert_eq!(changes["HOME"], at("home"));
        assert_eq!(changes["XDG_CONFIG_HOME"], at("home/.config"));
        assert_eq!(changes["XDG_DATA_HOME"], at("home/.local/share"));
        assert_eq!(changes["XDG_STATE_HOME"], at("home/.local/state"));
        assert_eq!(changes["TMPDIR"], at("home/tmp"));
        assert!(!changes.contains_key("XDG_CACHE_HOME"), "{changes:?}");
        assert_eq!(
            changes["PYENV_ROOT"],
            Some(
                std::fs::canonicalize(&user)
                    .unwrap()
                    .join(".pyenv")
                    .display()
                    .to_string()
            )
        );
        assert!(
            !changes.contains_key("RUSTUP_HOME"),
            "not there: {changes:?}"
        );
        assert_eq!(changes["SSH_AUTH_SOCK"], None);
    }

    /// An attached SQLite file (an import's storage) is written as a file, with its journal
    /// files, never the folder that holds other apps' files; a folder of its own is written.
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
                writable: &[],
                env: &env,
                user_homes: &[],
            })
        };
        let p = at(&shared.join("a1.sqlite"));
        let real = |x: &Path| std::fs::canonicalize(x).unwrap();
        let exactly = |p: &Plan, x: &Path| p.writes.iter().any(|(g, _)| *g == real(x));
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

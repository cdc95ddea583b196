//! The home folder: where everything Hangar keeps lives.
//!
//! ```text
//! hangar.toml      configuration (optional)
//! registry.db      the registry (SQLite)
//! token            the API token, mode 0600
//! engine.lock      held (flock) by the running engine
//! engine.json      the running engine's pid and addresses, for the CLI
//! apps/<name>/     each app's data folder
//! logs/            each app's logs, and the engine's own
//! backups/         backup archives (hangar backup; automatic ones before upgrades and drops)
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How many times (20 ms apart) a start tries the engine lock before it says another engine
/// holds it: a client's probe ([`Home::engine_running`]) holds it shared for an instant.
const LOCK_TRIES: u32 = 25;

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("cannot use home folder {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another engine already runs on {home} (pid {pid}, API {api}); stop it with `hangar kill` or use another --home")]
    Taken {
        home: PathBuf,
        pid: u32,
        api: String,
    },
    #[error("another engine already runs on {home} (it holds {lock}); stop it first or use another --home")]
    TakenUnknown { home: PathBuf, lock: PathBuf },
    #[error("no home folder: set HANGAR_HOME or pass --home")]
    NoDefault,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HomeError + '_ {
    move |source| HomeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

/// What the running engine writes for the CLI (and the desktop shell) to find it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineInfo {
    pub pid: u32,
    pub api: String,
    pub proxy: String,
    pub token_file: PathBuf,
    pub version: String,
}

impl Home {
    /// `--home`, else `HANGAR_HOME` (clap reads it), else the OS data folder.
    pub fn resolve(explicit: Option<PathBuf>) -> Result<Home, HomeError> {
        let root = match explicit {
            // Made absolute here: an app's paths (its data folder, `DB_STORAGE`, the SQLite URL)
            // are read from its own working folder, where `--home home` means something else.
            Some(p) => std::path::absolute(&p).map_err(io(&p))?,
            None => Home::default_root().ok_or(HomeError::NoDefault)?,
        };
        Ok(Home { root })
    }

    /// The home without `--home` or `HANGAR_HOME`: `hangar` in the OS data folder.
    pub fn default_root() -> Option<PathBuf> {
        dirs::data_dir().map(|d| d.join("hangar"))
    }

    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// Create the folder tree (owner-only) if needed.
    pub fn prepare(&self) -> Result<(), HomeError> {
        for dir in [self.root.clone(), self.apps_dir(), self.logs_dir()] {
            fs::create_dir_all(&dir).map_err(io(&dir))?;
        }
        fs::set_permissions(&self.root, fs::Permissions::from_mode(0o700))
            .map_err(io(&self.root))?;
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config_file(&self) -> PathBuf {
        self.root.join("hangar.toml")
    }
    pub fn registry_file(&self) -> PathBuf {
        self.root.join("registry.db")
    }
    pub fn token_file(&self) -> PathBuf {
        self.root.join("token")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("engine.lock")
    }
    pub fn engine_file(&self) -> PathBuf {
        self.root.join("engine.json")
    }
    pub fn apps_dir(&self) -> PathBuf {
        self.root.join("apps")
    }
    pub fn app_dir(&self, name: &str) -> PathBuf {
        self.apps_dir().join(name)
    }
    /// Backup archives (`hangar backup`, and the automatic ones before upgrades and dropping
    /// deletes).
    pub fn backups_dir(&self) -> PathBuf {
        self.root.join("backups")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn app_log(&self, name: &str) -> PathBuf {
        self.logs_dir().join(format!("{name}.log"))
    }
    pub fn engine_log(&self) -> PathBuf {
        self.logs_dir().join("engine.log")
    }

    /// Private redirect files of `hangar open` (the folder 0700, each file 0600).
    pub fn open_dir(&self) -> PathBuf {
        self.root.join("open")
    }

    /// A new redirect file (`open/login-RANDOM.html`, 0600) that sends a browser to `url`, so
    /// a login code reaches the browser without being on its command line; files older than
    /// the code's five minutes are removed first.
    pub fn login_redirect(&self, url: &str) -> Result<PathBuf, HomeError> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = self.open_dir();
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io(&dir))?
            }
            Err(e) => return Err(io(&dir)(e)),
        }
        let stale = std::time::SystemTime::now()
            .checked_sub(std::time::Duration::from_secs(300))
            .unwrap_or(std::time::UNIX_EPOCH);
        if let Ok(entries) = fs::read_dir(&dir) {
            for e in entries.flatten() {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < stale);
                if old && e.file_name().to_string_lossy().starts_with("login-") {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        let path = dir.join(format!("login-{}.html", crate::base::secret::random_hex(8)));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(io(&path))?;
        let u = crate::base::web::escape(url);
        let js = serde_json::to_string(url).unwrap_or_else(|_| "\"/\"".into());
        write!(
            f,
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"refresh\" content=\"0;url={u}\"><title>Hangar</title></head>\
             <body><p>Opening the <a href=\"{u}\">Hangar control panel</a>…</p>\
             <script>window.location.replace({js});</script></body></html>\n"
        )
        .map_err(io(&path))?;
        Ok(path)
    }

    /// The API token, made (random, 256 bits, mode 0600) on first use.
    pub fn token(&self) -> Result<String, HomeError> {
        let path = self.token_file();
        match fs::read_to_string(&path) {
            Ok(t) if !t.trim().is_empty() => {
                // Never leave it readable by others, whoever made it.
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io(&path))?;
                return Ok(t.trim().to_string());
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path)(e)),
        }
        let token = crate::base::secret::random_hex(32);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        f.write_all(token.as_bytes()).map_err(io(&path))?;
        Ok(token)
    }

    /// Read the token without creating one (for clients).
    pub fn read_token(&self) -> Result<String, HomeError> {
        let path = self.token_file();
        fs::read_to_string(&path)
            .map(|t| t.trim().to_string())
            .map_err(io(&path))
    }

    /// Take the engine lock. Held for as long as the returned guard lives; the kernel drops it
    /// when the process dies, so a crashed engine never blocks the next one.
    pub fn lock(&self) -> Result<EngineLock, HomeError> {
        let path = self.lock_file();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        // A client's `engine_running` holds a shared lock for an instant: a start that meets one
        // tries again for a little while ([`LOCK_TRIES`]); a running engine holds it for good.
        let mut tries = 0;
        let rc = loop {
            // SAFETY: flock on a valid fd we own.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            tries += 1;
            if rc == 0 || tries >= LOCK_TRIES {
                break rc;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        if rc != 0 {
            return Err(match self.engine_info() {
                Some(info) => HomeError::Taken {
                    home: self.root.clone(),
                    pid: info.pid,
                    api: info.api,
                },
                None => HomeError::TakenUnknown {
                    home: self.root.clone(),
                    lock: path,
                },
            });
        }
        Ok(EngineLock {
            _file: file,
            info: self.engine_file(),
        })
    }

    /// Is an engine holding the lock right now?
    pub fn engine_running(&self) -> bool {
        let Ok(file) = File::open(self.lock_file()) else {
            return false;
        };
        // SAFETY: flock on a valid fd we own; released at once when we got it.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
        if rc == 0 {
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            false
        } else {
            true
        }
    }

    pub fn engine_info(&self) -> Option<EngineInfo> {
        let text = fs::read_to_string(self.engine_file()).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn write_engine_info(&self, info: &EngineInfo) -> Result<(), HomeError> {
        let path = self.engine_file();
        let tmp = self.root.join("engine.json.tmp");
        let text = serde_json::to_string_pretty(info).unwrap_or_default();
        fs::write(&tmp, text).map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))
    }
}

/// The held engine lock; removes `engine.json` when dropped.
pub struct EngineLock {
    _file: File,
    info: PathBuf,
}

impl Drop for EngineLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.info);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_relative_home_is_made_absolute() {
        let home = super::Home::resolve(Some("some/home".into())).unwrap();
        assert!(home.root().is_absolute(), "{}", home.root().display());
        assert!(home.root().ends_with("some/home"));
    }

    use super::*;

    #[test]
    fn token_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        home.prepare().unwrap();
        let t = home.token().unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(home.token().unwrap(), t);
        let mode = fs::metadata(home.token_file())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn second_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        home.prepare().unwrap();
        let _held = home.lock().unwrap();
        assert!(home.engine_running());
        let err = home.lock().err().unwrap().to_string();
        assert!(err.contains("another engine"), "{err}");
    }

    /// A client that looks whether an engine runs (a shared lock for an instant) at the moment
    /// an engine starts does not make that start fail (the chaos suite met it: a restart right
    /// after a crash said "another engine already runs").
    #[test]
    fn a_clients_probe_does_not_refuse_a_starting_engine() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        home.prepare().unwrap();
        let probe = File::open(home.lock_file())
            .or_else(|_| {
                fs::write(home.lock_file(), b"")?;
                File::open(home.lock_file())
            })
            .unwrap();
        // SAFETY: flock on a valid fd we own.
        assert_eq!(
            unsafe { libc::flock(probe.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) },
            0
        );
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(probe);
        });
        let taken = home.lock();
        release.join().unwrap();
        assert!(taken.is_ok(), "{:?}", taken.err().map(|e| e.to_string()));
    }
}

//! Everything about launching one app process: its environment, its command line, the spawn
//! into a process group of its own, the readiness probe and the runtime's version.
//!
//! Invariant: a failure is a [`LaunchError`] naming the setting at fault (`runtimes.<name>.…`)
//! and keeping the system's error as its source.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::base::config::{expand, Prefix, Runtime, Version};
use crate::base::home::Home;
use crate::base::validate::MAIN;
use crate::store::registry::AppRecord;

/// Why an app's environment, command line or runtime version could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A `${VAR}` in the setting `what` cannot be expanded; `why` says which and why.
    #[error("{what}: {why}")]
    Expand { what: String, why: String },
    #[error("{what} did not finish within 30 s")]
    VersionTimeout { what: String },
    #[error("{what}: cannot run {program:?}: {source}")]
    VersionRun {
        what: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed ({status}): {stderr}")]
    VersionFailed {
        what: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
}

/// `${VAR}` in `s`, from `env`; a failure names the setting `what`.
fn expand_in(
    s: &str,
    env: &BTreeMap<String, String>,
    what: impl FnOnce() -> String,
) -> Result<String, LaunchError> {
    expand(s, &|var| env.get(var).cloned()).map_err(|why| LaunchError::Expand { what: what(), why })
}

/// The path prefix of an app behind the proxy: `/_app/<name>`, empty for the main app.
pub fn base_path(name: &str) -> String {
    if name == MAIN {
        String::new()
    } else {
        format!("/_app/{name}")
    }
}

/// The URL people open for an app.
pub fn public_url(name: &str, proxy_port: u16) -> String {
    format!("http://127.0.0.1:{proxy_port}{}/", base_path(name))
}

/// The environment an app process is given (docs/contracts.md, "What an app process is given"), on
/// top of the engine's own environment minus Hangar's variables.
pub fn app_env(
    home: &Home,
    app: &AppRecord,
    runtime: &Runtime,
    proxy_port: u16,
) -> Result<BTreeMap<String, String>, LaunchError> {
    let mut env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| !k.starts_with("HANGAR_"))
        .collect();
    // Test and dev overrides of the demo runtime travel on to the demo app.
    if let Ok(v) = std::env::var("HANGAR_DEMO_SCHEMA") {
        env.insert("HANGAR_DEMO_SCHEMA".into(), v);
    }
    let data_dir = home.app_dir(&app.name);
    let port = app.port.to_string();
    env.insert("PORT".into(), port.clone());
    env.insert("APP_PORT".into(), port);
    env.insert("HANGAR_APP".into(), app.name.clone());
    env.insert("HANGAR_BASE_PATH".into(), base_path(&app.name));
    env.insert(
        "HANGAR_PUBLIC_URL".into(),
        public_url(&app.name, proxy_port),
    );
    env.insert("HANGAR_DATA_DIR".into(), data_dir.display().to_string());
    env.insert("APP_KEY".into(), app.app_key.clone());
    env.extend(app.db.env());
    // The runtime's env, expanded from what is there so far; then the app's own values.
    let mut extra = BTreeMap::new();
    for (k, v) in &runtime.env {
        let value = expand_in(v, &env, || format!("runtimes.{}.env.{k}", runtime.name))?;
        extra.insert(k.clone(), value);
    }
    env.extend(extra);
    env.extend(app.env.clone());
    Ok(env)
}

/// Expand `${VAR}` in every word of `argv`.
pub fn expand_all(
    argv: &[String],
    env: &BTreeMap<String, String>,
    what: &str,
) -> Result<Vec<String>, LaunchError> {
    argv.iter()
        .map(|a| expand_in(a, env, || what.to_string()))
        .collect()
}

pub fn working_dir(
    home: &Home,
    app: &AppRecord,
    runtime: &Runtime,
    env: &BTreeMap<String, String>,
) -> Result<PathBuf, LaunchError> {
    match &runtime.cwd {
        Some(c) => {
            expand_in(c, env, || format!("runtimes.{}.cwd", runtime.name)).map(PathBuf::from)
        }
        None => Ok(home.app_dir(&app.name)),
    }
}

/// A command prepared to run in a process group of its own, with its pipes captured and a
/// parent-death signal so it never outlives an engine that died.
pub fn command(
    argv: &[String],
    env: &BTreeMap<String, String>,
    cwd: &PathBuf,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(env)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec here.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd
}

/// Is anything listening on 127.0.0.1:`port` already?
pub fn port_taken(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
}

/// The path the readiness probe requests: the runtime's health path, behind the app's prefix
/// when the runtime keeps it.
pub fn health_path(name: &str, runtime: &Runtime) -> String {
    match runtime.prefix {
        Prefix::Keep => format!("{}{}", base_path(name), runtime.health),
        Prefix::Strip => runtime.health.clone(),
    }
}

/// What one probe saw.
#[derive(Debug, PartialEq)]
pub enum Probe {
    /// A 2xx answer.
    Ready,
    /// Listening, answering something else; the body's first bytes, for the waiting page.
    NotYet(String),
    /// Nothing listening yet.
    Refused,
}

/// One HTTP/1.1 GET of `path` on 127.0.0.1:`port`, bounded in time and size.
pub async fn probe(port: u16, path: &str) -> Probe {
    let attempt = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: hangar-probe\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = vec![0u8; 4096];
        let mut n = 0;
        while n < buf.len() {
            match s.read(&mut buf[n..]).await {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") && n > 12 {
                // A 2xx status is all readiness needs; otherwise read a little of the body
                // (the boot progress the waiting page shows) if it is there already.
                if status_code(&buf[..n]).is_some_and(|c| (200..300).contains(&c)) {
                    break;
                }
                if let Ok(Ok(k)) =
                    tokio::time::timeout(Duration::from_millis(5), s.read(&mut buf[n..])).await
                {
                    n += k;
                }
                break;
            }
        }
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        Some(text)
    };
    match tokio::time::timeout(Duration::from_secs(2), attempt).await {
        Ok(Some(text)) => {
            let code = status_code(text.as_bytes()).unwrap_or(0);
            if (200..300).contains(&code) {
                Probe::Ready
            } else {
                let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
                Probe::NotYet(body.chars().take(300).collect())
            }
        }
        Ok(None) => Probe::Refused,
        Err(_) => Probe::NotYet(String::new()),
    }
}

/// The status code of an HTTP/1 answer's first line (`HTTP/1.1 200 OK`).
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let code = line.split(|&b| b == b' ').nth(1)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// The runtime's current version: static, or the trimmed output of its version command.
pub async fn runtime_version(
    runtime: &Runtime,
    env: &BTreeMap<String, String>,
    cwd: &PathBuf,
) -> Result<Option<String>, LaunchError> {
    match &runtime.version {
        Version::None => Ok(None),
        Version::Static(v) => Ok(Some(v.clone())),
        Version::Command(argv) => {
            let what = format!("runtimes.{}.version_command", runtime.name);
            let program = argv[0].clone();
            let argv = expand_all(argv, env, &what)?;
            let mut cmd = tokio::process::Command::new(&argv[0]);
            cmd.args(&argv[1..])
                .env_clear()
                .envs(env)
                .current_dir(cwd)
                .stdin(Stdio::null())
                .kill_on_drop(true);
            let out = match tokio::time::timeout(Duration::from_secs(30), cmd.output()).await {
                Err(_) => return Err(LaunchError::VersionTimeout { what }),
                Ok(Err(source)) => {
                    return Err(LaunchError::VersionRun {
                        what,
                        program,
                        source,
                    })
                }
                Ok(Ok(out)) => out,
            };
            if !out.status.success() {
                return Err(LaunchError::VersionFailed {
                    what,
                    status: out.status,
                    stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                });
            }
            let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
            Ok((!v.is_empty()).then_some(v))
        }
    }
}

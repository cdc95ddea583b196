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
use crate::base::process::AppCaps;
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
    // What Hangar made for it at create, then its own values (which win).
    env.extend(app.secret_env.clone());
    env.extend(app.env.clone());
    Ok(env)
}

/// What one app's process is given: its environment, its command line (expanded) and its
/// working folder. The start and `hangar exec` both build it here.
pub struct Setting {
    pub env: BTreeMap<String, String>,
    pub argv: Vec<String>,
    pub cwd: PathBuf,
}

/// The [`Setting`] of `app` run with `runtime` (the one [`Runtime::for_app`] gave).
pub fn setting(
    home: &Home,
    app: &AppRecord,
    runtime: &Runtime,
    proxy_port: u16,
) -> Result<Setting, LaunchError> {
    let env = app_env(home, app, runtime, proxy_port)?;
    let what = if app.command.is_some() {
        format!("the command of {}", app.name)
    } else {
        format!("runtimes.{}.command", runtime.name)
    };
    let argv = expand_all(&runtime.command, &env, &what)?;
    let cwd = working_dir(home, app, runtime, &env)?;
    Ok(Setting { env, argv, cwd })
}

/// Could the variable `key` hold a secret? Hangar's own (`APP_KEY`, `DB_PASSWORD`, and
/// `DATABASE_URL` when `url_secret`: a URL with a password), and any name that says so
/// (`…PASSWORD…`, `…SECRET…`, `…TOKEN…`, `…PASSWD…`).
fn secret_name(key: &str, url_secret: bool) -> bool {
    match key {
        "APP_KEY" | "DB_PASSWORD" => true,
        "DATABASE_URL" => url_secret,
        _ => ["PASSWORD", "SECRET", "TOKEN", "PASSWD"]
            .iter()
            .any(|w| key.to_ascii_uppercase().contains(w)),
    }
}

/// The `${VAR}` names a template expands.
fn expanded_names(template: &str) -> Vec<String> {
    let seen = std::cell::RefCell::new(Vec::new());
    let _ = expand(template, &|var| {
        seen.borrow_mut().push(var.to_string());
        Some(String::new())
    });
    seen.into_inner()
}

/// The secrets `runtime`'s command (an app's own command, when [`Runtime::for_app`] put it
/// there) expands onto the process's command line, which every user of the machine reads in
/// `/proc/PID/cmdline`: each as `${VAR}`, or `${VAR} (from ${SECRET})` for a runtime's env
/// value that expands one. `url_secret`: `DATABASE_URL` holds a password. Empty: none.
pub fn secrets_on_command_line(runtime: &Runtime, url_secret: bool) -> Vec<String> {
    let mut found = Vec::new();
    let mut words: Vec<&String> = runtime.command.iter().collect();
    if let Some(u) = &runtime.upgrade {
        words.extend(u);
    }
    if let Version::Command(v) = &runtime.version {
        words.extend(v);
    }
    for word in words {
        for var in expanded_names(word) {
            let why = if secret_name(&var, url_secret) {
                Some(format!("${{{var}}}"))
            } else {
                runtime.env.get(&var).and_then(|v| {
                    expanded_names(v)
                        .into_iter()
                        .find(|inner| secret_name(inner, url_secret))
                        .map(|inner| format!("${{{var}}} (from ${{{inner}}})"))
                })
            };
            if let Some(w) = why {
                if !found.contains(&w) {
                    found.push(w);
                }
            }
        }
    }
    found
}

/// The warning for [`secrets_on_command_line`]'s answer about `what` (`the command of NAME`,
/// `runtimes.NAME`), or `None` when there is nothing to say.
pub fn secrets_warning(what: &str, found: &[String]) -> Option<String> {
    (!found.is_empty()).then(|| {
        format!(
            "{what} puts {} on its command line, which every user of this machine can read (/proc/PID/cmdline); have the program read it from its environment instead (in `sh -c`, write $$VAR so the shell expands it)",
            found.join(", ")
        )
    })
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

/// A command prepared to run in a session (and so a process group) of its own, with no
/// controlling terminal, its pipes captured and a parent-death signal so it never outlives an
/// engine that died; under a root engine with no capabilities ([`AppCaps`]); confined by
/// `confine` (made before the fork, applied in the child) when given. Every process Hangar
/// starts for an app is made here: its start, its runtime's version and upgrade commands.
pub fn command(
    argv: &[String],
    env: &BTreeMap<String, String>,
    cwd: &PathBuf,
    confine: Option<&crate::run::confine::Ruleset>,
    res: &Resources,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(env)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    let restrict = confine.map(|r| r.restrict());
    let nice = res.nice;
    let procs = res.group.as_ref().map(|g| g.procs.clone());
    let caps = AppCaps::of_engine();
    // The engine's pid, read before the fork: a child whose parent died before its death signal
    // was set up would never get it (an engine killed mid-spawn left an app running).
    let engine = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls run in the child: setsid, prctl, getppid, setpriority,
    // open/write/close in `join_self` (its CStrings made before the fork), capget/capset in
    // `AppCaps::apply`, and `Restrict::apply` (prctl and one system call on a descriptor made
    // before the fork). The order matters: the cgroups are joined before Landlock, which would
    // refuse the write to the cgroup file.
    unsafe {
        cmd.pre_exec(move || {
            // A session of its own: no controlling terminal (no TIOCSTI into the engine's
            // shell), and its own process group (pgid = pid), which a stop signals.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            // The engine already gone (killed between the fork and the line above): start
            // nothing that no one would end.
            if libc::getppid() != engine {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            // A failure of these two does not stop the start; the caller checks the outcome
            // ([`nice_of`], `AppGroup::holds`) and says so in the app's log.
            if let Some(n) = nice {
                libc::setpriority(libc::PRIO_PROCESS, 0, n);
            }
            if let Some(p) = &procs {
                let _ = crate::base::cgroup::join_self(p);
            }
            caps.apply()?;
            if let Some(r) = restrict {
                r.apply()?;
            }
            Ok(())
        });
    }
    cmd
}

/// What an app's process group runs with: its CPU priority and its cgroups.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    /// The nice value of its first process; every child inherits it.
    pub nice: Option<i32>,
    /// The cgroups its first process joins before exec (so every child is inside).
    pub group: Option<crate::base::cgroup::AppGroup>,
}

/// The nice value of `pid` (field 19 of `/proc/<pid>/stat`).
pub fn nice_of(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(16)?.parse().ok()
}

/// Set the nice value of every process of the group `pgid` (an edit of a running app).
pub fn renice_group(pgid: u32, nice: i32) -> std::io::Result<()> {
    if pgid <= 1 {
        return Ok(());
    }
    // SAFETY: setpriority on a process group id; no memory is passed.
    let r = unsafe { libc::setpriority(libc::PRIO_PGRP, pgid as libc::id_t, nice) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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

/// One HTTP/1.1 GET of `path` on 127.0.0.1:`port`, bounded in time and size. With `body`
/// (the runtime's `health_body`), a 2xx answer is ready only when its body, trimmed, is that.
pub async fn probe(port: u16, path: &str, body: Option<&str>) -> Probe {
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
            if let Some(head) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
                let ok = status_code(&buf[..n]).is_some_and(|c| (200..300).contains(&c));
                // A 2xx status is all readiness needs, unless the body is checked: then read
                // the body (Connection: close ends it; the buffer bounds it).
                if ok && body.is_none() {
                    break;
                }
                if ok {
                    if let Some(len) = content_length(&buf[..head]) {
                        if n >= head + 4 + len {
                            break;
                        }
                    }
                    continue;
                }
                // Otherwise read a little of the body (the boot progress the waiting page
                // shows) if it is there already.
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
            let answer = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
            let expected = body.is_none_or(|b| answer.trim() == b.trim());
            if (200..300).contains(&code) && expected {
                Probe::Ready
            } else {
                Probe::NotYet(answer.chars().take(300).collect())
            }
        }
        Ok(None) => Probe::Refused,
        Err(_) => Probe::NotYet(String::new()),
    }
}

/// The `Content-Length` of an answer's head, if it has one.
fn content_length(head: &[u8]) -> Option<usize> {
    String::from_utf8_lossy(head)
        .split("\r\n")
        .find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
}

/// The status code of an HTTP/1 answer's first line (`HTTP/1.1 200 OK`).
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let code = line.split(|&b| b == b' ').nth(1)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// The runtime's current version: static, or the trimmed output of its version command, run
/// as the app's start runs ([`command`]: its own session, no capabilities, and the app's
/// Landlock ruleset `confine`), never with more than the app itself may do.
pub async fn runtime_version(
    runtime: &Runtime,
    env: &BTreeMap<String, String>,
    cwd: &PathBuf,
    confine: Option<&crate::run::confine::Ruleset>,
) -> Result<Option<String>, LaunchError> {
    match &runtime.version {
        Version::None => Ok(None),
        Version::Static(v) => Ok(Some(v.clone())),
        Version::Command(argv) => {
            let what = format!("runtimes.{}.version_command", runtime.name);
            let program = argv[0].clone();
            let argv = expand_all(argv, env, &what)?;
            let mut cmd = command(&argv, env, cwd, confine, &Resources::default());
            cmd.kill_on_drop(true);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on a free loopback port that answers every connection with `answer`.
    async fn answering(answer: &'static str) -> u16 {
        let l = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        port
    }

    /// A secret put on a command line is found directly and through a runtime's env value;
    /// `$${APP_KEY}` (a shell's own expansion) and a URL without a password are not.
    #[test]
    fn secrets_on_a_command_line_are_found() {
        let mut rt = crate::base::config::Config::parse(
            "[runtimes.r]\ncommand = [\"srv\", \"--key\", \"${APP_KEY}\", \"${DATABASE_URL}\", \"--s\", \"${S}\", \"$${DB_PASSWORD}\"]\nenv = { S = \"x${APP_KEY}\" }\n",
            std::path::Path::new("hangar.toml"),
        )
        .unwrap()
        .runtimes
        .remove("r")
        .unwrap();
        assert_eq!(
            secrets_on_command_line(&rt, false),
            vec!["${APP_KEY}", "${S} (from ${APP_KEY})"]
        );
        assert!(secrets_on_command_line(&rt, true).contains(&"${DATABASE_URL}".to_string()));
        let w = secrets_warning("runtimes.r", &secrets_on_command_line(&rt, false)).unwrap();
        assert!(
            w.contains("/proc/PID/cmdline") && w.contains("${APP_KEY}"),
            "{w}"
        );
        rt.command = vec![
            "sh".into(),
            "-c".into(),
            "exec srv --key \"$$APP_KEY\"".into(),
        ];
        assert_eq!(secrets_on_command_line(&rt, true), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_checked_body_must_match_for_a_2xx_to_be_ready() {
        let page = answering("HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n<html>app</html>").await;
        let ok = answering("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        let ok_closed = answering("HTTP/1.1 200 OK\r\n\r\nok\n").await;
        let busy = answering(
            "HTTP/1.1 503 Service Unavailable\r\n\r\n{\"error\":{\"message\":\"load plugin 5/77\"}}",
        )
        .await;
        assert_eq!(probe(page, "/h", None).await, Probe::Ready);
        assert!(
            matches!(probe(page, "/h", Some("ok")).await, Probe::NotYet(b) if b.contains("<html>"))
        );
        assert_eq!(probe(ok, "/h", Some("ok")).await, Probe::Ready);
        assert_eq!(probe(ok_closed, "/h", Some("ok")).await, Probe::Ready);
        assert!(
            matches!(probe(busy, "/h", Some("ok")).await, Probe::NotYet(b) if b.contains("5/77"))
        );
    }
}

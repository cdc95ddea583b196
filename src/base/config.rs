//! `hangar.toml`: ports, data service, runtimes and the main app.
//!
//! Parsed strictly (unknown keys are errors that name the key and list what is accepted),
//! then turned into a [`Config`] with every default filled in. A home with no file runs on
//! the embedded defaults: the `demo` runtime and an enabled main app.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::base::dialect::Dialect;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path} is invalid: {key}: {message}")]
    Value {
        path: PathBuf,
        key: String,
        message: String,
    },
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    proxy_port: Option<u16>,
    api_port: Option<u16>,
    /// `127.0.0.1` (default) or `0.0.0.0` to share the proxy on a LAN.
    proxy_bind: Option<String>,
    /// The range apps get their ports from when none is given: "14000-14999".
    app_ports: Option<String>,
    /// Days automatic backups (before an upgrade or a dropping delete) are kept.
    backup_keep_days: Option<u32>,
    /// The most bytes a restore unpacks from one archive (default 64 GiB).
    restore_max_bytes: Option<u64>,
    /// Seconds a non-browser request for a starting app is held before a 503 (default 60).
    wake_timeout: Option<u64>,
    /// Seconds a client has to send a request's head before the proxy closes (default 30).
    client_header_timeout: Option<u64>,
    /// Seconds a write to a client may make no progress before the proxy closes (default 60).
    client_write_timeout: Option<u64>,
    /// Client connections one IP address may hold open at once (default 256).
    max_connections_per_ip: Option<u32>,
    /// Seconds the proxy waits for an app's response head before a 504 (default 300).
    upstream_timeout: Option<u64>,
    /// Whether visitors of a starting or failed app see its output (default: yes on a loopback
    /// `proxy_bind`, no otherwise).
    show_app_output_to_visitors: Option<bool>,
    data_service: Option<FileDataService>,
    main: Option<FileMain>,
    #[serde(default)]
    runtimes: BTreeMap<String, FileRuntime>,
    /// All log files together (every app's, rotations included) stay under this many bytes:
    /// the oldest rotations go first.
    log_total_max_bytes: Option<u64>,
    /// `auto` (default), `proc` (Linux) or `sysinfo`.
    sampler: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDataService {
    url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMain {
    runtime: Option<String>,
    enabled: Option<bool>,
    port: Option<u16>,
    domain: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
struct FileRuntime {
    /// A recipe shipped with Hangar that fills the other keys (see [`preset`]).
    preset: Option<String>,
    /// Required, unless a preset gives it.
    command: Option<Vec<String>>,
    health: Option<String>,
    prefix: Option<Prefix>,
    upgrade: Option<Vec<String>>,
    version: Option<String>,
    version_command: Option<Vec<String>>,
    cwd: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    start_timeout: Option<u64>,
    stop_timeout: Option<u64>,
    logs: Option<Vec<String>>,
    restart_limit: Option<u32>,
    restart_backoff_max: Option<u64>,
    stable_after: Option<u64>,
    /// An app's log file is rotated before it passes this many bytes.
    log_max_bytes: Option<u64>,
    /// How many rotated files are kept.
    log_keep: Option<u64>,
}

/// How an app wants the `/_app/<name>` prefix: kept in the path it sees, or stripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Prefix {
    Keep,
    Strip,
}

/// How to tell a runtime's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    None,
    Static(String),
    Command(Vec<String>),
}

/// A runtime: how one kind of app is run.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub name: String,
    pub command: Vec<String>,
    pub health: String,
    pub prefix: Prefix,
    pub upgrade: Option<Vec<String>>,
    pub version: Version,
    pub cwd: Option<String>,
    pub env: BTreeMap<String, String>,
    pub start_timeout: Duration,
    pub stop_timeout: Duration,
    pub logs: Vec<String>,
    /// Crashes in a row (each within `stable_after` of its start) before the app is put in `error`.
    pub restart_limit: u32,
    /// The cap of the exponential restart delay.
    pub restart_backoff_max: Duration,
    /// An app up this long has its crash count and restart delay reset.
    pub stable_after: Duration,
    /// Rotation of its apps' log files (`log_max_bytes`, `log_keep`).
    pub log_rotation: Rotation,
}

#[derive(Debug, Clone)]
pub struct MainApp {
    pub enabled: bool,
    pub runtime: String,
    pub port: Option<u16>,
    pub domain: Option<String>,
    pub env: BTreeMap<String, String>,
}

/// The whole configuration, defaults filled in.
#[derive(Debug, Clone)]
pub struct Config {
    pub proxy_port: u16,
    pub api_port: u16,
    pub proxy_bind: std::net::IpAddr,
    pub app_ports: std::ops::RangeInclusive<u16>,
    /// Days automatic backups are kept (`backup_keep_days`, default 7).
    pub backup_keep_days: u32,
    /// The most bytes a restore unpacks from one archive, data folder and dump together
    /// (`restore_max_bytes`): a small archive that would inflate past it is refused.
    pub restore_max_bytes: u64,
    /// How long the proxy holds a non-browser request while its app starts.
    pub wake_timeout: Duration,
    /// How long a client may take to send a request head (slow clients are cut off).
    pub client_header_timeout: Duration,
    /// How long a write to a client may make no progress (a client that stopped reading is cut
    /// off, so it holds neither the app's connection nor its activity).
    pub client_write_timeout: Duration,
    /// Client connections one IP address may hold open; more are closed at once.
    pub max_connections_per_ip: u32,
    /// How long the proxy waits for an app's response head.
    pub upstream_timeout: Duration,
    /// Whether the waiting page, its event stream and a failed start's answer show the app's
    /// log lines and the reason its start failed (which may quote them): visitors then see what
    /// the app printed. `show_app_output_to_visitors`; default: a loopback `proxy_bind`.
    pub show_app_output_to_visitors: bool,
    pub data_service: Option<String>,
    pub main: MainApp,
    pub runtimes: BTreeMap<String, Runtime>,
    /// The cap over all log files (`log_total_max_bytes`).
    pub log_total_max_bytes: u64,
    /// The sampler's probe (`sampler`).
    pub sampler: SamplerKind,
}

pub const DEFAULT_PROXY_PORT: u16 = 13000;
/// `restore_max_bytes` when hangar.toml does not say: 64 GiB.
pub const DEFAULT_RESTORE_MAX_BYTES: u64 = 64 << 30;
pub const DEFAULT_API_PORT: u16 = 13001;
pub const DEMO: &str = "demo";

/// Where `hangar-demo` is: `HANGAR_DEMO_BIN`, else beside the running executable, else `PATH`.
pub fn demo_binary() -> String {
    if let Ok(p) = std::env::var("HANGAR_DEMO_BIN") {
        return p;
    }
    if let Ok(exe) = std::env::current_exe() {
        // Beside us, or one folder up (cargo puts test binaries in target/debug/deps).
        for dir in exe.ancestors().skip(1).take(2) {
            let candidate = dir.join("hangar-demo");
            if candidate.is_file() {
                return candidate.to_string_lossy().into_owned();
            }
        }
    }
    "hangar-demo".to_string()
}

fn demo_runtime() -> FileRuntime {
    let bin = demo_binary();
    FileRuntime {
        preset: None,
        command: Some(vec![
            bin.clone(),
            "serve".into(),
            "--port".into(),
            "${PORT}".into(),
        ]),
        health: Some("/_health".into()),
        prefix: Some(Prefix::Keep),
        upgrade: Some(vec![bin.clone(), "upgrade".into()]),
        version: None,
        version_command: Some(vec![bin, "--version".into()]),
        cwd: None,
        env: BTreeMap::new(),
        start_timeout: None,
        stop_timeout: None,
        logs: None,
        restart_limit: None,
        restart_backoff_max: None,
        stable_after: None,
        log_max_bytes: None,
        log_keep: None,
    }
}

/// The presets shipped with Hangar, in the order a refusal lists them.
pub const PRESETS: &[&str] = &["nocobase"];

/// Hangar's launcher of one NocoBase instance as one process, run with `node -e`.
const NOCOBASE_LAUNCHER: &str = include_str!("../../presets/nocobase-launch.js");

/// A preset's keys: a named recipe for one kind of real app (docs/contracts.md, "Presets").
fn preset(name: &str) -> Option<FileRuntime> {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match name {
        // NocoBase (from create-nocobase-app) in the folder `cwd`: one node process per instance,
        // installed on its first start into its empty database or schema (`--quickstart`, which
        // upgrades an installed one), with its own storage, public path, index.html and
        // browser-storage prefix; probed on its prefixed health path.
        "nocobase" => Some(FileRuntime {
            command: Some(strings(&[
                "node",
                "--preserve-symlinks",
                "-e",
                NOCOBASE_LAUNCHER,
                "start",
                "--quickstart",
            ])),
            health: Some("/api/__health_check".into()),
            prefix: Some(Prefix::Keep),
            version_command: Some(strings(&[
                "node",
                "-p",
                "require('@nocobase/app/package.json').version",
            ])),
            env: [
                ("STORAGE_PATH", "${HANGAR_DATA_DIR}/storage"),
                ("APP_PUBLIC_PATH", "${HANGAR_BASE_PATH}/"),
                ("API_CLIENT_STORAGE_PREFIX", "NOCOBASE_${HANGAR_APP}_"),
                ("APP_HOST", "127.0.0.1"),
                ("APP_ENV", "production"),
                ("LOGGER_TRANSPORT", "console"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            // Installing into an empty database takes 10-70 s on a busy machine.
            start_timeout: Some(300),
            // SIGTERM ends it in about 2 s, but not while a WebSocket client is connected.
            stop_timeout: Some(5),
            ..FileRuntime::default()
        }),
        _ => None,
    }
}

/// The runtime the operator wrote, on top of its preset: every key written wins, `env` key by key.
fn with_preset(rt: FileRuntime, base: FileRuntime) -> FileRuntime {
    let mut env = base.env;
    env.extend(rt.env);
    FileRuntime {
        preset: rt.preset,
        command: rt.command.or(base.command),
        health: rt.health.or(base.health),
        prefix: rt.prefix.or(base.prefix),
        upgrade: rt.upgrade.or(base.upgrade),
        // `version` and `version_command` are one choice: the operator's, if either is written.
        version: rt.version.clone().or(if rt.version_command.is_some() {
            None
        } else {
            base.version
        }),
        version_command: rt.version_command.or(if rt.version.is_some() {
            None
        } else {
            base.version_command
        }),
        cwd: rt.cwd.or(base.cwd),
        env,
        start_timeout: rt.start_timeout.or(base.start_timeout),
        stop_timeout: rt.stop_timeout.or(base.stop_timeout),
        logs: rt.logs.or(base.logs),
        restart_limit: rt.restart_limit.or(base.restart_limit),
        restart_backoff_max: rt.restart_backoff_max.or(base.restart_backoff_max),
        stable_after: rt.stable_after.or(base.stable_after),
        log_max_bytes: rt.log_max_bytes.or(base.log_max_bytes),
        log_keep: rt.log_keep.or(base.log_keep),
    }
}

impl Config {
    /// Load `hangar.toml` from `path`; a missing file gives the embedded defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        let value_err = |key: String, message: String| ConfigError::Value {
            path: path.to_path_buf(),
            key,
            message,
        };

        let proxy_port = file.proxy_port.unwrap_or(DEFAULT_PROXY_PORT);
        let api_port = file.api_port.unwrap_or(DEFAULT_API_PORT);
        for (key, p) in [("proxy_port", proxy_port), ("api_port", api_port)] {
            if p == 0 {
                return Err(value_err(
                    key.into(),
                    "0 is not a port; a number from 1 to 65535 is accepted".into(),
                ));
            }
        }
        if proxy_port == api_port {
            return Err(value_err(
                "api_port".into(),
                format!("{api_port} is also the proxy_port; the two must differ"),
            ));
        }
        let proxy_bind = match file.proxy_bind.as_deref() {
            None => std::net::IpAddr::from([127, 0, 0, 1]),
            Some(s) => s.parse().map_err(|_| {
                value_err("proxy_bind".into(), format!("{s:?} is not an IP address; accepted: \"127.0.0.1\" (default) or \"0.0.0.0\" to share on a LAN"))
            })?,
        };
        let app_ports = match file.app_ports.as_deref() {
            None => 14000..=14999,
            Some(r) => {
                let parsed = r.split_once('-').and_then(|(a, b)| {
                    Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
                });
                match parsed {
                    Some((a, b)) if a >= 1024 && a <= b => a..=b,
                    _ => {
                        return Err(value_err(
                            "app_ports".into(),
                            format!("{r:?} is not a range; accepted: \"FIRST-LAST\" with 1024 <= FIRST <= LAST <= 65535, such as \"14000-14999\""),
                        ))
                    }
                }
            }
        };
        let backup_keep_days = match file.backup_keep_days {
            None => 7,
            Some(d) if (1..=3650).contains(&d) => d,
            Some(d) => {
                return Err(value_err(
                    "backup_keep_days".into(),
                    format!(
                    "{d} is not accepted; accepted: a number of days from 1 to 3650 (default 7)"
                ),
                ))
            }
        };
        let restore_max_bytes = match file.restore_max_bytes.unwrap_or(DEFAULT_RESTORE_MAX_BYTES) {
            n if ((1 << 20)..=(1 << 50)).contains(&n) => n,
            n => {
                return Err(value_err(
                    "restore_max_bytes".into(),
                    format!("{n} is not accepted; a number of bytes from 1048576 (1 MiB) to 2^50 (default {DEFAULT_RESTORE_MAX_BYTES}, 64 GiB)"),
                ))
            }
        };
        let top_secs = |v: Option<u64>, default: u64, k: &str| match v.unwrap_or(default) {
            s @ 1..=86_400 => Ok(Duration::from_secs(s)),
            s => Err(value_err(
                k.into(),
                format!("{s} is not accepted; a number of seconds from 1 to 86400"),
            )),
        };
        let wake_timeout = top_secs(file.wake_timeout, 60, "wake_timeout")?;
        let client_header_timeout =
            top_secs(file.client_header_timeout, 30, "client_header_timeout")?;
        let upstream_timeout = top_secs(file.upstream_timeout, 300, "upstream_timeout")?;
        let client_write_timeout = top_secs(file.client_write_timeout, 60, "client_write_timeout")?;
        let max_connections_per_ip = match file.max_connections_per_ip.unwrap_or(256) {
            n @ 1..=1_000_000 => n,
            n => {
                return Err(value_err(
                    "max_connections_per_ip".into(),
                    format!(
                    "{n} is not accepted; a number of connections from 1 to 1000000 (default 256)"
                ),
                ))
            }
        };
        let show_app_output_to_visitors = file
            .show_app_output_to_visitors
            .unwrap_or(proxy_bind.is_loopback());
        let data_service = match file.data_service {
            None => None,
            Some(ds) => {
                let scheme = ds.url.split_once("://").map(|(s, _)| s).unwrap_or("");
                if !matches!(
                    Dialect::named(scheme),
                    Some(Dialect::Postgres | Dialect::Mysql)
                ) {
                    return Err(value_err(
                        "data_service.url".into(),
                        "accepted: a postgres://user:password@host:port/database or mysql://user:password@host:port/database URL".into(),
                    ));
                }
                Some(ds.url)
            }
        };

        let mut files = file.runtimes;
        files.entry(DEMO.to_string()).or_insert_with(demo_runtime);
        let mut runtimes = BTreeMap::new();
        for (name, rt) in files {
            let key = |k: &str| format!("runtimes.{name}.{k}");
            let rt = match rt.preset.as_deref() {
                None => rt,
                Some(p) => match preset(p) {
                    Some(base) => with_preset(rt, base),
                    None => {
                        return Err(value_err(
                            key("preset"),
                            format!("no preset {p:?}; accepted: {}", PRESETS.join(", ")),
                        ))
                    }
                },
            };
            if rt.preset.as_deref() == Some("nocobase") && rt.cwd.is_none() {
                return Err(value_err(
                    key("cwd"),
                    "the nocobase preset needs cwd = the NocoBase app folder (the one scripts/install-nocobase.sh prints)".into(),
                ));
            }
            let command = match rt.command {
                Some(c) if c.first().is_some_and(|p| !p.is_empty()) => c,
                _ => {
                    return Err(value_err(
                        key("command"),
                        format!(
                            "must name a program: command = [\"program\", \"arg\", …], or preset = one of {}",
                            PRESETS.join(", ")
                        ),
                    ))
                }
            };
            let health = rt.health.unwrap_or_else(|| "/_health".into());
            if !health.starts_with('/') {
                return Err(value_err(
                    key("health"),
                    format!("{health:?} must be a path starting with '/'"),
                ));
            }
            let version = match (rt.version, rt.version_command) {
                (Some(_), Some(_)) => {
                    return Err(value_err(
                        key("version"),
                        "give either version or version_command, not both".into(),
                    ))
                }
                (Some(v), None) => Version::Static(v),
                (None, Some(c)) if c.is_empty() => {
                    return Err(value_err(
                        key("version_command"),
                        "must name a program".into(),
                    ))
                }
                (None, Some(c)) => Version::Command(c),
                (None, None) => Version::None,
            };
            if let Some(u) = &rt.upgrade {
                if u.is_empty() {
                    return Err(value_err(
                        key("upgrade"),
                        "must name a program, or be left out".into(),
                    ));
                }
            }
            for (k, v) in &rt.env {
                crate::base::validate::env_entry(k, v)
                    .map_err(|e| value_err(key("env"), e.message))?;
            }
            let secs = |v: Option<u64>, default: u64, k: &str| -> Result<Duration, ConfigError> {
                match v.unwrap_or(default) {
                    0 => Err(value_err(key(k), "must be at least 1 second".into())),
                    s if s > 86_400 => {
                        Err(value_err(key(k), "must be at most 86400 seconds".into()))
                    }
                    s => Ok(Duration::from_secs(s)),
                }
            };
            let restart_limit = rt.restart_limit.unwrap_or(5);
            if restart_limit == 0 || restart_limit > 1000 {
                return Err(value_err(
                    key("restart_limit"),
                    "must be from 1 to 1000".into(),
                ));
            }
            let log_max_bytes = rt.log_max_bytes.unwrap_or(10 * 1024 * 1024);
            if !(4096..=(1u64 << 40)).contains(&log_max_bytes) {
                return Err(value_err(
                    key("log_max_bytes"),
                    "must be from 4096 bytes to 1 TiB (default 10485760, 10 MiB)".into(),
                ));
            }
            let log_keep = rt.log_keep.unwrap_or(5);
            if !(1..=1000).contains(&log_keep) {
                return Err(value_err(
                    key("log_keep"),
                    "must be from 1 to 1000 rotated files (default 5)".into(),
                ));
            }
            runtimes.insert(
                name.clone(),
                Runtime {
                    name: name.clone(),
                    command,
                    health,
                    prefix: rt.prefix.unwrap_or(Prefix::Keep),
                    upgrade: rt.upgrade,
                    version,
                    cwd: rt.cwd,
                    env: rt.env,
                    start_timeout: secs(rt.start_timeout, 60, "start_timeout")?,
                    stop_timeout: secs(rt.stop_timeout, 10, "stop_timeout")?,
                    logs: rt.logs.unwrap_or_default(),
                    restart_limit,
                    restart_backoff_max: secs(rt.restart_backoff_max, 30, "restart_backoff_max")?,
                    stable_after: secs(rt.stable_after, 30, "stable_after")?,
                    log_rotation: Rotation {
                        max_bytes: log_max_bytes,
                        keep: log_keep as usize,
                    },
                },
            );
        }

        let fm = file.main.unwrap_or(FileMain {
            runtime: None,
            enabled: None,
            port: None,
            domain: None,
            env: BTreeMap::new(),
        });
        let main_runtime = fm.runtime.unwrap_or_else(|| DEMO.to_string());
        if !runtimes.contains_key(&main_runtime) {
            return Err(value_err(
                "main.runtime".into(),
                format!(
                    "no runtime {main_runtime:?}; accepted: {}",
                    runtimes.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        if let Some(p) = fm.port {
            // The main app's port follows the same rule as every app's (not the proxy's own).
            crate::base::validate::port(i64::from(p), &[proxy_port, api_port])
                .map_err(|e| value_err("main.port".into(), e.message))?;
        }
        if let Some(d) = &fm.domain {
            crate::base::validate::domain(d)
                .map_err(|e| value_err("main.domain".into(), e.message))?;
        }
        for (k, v) in &fm.env {
            crate::base::validate::env_entry(k, v)
                .map_err(|e| value_err("main.env".into(), e.message))?;
        }
        let log_total_max_bytes = file.log_total_max_bytes.unwrap_or(2 << 30);
        if log_total_max_bytes < 1 << 20 {
            return Err(value_err(
                "log_total_max_bytes".into(),
                "must be at least 1048576 (1 MiB); the default is 2147483648 (2 GiB)".into(),
            ));
        }
        let sampler = match file.sampler.as_deref() {
            None | Some("auto") => SamplerKind::auto(),
            Some(s) => s.parse().map_err(|m| value_err("sampler".into(), m))?,
        };
        Ok(Config {
            log_total_max_bytes,
            sampler,
            proxy_port,
            api_port,
            proxy_bind,
            app_ports,
            backup_keep_days,
            restore_max_bytes,
            wake_timeout,
            client_header_timeout,
            client_write_timeout,
            max_connections_per_ip,
            upstream_timeout,
            show_app_output_to_visitors,
            data_service,
            main: MainApp {
                enabled: fm.enabled.unwrap_or(true),
                runtime: main_runtime,
                port: fm.port,
                domain: fm.domain,
                env: fm.env,
            },
            runtimes,
        })
    }

    pub fn runtime(&self, name: &str) -> Option<&Runtime> {
        self.runtimes.get(name)
    }
}

/// Expand `${VAR}` in `s` from `vars`. An unknown variable or an unclosed `${` is an error
/// naming it; `$$` is a literal `$`.
pub fn expand(s: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
            let var = &body[..end];
            let value = vars(var).ok_or_else(|| format!("unknown variable ${{{var}}} in {s:?}"))?;
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// How an app's log files rotate: at `max_bytes`, keeping `keep` old files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_bytes: u64,
    pub keep: usize,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_bytes: 10 * 1024 * 1024,
            keep: 5,
        }
    }
}

/// Which probe reads the figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerKind {
    /// `/proc/<pid>/stat` read directly (Linux only).
    Proc,
    /// The `sysinfo` crate (every platform it supports).
    Sysinfo,
}

impl SamplerKind {
    /// The platform's best: `/proc` on Linux, `sysinfo` elsewhere; `HANGAR_SAMPLER` overrides.
    pub fn auto() -> SamplerKind {
        if let Some(k) = std::env::var("HANGAR_SAMPLER")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            return k;
        }
        if cfg!(target_os = "linux") {
            SamplerKind::Proc
        } else {
            SamplerKind::Sysinfo
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SamplerKind::Proc => "proc",
            SamplerKind::Sysinfo => "sysinfo",
        }
    }
}

impl std::str::FromStr for SamplerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "proc" => Ok(SamplerKind::Proc),
            "sysinfo" => Ok(SamplerKind::Sysinfo),
            other => Err(format!(
                "{other:?} is not a sampler; accepted: \"auto\", \"proc\" (Linux) or \"sysinfo\""
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("hangar.toml"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.proxy_port, 13000);
        assert_eq!(c.api_port, 13001);
        assert!(c.main.enabled);
        assert_eq!(c.main.runtime, "demo");
        let demo = c.runtime("demo").unwrap();
        assert_eq!(demo.health, "/_health");
        assert_eq!(demo.prefix, Prefix::Keep);
        assert_eq!(demo.stop_timeout, Duration::from_secs(10));
    }

    #[test]
    fn full_file() {
        let c = parse(
            r#"
proxy_port = 8000
api_port = 8001
[data_service]
url = "postgres://u:p@127.0.0.1:5432/postgres"
[main]
runtime = "x"
[runtimes.x]
command = ["prog", "serve", "--port", "${PORT}"]
health = "/health"
prefix = "strip"
upgrade = ["prog", "upgrade"]
version = "1.2.0"
cwd = "${HANGAR_DATA_DIR}"
env = { A = "${HANGAR_BASE_PATH}/" }
start_timeout = 5
stop_timeout = 2
logs = ["storage/logs/**/*.log"]
"#,
        )
        .unwrap();
        assert_eq!(c.proxy_port, 8000);
        assert_eq!(
            c.data_service.as_deref(),
            Some("postgres://u:p@127.0.0.1:5432/postgres")
        );
        let x = c.runtime("x").unwrap();
        assert_eq!(x.prefix, Prefix::Strip);
        assert_eq!(x.version, Version::Static("1.2.0".into()));
        assert_eq!(x.logs.len(), 1);
        assert!(c.runtime("demo").is_some(), "demo always exists");
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse("proxy_prot = 1").unwrap_err().to_string();
        assert!(e.contains("proxy_prot") && e.contains("proxy_port"), "{e}");
        let e = parse("[runtimes.x]\ncommand = []").unwrap_err().to_string();
        assert!(e.contains("runtimes.x.command"), "{e}");
        let e = parse("[runtimes.x]\ncommand = [\"a\"]\nprefix = \"drop\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("keep") && e.contains("strip"), "{e}");
        let e = parse("[main]\nruntime = \"nope\"").unwrap_err().to_string();
        assert!(e.contains("main.runtime") && e.contains("demo"), "{e}");
        let e = parse("[data_service]\nurl = \"redis://x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("data_service.url"), "{e}");
        let e = parse("wake_timeout = 0").unwrap_err().to_string();
        assert!(e.contains("wake_timeout") && e.contains("86400"), "{e}");
        let c = parse("upstream_timeout = 7\nproxy_bind = \"0.0.0.0\"").unwrap();
        assert_eq!(c.upstream_timeout, Duration::from_secs(7));
        assert_eq!(c.wake_timeout, Duration::from_secs(60));
        assert!(c.proxy_bind.is_unspecified());
        let e = parse("proxy_bind = \"everywhere\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("proxy_bind") && e.contains("0.0.0.0"), "{e}");
        let c = parse("").unwrap();
        assert_eq!(c.client_write_timeout, Duration::from_secs(60));
        assert_eq!(c.max_connections_per_ip, 256);
        let c = parse("client_write_timeout = 5\nmax_connections_per_ip = 9").unwrap();
        assert_eq!(c.client_write_timeout, Duration::from_secs(5));
        assert_eq!(c.max_connections_per_ip, 9);
        let e = parse("max_connections_per_ip = 0").unwrap_err().to_string();
        assert!(
            e.contains("max_connections_per_ip") && e.contains("256"),
            "{e}"
        );
        let e = parse("client_write_timeout = 0").unwrap_err().to_string();
        assert!(e.contains("client_write_timeout"), "{e}");
        assert_eq!(c.restore_max_bytes, 64 << 30);
        assert_eq!(
            parse("restore_max_bytes = 1048576")
                .unwrap()
                .restore_max_bytes,
            1 << 20
        );
        let e = parse("restore_max_bytes = 5").unwrap_err().to_string();
        assert!(
            e.contains("restore_max_bytes") && e.contains("1 MiB"),
            "{e}"
        );
        let e = parse("proxy_port = 5\napi_port = 5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("api_port"), "{e}");
    }

    #[test]
    fn a_preset_fills_the_runtime_and_every_written_key_wins() {
        let c = parse(
            r#"
[runtimes.nb]
preset = "nocobase"
cwd = "/srv/nocobase"
stop_timeout = 7
env = { APP_ENV = "development", TZ = "UTC" }
"#,
        )
        .unwrap();
        let nb = c.runtime("nb").unwrap();
        assert_eq!(nb.command[0], "node");
        assert_eq!(nb.command[2], "-e");
        assert_eq!(nb.command[4..], ["start", "--quickstart"]);
        assert_eq!(nb.health, "/api/__health_check");
        assert_eq!(nb.prefix, Prefix::Keep);
        assert_eq!(nb.cwd.as_deref(), Some("/srv/nocobase"));
        assert_eq!(nb.stop_timeout, Duration::from_secs(7), "written");
        assert_eq!(nb.start_timeout, Duration::from_secs(300), "preset");
        assert_eq!(nb.env["APP_ENV"], "development", "written");
        assert_eq!(nb.env["TZ"], "UTC", "added");
        assert_eq!(
            nb.env["STORAGE_PATH"], "${HANGAR_DATA_DIR}/storage",
            "preset"
        );
        assert!(matches!(nb.version, Version::Command(_)));
        // A written `version` replaces the preset's `version_command`, not a clash with it.
        let c =
            parse("[runtimes.nb]\npreset = \"nocobase\"\ncwd = \"/x\"\nversion = \"2\"").unwrap();
        assert_eq!(
            c.runtime("nb").unwrap().version,
            Version::Static("2".into())
        );
    }

    #[test]
    fn presets_are_refused_by_name_or_without_what_they_need() {
        let e = parse("[runtimes.x]\npreset = \"wordpress\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("runtimes.x.preset") && e.contains("nocobase"),
            "{e}"
        );
        let e = parse("[runtimes.x]\npreset = \"nocobase\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("runtimes.x.cwd") && e.contains("app folder"),
            "{e}"
        );
        let e = parse("[runtimes.x]\ncwd = \"/x\"").unwrap_err().to_string();
        assert!(
            e.contains("runtimes.x.command") && e.contains("preset"),
            "{e}"
        );
    }

    #[test]
    fn the_nocobase_launcher_passes_expansion_unchanged() {
        // The launcher is a `command` word, so `${…}` in it would be read as a variable.
        let nb = preset("nocobase").unwrap();
        for word in nb.command.unwrap() {
            assert_eq!(expand(&word, &|_| None).as_deref(), Ok(word.as_str()));
        }
    }

    #[test]
    fn app_output_is_shown_to_visitors_only_on_loopback_unless_told() {
        assert!(parse("").unwrap().show_app_output_to_visitors);
        assert!(
            parse("proxy_bind = \"::1\"")
                .unwrap()
                .show_app_output_to_visitors
        );
        assert!(
            !parse("proxy_bind = \"0.0.0.0\"")
                .unwrap()
                .show_app_output_to_visitors
        );
        assert!(
            !parse("proxy_bind = \"192.168.1.5\"")
                .unwrap()
                .show_app_output_to_visitors
        );
        let c = parse("proxy_bind = \"0.0.0.0\"\nshow_app_output_to_visitors = true").unwrap();
        assert!(c.show_app_output_to_visitors);
        let c = parse("show_app_output_to_visitors = false").unwrap();
        assert!(!c.show_app_output_to_visitors);
        let e = parse("show_app_output_to_visitors = \"yes\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("show_app_output_to_visitors"), "{e}");
    }

    #[test]
    fn the_main_port_follows_the_port_rule() {
        // Found writing the `config` fuzz target's invariants: these were accepted and written into
        // the registry, so the main app was started on the proxy's own port (or on no port).
        for bad in ["0", "80", "13000", "13001"] {
            let e = parse(&format!("[main]\nport = {bad}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("main.port") && e.contains("1024"), "{bad}: {e}");
        }
        let c = parse("proxy_port = 8000\n[main]\nport = 13000").unwrap();
        assert_eq!(c.main.port, Some(13000));
    }

    #[test]
    fn expansion() {
        let vars = |k: &str| (k == "PORT").then(|| "14000".to_string());
        assert_eq!(expand("--port=${PORT}", &vars).unwrap(), "--port=14000");
        assert_eq!(expand("$$HOME $x", &vars).unwrap(), "$HOME $x");
        assert!(expand("${NOPE}", &vars).unwrap_err().contains("NOPE"));
        assert!(expand("${PORT", &vars).unwrap_err().contains("unclosed"));
    }
}

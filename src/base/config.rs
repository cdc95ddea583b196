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
    /// The range apps get their ports from when none is given: "14000-16999".
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
    /// The memory all running apps together may hold: a size or a share of RAM (`"60%"`).
    memory_budget: Option<crate::base::validate::SizeInput>,
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
    /// The health path's 2xx answer counts only with this body (trimmed).
    health_body: Option<String>,
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
    /// Run its apps under Landlock (default `true`; Linux).
    confine: Option<bool>,
    /// Folders outside the home its confined apps may write, besides their own.
    writable: Option<Vec<String>>,
    /// The default memory limit of its apps: a size (`"600M"`) or bytes.
    memory_max: Option<crate::base::validate::SizeInput>,
    /// The default CPU priority (nice, -20..19) of its apps.
    nice: Option<i64>,
    /// Env values a preset makes for each new app that does not give them itself (not a key of
    /// the file): see [`Runtime::generated`].
    #[serde(skip)]
    generated: Vec<(String, Generated)>,
}

/// A value Hangar makes for a new app, once, when the app's own env does not give it: kept with
/// the app as a secret (given to its process, never shown again) and told to the operator by the
/// create's answer. NocoBase's first admin is made from two of them at its first start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generated {
    /// An e-mail address of the app's own: `admin-<name>@example.com`.
    AdminEmail,
    /// 20 random hex characters (80 bits).
    Password,
}

impl Generated {
    /// The value for the app `app`.
    pub fn make(self, app: &str) -> String {
        match self {
            Generated::AdminEmail => format!("admin-{app}@example.com"),
            Generated::Password => crate::base::secret::random_hex(10),
        }
    }
}

/// How an app wants the `/_app/<name>` prefix: kept in the path it sees, or stripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Prefix {
    Keep,
    Strip,
}

impl Prefix {
    /// Its spelling in `hangar.toml`, an apps file and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Prefix::Keep => "keep",
            Prefix::Strip => "strip",
        }
    }
}

/// How to tell a runtime's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    None,
    Static(String),
    Command(Vec<String>),
}

/// A runtime: how one kind of app is run.
#[derive(Debug, Clone, PartialEq)]
pub struct Runtime {
    pub name: String,
    /// The preset it is built on (`preset = "…"`), if any: `import nocobase` looks for one on
    /// `nocobase`.
    pub preset: Option<String>,
    /// Empty for a runtime whose apps each give their own program (`preset = "command"`).
    pub command: Vec<String>,
    pub health: String,
    /// When set, the health path is ready only when its 2xx answer's body, trimmed, is this
    /// (`health_body`): a prefixed app may answer another path of its own with 200 first.
    pub health_body: Option<String>,
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
    /// Its apps run confined by Landlock (`confine`, default `true`): see `run::confine`.
    pub confine: bool,
    /// Folders outside the home its confined apps may write besides their own (`writable`):
    /// absolute, checked when `hangar.toml` is read.
    pub writable: Vec<PathBuf>,
    /// The memory limit of an app that has none of its own (bytes).
    pub memory_max: Option<u64>,
    /// The nice value of an app that has none of its own.
    pub nice: Option<i32>,
    /// Env values made for each new app on it that does not give them (a preset's, e.g.
    /// NocoBase's first admin: `INIT_ROOT_EMAIL`, `INIT_ROOT_PASSWORD`).
    pub generated: Vec<(String, Generated)>,
}

/// An app's own program (`hangar create NAME -- PROGRAM [ARGS…]`), kept with the app: it
/// replaces its runtime's `command`, and its `prefix` and `health`, when given, the runtime's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppCommand {
    /// The program and its arguments; `${VAR}` as in a runtime's `command`.
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<Prefix>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
}

impl AppCommand {
    /// The rules of an app's own program, checked at create and edit: a program, a health path
    /// starting with `/`, templates naming known variables (`known`: the engine's, the runtime's
    /// env and the app's own).
    pub fn check(
        &self,
        known: &dyn Fn(&str) -> bool,
    ) -> Result<(), crate::base::validate::Invalid> {
        use crate::base::validate::Invalid;
        if self.argv.first().is_none_or(|p| p.is_empty()) {
            return Err(Invalid::new(
                "command",
                "must name a program: `hangar create NAME -- PROGRAM [ARGS…]`",
            ));
        }
        if self.argv.len() > 1000
            || self
                .argv
                .iter()
                .any(|a| a.contains('\0') || a.len() > 32 * 1024)
        {
            return Err(Invalid::new(
                "command",
                "accepted: up to 1000 words of up to 32 KiB each, without NUL bytes",
            ));
        }
        for w in &self.argv {
            check_template(w, known).map_err(|why| Invalid::new("command", why))?;
        }
        if let Some(h) = &self.health {
            if !h.starts_with('/') || h.chars().any(|c| c.is_control() || c == ' ') {
                return Err(Invalid::new(
                    "health",
                    format!("{h:?} is not accepted; a path starting with '/', without spaces"),
                ));
            }
        }
        Ok(())
    }

    /// [`AppCommand::check`] for one app: its templates may name the engine's variables, its
    /// runtime's `env` keys (`runtime_env`) and its own env keys (`app_env`). Create, edit and
    /// `apply`'s plan check an app's program through this.
    pub fn check_for_app(
        &self,
        runtime_env: Option<&BTreeMap<String, String>>,
        app_env: &BTreeMap<String, String>,
    ) -> Result<(), crate::base::validate::Invalid> {
        let engine_env = engine_vars();
        self.check(&|v| {
            engine_env.contains(v)
                || app_env.contains_key(v)
                || runtime_env.is_some_and(|e| e.contains_key(v))
        })
    }
}

impl Runtime {
    /// Whether its apps each give their own program (`preset = "command"`).
    pub fn per_app(&self) -> bool {
        self.command.is_empty()
    }

    /// The runtime as one app runs it: the app's own program, prefix and health over its own.
    pub fn for_app(&self, own: Option<&AppCommand>) -> Runtime {
        let mut rt = self.clone();
        if let Some(c) = own {
            rt.command = c.argv.clone();
            if let Some(p) = c.prefix {
                rt.prefix = p;
            }
            if let Some(h) = &c.health {
                rt.health = h.clone();
            }
        }
        rt
    }
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
    /// What all running apps together may hold (`memory_budget`); `None`: no budget.
    pub memory_budget: Option<MemoryBudget>,
}

/// The memory budget of the whole machine: a size, or a share of its RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryBudget {
    Bytes(u64),
    /// Percent of the machine's RAM (1..=100).
    Percent(u8),
}

impl MemoryBudget {
    /// `"4G"`, bytes, or `"60%"`; `0` or `"0%"`: no budget.
    fn parse(v: &crate::base::validate::SizeInput) -> Result<Option<MemoryBudget>, String> {
        use crate::base::validate::SizeInput;
        let accepted = "accepted: a size such as \"4G\" (1024-based K, M, G, T, or bytes) of at least 64M, or a share of RAM from \"1%\" to \"100%\"; 0 or absent: no budget";
        let bytes = match v {
            SizeInput::Text(t) if t.trim().ends_with('%') => {
                let n = t.trim().trim_end_matches('%').trim();
                return match n.parse::<u8>() {
                    Ok(0) => Ok(None),
                    Ok(p @ 1..=100) => Ok(Some(MemoryBudget::Percent(p))),
                    _ => Err(format!("{t:?} is not accepted; {accepted}")),
                };
            }
            SizeInput::Text(t) => crate::base::validate::size("memory_budget", t)
                .map_err(|_| format!("{t:?} is not accepted; {accepted}"))?,
            SizeInput::Bytes(b) => *b,
        };
        match bytes {
            0 => Ok(None),
            b if b < 64 << 20 => Err(format!("{b} bytes is below 64M; {accepted}")),
            b => Ok(Some(MemoryBudget::Bytes(b))),
        }
    }

    /// The budget in bytes on a machine of `total` bytes of RAM.
    pub fn bytes(self, total: u64) -> u64 {
        match self {
            MemoryBudget::Bytes(b) => b,
            MemoryBudget::Percent(p) => total / 100 * u64::from(p),
        }
    }

    /// As written: `4.0 GiB` or `60% of RAM`.
    pub fn describe(self) -> String {
        match self {
            MemoryBudget::Bytes(b) => format!("{b} bytes"),
            MemoryBudget::Percent(p) => format!("{p}% of RAM"),
        }
    }
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
        health_body: None,
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
        confine: None,
        writable: None,
        memory_max: None,
        nice: None,
        generated: Vec::new(),
    }
}

/// The presets shipped with Hangar, in the order a refusal lists them.
pub const PRESETS: &[&str] = &["nocobase", "command", "datasette", "node-red"];

/// The runtime of apps made with `hangar create NAME -- PROGRAM [ARGS…]`: it exists without being
/// written down (`preset = "command"`), and a `[runtimes.command]` table replaces it.
pub const COMMAND: &str = "command";

/// Hangar's launcher of one NocoBase instance as one process, run with `node -e`.
const NOCOBASE_LAUNCHER: &str = include_str!("../../presets/nocobase-launch.js");

/// A preset's keys: a named recipe for one kind of real app (docs/contracts.md, "Presets").
fn preset(name: &str) -> Option<FileRuntime> {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match name {
        // NocoBase (from create-nocobase-app) in the folder `cwd`: one node process per instance,
        // installed on its first start into its empty database or schema, upgraded when its
        // version moved, with its own storage, public path, index.html and browser-storage
        // prefix; probed on its prefixed health path, whose body must be `ok`.
        "nocobase" => {
            let launcher = |verb: &str| {
                strings(&["node", "--preserve-symlinks", "-e", NOCOBASE_LAUNCHER, verb])
            };
            Some(FileRuntime {
                // The launcher installs on the first start only (into an empty database or
                // schema); later starts are plain starts.
                command: Some(launcher("start")),
                health: Some("/api/__health_check".into()),
                // A prefixed NocoBase answers other paths with its page and 200.
                health_body: Some("ok".into()),
                prefix: Some(Prefix::Keep),
                // Run before a start when `@nocobase/app`'s version moved (after a backup).
                upgrade: Some(launcher("upgrade")),
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
                // Installing into an empty database takes 11-13 s on an idle machine, and
                // 2-3 min on a loaded 2-core one (measured here).
                start_timeout: Some(600),
                // SIGTERM ends it in about 2 s, but not while a WebSocket client is connected.
                stop_timeout: Some(5),
                // The first admin: never NocoBase's public default.
                generated: vec![
                    ("INIT_ROOT_EMAIL".into(), Generated::AdminEmail),
                    ("INIT_ROOT_PASSWORD".into(), Generated::Password),
                ],
                ..FileRuntime::default()
            })
        }
        // Datasette (PyPI; `datasette` on the runtime's env.PATH or the engine's): one SQLite
        // file in the app's data folder, made on the first start; links under the prefix
        // (`base_url`) while the app sees paths without it; signed cookies that survive a
        // restart (its secret is the app's APP_KEY, given in the environment, never on argv).
        "datasette" => Some(FileRuntime {
            command: Some(strings(&[
                "datasette",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "${PORT}",
                "--setting",
                "base_url",
                "${HANGAR_BASE_PATH}/",
                "--create",
                "${HANGAR_DATA_DIR}/data.db",
            ])),
            health: Some("/-/versions.json".into()),
            prefix: Some(Prefix::Strip),
            version_command: Some(strings(&["datasette", "--version"])),
            env: [("DATASETTE_SECRET", "${APP_KEY}")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..FileRuntime::default()
        }),
        // Node-RED (npm; `node-red` on the runtime's env.PATH or the engine's): its editor and
        // admin API (with the editor's `comms` WebSocket) and its HTTP-in nodes under the app's
        // prefix, which it keeps; flows and settings in the app's data folder; listening on
        // loopback only.
        "node-red" => Some(FileRuntime {
            command: Some(strings(&[
                "node-red",
                "--port",
                "${PORT}",
                "--userDir",
                "${HANGAR_DATA_DIR}",
                "--define",
                "uiHost=127.0.0.1",
                "--define",
                "httpAdminRoot=${HANGAR_BASE_PATH}/",
                "--define",
                "httpNodeRoot=${HANGAR_BASE_PATH}/",
                "--no-telemetry",
            ])),
            health: Some("/".into()),
            prefix: Some(Prefix::Keep),
            ..FileRuntime::default()
        }),
        // Any program: each app gives its own (`hangar create NAME -- PROGRAM [ARGS…]`, stored
        // with the app), so the runtime has no `command`. Most programs serve at `/`: the prefix
        // is stripped and `/` is the health path, unless the app or the runtime says otherwise.
        "command" => Some(FileRuntime {
            health: Some("/".into()),
            prefix: Some(Prefix::Strip),
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
        health_body: rt.health_body.or(base.health_body),
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
        confine: rt.confine.or(base.confine),
        writable: rt.writable.or(base.writable),
        memory_max: rt.memory_max.or(base.memory_max),
        nice: rt.nice.or(base.nice),
        generated: base.generated,
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
            None => 14000..=16999,
            Some(r) => {
                let parsed = r.split_once('-').and_then(|(a, b)| {
                    Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
                });
                match parsed {
                    Some((a, b)) if a >= 1024 && a <= b => a..=b,
                    _ => {
                        return Err(value_err(
                            "app_ports".into(),
                            format!("{r:?} is not a range; accepted: \"FIRST-LAST\" with 1024 <= FIRST <= LAST <= 65535, such as \"14000-16999\""),
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
        files
            .entry(COMMAND.to_string())
            .or_insert_with(|| FileRuntime {
                preset: Some(COMMAND.to_string()),
                ..FileRuntime::default()
            });
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
            let mut rt = rt;
            if rt.preset.as_deref() == Some("nocobase") {
                let Some(cwd) = rt.cwd.clone() else {
                    return Err(value_err(
                        key("cwd"),
                        "the nocobase preset needs cwd = the NocoBase app folder (the one scripts/install-nocobase.sh prints)".into(),
                    ));
                };
                // Node 22 where scripts/install-nocobase.sh puts it (`bin/` beside the app
                // folder) comes first, unless the runtime's env sets PATH itself.
                let bin = Path::new(&cwd).parent().map(|r| r.join("bin"));
                if let Some(bin) = bin.filter(|_| !rt.env.contains_key("PATH")) {
                    let dollars = bin.display().to_string().replace('$', "$$");
                    rt.env.insert("PATH".into(), format!("{dollars}:${{PATH}}"));
                }
            }
            let per_app = rt.preset.as_deref() == Some(COMMAND);
            let command = match rt.command {
                Some(c) if c.first().is_some_and(|p| !p.is_empty()) && !per_app => c,
                None if per_app => Vec::new(),
                Some(_) if per_app => {
                    return Err(value_err(
                        key("command"),
                        "a runtime with preset = \"command\" takes each app's own program (`hangar create NAME -- PROGRAM [ARGS…]`); leave command out".into(),
                    ))
                }
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
            if let Some(b) = &rt.health_body {
                if b.trim().is_empty() || b.len() > 1024 {
                    return Err(value_err(
                        key("health_body"),
                        "must be a non-empty text of at most 1024 bytes (the body the health path answers when ready), or be left out".into(),
                    ));
                }
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
            // Templates are checked now, not when an app starts: `env` values see the engine's
            // environment and Hangar's variables; the other keys see the runtime's env too.
            let engine_env = engine_vars();
            for (k, v) in &rt.env {
                check_template(v, &|var| engine_env.contains(var))
                    .map_err(|why| value_err(key(&format!("env.{k}")), why))?;
            }
            let known = |var: &str| engine_env.contains(var) || rt.env.contains_key(var);
            let lists = [
                ("command", Some(command.as_slice())),
                ("upgrade", rt.upgrade.as_deref()),
                (
                    "version_command",
                    match &version {
                        Version::Command(c) => Some(c.as_slice()),
                        _ => None,
                    },
                ),
                ("logs", rt.logs.as_deref()),
                ("cwd", rt.cwd.as_ref().map(std::slice::from_ref)),
            ];
            for (k, words) in lists {
                for w in words.unwrap_or_default() {
                    check_template(w, &known).map_err(|why| value_err(key(k), why))?;
                }
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
            let memory_max = match &rt.memory_max {
                Some(m) => m
                    .memory_max()
                    .map_err(|e| value_err(key("memory_max"), e.message))?,
                None => None,
            };
            let writable = writable_folders(rt.writable.as_deref().unwrap_or_default(), path)
                .map_err(|why| value_err(key("writable"), why))?;
            let nice = match rt.nice {
                Some(n) => Some(
                    crate::base::validate::nice(n)
                        .map_err(|e| value_err(key("nice"), e.message))?,
                ),
                None => None,
            }
            .filter(|n| *n != 0);
            runtimes.insert(
                name.clone(),
                Runtime {
                    name: name.clone(),
                    preset: rt.preset.clone(),
                    command,
                    health,
                    health_body: rt.health_body,
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
                    confine: rt.confine.unwrap_or(true),
                    writable,
                    memory_max,
                    nice,
                    generated: rt.generated,
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
        let memory_budget = file
            .memory_budget
            .as_ref()
            .map(MemoryBudget::parse)
            .transpose()
            .map_err(|m| value_err("memory_budget".into(), m))?
            .flatten();
        Ok(Config {
            memory_budget,
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

/// The variables Hangar gives every app besides [`crate::base::validate::RESERVED_ENV`]
/// (docs/contracts.md, "What an app process is given").
pub const HANGAR_VARS: &[&str] = &[
    "HANGAR_APP",
    "HANGAR_BASE_PATH",
    "HANGAR_PUBLIC_URL",
    "HANGAR_DATA_DIR",
];

/// The names a template may use whatever the app: Hangar's variables and the engine's own
/// environment (which apps inherit, without `HANGAR_…` but `HANGAR_DEMO_SCHEMA`).
pub fn engine_vars() -> std::collections::BTreeSet<String> {
    let mut vars: std::collections::BTreeSet<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| !k.starts_with("HANGAR_") || k == "HANGAR_DEMO_SCHEMA")
        .collect();
    vars.extend(
        crate::base::validate::RESERVED_ENV
            .iter()
            .chain(HANGAR_VARS)
            .map(|s| s.to_string()),
    );
    vars
}

/// At most this many folders in one runtime's `writable`.
const MAX_WRITABLE: usize = 64;

/// A runtime's `writable` folders, checked: absolute, without `..`, none inside Hangar's home
/// (the folder of `hangar.toml`, `config`, when that path is absolute), at most
/// [`MAX_WRITABLE`]. The error says which and what is accepted.
fn writable_folders(list: &[String], config: &Path) -> Result<Vec<PathBuf>, String> {
    const ACCEPTED: &str =
        "accepted: absolute folders outside Hangar's home, such as [\"/srv/shared\"]";
    if list.len() > MAX_WRITABLE {
        return Err(format!(
            "{} folders; at most {MAX_WRITABLE} are accepted",
            list.len()
        ));
    }
    let home = config
        .parent()
        .filter(|h| h.is_absolute())
        .map(|h| (h.to_path_buf(), std::fs::canonicalize(h).ok()));
    list.iter()
        .map(|s| {
            let p = PathBuf::from(s);
            if !p.is_absolute() {
                return Err(format!("{s:?} is not an absolute path; {ACCEPTED}"));
            }
            if p.components().any(|c| c == std::path::Component::ParentDir) {
                return Err(format!("{s:?} contains \"..\"; {ACCEPTED}"));
            }
            if let Some((home, real_home)) = &home {
                let real = std::fs::canonicalize(&p).ok();
                let inside = p.starts_with(home)
                    || real
                        .as_ref()
                        .zip(real_home.as_ref())
                        .is_some_and(|(r, h)| r.starts_with(h));
                if inside {
                    return Err(format!(
                        "{s:?} is inside Hangar's home {} (an app writes only its own data folder there); {ACCEPTED}",
                        home.display()
                    ));
                }
            }
            Ok(p)
        })
        .collect()
}

/// Check the `${VAR}` of a template before it is ever expanded: each must be a name `known`
/// accepts; shell syntax (`${X:-…}`, `${X:+…}`), an unknown name or an unclosed `${` is an
/// error that says what to write instead.
pub fn check_template(s: &str, known: &dyn Fn(&str) -> bool) -> Result<(), String> {
    expand(s, &|v| known(v).then(String::new)).map(|_| ()).map_err(|why| {
        if why.starts_with("unknown variable") {
            format!("{why}: a template names Hangar's variables (PORT, DATABASE_URL, HANGAR_DATA_DIR, …), the engine's environment, or (except in env) a key of the runtime's env, which may hold a default an app's own --env value replaces; $$ is a literal $")
        } else {
            why
        }
    })
}

/// A variable name as a template writes it: a letter or `_`, then letters, digits or `_`.
fn is_var_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Expand `${VAR}` in `s` from `vars`. An unknown variable, an unclosed `${` or shell syntax
/// inside `${…}` is an error naming it; `$$` is a literal `$`.
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
            if !is_var_name(var) {
                return Err(format!(
                    "${{{var}}} in {s:?} is shell syntax, which Hangar does not expand: write $${{{var}}} to hand it to a shell (sh -c) as it is, or ${{NAME}} for a variable"
                ));
            }
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

    /// `writable` is absolute folders outside the home (the folder of hangar.toml); anything
    /// else is refused when hangar.toml is read, naming runtimes.NAME.writable.
    #[test]
    fn writable_folders_are_absolute_and_outside_the_home() {
        let home = tempfile::tempdir().unwrap();
        let file = home.path().join("hangar.toml");
        let rt = |w: &str| format!("[runtimes.x]\ncommand = [\"x\"]\nwritable = {w}\n");
        let c = Config::parse(&rt("[\"/srv/shared\", \"/dev/dri\"]"), &file).unwrap();
        assert_eq!(
            c.runtimes["x"].writable,
            vec![PathBuf::from("/srv/shared"), PathBuf::from("/dev/dri")]
        );
        assert!(Config::parse("[runtimes.x]\ncommand = [\"x\"]\n", &file)
            .unwrap()
            .runtimes["x"]
            .writable
            .is_empty());
        let inside = home.path().join("apps/a").display().to_string();
        for (bad, why) in [
            ("[\"srv/shared\"]".to_string(), "is not an absolute path"),
            ("[\"/srv/../etc\"]".to_string(), "contains \"..\""),
            (format!("[{inside:?}]"), "is inside Hangar's home"),
        ] {
            let e = Config::parse(&rt(&bad), &file).unwrap_err().to_string();
            assert!(
                e.contains("runtimes.x.writable")
                    && e.contains(why)
                    && e.contains("accepted: absolute folders outside Hangar's home"),
                "{bad}: {e}"
            );
        }
        // Through a link into the home, too.
        let link = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(home.path(), link.path().join("h")).unwrap();
        let via = link.path().join("h/apps").display().to_string();
        std::fs::create_dir_all(home.path().join("apps")).unwrap();
        let e = Config::parse(&rt(&format!("[{via:?}]")), &file)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is inside Hangar's home"), "{e}");
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
    fn memory_and_priority_keys() {
        let c = parse("").unwrap();
        assert_eq!(c.memory_budget, None, "off by default");
        assert_eq!(c.runtime("demo").unwrap().memory_max, None);
        let c = parse("memory_budget = \"60%\"\n[runtimes.x]\ncommand = [\"a\"]\nmemory_max = \"600M\"\nnice = 5").unwrap();
        assert_eq!(c.memory_budget, Some(MemoryBudget::Percent(60)));
        assert_eq!(MemoryBudget::Percent(60).bytes(1000), 600);
        let x = c.runtime("x").unwrap();
        assert_eq!(x.memory_max, Some(600 << 20));
        assert_eq!(x.nice, Some(5));
        let c = parse(
            "memory_budget = \"4G\"\n[runtimes.x]\ncommand = [\"a\"]\nmemory_max = 104857600",
        )
        .unwrap();
        assert_eq!(c.memory_budget, Some(MemoryBudget::Bytes(4 << 30)));
        assert_eq!(c.runtime("x").unwrap().memory_max, Some(100 << 20));
        assert_eq!(parse("memory_budget = \"0\"").unwrap().memory_budget, None);
        for bad in ["\"150%\"", "\"lots\"", "\"1M\"", "true"] {
            let e = parse(&format!("memory_budget = {bad}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("memory_budget"), "{bad}: {e}");
        }
        let e = parse("[runtimes.x]\ncommand = [\"a\"]\nmemory_max = \"1K\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("runtimes.x.memory_max") && e.contains("4M"),
            "{e}"
        );
        let e = parse("[runtimes.x]\ncommand = [\"a\"]\nnice = 40")
            .unwrap_err()
            .to_string();
        assert!(e.contains("runtimes.x.nice") && e.contains("-20"), "{e}");
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
        assert_eq!(nb.command[4..], ["start"]);
        assert_eq!(
            nb.upgrade.as_ref().map(|u| &u[4..]),
            Some(&["upgrade".to_string()][..])
        );
        assert_eq!(nb.health, "/api/__health_check");
        assert_eq!(nb.health_body.as_deref(), Some("ok"));
        assert_eq!(
            nb.generated,
            vec![
                ("INIT_ROOT_EMAIL".to_string(), Generated::AdminEmail),
                ("INIT_ROOT_PASSWORD".to_string(), Generated::Password)
            ]
        );
        assert_eq!(nb.prefix, Prefix::Keep);
        assert_eq!(nb.cwd.as_deref(), Some("/srv/nocobase"));
        assert_eq!(nb.stop_timeout, Duration::from_secs(7), "written");
        assert_eq!(nb.start_timeout, Duration::from_secs(600), "preset");
        assert_eq!(nb.env["APP_ENV"], "development", "written");
        assert_eq!(nb.env["TZ"], "UTC", "added");
        assert_eq!(
            nb.env["PATH"], "/srv/bin:${PATH}",
            "Node beside the app folder first"
        );
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
    fn a_health_body_is_a_short_text() {
        let c = parse("[runtimes.x]\ncommand = [\"x\"]\nhealth_body = \"ready\"").unwrap();
        assert_eq!(
            c.runtime("x").unwrap().health_body.as_deref(),
            Some("ready")
        );
        for bad in ["\"\"", "\" \""] {
            let e = parse(&format!(
                "[runtimes.x]\ncommand = [\"x\"]\nhealth_body = {bad}"
            ))
            .unwrap_err()
            .to_string();
            assert!(e.contains("runtimes.x.health_body"), "{e}");
        }
        // Generated values are a preset's, never a key of the file.
        let e = parse("[runtimes.x]\ncommand = [\"x\"]\ngenerated = []")
            .unwrap_err()
            .to_string();
        assert!(e.contains("generated"), "{e}");
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
    fn templates_are_checked_when_the_file_is_read() {
        // Shell syntax inside ${…} was only found when an app started.
        let e = parse("[runtimes.x]\ncommand = [\"sh\", \"-c\", \"exec srv ${EXTRA:+--extra}\"]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("runtimes.x.command")
                && e.contains("shell syntax")
                && e.contains("$${EXTRA:+--extra}"),
            "{e}"
        );
        let e = parse("[runtimes.x]\ncommand = [\"srv\", \"${NO_SUCH_VAR_AT_ALL}\"]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("runtimes.x.command") && e.contains("NO_SUCH_VAR_AT_ALL"),
            "{e}"
        );
        let e = parse("[runtimes.x]\ncommand = [\"srv\"]\nenv = { A = \"${PORT\" }")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("runtimes.x.env.A") && e.contains("unclosed"),
            "{e}"
        );
        // An env value does not see other env entries; the command does.
        let e = parse("[runtimes.x]\ncommand = [\"srv\"]\nenv = { A = \"1\", B = \"${A}\" }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("runtimes.x.env.B"), "{e}");
        parse(
            r#"
[runtimes.x]
command = ["sh", "-c", "exec srv --port $PORT $${EXTRA:+--extra} ${MODE} ${HANGAR_DATA_DIR} ${DATABASE_URL} ${PATH}"]
cwd = "${HANGAR_DATA_DIR}"
env = { MODE = "fast", URL = "${HANGAR_PUBLIC_URL}" }
"#,
        )
        .unwrap();
    }

    #[test]
    fn the_command_runtime_takes_each_apps_program() {
        let c = parse("").unwrap();
        let rt = c.runtime(COMMAND).unwrap();
        assert!(rt.per_app());
        assert_eq!((rt.prefix, rt.health.as_str()), (Prefix::Strip, "/"));
        let own = AppCommand {
            argv: vec!["python3".into(), "-m".into(), "http.server".into()],
            prefix: Some(Prefix::Keep),
            health: None,
        };
        let app = rt.for_app(Some(&own));
        assert_eq!(app.command, own.argv);
        assert_eq!((app.prefix, app.health.as_str()), (Prefix::Keep, "/"));
        // A written [runtimes.command] may set the other keys; a command there is refused.
        let c = parse("[runtimes.command]\npreset = \"command\"\nstop_timeout = 2").unwrap();
        assert_eq!(
            c.runtime(COMMAND).unwrap().stop_timeout,
            Duration::from_secs(2)
        );
        let e = parse("[runtimes.mine]\npreset = \"command\"\ncommand = [\"x\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("runtimes.mine.command"), "{e}");
        let known = |v: &str| v == "PORT";
        assert!(own.check(&known).is_ok());
        let bad = AppCommand {
            argv: vec!["srv".into(), "${NOPE}".into()],
            prefix: None,
            health: None,
        };
        assert_eq!(bad.check(&known).unwrap_err().field, "command");
        let bad = AppCommand {
            argv: vec!["srv".into()],
            prefix: None,
            health: Some("health".into()),
        };
        assert_eq!(bad.check(&known).unwrap_err().field, "health");
    }

    #[test]
    fn expansion() {
        let vars = |k: &str| (k == "PORT").then(|| "14000".to_string());
        assert_eq!(expand("--port=${PORT}", &vars).unwrap(), "--port=14000");
        assert_eq!(expand("$$HOME $x", &vars).unwrap(), "$HOME $x");
        assert!(expand("${NOPE}", &vars).unwrap_err().contains("NOPE"));
        assert!(expand("${PORT", &vars).unwrap_err().contains("unclosed"));
        assert!(expand("${PORT:-1}", &vars)
            .unwrap_err()
            .contains("shell syntax"));
    }
}

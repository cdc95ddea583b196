//! Property tests of bad input (the hardening issue): `hangar.toml` round trips and one-key
//! mutations, and the API's JSON bodies driven through the real router in-process.
//! The fuzz targets in `fuzz/` (scripts/fuzz.sh) cover the same ground with arbitrary bytes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use hangar::base::config::SamplerKind;
use hangar::base::config::{Config, Prefix, Version};
use hangar::base::home::Home;
use hangar::engine::{Engine, Overrides};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{Config as Cases, TestRunner};
use serde_json::{json, Value};
use tower::ServiceExt;

// ---- hangar.toml -------------------------------------------------------------------------------

/// A runtime as written in the file (`None`: the key is left out).
#[derive(Debug, Clone)]
struct GenRuntime {
    command: Vec<String>,
    health: Option<String>,
    prefix: Option<Prefix>,
    upgrade: Option<Vec<String>>,
    version: Option<String>,
    version_command: Option<Vec<String>>,
    cwd: Option<String>,
    env: BTreeMap<String, String>,
    start_timeout: Option<u64>,
    stop_timeout: Option<u64>,
    logs: Vec<String>,
    restart_limit: Option<u32>,
    log_max_bytes: Option<u64>,
    log_keep: Option<u64>,
}

#[derive(Debug, Clone)]
struct GenConfig {
    proxy_port: Option<u16>,
    api_port: Option<u16>,
    proxy_bind: Option<String>,
    app_ports: Option<(u16, u16)>,
    backup_keep_days: Option<u32>,
    wake_timeout: Option<u64>,
    upstream_timeout: Option<u64>,
    show_app_output_to_visitors: Option<bool>,
    client_write_timeout: Option<u64>,
    max_connections_per_ip: Option<u32>,
    data_service: Option<String>,
    runtimes: BTreeMap<String, GenRuntime>,
    main_runtime: Option<String>,
    main_enabled: Option<bool>,
    main_port: Option<u16>,
    main_domain: Option<String>,
    main_env: BTreeMap<String, String>,
    log_total_max_bytes: Option<u64>,
    sampler: Option<String>,
}

/// Any text a TOML string can hold: quotes, backslashes, newlines, `${…}`, non-ASCII.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _./:=${}\"'\\\\\\n\\té中-]{0,16}"
}

/// Text where Hangar expands `${VAR}` (a runtime's command, env, cwd, …): each `$` written
/// `$$`, since a variable must be known when the file is read.
fn template() -> impl Strategy<Value = String> {
    text().prop_map(|t| t.replace('$', "$$"))
}

fn env_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    env_map_of(text())
}

fn template_env_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    env_map_of(template())
}

fn env_map_of(
    values: impl Strategy<Value = String>,
) -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        "[A-Za-z_][A-Za-z0-9_]{0,10}".prop_filter("not set by Hangar", |k| {
            !hangar::base::validate::RESERVED_ENV.contains(&k.as_str()) && !k.starts_with("HANGAR_")
        }),
        values,
        0..3,
    )
}

/// Host names the domain rule accepts: the last label starts with a letter (a number there is an
/// IP address to a browser) and is not `localhost`.
fn domain() -> impl Strategy<Value = String> {
    (
        prop::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..3),
        "[a-z]([a-z0-9-]{0,8}[a-z0-9])?".prop_filter("not localhost", |l| l != "localhost"),
    )
        .prop_map(|(mut l, last)| {
            l.push(last);
            l.join(".")
        })
}

fn secs() -> impl Strategy<Value = Option<u64>> {
    prop::option::of(1u64..=86_400)
}

fn runtime() -> impl Strategy<Value = GenRuntime> {
    let program = "[a-z/][a-z0-9/._-]{0,12}";
    (
        (
            prop::collection::vec(template(), 0..3).prop_flat_map(move |args| {
                program.prop_map(move |p| {
                    let mut c = vec![p];
                    c.extend(args.clone());
                    c
                })
            }),
            prop::option::of("/[a-z0-9_/.-]{0,12}"),
            prop::option::of(prop_oneof![Just(Prefix::Keep), Just(Prefix::Strip)]),
            prop::option::of(prop::collection::vec(template(), 1..3)),
            // version or version_command, never both
            prop_oneof![
                Just((None, None)),
                text().prop_map(|v| (Some(v), None)),
                prop::collection::vec(template(), 1..3).prop_map(|c| (None, Some(c))),
            ],
            prop::option::of(template()),
            template_env_map(),
        ),
        (
            secs(),
            secs(),
            prop::collection::vec(template(), 0..2),
            prop::option::of(1u32..=1000),
            prop::option::of(4096u64..=1 << 40),
            prop::option::of(1u64..=1000),
        ),
    )
        .prop_map(
            |(
                (command, health, prefix, upgrade, (version, version_command), cwd, env),
                (start_timeout, stop_timeout, logs, restart_limit, log_max_bytes, log_keep),
            )| GenRuntime {
                command,
                health,
                prefix,
                upgrade,
                version,
                version_command,
                cwd,
                env,
                start_timeout,
                stop_timeout,
                logs,
                restart_limit,
                log_max_bytes,
                log_keep,
            },
        )
}

fn config() -> impl Strategy<Value = GenConfig> {
    let ports = (
        prop::option::of(1u16..=65535),
        prop::option::of(1u16..=65535),
    )
        .prop_filter("the proxy and the API differ", |(p, a)| {
            p.unwrap_or(13000) != a.unwrap_or(13001)
        });
    (
        (
            ports,
            prop::option::of(prop_oneof![
                Just("127.0.0.1".to_string()),
                Just("0.0.0.0".to_string()),
                Just("::1".to_string())
            ]),
            prop::option::of((1024u16..=65535).prop_flat_map(|a| (Just(a), a..=65535))),
            prop::option::of(1u32..=3650),
            secs(),
            secs(),
            prop::option::of(
                (
                    prop_oneof!["postgres", "postgresql", "mysql", "mariadb"],
                    "[a-z]{1,6}",
                )
                    .prop_map(|(s, u)| format!("{s}://{u}:pw@127.0.0.1:5432/{u}")),
            ),
        ),
        (
            prop::collection::btree_map("[a-z][a-z0-9_-]{0,8}", runtime(), 0..3),
            any::<prop::sample::Index>(),
            prop::option::of(any::<bool>()),
            prop::option::of(1024u16..=65535),
            prop::option::of(domain()),
            env_map(),
            prop::option::of((1u64 << 20)..=u64::MAX / 2),
            prop::option::of(prop_oneof![Just("auto"), Just("proc"), Just("sysinfo")]),
        ),
        (
            prop::option::of(any::<bool>()),
            secs(),
            prop::option::of(1u32..=1_000_000),
        ),
    )
        .prop_map(
            |(
                ((proxy_port, api_port), proxy_bind, app_ports, keep, wake, upstream, data_service),
                (runtimes, pick, enabled, main_port, main_domain, main_env, log_total, sampler),
                (show_output, write_timeout, max_per_ip),
            )| {
                let names: Vec<&String> = runtimes.keys().collect();
                let main_runtime = (!names.is_empty()).then(|| pick.get(&names).to_string());
                let reserved = [proxy_port.unwrap_or(13000), api_port.unwrap_or(13001)];
                GenConfig {
                    proxy_port,
                    api_port,
                    proxy_bind,
                    app_ports,
                    backup_keep_days: keep,
                    wake_timeout: wake,
                    upstream_timeout: upstream,
                    show_app_output_to_visitors: show_output,
                    client_write_timeout: write_timeout,
                    max_connections_per_ip: max_per_ip,
                    data_service,
                    runtimes,
                    main_runtime,
                    main_enabled: enabled,
                    main_port: main_port.filter(|p| !reserved.contains(p)),
                    main_domain,
                    main_env,
                    log_total_max_bytes: log_total,
                    sampler: sampler.map(str::to_string),
                }
            },
        )
}

/// The file as sections of `key = raw TOML value`, in order; `""` is the top level.
type Doc = Vec<(String, Vec<(String, String)>)>;

fn s(v: &str) -> String {
    toml::Value::String(v.to_string()).to_string()
}

fn arr(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|x| s(x)).collect();
    format!("[{}]", items.join(", "))
}

fn table(m: &BTreeMap<String, String>) -> String {
    let items: Vec<String> = m.iter().map(|(k, v)| format!("{k} = {}", s(v))).collect();
    format!("{{ {} }}", items.join(", "))
}

fn doc(c: &GenConfig) -> Doc {
    let mut top = Vec::new();
    let put = |v: &mut Vec<(String, String)>, k: &str, raw: Option<String>| {
        if let Some(raw) = raw {
            v.push((k.to_string(), raw));
        }
    };
    put(&mut top, "proxy_port", c.proxy_port.map(|p| p.to_string()));
    put(&mut top, "api_port", c.api_port.map(|p| p.to_string()));
    put(&mut top, "proxy_bind", c.proxy_bind.as_deref().map(s));
    put(
        &mut top,
        "app_ports",
        c.app_ports.map(|(a, b)| s(&format!("{a}-{b}"))),
    );
    put(
        &mut top,
        "backup_keep_days",
        c.backup_keep_days.map(|d| d.to_string()),
    );
    put(
        &mut top,
        "wake_timeout",
        c.wake_timeout.map(|d| d.to_string()),
    );
    put(
        &mut top,
        "upstream_timeout",
        c.upstream_timeout.map(|d| d.to_string()),
    );
    put(
        &mut top,
        "client_write_timeout",
        c.client_write_timeout.map(|d| d.to_string()),
    );
    put(
        &mut top,
        "max_connections_per_ip",
        c.max_connections_per_ip.map(|d| d.to_string()),
    );
    put(
        &mut top,
        "show_app_output_to_visitors",
        c.show_app_output_to_visitors.map(|b| b.to_string()),
    );
    put(
        &mut top,
        "log_total_max_bytes",
        c.log_total_max_bytes.map(|d| d.to_string()),
    );
    put(&mut top, "sampler", c.sampler.as_deref().map(s));
    let mut d: Doc = vec![(String::new(), top)];
    if let Some(url) = &c.data_service {
        d.push(("data_service".into(), vec![("url".into(), s(url))]));
    }
    let mut main = Vec::new();
    put(&mut main, "runtime", c.main_runtime.as_deref().map(s));
    put(&mut main, "enabled", c.main_enabled.map(|b| b.to_string()));
    put(&mut main, "port", c.main_port.map(|p| p.to_string()));
    put(&mut main, "domain", c.main_domain.as_deref().map(s));
    put(
        &mut main,
        "env",
        (!c.main_env.is_empty()).then(|| table(&c.main_env)),
    );
    d.push(("main".into(), main));
    for (name, rt) in &c.runtimes {
        let mut v = vec![("command".to_string(), arr(&rt.command))];
        put(&mut v, "health", rt.health.as_deref().map(s));
        put(
            &mut v,
            "prefix",
            rt.prefix.map(|p| {
                s(match p {
                    Prefix::Keep => "keep",
                    Prefix::Strip => "strip",
                })
            }),
        );
        put(&mut v, "upgrade", rt.upgrade.as_deref().map(arr));
        put(&mut v, "version", rt.version.as_deref().map(s));
        put(
            &mut v,
            "version_command",
            rt.version_command.as_deref().map(arr),
        );
        put(&mut v, "cwd", rt.cwd.as_deref().map(s));
        put(&mut v, "env", (!rt.env.is_empty()).then(|| table(&rt.env)));
        put(
            &mut v,
            "start_timeout",
            rt.start_timeout.map(|x| x.to_string()),
        );
        put(
            &mut v,
            "stop_timeout",
            rt.stop_timeout.map(|x| x.to_string()),
        );
        put(&mut v, "logs", (!rt.logs.is_empty()).then(|| arr(&rt.logs)));
        put(
            &mut v,
            "restart_limit",
            rt.restart_limit.map(|x| x.to_string()),
        );
        put(
            &mut v,
            "log_max_bytes",
            rt.log_max_bytes.map(|x| x.to_string()),
        );
        put(&mut v, "log_keep", rt.log_keep.map(|x| x.to_string()));
        d.push((format!("runtimes.{}", s(name)), v));
    }
    d
}

fn render(d: &Doc) -> String {
    let mut out = String::new();
    for (section, keys) in d {
        if !section.is_empty() {
            out.push_str(&format!("\n[{section}]\n"));
        }
        for (k, raw) in keys {
            out.push_str(&format!("{k} = {raw}\n"));
        }
    }
    out
}

/// Set `key` of `section` to `raw`, replacing the key if the file has it.
fn set(d: &mut Doc, section: &str, key: &str, raw: &str) {
    let i = match d.iter().position(|(s, _)| s == section) {
        Some(i) => i,
        None => {
            d.push((section.to_string(), Vec::new()));
            d.len() - 1
        }
    };
    let keys = &mut d[i].1;
    keys.retain(|(k, _)| k != key);
    keys.push((key.to_string(), raw.to_string()));
}

fn parse(text: &str) -> Result<Config, hangar::base::config::ConfigError> {
    Config::parse(text, Path::new("hangar.toml"))
}

fn check_round_trip(g: &GenConfig, c: &Config) -> Result<(), TestCaseError> {
    prop_assert_eq!(c.proxy_port, g.proxy_port.unwrap_or(13000));
    prop_assert_eq!(c.api_port, g.api_port.unwrap_or(13001));
    prop_assert_eq!(
        c.proxy_bind.to_string(),
        g.proxy_bind.clone().unwrap_or("127.0.0.1".into())
    );
    let (a, b) = g.app_ports.unwrap_or((14000, 16999));
    prop_assert_eq!(c.app_ports.clone(), a..=b);
    prop_assert_eq!(c.backup_keep_days, g.backup_keep_days.unwrap_or(7));
    prop_assert_eq!(c.wake_timeout.as_secs(), g.wake_timeout.unwrap_or(60));
    prop_assert_eq!(
        c.upstream_timeout.as_secs(),
        g.upstream_timeout.unwrap_or(300)
    );
    prop_assert_eq!(
        c.client_write_timeout.as_secs(),
        g.client_write_timeout.unwrap_or(60)
    );
    prop_assert_eq!(
        c.max_connections_per_ip,
        g.max_connections_per_ip.unwrap_or(256)
    );
    prop_assert_eq!(
        c.show_app_output_to_visitors,
        g.show_app_output_to_visitors
            .unwrap_or(c.proxy_bind.is_loopback()),
        "visitors see the app's output by default only on a loopback bind"
    );
    prop_assert_eq!(&c.data_service, &g.data_service);
    prop_assert_eq!(
        c.log_total_max_bytes,
        g.log_total_max_bytes.unwrap_or(2 << 30)
    );
    let sampler = match g.sampler.as_deref() {
        None | Some("auto") => SamplerKind::auto(),
        Some("proc") => SamplerKind::Proc,
        _ => SamplerKind::Sysinfo,
    };
    prop_assert_eq!(c.sampler, sampler);
    prop_assert_eq!(&c.main.runtime, g.main_runtime.as_deref().unwrap_or("demo"));
    prop_assert_eq!(c.main.enabled, g.main_enabled.unwrap_or(true));
    prop_assert_eq!(c.main.port, g.main_port);
    prop_assert_eq!(&c.main.domain, &g.main_domain);
    prop_assert_eq!(&c.main.env, &g.main_env);
    let mut names: Vec<&str> = g.runtimes.keys().map(String::as_str).collect();
    for builtin in ["demo", "command"] {
        if !g.runtimes.contains_key(builtin) {
            names.push(builtin);
        }
    }
    names.sort();
    prop_assert_eq!(
        c.runtimes.keys().map(String::as_str).collect::<Vec<_>>(),
        names
    );
    for (name, w) in &g.runtimes {
        let r = &c.runtimes[name];
        prop_assert_eq!(&r.name, name);
        prop_assert_eq!(&r.command, &w.command);
        prop_assert_eq!(&r.health, w.health.as_deref().unwrap_or("/_health"));
        prop_assert_eq!(r.prefix, w.prefix.unwrap_or(Prefix::Keep));
        prop_assert_eq!(&r.upgrade, &w.upgrade);
        let version = match (&w.version, &w.version_command) {
            (Some(v), _) => Version::Static(v.clone()),
            (None, Some(c)) => Version::Command(c.clone()),
            (None, None) => Version::None,
        };
        prop_assert_eq!(&r.version, &version);
        prop_assert_eq!(&r.cwd, &w.cwd);
        prop_assert_eq!(&r.env, &w.env);
        prop_assert_eq!(r.start_timeout.as_secs(), w.start_timeout.unwrap_or(60));
        prop_assert_eq!(r.stop_timeout.as_secs(), w.stop_timeout.unwrap_or(10));
        prop_assert_eq!(&r.logs, &w.logs);
        prop_assert_eq!(r.restart_limit, w.restart_limit.unwrap_or(5));
        prop_assert_eq!(
            r.log_rotation.max_bytes,
            w.log_max_bytes.unwrap_or(10 << 20)
        );
        prop_assert_eq!(r.log_rotation.keep as u64, w.log_keep.unwrap_or(5));
    }
    Ok(())
}

/// One key of the file set to a bad value: (section or `RT` for a runtime's, key, raw value,
/// what the error must name).
const MUTATIONS: &[(&str, &str, &str, &str)] = &[
    ("", "proxy_port", "0", "proxy_port"),
    ("", "proxy_port", "70000", "proxy_port"),
    ("", "proxy_port", "\"13000\"", "proxy_port"),
    ("", "proxy_bind", "\"everywhere\"", "proxy_bind"),
    ("", "app_ports", "\"80-90\"", "app_ports"),
    ("", "app_ports", "\"15000-14000\"", "app_ports"),
    ("", "backup_keep_days", "0", "backup_keep_days"),
    ("", "backup_keep_days", "3651", "backup_keep_days"),
    ("", "wake_timeout", "0", "wake_timeout"),
    ("", "upstream_timeout", "86401", "upstream_timeout"),
    ("", "client_header_timeout", "-1", "client_header_timeout"),
    ("", "client_write_timeout", "0", "client_write_timeout"),
    ("", "max_connections_per_ip", "0", "max_connections_per_ip"),
    (
        "",
        "max_connections_per_ip",
        "1000001",
        "max_connections_per_ip",
    ),
    ("", "log_total_max_bytes", "1024", "log_total_max_bytes"),
    ("", "sampler", "\"fast\"", "sampler"),
    (
        "",
        "show_app_output_to_visitors",
        "\"yes\"",
        "show_app_output_to_visitors",
    ),
    ("", "proxy_prot", "1", "proxy_prot"),
    ("data_service", "url", "\"redis://x\"", "data_service.url"),
    ("data_service", "uri", "\"postgres://x\"", "uri"),
    ("main", "runtime", "\"no-such-runtime\"", "main.runtime"),
    ("main", "enabled", "\"yes\"", "enabled"),
    ("main", "port", "80", "main.port"),
    ("main", "port", "0", "main.port"),
    ("main", "domain", "\"Not A Domain\"", "main.domain"),
    ("main", "domain", "\"localhost\"", "main.domain"),
    ("main", "domain", "\"127.0.0.1\"", "main.domain"),
    ("main", "domain", "\"shop.localhost\"", "main.domain"),
    ("main", "env", "{ PORT = \"1\" }", "main.env"),
    ("main", "env", "{ HANGAR_X = \"1\" }", "main.env"),
    ("RT", "command", "[]", "command"),
    ("RT", "command", "[\"\"]", "command"),
    ("RT", "health", "\"health\"", "health"),
    ("RT", "prefix", "\"drop\"", "prefix"),
    ("RT", "upgrade", "[]", "upgrade"),
    ("RT", "version_command", "[]", "version_command"),
    ("RT", "env", "{ \"1X\" = \"a\" }", "env"),
    ("RT", "env", "{ DB_PASSWORD = \"a\" }", "env"),
    ("RT", "start_timeout", "0", "start_timeout"),
    ("RT", "stop_timeout", "86401", "stop_timeout"),
    ("RT", "restart_limit", "0", "restart_limit"),
    ("RT", "restart_limit", "1001", "restart_limit"),
    ("RT", "log_max_bytes", "100", "log_max_bytes"),
    ("RT", "log_keep", "0", "log_keep"),
    ("RT", "stable_after", "true", "stable_after"),
    ("RT", "comand", "[\"x\"]", "comand"),
    // Templates are checked when the file is read: shell syntax, an unknown variable.
    ("RT", "command", "[\"sh\", \"-c\", \"${X:+y}\"]", "command"),
    ("RT", "cwd", "\"${NO_SUCH_VARIABLE_Q}\"", "cwd"),
    ("RT", "env", "{ A = \"${B\" }", "env.A"),
];

#[test]
fn a_generated_hangar_toml_parses_back_to_what_was_written() {
    let mut runner = TestRunner::new(Cases::with_cases(256));
    runner
        .run(&config(), |g| {
            let text = render(&doc(&g));
            match parse(&text) {
                Ok(c) => check_round_trip(&g, &c),
                Err(e) => Err(TestCaseError::fail(format!("{e}\n---\n{text}"))),
            }
        })
        .unwrap();
}

#[test]
fn one_bad_key_in_a_valid_hangar_toml_is_refused_by_name() {
    let strategy = (config(), 0..MUTATIONS.len(), "[a-z][a-z0-9_-]{0,8}");
    let mut runner = TestRunner::new(Cases::with_cases(256));
    runner
        .run(&strategy, |(g, m, rt_name)| {
            let (section, key, raw, named) = MUTATIONS[m];
            let mut d = doc(&g);
            let section = if section == "RT" {
                // A runtime of the file (or a new one, given a command unless that is the key).
                let existing = g.runtimes.keys().next().cloned();
                let name = existing.unwrap_or(rt_name);
                let sec = format!("runtimes.{}", s(&name));
                if !d.iter().any(|(s, _)| *s == sec) {
                    set(&mut d, &sec, "command", "[\"prog\"]");
                }
                // version and version_command together is another error: keep this one alone.
                if key == "version_command" {
                    if let Some((_, keys)) = d.iter_mut().find(|(s, _)| *s == sec) {
                        keys.retain(|(k, _)| k != "version");
                    }
                }
                sec
            } else {
                section.to_string()
            };
            if key == "proxy_port" && raw == "0" {
                // Keep proxy_port != api_port so the zero is the only fault.
                set(&mut d, "", "api_port", "13001");
            }
            if section == "main" && key == "port" {
                set(&mut d, "", "proxy_port", "13000");
                set(&mut d, "", "api_port", "13001");
            }
            set(&mut d, &section, key, raw);
            let text = render(&d);
            let e = match parse(&text) {
                Ok(_) => {
                    return Err(TestCaseError::fail(format!(
                        "accepted {key} = {raw}\n---\n{text}"
                    )))
                }
                Err(e) => e.to_string(),
            };
            // A value error names the whole key; a type error quotes the line with the key.
            let named = if section.starts_with("runtimes.") && named != "comand" {
                let full = format!("{}.{named}", section.replace('"', ""));
                if e.contains(&full) {
                    full
                } else {
                    named.to_string()
                }
            } else {
                named.to_string()
            };
            prop_assert!(e.contains(&named), "{key} = {raw}: {e}\n---\n{text}");
            prop_assert!(e.contains("hangar.toml"), "{e}");
            Ok(())
        })
        .unwrap();
}

// ---- the API's JSON --------------------------------------------------------------------------

/// An engine on a fresh home (not booted: no app is started) and its API router.
struct Api {
    rt: tokio::runtime::Runtime,
    engine: Arc<Engine>,
    _home: tempfile::TempDir,
}

impl Api {
    fn new() -> Api {
        let home = tempfile::tempdir().expect("a temporary home");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let engine = rt
            .block_on(Engine::open(Home::at(home.path()), Overrides::default()))
            .expect("the engine opens on an empty home");
        Api {
            rt,
            engine,
            _home: home,
        }
    }

    /// One request through the router, as the CLI sends it; the status and the JSON answer.
    fn call(&self, method: Method, path: &str, body: &[u8]) -> (StatusCode, Value) {
        let port = self.engine.config.api_port;
        let req = Request::builder()
            .method(method)
            .uri(format!("/api/v1{path}"))
            .header("host", format!("127.0.0.1:{port}"))
            .header("authorization", format!("Bearer {}", self.engine.token))
            .header("content-type", "application/json")
            .body(Body::from(body.to_vec()))
            .expect("a request");
        let router = hangar::api::router(self.engine.clone());
        self.rt.block_on(async {
            let res = tokio::time::timeout(Duration::from_secs(30), router.oneshot(req))
                .await
                .expect("an answer within 30 s")
                .expect("the router never fails");
            let status = res.status();
            let bytes = res
                .into_body()
                .collect()
                .await
                .expect("the whole body")
                .to_bytes();
            let v = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            (status, v)
        })
    }

    fn json(&self, method: Method, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(method, path, body.to_string().as_bytes())
    }
}

/// The API's one error shape, with the expected status, code and field.
fn refusal(
    (status, v): &(StatusCode, Value),
    want: StatusCode,
    code: &str,
    field: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(*status, want, "{}", v);
    let e = &v["error"];
    prop_assert_eq!(e["code"].as_str(), Some(code), "{}", v);
    prop_assert_eq!(e["field"].as_str(), Some(field), "{}", v);
    prop_assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        v
    );
    prop_assert_eq!(
        v.as_object().map(|o| o.len()),
        Some(1),
        "one key, error: {}",
        v
    );
    Ok(())
}

fn app_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,30}".prop_filter("main is reserved", |n| n != "main")
}

/// A valid create body (on-visit, SQLite: nothing is started or provisioned).
fn create_body() -> impl Strategy<Value = Value> {
    (
        app_name(),
        prop::option::of("[A-Za-z0-9 éü'-]{1,40}"),
        prop::option::of(domain().prop_map(|d| {
            // Upper case is accepted at create and stored in lower case.
            let mut c = d.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => d,
            }
        })),
        any::<bool>(),
        env_map(),
        prop::option::of(0i64..=604_800),
        prop::option::of(Just("new-database")),
    )
        .prop_map(|(name, display, domain, pinned, env, idle, db)| {
            let mut b = json!({ "name": name, "pinned": pinned, "env": env });
            let o = b.as_object_mut().expect("an object");
            if let Some(d) = display {
                o.insert("display_name".into(), json!(d));
            }
            if let Some(d) = domain {
                o.insert("domain".into(), json!(d));
            }
            if let Some(i) = idle {
                o.insert("idle_timeout".into(), json!(i));
                o.insert("start_mode".into(), json!("on-visit"));
            }
            if let Some(d) = db {
                o.insert("db".into(), json!(d));
            }
            b
        })
}

#[test]
fn generated_create_bodies_are_created_as_sent() {
    let api = Api::new();
    // What was created so far (the runner's closure is `Fn`).
    let names = std::cell::RefCell::new(std::collections::HashSet::new());
    let ids = std::cell::RefCell::new(std::collections::HashSet::new());
    let domains = std::cell::RefCell::new(std::collections::HashSet::new());
    let mut runner = TestRunner::new(Cases::with_cases(64));
    runner
        .run(&create_body(), |b| {
            let name = b["name"].as_str().unwrap_or_default().to_string();
            let id = hangar::store::provision::identifier(&name);
            let domain = b["domain"].as_str().map(str::to_ascii_lowercase);
            let answer = api.json(Method::POST, "/apps", &b);
            if names.borrow().contains(&name) || ids.borrow().contains(&id) {
                return refusal(&answer, StatusCode::CONFLICT, "conflict", "name");
            }
            if domain
                .as_ref()
                .is_some_and(|d| domains.borrow().contains(d))
            {
                return refusal(&answer, StatusCode::CONFLICT, "conflict", "domain");
            }
            let (status, v) = answer;
            prop_assert_eq!(status, StatusCode::CREATED, "{} -> {}", b, v);
            names.borrow_mut().insert(name.clone());
            ids.borrow_mut().insert(id);
            if let Some(d) = &domain {
                domains.borrow_mut().insert(d.clone());
            }
            prop_assert_eq!(v["name"].as_str(), Some(name.as_str()));
            let display = b["display_name"]
                .as_str()
                .filter(|d| !d.trim().is_empty())
                .unwrap_or(&name);
            prop_assert_eq!(v["display_name"].as_str(), Some(display));
            prop_assert_eq!(v["domain"].as_str(), domain.as_deref());
            prop_assert_eq!(&v["pinned"], &b["pinned"]);
            prop_assert_eq!(v["start_mode"].as_str(), Some("on-visit"));
            let idle = b["idle_timeout"].as_i64().filter(|i| *i > 0);
            prop_assert_eq!(v["idle_timeout"].as_i64(), idle, "{}", v);
            // And it is there to read back.
            let (status, again) = api.call(Method::GET, &format!("/apps/{name}"), b"");
            prop_assert_eq!(status, StatusCode::OK);
            prop_assert_eq!(&again["name"], &v["name"]);
            Ok(())
        })
        .unwrap();
}

/// A field of a create body made wrong: (field, value, what the refusal names).
fn bad_create_field() -> impl Strategy<Value = (&'static str, Value, &'static str)> {
    prop_oneof![
        // Wrong types and unknown fields: the body as a whole is refused.
        Just(("name", json!(5), "body")),
        Just(("name", json!(["a"]), "body")),
        Just(("display_name", json!(true), "body")),
        Just(("pinned", json!("yes"), "body")),
        Just(("port", json!("14000"), "body")),
        Just(("port", json!(-1), "body")),
        Just(("port", json!(1.5), "body")),
        Just(("env", json!(["A=1"]), "body")),
        Just(("env", json!({ "A": 1 }), "body")),
        Just(("start_mode", json!("sometimes"), "body")),
        Just(("idle_timeout", json!("60"), "body")),
        "[a-z_]{1,12}"
            .prop_filter("not a field of the body", |k| ![
                "name",
                "display_name",
                "start_mode",
                "port",
                "domain",
                "pinned",
                "db",
                "runtime",
                "env",
                "idle_timeout"
            ]
            .contains(&k.as_str()))
            .prop_map(|k| (&*Box::leak(k.into_boxed_str()), json!(1), "body")),
        // Values the rules refuse: the refusal names the field.
        "[^a-z]\\PC{0,10}".prop_map(|n| ("name", json!(n), "name")),
        Just(("name", json!("main"), "name")),
        Just(("name", json!("../etc"), "name")),
        Just(("name", json!("a/b"), "name")),
        Just(("name", json!("a\u{0}b"), "name")),
        "[a-z]{41,50}".prop_map(|n| ("name", json!(n), "name")),
        Just(("display_name", json!("line\nbreak"), "display_name")),
        "[a-z]{101,110}".prop_map(|n| ("display_name", json!(n), "display_name")),
        prop_oneof![
            Just("localhost"),
            Just("http://a.com"),
            Just("a.com:80"),
            Just("a..com"),
            Just("-a.com"),
            Just("a.com/x"),
            Just("a b.com"),
            Just("127.0.0.1"),
            Just("[::1]"),
            Just("app.localhost")
        ]
        .prop_map(|d| ("domain", json!(d), "domain")),
        (0u32..1024).prop_map(|p| ("port", json!(p), "port")),
        (65536u32..=u32::MAX).prop_map(|p| ("port", json!(p), "port")),
        Just(("port", json!(13000), "port")),
        Just(("env", json!({ "PORT": "1" }), "env")),
        Just(("env", json!({ "HANGAR_X": "1" }), "env")),
        Just(("env", json!({ "1A": "1" }), "env")),
        Just(("env", json!({ "A": "a\u{0}" }), "env")),
        (604_801i64..=i64::MAX).prop_map(|i| ("idle_timeout", json!(i), "idle_timeout")),
        (i64::MIN..0).prop_map(|i| ("idle_timeout", json!(i), "idle_timeout")),
        Just(("runtime", json!("no-such-runtime"), "runtime")),
        Just(("db", json!("redis://u:secret@h/0"), "db")),
        Just(("db", json!("somewhere"), "db")),
    ]
}

#[test]
fn a_create_body_with_one_bad_field_is_refused_in_the_one_error_shape() {
    let api = Api::new();
    let mut runner = TestRunner::new(Cases::with_cases(128));
    runner
        .run(
            &(create_body(), bad_create_field()),
            |(mut b, (field, value, named))| {
                b[field] = value.clone();
                let answer = api.json(Method::POST, "/apps", &b);
                refusal(&answer, StatusCode::BAD_REQUEST, "invalid", named)?;
                // A refused URL is never repeated (it may hold a password).
                let message = answer.1["error"]["message"].as_str().unwrap_or_default();
                prop_assert!(!message.contains("secret"), "{}", message);
                // Nothing was made.
                if let Some(n) = b["name"].as_str() {
                    if hangar::base::validate::name(n).is_ok() {
                        let (status, _) = api.call(Method::GET, &format!("/apps/{n}"), b"");
                        prop_assert_eq!(status, StatusCode::NOT_FOUND, "{} was made", n);
                    }
                }
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn arbitrary_bytes_as_a_body_get_an_answer_never_a_failure() {
    let api = Api::new();
    let routes: &[(Method, &str)] = &[
        (Method::POST, "/apps"),
        (Method::PATCH, "/apps/main"),
        (Method::POST, "/apps/main/backup"),
        (Method::POST, "/restore"),
        (Method::POST, "/import/nocobase"),
        (Method::POST, "/db/test"),
    ];
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        "\\PC{0,40}".prop_map(String::into_bytes),
        Just(b"{}".to_vec()),
        Just(b"null".to_vec()),
        Just(b"[]".to_vec()),
        Just(b"{\"name\":".to_vec()),
    ];
    let mut runner = TestRunner::new(Cases::with_cases(128));
    runner
        .run(&(0..routes.len(), bytes), |(r, body)| {
            let (method, path) = &routes[r];
            let (status, v) = api.call(method.clone(), path, &body);
            prop_assert!(
                !status.is_server_error(),
                "{} {} {:?} -> {} {}",
                method,
                path,
                String::from_utf8_lossy(&body),
                status,
                v
            );
            if status.is_client_error() {
                prop_assert!(v["error"]["message"].is_string(), "{}", v);
            }
            Ok(())
        })
        .unwrap();
}

/// A valid edit body: any subset of the fields.
fn edit_body() -> impl Strategy<Value = Value> {
    (
        prop::option::of("[A-Za-z0-9 ]{0,20}"),
        prop::option::of(prop_oneof![Just("on-visit"), Just("with-main")]),
        prop::option::of(prop_oneof![
            domain().prop_map(Value::String),
            Just(Value::Null),
            Just(json!(""))
        ]),
        prop::option::of(any::<bool>()),
        prop::option::of(env_map()),
    )
        .prop_map(|(display, mode, domain, pinned, env)| {
            let mut o = serde_json::Map::new();
            if let Some(d) = display {
                o.insert("display_name".into(), json!(d));
            }
            if let Some(m) = mode {
                o.insert("start_mode".into(), json!(m));
            }
            if let Some(d) = domain {
                o.insert("domain".into(), d);
            }
            if let Some(p) = pinned {
                o.insert("pinned".into(), json!(p));
            }
            if let Some(e) = env {
                o.insert("env".into(), json!(e));
            }
            Value::Object(o)
        })
}

#[test]
fn generated_edits_apply_and_bad_ones_are_refused() {
    let api = Api::new();
    let (status, v) = api.json(Method::POST, "/apps", &json!({ "name": "edited" }));
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let mut runner = TestRunner::new(Cases::with_cases(64));
    runner
        .run(&edit_body(), |b| {
            let (_, before) = api.call(Method::GET, "/apps/edited", b"");
            let (status, v) = api.json(Method::PATCH, "/apps/edited", &b);
            prop_assert_eq!(status, StatusCode::OK, "{} -> {}", b, v);
            for (field, sent) in b.as_object().into_iter().flatten() {
                let want = match (field.as_str(), sent) {
                    // `null` and "" clear the domain.
                    ("domain", Value::Null) => Value::Null,
                    ("domain", Value::String(s)) if s.is_empty() => Value::Null,
                    ("env", _) => continue, // not shown in the view
                    _ => sent.clone(),
                };
                prop_assert_eq!(&v[field], &want, "{}: {} -> {}", field, b, v);
            }
            if b.get("domain").is_none() {
                prop_assert_eq!(&v["domain"], &before["domain"], "left as it was");
            }
            Ok(())
        })
        .unwrap();

    let bad = prop_oneof![
        Just((json!({ "prot": 15000 }), "body")),
        Just((json!({ "domian": "a.example.com" }), "body")),
        Just((json!({ "port": "15000" }), "body")),
        Just((json!({ "port": 70000 }), "body")),
        Just((json!({ "pinned": 1 }), "body")),
        Just((json!({ "env": { "A": null } }), "body")),
        Just((json!({ "port": 80 }), "port")),
        Just((json!({ "port": 13001 }), "port")),
        Just((json!({ "domain": "nodots" }), "domain")),
        Just((json!({ "display_name": "a\u{7}" }), "display_name")),
        Just((json!({ "env": { "DB_HOST": "x" } }), "env")),
        Just((json!({ "idle_timeout": 604_801 }), "idle_timeout")),
        Just((
            json!({ "start_mode": "with-main", "idle_timeout": 60 }),
            "idle_timeout"
        )),
    ];
    let mut runner = TestRunner::new(Cases::with_cases(32));
    runner
        .run(&bad, |(b, named)| {
            let (_, before) = api.call(Method::GET, "/apps/edited", b"");
            let answer = api.json(Method::PATCH, "/apps/edited", &b);
            refusal(&answer, StatusCode::BAD_REQUEST, "invalid", named)?;
            let (_, after) = api.call(Method::GET, "/apps/edited", b"");
            for k in ["display_name", "port", "domain", "pinned", "start_mode"] {
                prop_assert_eq!(&after[k], &before[k], "a refused edit changed {}", k);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn data_bodies_are_checked_before_a_job_starts() {
    let api = Api::new();
    let (status, v) = api.json(Method::POST, "/apps", &json!({ "name": "saved" }));
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // A 400 (not a 202 with a job) for each.
    let cases = prop_oneof![
        "[a-z][a-z/]{0,12}".prop_map(|d| (
            Method::POST,
            "/apps/saved/backup",
            json!({ "dir": d }),
            "dir"
        )),
        Just((
            Method::POST,
            "/apps/saved/backup",
            json!({ "folder": "/tmp" }),
            "body"
        )),
        "[^a-z]\\PC{0,8}".prop_map(|n| (
            Method::POST,
            "/restore",
            json!({ "file": "/nonexistent.tar.gz", "as": n }),
            "name"
        )),
        Just((
            Method::POST,
            "/restore",
            json!({ "file": "/nonexistent.tar.gz", "db": "nowhere" }),
            "db"
        )),
        Just((Method::POST, "/restore", json!({ "as": "x" }), "body")),
        Just((
            Method::POST,
            "/restore",
            json!({ "file": "x", "as": "x", "force": true }),
            "body"
        )),
        "[a-z]{0,8}(://[a-z]{0,8})?"
            .prop_filter("not a known dialect", |f| {
                hangar::base::dialect::Dialect::of(f).is_none()
            })
            .prop_map(|f| (
                Method::POST,
                "/import/nocobase",
                json!({ "from": f }),
                "from"
            )),
        Just((
            Method::POST,
            "/import/nocobase",
            json!({ "from": "sqlite:///x", "dry_run": "yes" }),
            "body"
        )),
    ];
    let mut runner = TestRunner::new(Cases::with_cases(64));
    runner
        .run(&cases, |(method, path, b, named)| {
            let answer = api.json(method, path, &b);
            refusal(&answer, StatusCode::BAD_REQUEST, "invalid", named)
        })
        .unwrap();
    // The test-connection button answers {ok, message} to anything.
    let (status, v) = api.call(Method::POST, "/db/test", b"{\"url\": 5}");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["ok"], false, "{v}");
}

//! `hangar.toml` text → `Config::parse`: never a panic; a refusal names the file; an accepted
//! file keeps every promise `parse` makes (see src/config.rs).
#![no_main]

use std::path::Path;
use std::time::Duration;

use hangar::base::config::{Config, Version};
use hangar::base::validate;
use libfuzzer_sys::fuzz_target;

fn secs_ok(d: Duration) -> bool {
    (1..=86_400).contains(&d.as_secs()) && d.subsec_nanos() == 0
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/home/hangar.toml");
    let c = match Config::parse(text, path) {
        Ok(c) => c,
        Err(e) => {
            assert!(e.to_string().contains("/home/hangar.toml"), "{e}");
            return;
        }
    };
    assert!(c.proxy_port != 0 && c.api_port != 0 && c.proxy_port != c.api_port);
    assert!(*c.app_ports.start() >= 1024 && c.app_ports.start() <= c.app_ports.end());
    assert!((1..=3650).contains(&c.backup_keep_days));
    assert!(((1 << 20)..=(1 << 50)).contains(&c.restore_max_bytes));
    for d in [c.wake_timeout, c.client_header_timeout, c.upstream_timeout] {
        assert!(secs_ok(d), "{d:?}");
    }
    if let Some(url) = &c.data_service {
        let scheme = url.split_once("://").map(|(s, _)| s);
        assert!(
            matches!(
                scheme,
                Some("postgres" | "postgresql" | "mysql" | "mariadb")
            ),
            "{url:?}"
        );
    }
    // The runtimes: `demo` and `command` always, the main app's always, each one complete.
    assert!(c.runtimes.contains_key("demo") && c.runtimes.contains_key("command"));
    assert!(c.runtime(&c.main.runtime).is_some(), "{}", c.main.runtime);
    for (name, rt) in &c.runtimes {
        assert_eq!(&rt.name, name);
        // A complete program, or none at all: each app gives its own (`preset = "command"`).
        assert!(
            rt.per_app() || rt.command.first().is_some_and(|p| !p.is_empty()),
            "{name}"
        );
        // Every template was checked when read: expanding it can only miss a variable.
        for w in rt.command.iter().chain(rt.cwd.iter()) {
            if let Err(e) = hangar::base::config::expand(w, &|_| Some(String::new())) {
                panic!("{name}: {w:?} passed the check but does not expand: {e}");
            }
        }
        assert!(rt.health.starts_with('/'), "{name}: {:?}", rt.health);
        if let Some(u) = &rt.upgrade {
            assert!(!u.is_empty(), "{name}");
        }
        if let Version::Command(v) = &rt.version {
            assert!(!v.is_empty(), "{name}");
        }
        for (k, v) in &rt.env {
            assert!(validate::env_entry(k, v).is_ok(), "{name}: {k}");
        }
        for d in [
            rt.start_timeout,
            rt.stop_timeout,
            rt.restart_backoff_max,
            rt.stable_after,
        ] {
            assert!(secs_ok(d), "{name}: {d:?}");
        }
        assert!((1..=1000).contains(&rt.restart_limit), "{name}");
        assert!((4096..=1u64 << 40).contains(&rt.log_rotation.max_bytes));
        assert!((1..=1000).contains(&rt.log_rotation.keep));
    }
    // The main app follows the rules every app does.
    if let Some(p) = c.main.port {
        assert!(
            validate::port(i64::from(p), &[c.proxy_port, c.api_port]).is_ok(),
            "{p}"
        );
    }
    if let Some(d) = &c.main.domain {
        assert!(validate::domain(d).is_ok(), "{d:?}");
    }
    for (k, v) in &c.main.env {
        assert!(validate::env_entry(k, v).is_ok(), "{k}");
    }
    assert!(c.log_total_max_bytes >= 1 << 20);
    // Parsing is a function of the text.
    let again = Config::parse(text, path).map(|c2| (c2.proxy_port, c2.runtimes.len()));
    assert_eq!(again.ok(), Some((c.proxy_port, c.runtimes.len())));
});

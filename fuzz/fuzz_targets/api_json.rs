//! Bytes → every JSON request body of the API, then the checks its handler makes before it acts
//! (the same functions: `CreateApp::check`, `AppEdit::check`, …). Never a panic; what passes
//! keeps the validation rules.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use hangar::base::config::Config;
use hangar::fuzzing::{AppEdit, BackupBody, CreateApp, DbTest, ImportRequest, RestoreRequest};
use hangar::store::registry::StartMode;
use hangar::base::validate;
use libfuzzer_sys::fuzz_target;

const RESERVED: [u16; 2] = [13000, 13001];

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        Config::parse(
            "[runtimes.node]\ncommand = [\"node\", \"server.js\"]\n",
            Path::new("hangar.toml"),
        )
        .expect("the fuzz target's own configuration parses")
    })
}

fn create(data: &[u8]) {
    let Ok(req) = serde_json::from_slice::<CreateApp>(data) else {
        return;
    };
    let Ok(c) = req.check(config(), &config().runtimes) else {
        return;
    };
    assert!(validate::name(&req.name).is_ok(), "{:?}", req.name);
    assert!(validate::display_name(&c.display_name).is_ok());
    assert!(!c.display_name.trim().is_empty());
    if let Some(d) = &c.domain {
        assert!(validate::domain(d).is_ok(), "{d:?}");
    }
    for (k, v) in &req.env {
        assert!(validate::env_entry(k, v).is_ok(), "{k:?}");
    }
    if let Some(s) = c.idle_timeout {
        assert!(s > 0 && s <= validate::MAX_IDLE_TIMEOUT);
        assert_ne!(req.start_mode, Some(StartMode::WithMain));
    }
    if let Some(rt) = &req.runtime {
        assert!(config().runtime(rt).is_some(), "{rt:?}");
    }
    if let Some(m) = &req.db {
        assert!(validate::db_method(m).is_ok(), "{m:?}");
    }
    assert_eq!(c.port.map(u32::from), req.port);
    if let Some(p) = c.port {
        assert!(p >= 1024 && !RESERVED.contains(&p));
    }
}

fn edit(data: &[u8]) {
    let Ok(req) = serde_json::from_slice::<AppEdit>(data) else {
        return;
    };
    let Ok(e) = req.clone().check(&RESERVED) else {
        return;
    };
    if let Some(d) = &e.display_name {
        assert!(validate::display_name(d).is_ok());
    }
    if let Some(Some(d)) = &e.domain {
        assert!(validate::domain(d).is_ok(), "{d:?}");
    }
    if let Some(p) = e.port {
        assert!(p >= 1024 && !RESERVED.contains(&p));
    }
    for (k, v) in e.env.iter().flatten() {
        assert!(validate::env_entry(k, v).is_ok(), "{k:?}");
    }
    if let Some(s) = e.idle_timeout {
        assert!(s <= validate::MAX_IDLE_TIMEOUT);
    }
    // Checking changes nothing but the domain's form.
    assert_eq!(e.port, req.port);
    assert_eq!(e.env, req.env);
    assert_eq!(e.domain.is_some(), req.domain.is_some());
}

fn others(data: &[u8]) {
    if let Ok(t) = serde_json::from_slice::<DbTest>(data) {
        let _ = hangar::base::dialect::Dialect::of(&t.url);
        let _ = hangar::store::provision::redact(&t.url);
    }
    if let Ok(b) = serde_json::from_slice::<BackupBody>(data) {
        if b.check().is_ok() {
            assert!(b.dir.as_ref().is_none_or(|d| d.is_absolute()));
        }
    }
    if let Ok(r) = serde_json::from_slice::<RestoreRequest>(data) {
        if r.check().is_ok() {
            if let Some(n) = r.as_name.as_deref().filter(|n| !n.is_empty()) {
                assert!(validate::name(n).is_ok(), "{n:?}");
            }
            if let Some(m) = &r.db {
                assert!(validate::db_method(m).is_ok(), "{m:?}");
            }
        }
    }
    if let Ok(i) = serde_json::from_slice::<ImportRequest>(data) {
        if i.check().is_ok() {
            assert!(hangar::base::dialect::Dialect::of(&i.from).is_some(), "{:?}", i.from);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    create(data);
    edit(data);
    others(data);
});

//! Every rule of src/validate.rs (and the URL helpers the API and the engine use) on arbitrary
//! input: no panic, and what is accepted has the documented form.
#![no_main]

use hangar::base::db::{AppDb, DbMethod, Owned};
use hangar::base::validate;
use libfuzzer_sys::fuzz_target;

fn name_ok(s: &str) {
    if validate::name(s).is_err() {
        return;
    }
    assert!((1..=40).contains(&s.len()), "{s:?}");
    assert!(s.as_bytes()[0].is_ascii_lowercase(), "{s:?}");
    assert!(
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'),
        "{s:?}"
    );
    assert_ne!(s, validate::MAIN);
    assert!(!s.contains('/') && !s.contains("..") && !s.contains('\0'));
    // A safe path segment: joined to a folder, it names a child of that folder.
    let base = std::path::Path::new("/home/apps");
    assert_eq!(base.join(s).parent(), Some(base), "{s:?}");
    // A safe SQL identifier (hangar_<name>, '-' read as '_') within PostgreSQL's 63 bytes.
    let id = hangar::store::provision::identifier(s);
    assert!(id.len() <= 63, "{id:?}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "{id:?}"
    );
}

fn domain_ok(s: &str) {
    if validate::domain(s).is_err() {
        return;
    }
    assert!(s.len() <= 253, "{s:?}");
    let labels: Vec<&str> = s.split('.').collect();
    assert!(labels.len() >= 2, "{s:?}");
    for l in labels {
        assert!((1..=63).contains(&l.len()), "{s:?}");
        assert!(!l.starts_with('-') && !l.ends_with('-'), "{s:?}");
        assert!(
            l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{s:?}"
        );
    }
    // Never one of the front door's own addresses: an IP literal (a last label that is a
    // number is one to a browser), localhost or a name under it.
    assert!(s.parse::<std::net::IpAddr>().is_err(), "{s:?}");
    let last = s.rsplit('.').next().unwrap_or("");
    assert!(!last.bytes().all(|b| b.is_ascii_digit()), "{s:?}");
    let hex = last
        .strip_prefix("0x")
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!hex && last != "localhost", "{s:?}");
}

fn env_ok(k: &str, v: &str) {
    if validate::env_entry(k, v).is_ok() {
        let first = k.as_bytes()[0];
        assert!(first.is_ascii_alphabetic() || first == b'_', "{k:?}");
        assert!(
            k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{k:?}"
        );
        assert!(k.len() <= 128);
        assert!(!validate::RESERVED_ENV.contains(&k) && !k.starts_with("HANGAR_"));
        assert!(!v.contains('\0') && v.len() <= 32 * 1024);
    }
    let arg = format!("{k}={v}");
    if let Ok((k2, v2)) = validate::parse_env_arg(&arg) {
        assert_eq!(format!("{k2}={v2}"), arg);
        assert!(validate::env_entry(&k2, &v2).is_ok());
    }
}

fn url_ok(s: &str) {
    let _ = hangar::base::dialect::Dialect::of(s);
    let _ = hangar::base::db::sqlite_path(s);
    let _ = hangar::base::config::expand(s, &|k: &str| (k == "PORT").then(|| "14000".to_string()));
    // A refused --db never repeats a URL (it may carry a password).
    match validate::db_method(s) {
        Ok(()) => assert!(
            matches!(s, "new-database" | "schema") || hangar::base::dialect::Dialect::of(s).is_some(),
            "{s:?}"
        ),
        Err(e) => {
            if s.contains("://") {
                // The same words for every URL: nothing of it is repeated.
                let same = format!("this URL is not accepted; {}", validate::DB_RULE);
                assert_eq!(e.message, same);
            }
        }
    }
    // Redaction: what is shown carries no password.
    let shown = hangar::store::provision::redact(s);
    if let Ok(u) = url::Url::parse(&shown) {
        assert!(
            matches!(u.password(), None | Some("***")),
            "{s:?} -> {shown:?}"
        );
    }
    let db = AppDb {
        method: DbMethod::Url,
        url: s.to_string(),
        schema: None,
        owned: Owned::default(),
    };
    let described = db.describe();
    let env = db.env();
    if hangar::base::dialect::Dialect::of(s) != Some(hangar::base::dialect::Dialect::Sqlite) {
        if let Ok(u) = url::Url::parse(&described) {
            assert_eq!(u.password(), None, "{s:?} -> {described:?}");
        }
    }
    assert_eq!(env.get("DATABASE_URL").map(String::as_str), Some(s));
}

fuzz_target!(|input: (&str, &str, i64)| {
    let (a, b, n) = input;
    name_ok(a);
    domain_ok(a);
    env_ok(a, b);
    url_ok(a);
    if let Ok(p) = validate::port(n, &[13000, 13001]) {
        assert!(p >= 1024 && p != 13000 && p != 13001 && i64::from(p) == n);
    }
    if let Ok(s) = validate::idle_timeout(n) {
        assert!(s <= validate::MAX_IDLE_TIMEOUT && i64::from(s) == n);
    }
    if validate::display_name(a).is_ok() {
        assert!(a.chars().count() <= 100 && !a.chars().any(char::is_control));
    }
});

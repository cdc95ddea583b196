//! Validation of everything an operator types: names, domains, ports, env values.
//!
//! One place for each rule, used by the registry, the API and (through the API's
//! `/validate` answer) the UI, so a refusal reads the same everywhere.

use std::fmt;

/// A refused input: which field, and a sentence saying what is wrong and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl Invalid {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Invalid {
            field,
            message: message.into(),
        }
    }
}

/// The reserved name of the main app.
pub const MAIN: &str = "main";

pub const NAME_RULE: &str =
    "a name is a lowercase letter followed by up to 39 lowercase letters, digits, '_' or '-'";

/// docs/contracts.md: a lowercase letter followed by up to 39 lowercase letters, digits, `_` or `-`;
/// `main` is reserved.
pub fn name(name: &str) -> Result<(), Invalid> {
    let bad = |why: String| Err(Invalid::new("name", format!("{why}; {NAME_RULE}")));
    let mut chars = name.chars();
    match chars.next() {
        None => return bad("the name is empty".into()),
        Some(c) if !c.is_ascii_lowercase() => {
            return bad(format!("{name:?} does not start with a lowercase letter"))
        }
        _ => {}
    }
    if name.len() > 40 {
        return bad(format!(
            "{name:?} is {} characters long",
            name.chars().count()
        ));
    }
    if let Some(c) =
        chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return bad(format!("{name:?} contains {c:?}"));
    }
    if name == MAIN {
        return Err(Invalid::new(
            "name",
            "\"main\" is reserved for the main app; choose another name",
        ));
    }
    Ok(())
}

pub const DOMAIN_RULE: &str = "a domain is a host name such as app.example.com: labels of lowercase letters, digits and '-', separated by dots, the last one not a number; no port, no scheme, no IP address, and not localhost or a name under .localhost (Hangar gives every app NAME.localhost itself)";

/// A custom domain: a lowercase DNS host name with at least two labels, no port or scheme.
///
/// Never an IP address, in any spelling a browser reads as one (a last label that is a number:
/// `127.0.0.1`, `127.1`, `0x7f.1`), nor `localhost` or a name under it: those are the
/// front door's own addresses, and a domain catches every request whose Host it is (main and
/// every `/_app/` path included).
pub fn domain(domain: &str) -> Result<(), Invalid> {
    let bad = |why: String| Err(Invalid::new("domain", format!("{why}; {DOMAIN_RULE}")));
    if domain.is_empty() {
        return bad("the domain is empty".into());
    }
    if domain.len() > 253 {
        return bad("the domain is longer than 253 characters".into());
    }
    let unbracketed = domain
        .strip_prefix('[')
        .and_then(|d| d.strip_suffix(']'))
        .unwrap_or(domain);
    if unbracketed.parse::<std::net::IpAddr>().is_ok() {
        return bad(format!("{domain:?} is an IP address, not a domain"));
    }
    if domain.contains("://") || domain.contains('/') || domain.contains(':') {
        return bad(format!("{domain:?} is not a bare host name"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return bad(format!("{domain:?} has a single label"));
    }
    for label in &labels {
        let ok_chars = label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if label.is_empty()
            || label.len() > 63
            || !ok_chars
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return bad(format!("{domain:?} has an invalid label {label:?}"));
        }
    }
    let last = labels[labels.len() - 1];
    let hex = last
        .strip_prefix("0x")
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    if hex || last.bytes().all(|b| b.is_ascii_digit()) {
        return bad(format!(
            "{domain:?} ends in a number, which browsers read as an IP address"
        ));
    }
    if last == "localhost" {
        return bad(format!(
            "{domain:?} is under .localhost, which is Hangar's own (NAME.localhost reaches each app already)"
        ));
    }
    Ok(())
}

pub const PORT_RULE: &str =
    "a port is a number from 1024 to 65535, other than the proxy's and the API's";

/// An app's own port. Ports below 1024 need privileges Hangar does not ask for.
pub fn port(port: i64, reserved: &[u16]) -> Result<u16, Invalid> {
    if !(1024..=65535).contains(&port) {
        return Err(Invalid::new(
            "port",
            format!("{port} is out of range; {PORT_RULE}"),
        ));
    }
    let p = port as u16;
    if reserved.contains(&p) {
        return Err(Invalid::new(
            "port",
            format!("{port} is used by Hangar itself; {PORT_RULE}"),
        ));
    }
    Ok(p)
}

/// Variables Hangar gives every app; an app's own env may not override them.
pub const RESERVED_ENV: &[&str] = &[
    "PORT",
    "APP_PORT",
    "APP_KEY",
    "DATABASE_URL",
    "DB_DIALECT",
    "DB_HOST",
    "DB_PORT",
    "DB_DATABASE",
    "DB_USER",
    "DB_PASSWORD",
    "DB_SCHEMA",
    "DB_STORAGE",
];

/// Variables that make a program load or run code it names: the dynamic loader's and libc's
/// (ld.so(8) "secure-execution mode", glibc's list of variables it drops for setuid programs),
/// the shells', and the interpreters' start-up options and library paths (the same names sudo
/// removes from a command's environment: sudoers(5), `env_reset`, and sudo's table of unsafe
/// variables). A name ending in `_` is a prefix (`LD_` is every `LD_*`). An app's env from
/// outside the operator's own hands (a backup archive) never brings these: see
/// [`runs_code`].
pub const CODE_ENV: &[&str] = &[
    // The loader and libc.
    "LD_",
    "GCONV_PATH",
    "GETCONF_DIR",
    "HOSTALIASES",
    "LOCALDOMAIN",
    "LOCPATH",
    "MALLOC_TRACE",
    "NIS_PATH",
    "NLSPATH",
    "RESOLV_HOST_CONF",
    "RES_OPTIONS",
    "TZDIR",
    // Which program a name runs.
    "PATH",
    // Shells.
    "BASH_ENV",
    "ENV",
    "BASH_FUNC_",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "IFS",
    "CDPATH",
    "GLOBIGNORE",
    "ZDOTDIR",
    // Node.js.
    "NODE_OPTIONS",
    "NODE_PATH",
    // Python.
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PYTHONINSPECT",
    "PYTHONUSERBASE",
    "PYTHONBREAKPOINT",
    // Perl.
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "PERL5DB",
    "PERLIO_DEBUG",
    // Ruby.
    "RUBYOPT",
    "RUBYLIB",
    // Java.
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
];

/// Does the variable `key` make a program load or run code it names ([`CODE_ENV`])?
pub fn runs_code(key: &str) -> bool {
    CODE_ENV.iter().any(|c| {
        if c.ends_with('_') {
            key.starts_with(c)
        } else {
            key == *c
        }
    })
}

pub const ENV_RULE: &str = "an env entry is KEY=VALUE where KEY is a letter or '_' followed by letters, digits or '_', not one Hangar sets itself (PORT, APP_PORT, APP_KEY, DATABASE_URL, DB_*, HANGAR_*), and VALUE has no NUL byte";

/// One `--env KEY=VALUE` entry (or an entry of the API's `env` object).
pub fn env_entry(key: &str, value: &str) -> Result<(), Invalid> {
    let bad = |why: String| Err(Invalid::new("env", format!("{why}; {ENV_RULE}")));
    let mut chars = key.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') || key.len() > 128 {
        return bad(format!("{key:?} is not a valid variable name"));
    }
    if RESERVED_ENV.contains(&key) || key.starts_with("HANGAR_") {
        return bad(format!("{key} is set by Hangar"));
    }
    if value.contains('\0') {
        return bad(format!("the value of {key} contains a NUL byte"));
    }
    if value.len() > 32 * 1024 {
        return bad(format!("the value of {key} is longer than 32 KiB"));
    }
    Ok(())
}

/// Split a `KEY=VALUE` argument.
pub fn parse_env_arg(arg: &str) -> Result<(String, String), Invalid> {
    match arg.split_once('=') {
        Some((k, v)) => {
            env_entry(k, v)?;
            Ok((k.to_string(), v.to_string()))
        }
        None => Err(Invalid::new(
            "env",
            format!("{arg:?} has no '='; {ENV_RULE}"),
        )),
    }
}

pub const DB_RULE: &str =
    "accepted: new-database, schema, or a postgres://, mysql:// or sqlite: URL";

/// Where an app's database is (`--db`, the API's `db`): `new-database`, `schema`, or a URL of a
/// known dialect. Only the form is checked here; a URL is tested by connecting to it.
pub fn db_method(m: &str) -> Result<(), Invalid> {
    if matches!(m, "new-database" | "schema") || crate::base::dialect::Dialect::of(m).is_some() {
        return Ok(());
    }
    // A URL may carry a password: never repeat it.
    let shown = if m.contains("://") {
        "this URL".to_string()
    } else {
        format!("{m:?}")
    };
    Err(Invalid::new(
        "db",
        format!("{shown} is not accepted; {DB_RULE}"),
    ))
}

pub const DISPLAY_NAME_RULE: &str =
    "a display name is up to 100 characters without control characters";

pub fn display_name(s: &str) -> Result<(), Invalid> {
    if s.chars().count() > 100 || s.chars().any(|c| c.is_control()) {
        return Err(Invalid::new(
            "display_name",
            format!("{s:?} is not accepted; {DISPLAY_NAME_RULE}"),
        ));
    }
    Ok(())
}

/// The longest idle timeout accepted: a week.
pub const MAX_IDLE_TIMEOUT: u32 = 7 * 86_400;

/// An idle timeout in seconds: 0 (off) or 1 to a week.
pub fn idle_timeout(secs: i64) -> Result<u32, Invalid> {
    match u32::try_from(secs) {
        Ok(s) if s <= MAX_IDLE_TIMEOUT => Ok(s),
        _ => Err(Invalid::new(
            "idle_timeout",
            format!("{secs} is not accepted; an idle timeout is a number of seconds from 1 to {MAX_IDLE_TIMEOUT} (a week), or 0 for never"),
        )),
    }
}

/// The smallest memory limit accepted: below this no runtime boots.
pub const MIN_MEMORY_MAX: u64 = 4 * 1024 * 1024;

/// A size as an operator writes it: bytes (`1048576`), or a number with a binary unit `K`, `M`,
/// `G` or `T` (`KiB`, `MB`… read the same: 1024-based), case-insensitive, e.g. `600M`, `1.5G`.
/// `field` names the setting in a refusal.
pub fn size(field: &'static str, s: &str) -> Result<u64, Invalid> {
    let refuse = || {
        Invalid::new(
            field,
            format!("{s:?} is not a size; accepted: a number of bytes, or a number with K, M, G or T (1024-based), such as 600M or 1.5G"),
        )
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(refuse()),
    };
    if num.is_empty() || num.starts_with('.') || num.matches('.').count() > 1 {
        return Err(refuse());
    }
    let value: f64 = num.parse().map_err(|_| refuse())?;
    let bytes = value * mult as f64;
    if !bytes.is_finite() || bytes > u64::MAX as f64 / 2.0 {
        return Err(refuse());
    }
    Ok(bytes as u64)
}

/// A size as [`size`] reads it back, in the largest unit that holds it exactly (`600M`,
/// `1536K`, `0`): what `hangar dump` writes.
pub fn size_text(bytes: u64) -> String {
    for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if bytes != 0 && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// A per-app memory limit: a [`size`] of at least [`MIN_MEMORY_MAX`]; 0 means none.
pub fn memory_max(s: &str) -> Result<Option<u64>, Invalid> {
    match size("memory_max", s)? {
        0 => Ok(None),
        b if b < MIN_MEMORY_MAX => Err(Invalid::new(
            "memory_max",
            format!("{s:?} is below the smallest limit, 4M; give a larger size, or 0 for none"),
        )),
        b => Ok(Some(b)),
    }
}

/// A CPU priority: a nice value from -20 (first) to 19 (last); 0 is the default.
pub fn nice(n: i64) -> Result<i32, Invalid> {
    match i32::try_from(n) {
        Ok(v) if (-20..=19).contains(&v) => Ok(v),
        _ => Err(Invalid::new(
            "nice",
            format!("{n} is not accepted; a nice value is a number from -20 (highest priority) to 19 (lowest), 0 the default"),
        )),
    }
}

/// A size in a request: a number of bytes, or the text [`size`] reads.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum SizeInput {
    Bytes(u64),
    Text(String),
}

impl SizeInput {
    /// The memory limit it asks for (`None`: no limit).
    pub fn memory_max(&self) -> Result<Option<u64>, Invalid> {
        match self {
            SizeInput::Bytes(b) => memory_max(&b.to_string()),
            SizeInput::Text(s) => memory_max(s),
        }
    }
}

pub const SCHEMA_RULE: &str =
    "a schema name is a letter or '_' followed by up to 62 letters, digits, '_' or '$'";

/// A PostgreSQL schema name Hangar puts into SQL and dumps: a plain identifier, never empty.
pub fn schema_name(s: &str) -> Result<(), Invalid> {
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if first_ok && rest_ok && s.len() <= 63 {
        return Ok(());
    }
    Err(Invalid::new(
        "db_schema",
        format!("{s:?} is not accepted; {SCHEMA_RULE}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_that_run_code_are_known_by_name_and_by_prefix() {
        for k in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "BASH_FUNC_x%%",
            "NODE_OPTIONS",
            "PYTHONSTARTUP",
            "PERL5OPT",
            "RUBYOPT",
            "BASH_ENV",
            "ENV",
            "PATH",
        ] {
            assert!(runs_code(k), "{k}");
        }
        for k in [
            "LANG",
            "NODE_ENV",
            "ENVIRONMENT",
            "MY_PATH",
            "LDAP_URL",
            "TZ",
        ] {
            assert!(!runs_code(k), "{k}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size("x", "1048576"), Ok(1 << 20));
        assert_eq!(size("x", "600M"), Ok(600 << 20));
        assert_eq!(size("x", "600MiB"), Ok(600 << 20));
        assert_eq!(size("x", "1.5g"), Ok(3 << 29));
        assert_eq!(size("x", "2 GB"), Ok(2 << 30));
        for bad in ["", "M", "1.2.3M", "12Q", "-1", "1e9", ".5G", "1,5G"] {
            let e = size("memory_max", bad).unwrap_err();
            assert_eq!(e.field, "memory_max", "{bad}");
            assert!(e.message.contains("600M"), "{bad}: {}", e.message);
        }
        assert_eq!(memory_max("0"), Ok(None));
        for b in [0, 1, 1023, 4 << 20, 600 << 20, 1536 << 10, 3 << 29, 2 << 40] {
            assert_eq!(size("x", &size_text(b)), Ok(b), "{}", size_text(b));
        }
        assert_eq!(size_text(600 << 20), "600M");
        assert_eq!(size_text(3 << 29), "1536M");
        assert!(memory_max("1M").is_err());
        assert_eq!(SizeInput::Bytes(64 << 20).memory_max(), Ok(Some(64 << 20)));
        assert_eq!(nice(19), Ok(19));
        assert_eq!(nice(-20), Ok(-20));
        assert!(nice(20).is_err() && nice(-21).is_err());
    }

    #[test]
    fn schema_names() {
        for ok in ["hangar_a", "_x", "A$1", &"s".repeat(63)] {
            assert!(schema_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a\"b", "a b", &"s".repeat(64)] {
            let e = schema_name(bad).unwrap_err();
            assert_eq!(e.field, "db_schema");
            assert!(e.message.contains("schema name"), "{}", e.message);
        }
    }

    #[test]
    fn names() {
        for ok in [
            "a",
            "a1",
            "a_b-c",
            "abcdefghijabcdefghijabcdefghijabcdefghij",
        ] {
            assert_eq!(name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "A",
            "a.b",
            "a/b",
            "../x",
            "main",
            "_a",
            "a b",
            "abcdefghijabcdefghijabcdefghijabcdefghijk",
            "é",
        ] {
            let e = name(bad).unwrap_err();
            assert_eq!(e.field, "name");
            assert!(
                e.message.contains("lowercase letter") || e.message.contains("reserved"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn domains() {
        for ok in [
            "a.example.com",
            "shop.test",
            "1.example.com",
            "x.0xz",
            "localhost.example",
        ] {
            assert_eq!(domain(ok), Ok(()), "{ok}");
        }
        // The front door's own addresses: IP literals in any spelling, localhost and below.
        for (bad, why) in [
            ("127.0.0.1", "IP address"),
            ("[::1]", "IP address"),
            ("::1", "IP address"),
            ("[fe80::1]", "IP address"),
            ("10.1.2.3", "IP address"),
            ("127.1", "number"),
            ("0x7f.1", "number"),
            ("a.0x7f", "number"),
            ("x-1.localhost", ".localhost"),
            ("a.b.localhost", ".localhost"),
        ] {
            let e = domain(bad).unwrap_err();
            assert!(e.message.contains(why), "{bad}: {e}");
            assert!(
                e.message.contains("app.example.com"),
                "says what is accepted: {e}"
            );
        }
        for bad in [
            "",
            "localhost",
            "http://a.com",
            "a.com:80",
            "A.com",
            "-a.com",
            "a..com",
            "a.com/x",
        ] {
            assert!(domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(port(14000, &[13000]), Ok(14000));
        assert!(port(80, &[]).is_err());
        assert!(port(70000, &[]).is_err());
        assert!(port(13000, &[13000])
            .unwrap_err()
            .message
            .contains("Hangar itself"));
    }

    #[test]
    fn env() {
        assert_eq!(
            parse_env_arg("FOO=bar=baz"),
            Ok(("FOO".into(), "bar=baz".into()))
        );
        assert!(parse_env_arg("FOO").is_err());
        assert!(parse_env_arg("1X=a").is_err());
        assert!(parse_env_arg("PORT=1").is_err());
        assert!(parse_env_arg("HANGAR_APP=x").is_err());
        assert!(parse_env_arg("A=\0").is_err());
    }

    proptest::proptest! {
        #[test]
        fn name_rule_holds_for_any_input(s in "\\PC{0,60}") {
            let accepted = name(&s).is_ok();
            let by_rule = s != "main"
                && (1..=40).contains(&s.len())
                && s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
            proptest::prop_assert_eq!(accepted, by_rule);
            if accepted {
                // Safe as a path segment and a URL segment.
                proptest::prop_assert!(!s.contains('/') && !s.contains('.') && !s.contains('%'));
            }
        }

        #[test]
        fn domains_never_carry_paths_ports_or_schemes(s in "\\PC{0,80}") {
            if domain(&s).is_ok() {
                proptest::prop_assert!(!s.contains('/') && !s.contains(':') && !s.contains('@') && s.contains('.'));
                proptest::prop_assert!(s.parse::<std::net::IpAddr>().is_err());
                proptest::prop_assert!(!s.ends_with(".localhost"));
            }
        }

        #[test]
        fn env_entries_never_inject(k in "\\PC{0,20}", v in "\\PC{0,40}") {
            if env_entry(&k, &v).is_ok() {
                proptest::prop_assert!(!k.contains('=') && !k.contains('\0') && !v.contains('\0'));
                proptest::prop_assert!(!RESERVED_ENV.contains(&k.as_str()) && !k.starts_with("HANGAR_"));
            }
        }

        #[test]
        fn ports_in_range(p in proptest::num::i64::ANY) {
            if let Ok(q) = port(p, &[13000]) {
                proptest::prop_assert!(q >= 1024 && q != 13000);
            }
        }
    }
}

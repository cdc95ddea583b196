//! Each app's database connection: what it is, what Hangar made for it, and the environment
//! the app is given to reach it.
//!
//! The embedded default is one SQLite file per app under `apps/<name>/`. The data-service
//! methods (new database, schema, attached URL) build on the same [`AppDb`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::base::dialect::Dialect;

/// How the operator asked for the app's database (`--db`: new-database, schema or a URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DbMethod {
    NewDatabase,
    Schema,
    Url,
}

impl DbMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            DbMethod::NewDatabase => "new-database",
            DbMethod::Schema => "schema",
            DbMethod::Url => "url",
        }
    }
}

/// What Hangar created for an app, and so may drop with `delete --drop-db`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owned {
    pub file: Option<PathBuf>,
    pub database: Option<String>,
    pub role: Option<String>,
    pub schema: Option<String>,
}

impl Owned {
    pub fn is_empty(&self) -> bool {
        *self == Owned::default()
    }
}

/// An app's database. Kept in the registry as JSON; the URL holds the password, so this type is
/// never serialised into an API answer (see [`AppDb::describe`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppDb {
    pub method: DbMethod,
    /// The full connection URL, password included.
    pub url: String,
    pub schema: Option<String>,
    pub owned: Owned,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Invalid(crate::base::validate::Invalid),
    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl AppDb {
    /// The embedded default: a new SQLite file in the app's data folder.
    pub fn sqlite_file(data_dir: &Path) -> AppDb {
        let path = data_dir.join("db.sqlite");
        AppDb {
            method: DbMethod::NewDatabase,
            url: format!("sqlite://{}?mode=rwc", path.display()),
            schema: None,
            owned: Owned {
                file: Some(path),
                ..Owned::default()
            },
        }
    }

    pub fn dialect(&self) -> Option<Dialect> {
        Dialect::of(&self.url)
    }

    /// The dialect's name, `unknown` for a URL of none.
    fn dialect_name(&self) -> &'static str {
        self.dialect().map_or("unknown", Dialect::as_str)
    }

    /// A password-free description for lists and API answers.
    pub fn describe(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(u) if u.scheme() == "sqlite" => {
                format!("sqlite:{}", sqlite_path(&self.url).display())
            }
            Ok(mut u) => {
                let _ = u.set_password(None);
                u.set_query(None);
                match &self.schema {
                    Some(s) => format!("{u} (schema {s})"),
                    None => u.to_string(),
                }
            }
            Err(_) => format!("{} database", self.dialect_name()),
        }
    }

    /// The variables an app is given to reach its database (docs/contracts.md: the names NocoBase reads).
    pub fn env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert("DATABASE_URL".into(), self.url.clone());
        env.insert("DB_DIALECT".into(), self.dialect_name().into());
        if self.dialect() == Some(Dialect::Sqlite) {
            env.insert(
                "DB_STORAGE".into(),
                sqlite_path(&self.url).display().to_string(),
            );
        } else if let Ok(u) = url::Url::parse(&self.url) {
            env.insert("DB_HOST".into(), u.host_str().unwrap_or("").into());
            // A URL of no known dialect is given 3306, as it always was.
            let port = u
                .port()
                .or(self.dialect().and_then(Dialect::default_port))
                .unwrap_or(3306);
            env.insert("DB_PORT".into(), port.to_string());
            env.insert(
                "DB_DATABASE".into(),
                u.path().trim_start_matches('/').into(),
            );
            env.insert("DB_USER".into(), decode(u.username()));
            env.insert("DB_PASSWORD".into(), decode(u.password().unwrap_or("")));
        }
        if let Some(s) = &self.schema {
            env.insert("DB_SCHEMA".into(), s.clone());
        }
        env
    }
}

fn decode(s: &str) -> String {
    // Userinfo in a URL is percent-encoded; apps want the raw value.
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The file of a `sqlite:` URL.
pub fn sqlite_path(url: &str) -> PathBuf {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let rest = rest.split('?').next().unwrap_or("");
    PathBuf::from(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_env() {
        let db = AppDb::sqlite_file(Path::new("/h/apps/a1"));
        let env = db.env();
        assert_eq!(env["DB_DIALECT"], "sqlite");
        assert_eq!(env["DB_STORAGE"], "/h/apps/a1/db.sqlite");
        assert_eq!(
            env["DATABASE_URL"],
            "sqlite:///h/apps/a1/db.sqlite?mode=rwc"
        );
        assert_eq!(db.describe(), "sqlite:/h/apps/a1/db.sqlite");
    }

    #[test]
    fn postgres_env_and_description_hide_nothing_but_the_password() {
        let db = AppDb {
            method: DbMethod::Url,
            url: "postgres://app%40x:s%3Acret@127.0.0.1:5433/shop".into(),
            schema: None,
            owned: Owned::default(),
        };
        let env = db.env();
        assert_eq!(env["DB_USER"], "app@x");
        assert_eq!(env["DB_PASSWORD"], "s:cret");
        assert_eq!(env["DB_PORT"], "5433");
        assert_eq!(env["DB_DATABASE"], "shop");
        assert!(!db.describe().contains("cret"), "{}", db.describe());
    }
}

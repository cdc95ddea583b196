//! Which database server a connection URL names.
//!
//! Invariant: one mapping from a name (a URL's scheme, NocoBase's `dialect` option) to a
//! [`Dialect`], and one spelling of each dialect ([`Dialect::as_str`], also its serde form and
//! what an app gets in `DB_DIALECT`): MariaDB is `mysql`.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// PostgreSQL: `postgres://` or `postgresql://`.
    Postgres,
    /// MySQL or MariaDB: `mysql://` or `mariadb://`.
    Mysql,
    /// SQLite: `sqlite:`.
    Sqlite,
}

impl Dialect {
    /// The dialect of a connection URL's scheme.
    pub fn of(url: &str) -> Option<Dialect> {
        Dialect::named(url.split_once(':')?.0)
    }

    /// The dialect a name means: `postgres`/`postgresql`, `mysql`/`mariadb`, `sqlite`.
    pub fn named(name: &str) -> Option<Dialect> {
        match name {
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            "mysql" | "mariadb" => Some(Dialect::Mysql),
            "sqlite" => Some(Dialect::Sqlite),
            _ => None,
        }
    }

    /// `postgres`, `mysql` or `sqlite`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// The port a URL of this dialect without one means (SQLite has none).
    pub fn default_port(self) -> Option<u16> {
        match self {
            Dialect::Postgres => Some(5432),
            Dialect::Mysql => Some(3306),
            Dialect::Sqlite => None,
        }
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_names_map_to_todays_strings() {
        assert_eq!(Dialect::of("postgresql://h/d"), Some(Dialect::Postgres));
        assert_eq!(
            Dialect::of("mariadb://h/d").map(Dialect::as_str),
            Some("mysql")
        );
        assert_eq!(Dialect::of("sqlite:///a.db"), Some(Dialect::Sqlite));
        assert_eq!(Dialect::of("redis://h"), None);
        assert_eq!(Dialect::of("postgres"), None);
        assert_eq!(
            serde_json::to_string(&Dialect::Mysql).ok().as_deref(),
            Some("\"mysql\"")
        );
        assert_eq!(Dialect::Postgres.to_string(), "postgres");
    }
}

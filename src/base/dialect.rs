//! Which database server a connection URL names.

/// `postgres`, `mysql` or `sqlite` from a connection URL's scheme.
pub fn dialect_of(url: &str) -> Option<&'static str> {
    let scheme = url.split_once(':')?.0;
    match scheme {
        "postgres" | "postgresql" => Some("postgres"),
        "mysql" | "mariadb" => Some("mysql"),
        "sqlite" => Some("sqlite"),
        _ => None,
    }
}

//! The API's paths as a client writes them, below `/api/v1`: one builder per route, used by the
//! typed client (`client.rs`). The server writes the same routes once, as templates, in
//! `api::router`; tests/it/client.rs calls every builder through the client against a real engine.
//!
//! Invariant: a name or id given to a builder is percent-encoded as one path segment, so no
//! value ever changes which route is asked.

pub const ENGINE: &str = "/engine";
pub const APPS: &str = "/apps";
pub const UPGRADE_ALL: &str = "/upgrade";
pub const RELOAD: &str = "/reload";
pub const EVENTS: &str = "/events";
pub const KILL: &str = "/kill";
pub const VALIDATE_NAME: &str = "/validate/name";
pub const DB_TEST: &str = "/db/test";
pub const BACKUPS: &str = "/backups";
pub const RESTORE: &str = "/restore";
pub const IMPORT_NOCOBASE: &str = "/import/nocobase";
pub const APPLY: &str = "/apply";
pub const LOGIN_CODE: &str = "/login-code";
pub const METRICS_STREAM: &str = "/metrics/stream";
pub const HOST: &str = "/host";

/// `/apps/{name}`: one app (GET, PATCH, DELETE).
pub fn app(name: &str) -> String {
    format!("/apps/{}", seg(name))
}

/// `/apps/{name}/{what}`: `start`, `stop`, `restart`, `upgrade`, `exec`, `backup`, `logs`,
/// `logs/follow`, `logs/search`, `metrics`.
fn app_route(name: &str, what: &str) -> String {
    format!("{}/{what}", app(name))
}

pub fn start(name: &str) -> String {
    app_route(name, "start")
}

pub fn stop(name: &str) -> String {
    app_route(name, "stop")
}

pub fn restart(name: &str) -> String {
    app_route(name, "restart")
}

pub fn upgrade(name: &str) -> String {
    app_route(name, "upgrade")
}

pub fn exec(name: &str) -> String {
    app_route(name, "exec")
}

pub fn backup(name: &str) -> String {
    app_route(name, "backup")
}

pub fn logs(name: &str) -> String {
    app_route(name, "logs")
}

pub fn follow_logs(name: &str) -> String {
    app_route(name, "logs/follow")
}

pub fn search_logs(name: &str) -> String {
    app_route(name, "logs/search")
}

/// `name` may be `@host` for the machine.
pub fn metrics(name: &str) -> String {
    app_route(name, "metrics")
}

/// `/export/{kind}`: `nginx` or `kubernetes`.
pub fn export(kind: &str) -> String {
    format!("/export/{}", seg(kind))
}

pub fn job(id: &str) -> String {
    format!("/jobs/{}", seg(id))
}

/// A path segment: names are validated by the engine, but never let one change the path.
pub fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_stays_one_segment() {
        assert_eq!(app("notes"), "/apps/notes");
        assert_eq!(start("a/../kill"), "/apps/a%2F%2E%2E%2Fkill/start");
        assert_eq!(metrics("@host"), "/apps/%40host/metrics");
        assert_eq!(job("x?y#z"), "/jobs/x%3Fy%23z");
        assert_eq!(export("nginx"), "/export/nginx");
    }
}

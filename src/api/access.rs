//! Who may ask the API port: the Host and Origin checks, and the bearer credential a request
//! carries. Shared by the API's guard (`api::guard`) and the control panel's login (panel.rs).
//!
//! Invariant: a credential is only ever read from the `Authorization: Bearer` header, never from
//! a cookie (cookies ignore ports: every app on 127.0.0.1 would be sent one).

use axum::http::{header, HeaderMap};
use axum::response::Response;

use crate::api::error::{error, ErrorKind};

/// The Hosts the API answers to: its own loopback address, by name or number.
fn own_hosts(port: u16) -> [String; 3] {
    [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ]
}

/// Is the request's Host the API's own (no DNS rebinding)?
pub(crate) fn host_ok(port: u16, h: &HeaderMap) -> bool {
    let host = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    own_hosts(port).iter().any(|a| a == host)
}

/// The Host must be the API's own and an Origin, when sent, the control panel's (or the
/// desktop shell's built-in pages'); otherwise the refusal to answer.
pub(crate) fn own_origin(port: u16, h: &HeaderMap) -> Result<(), Response> {
    if !host_ok(port, h) {
        let host = h
            .get(header::HOST)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        return Err(error(
            ErrorKind::Forbidden,
            None,
            &format!("Host {host:?} is not this API's; use http://127.0.0.1:{port}"),
        ));
    }
    if let Some(origin) = h.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let ok = own_hosts(port)
            .iter()
            .any(|a| origin == format!("http://{a}"))
            || origin == "tauri://localhost"
            || origin == "http://tauri.localhost";
        if !ok {
            return Err(error(
                ErrorKind::Forbidden,
                None,
                &format!("Origin {origin:?} may not use this API"),
            ));
        }
    }
    Ok(())
}

/// The bearer credential of a request, if it carries one.
pub(crate) fn bearer(h: &HeaderMap) -> Option<&str> {
    h.get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

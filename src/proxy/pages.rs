//! Hangar's own answers on the proxy port: small HTML pages for people, JSON for programs.
//!
//! Invariant: everything an app or a visitor supplies is escaped before it goes into HTML.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::json;

use super::Body;
pub use crate::base::web::escape;

/// Does the client want a page (a browser) rather than data (a program)?
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

pub fn redirect(to: &str) -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

const STYLE: &str = "body{font:16px system-ui,sans-serif;margin:4rem auto;max-width:46rem;padding:0 1rem;color:#222}h1{font-size:1.4rem}pre{background:#f4f4f4;padding:.75rem;overflow:auto;max-height:24rem;font-size:13px;white-space:pre-wrap}.muted{color:#777}@media(prefers-color-scheme:dark){body{background:#111;color:#ddd}pre{background:#1c1c1c}}";

/// A complete HTML document of Hangar's own; `head` and `body` are already escaped HTML.
pub fn html(status: StatusCode, title: &str, head: &str, body: &str) -> Response<Body> {
    let doc = format!(
        "<!doctype html><html><head><meta charset=utf-8><meta name=viewport content=\"width=device-width\"><title>{t}</title><style>{STYLE}</style>{head}</head><body>{body}<p class=muted><small>Hangar</small></p></body></html>",
        t = escape(title),
    );
    let mut r = Response::new(full(doc));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// An error answer: a page for a browser, JSON (`{"error": {code, message, app, log}}`) for
/// anything else. `log` lines are shown under the message.
pub fn error(
    html_wanted: bool,
    status: StatusCode,
    code: &str,
    title: &str,
    message: &str,
    app: Option<&str>,
    log: &[String],
) -> Response<Body> {
    if html_wanted {
        let mut body = format!("<h1>{}</h1><p>{}</p>", escape(title), escape(message));
        if !log.is_empty() {
            body.push_str("<p>Last log lines:</p><pre>");
            for l in log {
                body.push_str(&escape(l));
                body.push('\n');
            }
            body.push_str("</pre>");
        }
        return html(status, title, "", &body);
    }
    let doc = json!({ "error": { "code": code, "message": message, "app": app, "log": log } });
    let mut r = Response::new(full(doc.to_string()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// 502: the app could not be reached, or dropped the connection before answering.
pub fn bad_gateway(html_wanted: bool, app: &str, why: &str) -> Response<Body> {
    error(
        html_wanted,
        StatusCode::BAD_GATEWAY,
        "bad_gateway",
        "Bad gateway",
        &format!("{app} did not answer: {why}"),
        Some(app),
        &[],
    )
}

/// 504: the app's answer did not begin within `upstream_timeout`.
pub fn gateway_timeout(
    html_wanted: bool,
    app: &str,
    timeout: std::time::Duration,
) -> Response<Body> {
    error(
        html_wanted,
        StatusCode::GATEWAY_TIMEOUT,
        "gateway_timeout",
        "Gateway timeout",
        &format!(
            "{app} did not begin its answer within {} s (upstream_timeout in hangar.toml).",
            timeout.as_secs()
        ),
        Some(app),
        &[],
    )
}

pub fn with_retry_after(mut r: Response<Body>, secs: u64) -> Response<Body> {
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn html_or_json() {
        let mut h = HeaderMap::new();
        assert!(!wants_html(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        assert!(wants_html(&h));
        let r = error(false, StatusCode::BAD_GATEWAY, "x", "T", "m", None, &[]);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    }
}

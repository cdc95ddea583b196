//! The few web helpers both front doors (the API and the proxy) need: HTML escaping of
//! anything a visitor or an app supplies, and removing Hangar's token cookie from a request.
//!
//! Invariant: a request the proxy forwards never carries the `hangar_token` cookie.

use hyper::header::{self, HeaderMap, HeaderValue};

/// The cookie the API's guard accepts in place of the bearer header.
pub const TOKEN_COOKIE: &str = "hangar_token";

/// Text made safe to put into HTML, in an element or an attribute.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Remove the API's cookie from a request the proxy is about to forward to an app: browsers send
/// a host's cookies to every port of that host, and an app must never see the token.
pub fn strip_token_cookie(h: &mut HeaderMap) {
    if !h
        .get_all(header::COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| without_token_cookie(s).is_some()))
    {
        return;
    }
    let cookies: Vec<HeaderValue> = h.get_all(header::COOKIE).iter().cloned().collect();
    h.remove(header::COOKIE);
    for v in cookies {
        match v.to_str().ok().and_then(without_token_cookie) {
            None => {
                h.append(header::COOKIE, v);
            }
            Some(rest) if rest.is_empty() => {}
            Some(rest) => {
                if let Ok(nv) = HeaderValue::from_str(&rest) {
                    h.append(header::COOKIE, nv);
                }
            }
        }
    }
}

/// One `Cookie` header's value without the API's cookie: `None` when it has none (keep the
/// header as it is), `Some("")` when nothing else is left (drop the header).
pub fn without_token_cookie(value: &str) -> Option<String> {
    let is_token = |c: &str| {
        c.strip_prefix(TOKEN_COOKIE)
            .is_some_and(|rest| rest.starts_with('='))
    };
    let parts = value.split(';').map(str::trim).filter(|c| !c.is_empty());
    if !parts.clone().any(is_token) {
        return None;
    }
    Some(
        parts
            .filter(|c| !is_token(c))
            .collect::<Vec<_>>()
            .join("; "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_cookie_never_reaches_an_app() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; hangar_token=secret; b=2"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("hangar_token=secret"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("c=3"));
        strip_token_cookie(&mut h);
        let all: Vec<&str> = h
            .get_all(header::COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(all, vec!["a=1; b=2", "c=3"]);
        let mut none = HeaderMap::new();
        strip_token_cookie(&mut none);
        assert!(none.get(header::COOKIE).is_none());
    }
}

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
/// a host's cookies to every port of that host, and an app must never see the token. Works on
/// the header's bytes: a value that is not text (any byte above 0x7f) loses the cookie too.
pub fn strip_token_cookie(h: &mut HeaderMap) {
    if !h
        .get_all(header::COOKIE)
        .iter()
        .any(|v| has_token_cookie(v.as_bytes()))
    {
        return;
    }
    let cookies: Vec<HeaderValue> = h.get_all(header::COOKIE).iter().cloned().collect();
    h.remove(header::COOKIE);
    for v in cookies {
        match without_token_cookie(v.as_bytes()) {
            None => {
                h.append(header::COOKIE, v);
            }
            Some(rest) if rest.is_empty() => {}
            Some(rest) => {
                // Bytes of a valid value, minus some: valid. Were it not, the header is dropped.
                if let Ok(nv) = HeaderValue::from_bytes(&rest) {
                    h.append(header::COOKIE, nv);
                }
            }
        }
    }
}

/// Is `c` (one `name=value` pair of a Cookie header) the API's cookie?
fn is_token(c: &[u8]) -> bool {
    c.strip_prefix(TOKEN_COOKIE.as_bytes())
        .is_some_and(|rest| rest.first() == Some(&b'='))
}

fn pairs(value: &[u8]) -> impl Iterator<Item = &[u8]> + Clone {
    value
        .split(|&b| b == b';')
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty())
}

fn has_token_cookie(value: &[u8]) -> bool {
    pairs(value).any(is_token)
}

/// One `Cookie` header's value without the API's cookie: `None` when it has none (keep the
/// header as it is), `Some(empty)` when nothing else is left (drop the header). On bytes.
pub fn without_token_cookie(value: &[u8]) -> Option<Vec<u8>> {
    if !has_token_cookie(value) {
        return None;
    }
    let mut out = Vec::with_capacity(value.len());
    for c in pairs(value).filter(|c| !is_token(c)) {
        if !out.is_empty() {
            out.extend_from_slice(b"; ");
        }
        out.extend_from_slice(c);
    }
    Some(out)
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

    #[test]
    fn a_cookie_header_that_is_not_text_loses_the_token_too() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_bytes(b"a=\xff; hangar_token=secret; b=2").unwrap(),
        );
        strip_token_cookie(&mut h);
        assert_eq!(h[header::COOKIE].as_bytes(), b"a=\xff; b=2");
        assert_eq!(
            without_token_cookie(b"hangar_token=x;\xfe"),
            Some(b"\xfe".to_vec())
        );
        assert_eq!(without_token_cookie(b"hangar_token_2=x; \xfe"), None);
    }
}

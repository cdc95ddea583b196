//! A request head through both proxy paths' rewrites (`hangar::proxy::heads_for_fuzzing`): the
//! fast path (src/proxy/fast.rs) forwards only what the general path (hyper, src/proxy/mod.rs)
//! would forward, and the app then gets the same head from either (the same request line, the
//! same headers with the same values; names compared without case, order kept within a name).
//! Whatever either path forwards keeps the rules: no `hangar_token` cookie, no client-sent
//! `Forwarded` or `X-Real-IP`, one `X-Forwarded-For` ending with the peer, one
//! `X-Forwarded-Proto: http`.
//!
//! Input: one byte of routing (bit 0: the path chose the app; bit 1: it strips its prefix; the
//! rest: the peer's last address byte), then the head.
#![no_main]

use std::net::SocketAddr;

use hangar::fuzzing::proxy_heads;
use libfuzzer_sys::fuzz_target;

/// A head as the app reads it: method, target, and the headers (lowercase names) sorted by
/// name, each name's values in the order sent.
type Head = (String, String, Vec<(String, Vec<u8>)>);

fn read(head: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; 256];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(n)) => assert_eq!(n, head.len(), "bytes after the head"),
        other => panic!("a forwarded head does not parse ({other:?}): {head:?}"),
    }
    let mut fields: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    (
        req.method.unwrap_or_default().to_string(),
        req.path.unwrap_or_default().to_string(),
        fields,
    )
}

fn values<'a>(head: &'a Head, name: &str) -> Vec<&'a [u8]> {
    head.2
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
        .collect()
}

fn keeps_the_rules(head: &Head, peer: &SocketAddr, what: &str) {
    for cookie in values(head, "cookie") {
        for pair in cookie.split(|&b| b == b';') {
            assert!(
                !pair.trim_ascii().starts_with(b"hangar_token="),
                "{what}: the token cookie reaches the app: {head:?}"
            );
        }
    }
    for dropped in [
        "forwarded",
        "x-real-ip",
        "x-forwarded-port",
        "x-forwarded-server",
    ] {
        assert!(
            values(head, dropped).is_empty(),
            "{what}: {dropped} passed: {head:?}"
        );
    }
    let xff = values(head, "x-forwarded-for");
    assert_eq!(xff.len(), 1, "{what}: {head:?}");
    assert!(
        xff[0].ends_with(peer.ip().to_string().as_bytes()),
        "{what}: {head:?}"
    );
    assert_eq!(
        values(head, "x-forwarded-proto"),
        [b"http"],
        "{what}: {head:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&route, head)) = data.split_first() else {
        return;
    };
    let (by_path, strip) = (route & 1 != 0, route & 2 != 0);
    let peer = SocketAddr::from(([10, 0, 0, route >> 2], 40000));
    let (fast, general) = proxy_heads(head, "shop", by_path, strip, peer);
    let general = general.map(|g| read(&g));
    if let Some(g) = &general {
        keeps_the_rules(g, &peer, "general");
    }
    if let Some(f) = fast {
        let f = read(&f);
        keeps_the_rules(&f, &peer, "fast");
        let Some(g) = &general else {
            panic!(
                "the fast path forwards what the general path does not: {:?}",
                String::from_utf8_lossy(head)
            );
        };
        assert_eq!(&f, g, "the two paths give the app different heads");
    }
});

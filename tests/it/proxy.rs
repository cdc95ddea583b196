//! The proxy, end to end: a real engine, real `hangar-demo` app processes, real HTTP and
//! WebSocket clients on the proxy port.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use reqwest::blocking::Client;
use reqwest::header::{ACCEPT, HOST, LOCATION, RETRY_AFTER, SET_COOKIE};
use serde_json::Value;

const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// A client that follows no redirects, so the proxy's own answers can be seen.
fn client() -> Client {
    Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap()
}

/// A browser's navigation to `url` (it asks for HTML).
fn navigate(c: &Client, url: String) -> reqwest::blocking::Response {
    c.get(url).header(ACCEPT, HTML).send().unwrap()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// One raw exchange on the proxy port: write `request`, read until the server closes or
/// stays quiet for a while.
fn raw(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        if out.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn each_routing_rule() {
    let e = TestEngine::start();
    e.ok(&["create", "shop", "--domain", "shop.test"]);
    e.ok(&["create", "blog"]);
    let c = client();
    let info = |host: &str, path: &str| -> (u16, Value) {
        let r = c.get(e.proxy_url(path)).header(HOST, host).send().unwrap();
        let status = r.status().as_u16();
        let text = r.text().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    };
    let here = format!("127.0.0.1:{}", e.proxy_port);

    // Everything else goes to the main app.
    let (s, v) = info(&here, "/api/info");
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["app"], "main");
    // The path chooses the app.
    let (s, v) = info(&here, "/_app/blog/api/info");
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["app"], "blog");
    // A custom domain, with or without a port, in any case.
    let (s, v) = info("shop.test", "/_app/shop/api/info");
    assert_eq!((s, v["app"].as_str()), (200, Some("shop")), "{v}");
    let (s, v) = info(&format!("SHOP.test:{}", e.proxy_port), "/api/info");
    assert_eq!(
        (s, v["app"].as_str()),
        (200, Some("shop")),
        "a keep-prefix app reached by its domain gets its prefix: {v}"
    );
    // <name>.localhost with any port, no DNS needed.
    let (s, v) = info("blog.localhost:9999", "/api/info");
    assert_eq!((s, v["app"].as_str()), (200, Some("blog")), "{v}");
    let (s, v) = info("blog.localhost", "/_app/blog/api/info");
    assert_eq!((s, v["app"].as_str()), (200, Some("blog")), "{v}");

    // Unknown apps get 404, by path and by host; main is not a sub-app path.
    for (host, path) in [
        (here.as_str(), "/_app/nope/"),
        ("nope.localhost:1234", "/"),
        (here.as_str(), "/_app/main/api/info"),
    ] {
        let r = c
            .get(e.proxy_url(path))
            .header(HOST, host)
            .header(ACCEPT, HTML)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "{host} {path}");
        assert!(r.text().unwrap().contains("No such app"));
    }
    let r = c.get(e.proxy_url("/_app/nope/x")).send().unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(json(&r.text().unwrap())["error"]["code"], "not_found");

    // The bare prefix moves under its slash, keeping the query.
    let r = c.get(e.proxy_url("/_app/blog?x=1")).send().unwrap();
    assert_eq!(r.status().as_u16(), 308);
    assert_eq!(r.headers()[LOCATION], "/_app/blog/?x=1");
}

/// An engine with two demo apps: `kept` (prefix kept, the default runtime) and `stripped` (a
/// runtime that mounts the app at its root and strips the prefix).
fn kept_and_stripped() -> TestEngine {
    let e = TestEngine::start_with(&demo_runtime(
        "rootapp",
        &["--mount", ""],
        "prefix = \"strip\"",
    ));
    e.ok(&["create", "kept"]);
    e.ok(&["create", "stripped", "--runtime", "rootapp"]);
    e
}

#[test]
fn keep_and_strip_rewrite_redirects_and_cookies_and_forward_headers() {
    let e = kept_and_stripped();
    let c = client();

    // keep: the app sees /_app/kept/… and answers with it; nothing to rewrite.
    let r = c
        .get(e.proxy_url("/_app/kept/api/redirect"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    assert_eq!(r.headers()[LOCATION], "/_app/kept/admin/");
    let r = c.get(e.proxy_url("/_app/kept/api/cookie")).send().unwrap();
    assert_eq!(r.headers()[SET_COOKIE], "demo=1; Path=/_app/kept/");

    // strip: the app lives at its root and says so; the proxy puts the prefix back.
    let r = c
        .get(e.proxy_url("/_app/stripped/api/info"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(json(&r.text().unwrap())["base_path"], "");
    let r = c
        .get(e.proxy_url("/_app/stripped/api/redirect"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    assert_eq!(r.headers()[LOCATION], "/_app/stripped/admin/");
    let r = c
        .get(e.proxy_url("/_app/stripped/api/cookie"))
        .send()
        .unwrap();
    assert_eq!(r.headers()[SET_COOKIE], "demo=1; Path=/_app/stripped/");
    // And the redirect leads somewhere real.
    let r = c.get(e.proxy_url("/_app/stripped/admin/")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // X-Forwarded-* as the app sees them; hop-by-hop headers do not reach it.
    for (path, prefix) in [
        ("/_app/kept/api/headers", "/_app/kept"),
        ("/_app/stripped/api/headers", "/_app/stripped"),
    ] {
        let r = c
            .get(e.proxy_url(path))
            .header("x-forwarded-for", "10.1.2.3")
            .header("connection", "keep-alive, x-secret")
            .header("x-secret", "hop")
            .send()
            .unwrap();
        let h = json(&r.text().unwrap());
        assert_eq!(h["x-forwarded-for"], "10.1.2.3, 127.0.0.1", "{h}");
        assert_eq!(
            h["x-forwarded-host"],
            format!("127.0.0.1:{}", e.proxy_port),
            "{h}"
        );
        assert_eq!(h["x-forwarded-proto"], "http", "{h}");
        assert_eq!(h["x-forwarded-prefix"], prefix, "{h}");
        assert!(h.get("x-secret").is_none(), "hop-by-hop header passed: {h}");
    }
    // By Host there is no public prefix.
    let r = c
        .get(e.proxy_url("/api/headers"))
        .header(HOST, "stripped.localhost")
        .send()
        .unwrap();
    let h = json(&r.text().unwrap());
    assert_eq!(h["x-forwarded-host"], "stripped.localhost");
    assert!(h.get("x-forwarded-prefix").is_none(), "{h}");
}

fn ws_url(e: &TestEngine, path: &str) -> String {
    format!("ws://127.0.0.1:{}{path}", e.proxy_port)
}

fn echo(ws: &mut tokio_tungstenite::tungstenite::WebSocket<impl Read + Write>, text: &str) {
    use tokio_tungstenite::tungstenite::Message;
    ws.send(Message::text(text)).unwrap();
    loop {
        match ws.read().unwrap() {
            Message::Text(t) => {
                assert_eq!(t.as_str(), text);
                return;
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

#[test]
fn websocket_echo_keeps_an_idle_app_awake_until_it_closes() {
    let e = TestEngine::start();
    e.ok(&["create", "chat", "--idle-timeout", "2"]);
    assert_eq!(e.status("chat"), "stopped");

    // The upgrade request wakes the dormant app and is held until it is ready.
    let (mut ws, resp) = tokio_tungstenite::tungstenite::connect(ws_url(&e, "/_app/chat/ws"))
        .expect("WebSocket through the proxy");
    assert_eq!(resp.status().as_u16(), 101);
    echo(&mut ws, "hello");
    assert_eq!(e.status("chat"), "running");

    // Twice the idle timeout with only an open socket: still running.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(e.status("chat"), "running", "an open WebSocket is activity");
    echo(&mut ws, "still there");
    ws.close(None).unwrap();
    let _ = ws.read();
    drop(ws);

    // Closed: it goes dormant after the timeout (not stopped by the operator).
    e.wait_status("chat", "stopped", Duration::from_secs(30));
    let (_, v) = e.api(reqwest::Method::GET, "/apps/chat", None);
    assert_eq!(v["desired"], "dormant", "{v}");
    assert!(
        e.log_text("chat").contains("going dormant"),
        "the log says why"
    );

    // A visit wakes it again.
    let (s, body) = e.get("/_app/chat/api/info");
    assert_eq!(s, 200, "{body}");
    assert_eq!(e.status("chat"), "running");
    assert_eq!(count(&e.log_text("chat"), " sys starting: "), 2);
}

#[test]
fn idle_stop_is_off_by_default_and_validated() {
    let e = TestEngine::start();
    let err = e.fails(&["create", "x1", "--idle-timeout=-5"]);
    assert!(err.contains("idle"), "{err}");
    let err = e.fails(&[
        "create",
        "x2",
        "--start-mode",
        "with-main",
        "--idle-timeout",
        "30",
    ]);
    assert!(err.contains("on-visit"), "{err}");
    e.ok(&["create", "x3"]);
    let (_, v) = e.api(reqwest::Method::GET, "/apps/x3", None);
    assert!(v["idle_timeout"].is_null(), "{v}");
    let (s, v) = e.api(
        reqwest::Method::PATCH,
        "/apps/x3",
        Some(serde_json::json!({ "idle_timeout": 30 })),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["idle_timeout"], 30);
    let (_, v) = e.api(
        reqwest::Method::PATCH,
        "/apps/x3",
        Some(serde_json::json!({ "idle_timeout": 0 })),
    );
    assert!(v["idle_timeout"].is_null(), "0 turns it off: {v}");
}

#[test]
fn ten_mib_bodies_stream_with_flat_proxy_memory() {
    let e = TestEngine::start();
    e.ok(&["create", "big"]);
    let c = client();
    // Warm up: the app runs, the pool has connections.
    let (s, _) = e.get("/_app/big/api/stream?mb=1");
    assert_eq!(s, 200);
    let pid = e.engine_pid().unwrap();
    let rss_before = proc_kib(pid, "VmRSS");

    // Three 10 MiB downloads at once, and a 10 MiB upload echoed back, all checked byte
    // for byte. Held whole, they would need 30-40 MiB in the proxy; streamed, it needs its
    // connection buffers (a few hundred KiB each) and its allocator's arenas.
    let downloads: Vec<_> = (0..3)
        .map(|_| {
            let url = e.proxy_url("/_app/big/api/stream?mb=10");
            let c = c.clone();
            std::thread::spawn(move || {
                let mut r = c.get(url).send().unwrap();
                assert_eq!(r.status().as_u16(), 200);
                let mut buf = vec![0u8; 64 * 1024];
                let mut total = 0usize;
                loop {
                    let n = r.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    for (i, b) in buf[..n].iter().enumerate() {
                        let at = (total + i) % (64 * 1024);
                        assert_eq!(*b as usize, at % 251, "byte {} changed", total + i);
                    }
                    total += n;
                }
                total
            })
        })
        .collect();
    const UP: usize = 10 << 20;
    struct Pattern(usize);
    impl Read for Pattern {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(UP - self.0);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = ((self.0 + i) % 253) as u8;
            }
            self.0 += n;
            Ok(n)
        }
    }
    let mut r = c
        .post(e.proxy_url("/_app/big/api/echo"))
        .body(reqwest::blocking::Body::new(Pattern(0)))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut back = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        for (i, b) in buf[..n].iter().enumerate() {
            assert_eq!(
                *b as usize,
                (back + i) % 253,
                "echoed byte {} changed",
                back + i
            );
        }
        back += n;
    }
    assert_eq!(back, UP);
    for d in downloads {
        assert_eq!(d.join().unwrap(), 10 << 20);
    }
    let peak = proc_kib(pid, "VmHWM");
    let rss_after = proc_kib(pid, "VmRSS");
    eprintln!("engine RSS {rss_before} KiB before, {rss_after} KiB after, peak {peak} KiB");
    assert!(
        rss_after < rss_before + 12 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    assert!(
        peak < rss_before + 16 * 1024,
        "peak RSS {peak} KiB, {rss_before} KiB before: bodies were buffered"
    );
}

#[test]
fn fifty_concurrent_first_requests_start_the_app_once() {
    let e = TestEngine::start_with(&demo_runtime("slowboot", &["--boot-delay-ms", "800"], ""));
    e.ok(&["create", "crowd", "--runtime", "slowboot"]);
    let url = e.proxy_url("/_app/crowd/api/info");
    let c = client();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(50));
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let (c, url, barrier) = (c.clone(), url.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let r = c
                    .get(url)
                    .header(ACCEPT, "application/json")
                    .send()
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.text().unwrap())
            })
        })
        .collect();
    for t in threads {
        let (status, body) = t.join().unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(json(&body)["app"], "crowd");
    }
    wait_until("the log file", Duration::from_secs(10), || {
        e.log_text("crowd").contains("ready in")
    });
    let log = e.log_text("crowd");
    assert_eq!(count(&log, " sys starting: "), 1, "{log}");
}

#[test]
fn waiting_page_for_browsers_and_held_requests_for_programs() {
    let mut toml = String::from("wake_timeout = 4\n");
    toml.push_str(&demo_runtime("boot1", &["--boot-delay-ms", "1500"], ""));
    toml.push_str(&demo_runtime("boot20", &["--boot-delay-ms", "20000"], ""));
    let e = TestEngine::start_with(&toml);
    e.ok(&["create", "page", "--runtime", "boot1"]);
    e.ok(&["create", "held", "--runtime", "boot1"]);
    e.ok(&["create", "late", "--runtime", "boot20"]);
    let c = client();

    // A browser navigation gets the waiting page at once.
    let r = navigate(&c, e.proxy_url("/_app/page/admin/"));
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key(RETRY_AFTER));
    let page = r.text().unwrap();
    assert!(page.contains("Starting page"), "{page}");
    // Its stream is under the app's own path, so it routes to the app.
    assert_eq!(
        stream_url_of(&page),
        "/_app/page/_hangar/wait/page",
        "{page}"
    );

    // Its status stream shows the startup log lines as they come, then says ready.
    let stream = c
        .get(e.proxy_url("/_app/page/_hangar/wait/page"))
        .send()
        .expect("status stream");
    assert_eq!(stream.status().as_u16(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let seen = read_stream(stream, "event: ready");
    assert!(
        seen.contains("event: ready"),
        "the stream ended before ready: {seen}"
    );
    assert!(seen.contains("event: state"), "{seen}");
    assert!(seen.contains("event: line"), "{seen}");
    assert!(seen.contains("booting: loading plugins"), "{seen}");
    // Then the page's reload reaches the app.
    let r = navigate(&c, e.proxy_url("/_app/page/admin/"));
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().unwrap().contains("page"));

    // A program is held until the app is ready…
    let r = c.get(e.proxy_url("/_app/held/api/info")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(json(&r.text().unwrap())["app"], "held");

    // …up to wake_timeout, then told to come back.
    let t0 = Instant::now();
    let r = c.get(e.proxy_url("/_app/late/api/info")).send().unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(t0.elapsed() >= Duration::from_secs(3));
    assert!(r.headers().contains_key(RETRY_AFTER));
    assert_eq!(json(&r.text().unwrap())["error"]["code"], "still_starting");
    assert_eq!(e.status("late"), "starting", "the start goes on");

    // An unknown name has no status stream.
    let r = c.get(e.proxy_url("/_hangar/wait/nope")).send().unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = c
        .get(e.proxy_url("/_app/nope/_hangar/wait/nope"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[test]
fn a_failing_start_gives_502_with_its_log_lines() {
    let mut toml = demo_runtime("broken", &["--fail-boot"], "restart_limit = 1");
    toml.push_str(&demo_runtime("flaky", &["--fail-boot"], ""));
    let e = TestEngine::start_with(&toml);
    e.ok(&["create", "web", "--runtime", "broken"]);
    e.ok(&["create", "api", "--runtime", "broken"]);
    e.ok(&["create", "retry", "--runtime", "flaky"]);
    let c = client();

    // A program gets JSON with the reason and the last log lines.
    let r = c.get(e.proxy_url("/_app/api/api/info")).send().unwrap();
    assert_eq!(r.status().as_u16(), 502);
    let v = json(&r.text().unwrap());
    assert_eq!(v["error"]["code"], "start_failed", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exited with code 1"),
        "{v}"
    );
    let log = v["error"]["log"].to_string();
    assert!(log.contains("simulated failure"), "{v}");

    // A browser gets a page, possibly after the waiting page (as a browser would follow it).
    let get_page = || {
        c.get(e.proxy_url("/_app/web/"))
            .header(ACCEPT, HTML)
            .send()
            .unwrap()
    };
    let mut r = get_page();
    if r.status().as_u16() == 503 {
        let url = stream_url_of(&r.text().unwrap());
        assert_eq!(url, "/_app/web/_hangar/wait/web");
        let seen = read_stream(c.get(e.proxy_url(&url)).send().unwrap(), "event: failed");
        assert!(
            seen.contains("event: failed"),
            "the stream ended without failed: {seen}"
        );
        r = get_page();
    }
    assert_eq!(r.status().as_u16(), 502);
    let page = r.text().unwrap();
    assert!(page.contains("failed to start"), "{page}");
    assert!(page.contains("simulated failure"), "{page}");
    assert_eq!(e.status("web"), "error");

    // An app that Hangar keeps retrying: the visitor is not held through the retries.
    let r = c.get(e.proxy_url("/_app/retry/api/info")).send().unwrap();
    assert_eq!(r.status().as_u16(), 502);
    let v = json(&r.text().unwrap());
    assert!(
        v["error"]["log"].to_string().contains("simulated failure"),
        "{v}"
    );
}

#[test]
fn an_app_the_operator_stopped_is_not_woken() {
    let e = TestEngine::start();
    e.ok(&["create", "shut"]);
    e.ok(&["start", "shut"]);
    e.ok(&["stop", "shut"]);
    let c = client();
    let r = c.get(e.proxy_url("/_app/shut/api/info")).send().unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(json(&r.text().unwrap())["error"]["code"], "stopped");
    let r = navigate(&c, e.proxy_url("/_app/shut/"));
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.text().unwrap().contains("stopped by the operator"));
    assert_eq!(e.status("shut"), "stopped");
    assert_eq!(count(&e.log_text("shut"), " sys starting: "), 1);
}

#[test]
fn faults_502_504_and_other_apps_keep_being_served() {
    let e = TestEngine::start_with("upstream_timeout = 2\n");
    e.ok(&["create", "slow"]);
    e.ok(&["create", "dies"]);
    e.ok(&["create", "fine"]);
    for a in ["slow", "dies", "fine"] {
        e.ok(&["start", a]);
    }
    let c = client();

    // No answer within upstream_timeout: 504; meanwhile another app answers.
    let slow = {
        let (c, url) = (c.clone(), e.proxy_url("/_app/slow/api/slow?ms=6000"));
        std::thread::spawn(move || {
            let r = c.get(url).send().unwrap();
            (r.status().as_u16(), r.text().unwrap())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let (s, _) = e.get("/_app/fine/api/info");
    assert_eq!(s, 200, "one slow app holds up no other");
    let (s, body) = slow.join().unwrap();
    assert_eq!(s, 504, "{body}");
    assert_eq!(json(&body)["error"]["code"], "gateway_timeout");

    // The app dies in the middle of a request: 502.
    let cut = {
        let (c, url) = (c.clone(), e.proxy_url("/_app/dies/api/slow?ms=1500"));
        std::thread::spawn(move || {
            let r = c.get(url).send().unwrap();
            (r.status().as_u16(), r.text().unwrap())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let (s, _) = e.get("/_app/dies/api/exit?code=0");
    assert_eq!(s, 200);
    let (s, body) = cut.join().unwrap();
    assert_eq!(s, 502, "{body}");
    assert_eq!(json(&body)["error"]["code"], "bad_gateway");
    let (s, _) = e.get("/_app/fine/api/info");
    assert_eq!(s, 200);

    // Malformed requests and oversized headers get 4xx from the proxy, which keeps serving.
    let out = raw(e.proxy_port, b"GARBAGE\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    let mut big = b"GET /_app/fine/api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 100 * 1024));
    big.extend_from_slice(b"\r\n\r\n");
    let out = raw(e.proxy_port, &big);
    assert!(out.starts_with("HTTP/1.1 431"), "{out}");
    let (s, _) = e.get("/_app/fine/api/info");
    assert_eq!(s, 200);
}

#[test]
fn the_proxy_binds_loopback_by_default_and_all_interfaces_when_told() {
    // 127.0.0.2 is loopback too, but only a socket bound to all interfaces answers there.
    let e = TestEngine::start();
    assert!(TcpStream::connect(("127.0.0.1", e.proxy_port)).is_ok());
    assert!(
        TcpStream::connect(("127.0.0.2", e.proxy_port)).is_err(),
        "the default binding is 127.0.0.1 only"
    );
    drop(e);
    let e = TestEngine::start_with("proxy_bind = \"0.0.0.0\"\n");
    let r = client()
        .get(format!("http://127.0.0.2:{}/api/info", e.proxy_port))
        .send()
        .expect("the proxy answers on every interface");
    assert_eq!(r.status().as_u16(), 200);
    // Shared on a network it answers any address and the machine's host name, still no
    // stranger's name (DNS rebinding works on a LAN address as well).
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let machine = machine.trim();
    for (host, want) in [
        ("192.0.2.7".to_string(), 200),
        (format!("[2001:db8::1]:{}", e.proxy_port), 200),
        (machine.to_string(), 200),
        (format!("{machine}.local"), 200),
        ("rebind.attacker.example".to_string(), 421),
    ] {
        let r = client()
            .get(e.proxy_url("/api/info"))
            .header(HOST, &host)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{host}");
    }
    // The API stays on loopback only, whatever the proxy does.
    assert!(TcpStream::connect(("127.0.0.2", e.api_port)).is_err());
}

/// DNS rebinding: a web page anywhere makes a name of its own resolve to 127.0.0.1 and reads
/// the local apps through it. The proxy on a loopback bind answers only names that lead to this
/// machine (127.0.0.0/8, [::1], localhost, *.localhost, an app's own domain); any other Host
/// gets 421 and nothing of any app — the main app, a sub-app's path, the waiting page and its
/// stream, on the fast path (a running app, a plain GET) and the general one alike — and wakes
/// no app.
#[test]
fn a_host_that_does_not_lead_here_gets_421_and_no_app_output() {
    let e = TestEngine::start();
    e.ok(&["create", "shop", "--domain", "shop.test"]);
    e.ok(&["create", "lazy"]);
    e.wait_status("main", "running", Duration::from_secs(30));
    let c = client();
    let ask = |host: &str, path: &str, accept: &str| {
        let r = c
            .get(e.proxy_url(path))
            .header(HOST, host)
            .header(ACCEPT, accept)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let evil = "rebind.attacker.example";
    for host in [
        evil.to_string(),
        format!("{evil}:{}", e.proxy_port),
        format!("REBIND.attacker.example.:{}", e.proxy_port),
        "127.0.0.1.attacker.example".to_string(),
        "localhost.attacker.example".to_string(),
        "[::ffff:7f00:1]".to_string(),
    ] {
        for path in [
            "/",
            "/api/info",
            "/_app/shop/api/info",
            "/_app/lazy/",
            "/_app/lazy/_hangar/wait/lazy",
            "/_hangar/wait/main",
        ] {
            for accept in [HTML, "application/json"] {
                let (s, body) = ask(&host, path, accept);
                assert_eq!(s, 421, "{host} {path} {accept}: {body}");
                assert!(
                    !body.contains("\"app\":\"") && !body.contains("Starting"),
                    "no app output: {body}"
                );
            }
        }
    }
    // The fast path: a plain keep-alive GET to the running main app, then a second one (read
    // to the end: the second asks to close).
    let out = raw_all(
        e.proxy_port,
        format!(
            "GET /api/info HTTP/1.1\r\nHost: {evil}\r\n\r\nGET /api/info HTTP/1.1\r\nHost: {evil}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(count(&out, "HTTP/1.1 421"), 2, "{out}");
    assert!(!out.contains("\"app\":\""), "{out}");
    assert_eq!(
        e.status("lazy"),
        "stopped",
        "a misdirected request woke no app"
    );

    // Names that lead here are served.
    for (host, path, app) in [
        (format!("127.0.0.1:{}", e.proxy_port), "/api/info", "main"),
        (format!("127.9.8.7:{}", e.proxy_port), "/api/info", "main"),
        (format!("localhost:{}", e.proxy_port), "/api/info", "main"),
        (format!("[::1]:{}", e.proxy_port), "/api/info", "main"),
        ("LocalHost.".to_string(), "/api/info", "main"),
        ("shop.localhost".to_string(), "/api/info", "shop"),
        (format!("shop.test:{}", e.proxy_port), "/api/info", "shop"),
    ] {
        let (s, body) = ask(&host, path, "application/json");
        assert_eq!(s, 200, "{host}: {body}");
        assert_eq!(json(&body)["app"], app, "{host}");
    }
    let (s, _) = ask("nope.localhost", "/", "application/json");
    assert_eq!(s, 404, "a *.localhost name leads here, to no app");
}

/// Datasette (PyPI), installed by scripts/install-datasette.sh, or HANGAR_TEST_DATASETTE.
fn datasette() -> String {
    if let Ok(p) = std::env::var("HANGAR_TEST_DATASETTE") {
        return p;
    }
    let venv = std::env::var("HOME")
        .map(|h| format!("{h}/.cache/hangar/venv-datasette/bin/datasette"))
        .unwrap_or_default();
    if std::path::Path::new(&venv).is_file() {
        return venv;
    }
    panic!(
        "Datasette is missing: run scripts/install-datasette.sh (or set HANGAR_TEST_DATASETTE to a datasette executable)"
    );
}

#[test]
fn a_third_party_app_with_its_own_base_path_setting_works_under_its_prefix() {
    // Datasette's `base_url` setting makes it link under the prefix; the proxy strips it.
    let toml = format!(
        r#"[runtimes.datasette]
command = [{bin:?}, "serve", "--host", "127.0.0.1", "--port", "${{PORT}}", "--setting", "base_url", "${{HANGAR_BASE_PATH}}/", "--create", "${{HANGAR_DATA_DIR}}/notes.db"]
health = "/-/versions.json"
prefix = "strip"
"#,
        bin = datasette()
    );
    let e = TestEngine::start_with(&toml);
    e.ok(&["create", "data", "--runtime", "datasette"]);
    let c = client();

    // The first visit starts it; its home page links under /_app/data/.
    let r = c.get(e.proxy_url("/_app/data/")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let home = r.text().unwrap();
    assert!(home.contains("href=\"/_app/data/notes\""), "{home}");
    assert!(home.contains("/_app/data/-/static/app.css"), "{home}");

    // Following those links works: a database page, a query, a static asset.
    let r = c.get(e.proxy_url("/_app/data/notes")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().unwrap().contains("action=\"/_app/data/notes\""));
    let r = c
        .get(e.proxy_url("/_app/data/notes.json?sql=select+40%2B2+as+answer&_shape=array"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(json(&r.text().unwrap())[0]["answer"], 42);
    let r = c
        .get(e.proxy_url("/_app/data/-/static/app.css"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    // Its own name for itself, by Host, works too.
    let r = c
        .get(e.proxy_url("/"))
        .header(HOST, "data.localhost")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// Write `request` on a new connection and read everything until the proxy closes it (the last
/// request of `request` says `Connection: close`).
fn raw_all(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Requests to a running app on a new connection take the fast path (fast.rs); it must rewrite
/// exactly as the general path does (the other tests mostly reach apps that are asleep, which
/// the general path wakes, and then keep that connection): prefix, Location, cookie paths,
/// X-Forwarded-*, the API's cookie, HEAD, pipelining, chunked and streamed bodies, and no
/// buffering of server-sent events.
#[test]
fn the_fast_path_rewrites_and_frames_like_the_general_path() {
    let e = kept_and_stripped();
    e.ok(&["start", "kept"]);
    e.ok(&["start", "stripped"]);
    let host = format!("127.0.0.1:{}", e.proxy_port);

    // Four pipelined requests on one connection, the last asking to close.
    let req = format!(
        "GET /_app/stripped/api/redirect HTTP/1.1\r\nHost: {host}\r\n\r\n\
         HEAD /_app/stripped/api/info HTTP/1.1\r\nHost: {host}\r\n\r\n\
         GET /_app/stripped/api/cookie HTTP/1.1\r\nHost: {host}\r\n\r\n\
         GET /_app/stripped/api/headers HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: 10.1.2.3\r\nCookie: hangar_token=secret; a=1\r\nConnection: close\r\n\r\n"
    );
    let out = raw_all(e.proxy_port, req.as_bytes());
    let lower = out.to_ascii_lowercase();
    assert_eq!(count(&out, "HTTP/1.1 "), 4, "{out}");
    assert!(out.starts_with("HTTP/1.1 302"), "{out}");
    assert!(
        lower.contains("location: /_app/stripped/admin/\r\n"),
        "{out}"
    );
    assert!(out.contains("Path=/_app/stripped/"), "{out}");
    // HEAD: the length of the body it would have, and no body before the next answer.
    let head_answer = &out[out.find("HTTP/1.1 200").unwrap()..];
    let next = head_answer[1..].find("HTTP/1.1 ").unwrap() + 1;
    assert!(head_answer[..next].ends_with("\r\n\r\n"), "{out}");
    let body = &out[out.rfind("\r\n\r\n").unwrap() + 4..];
    let h = json(body);
    assert_eq!(h["x-forwarded-for"], "10.1.2.3, 127.0.0.1", "{h}");
    assert_eq!(h["x-forwarded-host"], host, "{h}");
    assert_eq!(h["x-forwarded-proto"], "http", "{h}");
    assert_eq!(h["x-forwarded-prefix"], "/_app/stripped", "{h}");
    assert_eq!(
        h["cookie"], "a=1",
        "the API's cookie never reaches an app: {h}"
    );
    assert!(h.get("connection").is_none(), "{h}");

    // By Host, a kept prefix is added and there is no public prefix.
    let out = raw_all(
        e.proxy_port,
        b"GET /api/headers HTTP/1.1\r\nHost: kept.localhost\r\nConnection: close\r\n\r\n",
    );
    let h = json(&out[out.find("\r\n\r\n").unwrap() + 4..]);
    assert_eq!(h["x-forwarded-host"], "kept.localhost", "{h}");
    assert!(h.get("x-forwarded-prefix").is_none(), "{h}");

    // A streamed body with a length, whole (a new client: a new connection).
    let r = client()
        .get(e.proxy_url("/_app/kept/api/stream?mb=3"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().unwrap().len(), 3 << 20);

    // Server-sent events (chunked): the first event arrives while the stream is still open.
    let mut s = TcpStream::connect(("127.0.0.1", e.proxy_port)).unwrap();
    write!(
        s,
        "GET /_app/kept/api/sse?count=2&interval_ms=3000 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("tick 1") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the first event");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(text.contains("transfer-encoding: chunked"), "{text}");
    assert!(
        !text.contains("tick 2"),
        "the events were held back: {text}"
    );
    s.read_to_end(&mut got).unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains("tick 2") && text.ends_with("0\r\n\r\n"),
        "{text}"
    );

    // The app stopped by the operator: a new connection is not forwarded, the visitor told.
    e.ok(&["stop", "kept"]);
    let out = raw(
        e.proxy_port,
        format!(
            "GET /_app/kept/api/info HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(out.starts_with("HTTP/1.1 503"), "{out}");
}

// ---- Issue 15: what the front door shows strangers, and its bounds ---------------------------

/// The waiting page's event stream URL, as the page itself names it.
fn stream_url_of(page: &str) -> String {
    let at = page
        .find("new EventSource('")
        .unwrap_or_else(|| panic!("no event stream in the page: {page}"));
    let rest = &page[at + "new EventSource('".len()..];
    rest[..rest.find('\'').unwrap()].to_string()
}

/// Read an event stream until `until` appears (or it ends); what was read.
fn read_stream(mut r: reqwest::blocking::Response, until: &str) -> String {
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains(until) {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    seen
}

#[test]
fn the_wait_stream_is_served_only_to_requests_that_route_to_its_app() {
    let toml = demo_runtime("boot3", &["--boot-delay-ms", "3000"], "");
    let e = TestEngine::start_with(&toml);
    e.ok(&["create", "secret", "--runtime", "boot3"]);
    e.ok(&["create", "shop", "--domain", "shop.test"]);
    let c = client();

    // Its waiting page names a stream that routes to it, and that stream is served.
    let r = navigate(&c, e.proxy_url("/_app/secret/"));
    assert_eq!(r.status().as_u16(), 503);
    let url = stream_url_of(&r.text().unwrap());
    let r = c.get(e.proxy_url(&url)).send().unwrap();
    assert_eq!(r.status().as_u16(), 200, "{url}");
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    drop(r);

    // A stranger asking for it by name, under a Host that routes elsewhere, gets nothing.
    let here = format!("127.0.0.1:{}", e.proxy_port);
    for host in [
        "shop.test",
        "shop.localhost",
        here.as_str(),
        "nope.localhost",
    ] {
        for path in ["/_hangar/wait/secret", "/_app/shop/_hangar/wait/secret"] {
            let r = c.get(e.proxy_url(path)).header(HOST, host).send().unwrap();
            let status = r.status().as_u16();
            let body = r.text().unwrap_or_default();
            assert_eq!(status, 404, "{host} {path}: {body:.200}");
            assert!(!body.contains("event: state"), "{host} {path}: {body:.200}");
        }
    }
    // Under its own Host, the root form is its.
    let r = c
        .get(e.proxy_url("/_hangar/wait/secret"))
        .header(HOST, "secret.localhost")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// On a LAN bind, nothing the app printed reaches a visitor: not on the waiting page, not in its
/// stream, not in a failed start's answer (page or JSON), not as the reason it failed.
#[test]
fn an_apps_output_is_not_shown_to_visitors_on_a_lan_bind() {
    let mut toml = String::from("proxy_bind = \"0.0.0.0\"\n");
    toml.push_str(&demo_runtime("boot2", &["--boot-delay-ms", "2000"], ""));
    toml.push_str(&demo_runtime(
        "broken",
        &["--fail-boot"],
        "restart_limit = 1",
    ));
    let e = TestEngine::start_with(&toml);
    e.ok(&["create", "page", "--runtime", "boot2"]);
    e.ok(&["create", "web", "--runtime", "broken"]);
    e.ok(&["create", "api", "--runtime", "broken"]);
    let c = client();
    let app_output = [
        "booting: loading plugins",
        "hangar-demo",
        "simulated failure",
    ];
    let clean = |what: &str, text: &str| {
        for line in app_output {
            assert!(
                !text.contains(line),
                "{what} shows the app's output {line:?}: {text}"
            );
        }
    };

    let r = navigate(&c, e.proxy_url("/_app/page/admin/"));
    assert_eq!(r.status().as_u16(), 503);
    let page = r.text().unwrap();
    let url = stream_url_of(&page);
    let seen = read_stream(c.get(e.proxy_url(&url)).send().unwrap(), "event: ready");
    assert!(seen.contains("event: ready"), "{seen}");
    assert!(
        seen.contains("event: state"),
        "Hangar's own progress is shown: {seen}"
    );
    clean("the stream", &seen);
    // The app did print them: they are in its log, for the operator.
    wait_until(
        "the app's lines in its log",
        Duration::from_secs(10),
        || e.log_text("page").contains("booting: loading plugins"),
    );
    let r = navigate(&c, e.proxy_url("/_app/page/admin/"));
    assert_eq!(r.status().as_u16(), 200);

    // A failed start: JSON for a program, a page for a browser.
    let r = c.get(e.proxy_url("/_app/api/api/info")).send().unwrap();
    assert_eq!(r.status().as_u16(), 502);
    let text = r.text().unwrap();
    assert_eq!(json(&text)["error"]["code"], "start_failed", "{text}");
    clean("the 502 JSON", &text);
    let mut r = navigate(&c, e.proxy_url("/_app/web/"));
    if r.status().as_u16() == 503 {
        let url = stream_url_of(&r.text().unwrap());
        let seen = read_stream(c.get(e.proxy_url(&url)).send().unwrap(), "event: failed");
        clean("the stream of a failing start", &seen);
        r = navigate(&c, e.proxy_url("/_app/web/"));
    }
    assert_eq!(r.status().as_u16(), 502);
    let page = r.text().unwrap();
    assert!(page.contains("failed to start"), "{page}");
    clean("the 502 page", &page);
    wait_until(
        "the app's lines in its log",
        Duration::from_secs(10),
        || e.log_text("web").contains("simulated failure"),
    );
}

/// A Cookie header the proxy cannot read as text still loses the API's cookie, on both paths.
#[test]
fn the_token_cookie_is_stripped_from_a_cookie_header_that_is_not_text() {
    let e = TestEngine::start();
    e.ok(&["create", "eat"]);
    e.ok(&["start", "eat"]);
    let host = format!("127.0.0.1:{}", e.proxy_port);
    let cookie = b"Cookie: a=\xff; hangar_token=secret; b=2\r\n";
    // The fast path: a plain GET to a running app. The general path: the same with a body.
    for (what, extra) in [
        ("fast", &b""[..]),
        ("general", &b"Content-Length: 2\r\n"[..]),
    ] {
        let mut req =
            format!("GET /_app/eat/api/headers HTTP/1.1\r\nHost: {host}\r\n").into_bytes();
        req.extend_from_slice(cookie);
        req.extend_from_slice(extra);
        req.extend_from_slice(b"Connection: close\r\n\r\n");
        if !extra.is_empty() {
            req.extend_from_slice(b"hi");
        }
        let out = raw_all(e.proxy_port, &req);
        assert!(out.starts_with("HTTP/1.1 200"), "{what}: {out}");
        let h = json(&out[out.find("\r\n\r\n").unwrap() + 4..]);
        let seen = h["cookie"].as_str().unwrap_or("");
        assert!(
            !seen.contains("secret") && !seen.contains("hangar_token"),
            "{what}: {h}"
        );
        assert!(
            seen.starts_with("a=") && seen.ends_with("; b=2"),
            "{what}: the rest is kept: {h}"
        );
    }
}

/// Client-sent forwarding headers reach an app the same way whichever path serves the request:
/// X-Forwarded-For is the client's chain plus the peer, X-Forwarded-Host/-Proto/-Prefix are
/// Hangar's own, every other X-Forwarded-*, Forwarded and X-Real-IP are dropped.
#[test]
fn both_paths_treat_client_forwarding_headers_the_same() {
    let e = kept_and_stripped();
    e.ok(&["start", "stripped"]);
    let host = format!("127.0.0.1:{}", e.proxy_port);
    let spoof = "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n\
                 X-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\n\
                 X-Forwarded-Prefix: /evil\r\nX-Forwarded-Port: 443\r\nX-Forwarded-Server: evil\r\n\
                 Forwarded: for=6.6.6.6;host=evil.example\r\nX-Real-IP: 6.6.6.6\r\n";
    let mut seen = Vec::new();
    for (what, extra, body) in [("fast", "", ""), ("general", "Content-Length: 2\r\n", "hi")] {
        let req = format!(
            "GET /_app/stripped/api/headers HTTP/1.1\r\nHost: {host}\r\n{spoof}{extra}Connection: close\r\n\r\n{body}"
        );
        let out = raw_all(e.proxy_port, req.as_bytes());
        assert!(out.starts_with("HTTP/1.1 200"), "{what}: {out}");
        let mut h = json(&out[out.find("\r\n\r\n").unwrap() + 4..]);
        assert_eq!(
            h["x-forwarded-for"], "10.0.0.1, 10.0.0.2, 127.0.0.1",
            "{what}: {h}"
        );
        assert_eq!(h["x-forwarded-host"], host, "{what}: {h}");
        assert_eq!(h["x-forwarded-proto"], "http", "{what}: {h}");
        assert_eq!(h["x-forwarded-prefix"], "/_app/stripped", "{what}: {h}");
        for dropped in [
            "x-forwarded-port",
            "x-forwarded-server",
            "forwarded",
            "x-real-ip",
        ] {
            assert!(h.get(dropped).is_none(), "{what}: {dropped} passed: {h}");
        }
        h.as_object_mut().unwrap().remove("content-length");
        seen.push(h);
    }
    assert_eq!(seen[0], seen[1], "the two paths differ");
}

/// Open a connection, send `request`, read nothing: a client that stopped reading.
fn stalled_reader(port: u16, request: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    s
}

/// A client that stops reading a long answer no longer keeps an idle-stopping app awake: the
/// write times out, the connection is closed and the app goes dormant (both paths).
#[test]
fn a_client_that_stops_reading_does_not_keep_an_app_awake() {
    let e = TestEngine::start_with("client_write_timeout = 2\n");
    e.ok(&["create", "lazy", "--idle-timeout", "2"]);
    let host = format!("127.0.0.1:{}", e.proxy_port);
    let request = format!("GET /_app/lazy/api/stream?mb=500 HTTP/1.1\r\nHost: {host}\r\n\r\n");
    // The general path: the visit wakes the dormant app.
    let reader = stalled_reader(e.proxy_port, &request);
    e.wait_status("lazy", "running", Duration::from_secs(30));
    let t0 = Instant::now();
    e.wait_status("lazy", "stopped", Duration::from_secs(30));
    eprintln!("general path: dormant {:?} after it ran", t0.elapsed());
    drop(reader);
    // The fast path: a plain GET on a new connection to the running app.
    e.ok(&["start", "lazy"]);
    let reader = stalled_reader(e.proxy_port, &request);
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    e.wait_status("lazy", "stopped", Duration::from_secs(30));
    eprintln!("fast path: dormant {:?} after the request", t0.elapsed());
    drop(reader);
}

/// Connections from one address beyond the cap are closed at once; another address is served.
#[test]
fn connections_over_the_cap_from_one_address_are_refused_and_others_served() {
    let e = TestEngine::start_with("max_connections_per_ip = 4\n");
    e.wait_status("main", "running", Duration::from_secs(30));
    // Four idle connections: the cap.
    let held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", e.proxy_port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let out = raw(
        e.proxy_port,
        b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(out.is_empty(), "a fifth connection was served: {out}");
    // Another address (127.0.0.2, a loopback address of its own) is served.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut s = socket
            .connect(([127, 0, 0, 1], e.proxy_port).into())
            .await
            .unwrap();
        s.write_all(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    });
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    // One of the four closes: a new connection from the first address is served again.
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let out = raw(
        e.proxy_port,
        b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}

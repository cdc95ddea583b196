//! The fast path: HTTP/1.1 requests without a body (GET, HEAD, DELETE, …) to an app that is
//! running, relayed with one parse of each head (httparse) into one buffer, on a kept
//! connection of this worker, with no per-request task, channel or header map — the shape of
//! nginx's upstream module. It is most of what a web app is asked.
//!
//! Everything else — a request body, an upgrade, `Expect`, HTTP/1.0, an app that is not running
//! (start on first visit), a route that needs Hangar's own answer, a head that is malformed,
//! oversized or has unusual hop-by-hop headers — is handed, with the bytes already read, to the
//! general path ([`super::Proxy::handle`], on hyper), which then serves that connection to its
//! end. So the rules that need care live in one place, and this path only ever answers a
//! request the general path would have forwarded as is.
//!
//! Invariants: the request head the app gets carries the same rewrites as the general path
//! (prefix, the forwarding rule, no token cookie, no hop-by-hop headers), through the same
//! functions (`fuzz/fuzz_targets/proxy_head.rs` compares the two); bodies stream in bounded
//! chunks; a request is sent again on a new connection only when a kept connection turned out
//! closed before any answer byte and the method is idempotent; a connection to an app is kept
//! only after an answer whose end was known from its framing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;
use hyper::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::limits::write_all;
use super::{pages, upstream_path, AppEntry, Body, Proxy, Target, MAX_HEADER_BYTES};
use crate::base::validate::MAIN;
use crate::run::supervisor::Status;

/// Header lines a request or an answer may have on this path (more: the general path).
const MAX_HEADERS: usize = 64;
/// A kept connection with no request in flight waits this long for the next one.
const CLIENT_KEEPALIVE: Duration = Duration::from_secs(75);
/// Connections to one app kept per worker.
const MAX_KEPT: usize = 256;
/// A kept connection to an app unused this long is closed.
const KEPT_FOR: Duration = Duration::from_secs(60);
/// Connecting to an app on loopback takes longer than this only when it is overwhelmed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Body bytes moved per read.
const CHUNK: usize = 64 * 1024;

/// How a connection left the fast path.
pub(super) enum Outcome {
    /// Finished: either side closed it, or it failed.
    Done,
    /// For the general path, with the bytes read but not yet handled (a whole request head at
    /// least, or what there is of one).
    Handover(TcpStream, BytesMut),
}

/// One worker's kept connections to the apps.
#[derive(Default)]
pub(super) struct Pool {
    apps: Mutex<HashMap<SocketAddr, Vec<(TcpStream, Instant)>>>,
}

impl Pool {
    /// A pool whose expired connections are closed every 15 s by a task on this runtime.
    pub(super) fn start() -> Arc<Pool> {
        let pool = Arc::new(Pool::default());
        let weak = Arc::downgrade(&pool);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            loop {
                tick.tick().await;
                let Some(pool) = weak.upgrade() else { return };
                let mut apps = pool.apps.lock().unwrap_or_else(|p| p.into_inner());
                for kept in apps.values_mut() {
                    kept.retain(|(_, since)| since.elapsed() < KEPT_FOR);
                }
                apps.retain(|_, kept| !kept.is_empty());
            }
        });
        pool
    }

    /// The most recently kept connection to `addr` that is still fresh.
    fn take(&self, addr: SocketAddr) -> Option<TcpStream> {
        let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
        let kept = apps.get_mut(&addr)?;
        while let Some((conn, since)) = kept.pop() {
            if since.elapsed() < KEPT_FOR {
                return Some(conn);
            }
        }
        None
    }

    fn keep(&self, addr: SocketAddr, conn: TcpStream) {
        let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
        let kept = apps.entry(addr).or_default();
        if kept.len() < MAX_KEPT {
            kept.push((conn, Instant::now()));
        }
    }
}

/// Serve requests on `client` until it closes, or until one needs the general path.
pub(super) async fn serve(
    proxy: &Arc<Proxy>,
    pool: &Pool,
    mut client: TcpStream,
    peer: SocketAddr,
) -> Outcome {
    let mut buf = BytesMut::with_capacity(4096);
    let header_timeout = proxy.engine.config.client_header_timeout;
    loop {
        // 1. A whole request head, within the time limits (idle, then header).
        let head_len = match read_head(&mut client, &mut buf, header_timeout).await {
            Read::Head(n) => n,
            Read::Closed => return Outcome::Done,
            Read::Other => return Outcome::Handover(client, buf),
        };
        // 2. Is it ours? Build what the app gets.
        let plan = match plan(proxy, &buf[..head_len], peer) {
            Some(p) => p,
            None => return Outcome::Handover(client, buf),
        };
        let app = plan.app.clone();
        let active = app.activity.enter().await;
        if app.state.borrow().status != Status::Running {
            // An idle stop won the race: the general path wakes it.
            drop(active);
            return Outcome::Handover(client, buf);
        }
        // 3. Ask the app, relay its answer.
        let keep_client = match exchange(proxy, pool, &app, &plan, &mut client).await {
            Ok(keep) => keep && !plan.close,
            Err(()) => false,
        };
        drop(active);
        if !keep_client {
            let _ = client.shutdown().await;
            return Outcome::Done;
        }
        buf.advance(head_len);
    }
}

enum Read {
    /// A complete head of this many bytes is at the start of the buffer.
    Head(usize),
    /// The client closed, or was too slow: nothing more to do.
    Closed,
    /// Malformed, too large or too many headers: the general path answers it.
    Other,
}

async fn read_head(client: &mut TcpStream, buf: &mut BytesMut, header_timeout: Duration) -> Read {
    // The header time limit runs from the head's first byte; before it, the keep-alive one.
    let mut deadline = (!buf.is_empty()).then(|| tokio::time::Instant::now() + header_timeout);
    loop {
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match httparse::Request::new(&mut headers).parse(buf) {
                Ok(httparse::Status::Complete(n)) => return Read::Head(n),
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEADER_BYTES => {}
                _ => return Read::Other,
            }
        }
        let until = deadline.unwrap_or_else(|| tokio::time::Instant::now() + CLIENT_KEEPALIVE);
        buf.reserve(4096);
        match tokio::time::timeout_at(until, client.read_buf(buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Read::Closed,
            Ok(Ok(_)) => {
                deadline.get_or_insert_with(|| tokio::time::Instant::now() + header_timeout);
            }
        }
    }
}

/// A request this path forwards: where, and the head the app gets.
struct Plan {
    app: Arc<AppEntry>,
    head: Vec<u8>,
    /// HEAD: the answer has no body whatever its headers say.
    head_method: bool,
    /// Safe to send again on a new connection when a kept one was found closed.
    idempotent: bool,
    /// The client asked to close after this answer.
    close: bool,
    /// Prefix to put back in the answer's Location and cookie paths (strip mode).
    strip: Option<String>,
    wants_html: bool,
}

fn plan(proxy: &Proxy, head: &[u8], peer: SocketAddr) -> Option<Plan> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(head).ok()?;
    let plain = plain(&req)?;
    let path = plain.path();
    let route = proxy.route(plain.host, path).ok()?;
    let app = route.app;
    if (app.name == MAIN && !proxy.engine.config.main.enabled)
        || app.state.borrow().status != Status::Running
    {
        return None;
    }
    let target = Target {
        base: &app.base,
        by_path: route.by_path,
        prefix: app.prefix,
    };
    let out = upstream_head(&req, &plain, &target, peer)?;
    Some(Plan {
        strip: target.strips().then(|| app.base.clone()),
        head: out,
        head_method: plain.method == "HEAD",
        idempotent: matches!(
            plain.method,
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        ),
        close: plain.close,
        wants_html: plain.wants_html,
        app,
    })
}

/// What this path needs of a request head it may serve.
struct Plain<'a> {
    method: &'a str,
    /// Path and query, origin form.
    pq: &'a str,
    host: &'a str,
    /// The client asked to close after this answer.
    close: bool,
    wants_html: bool,
}

impl Plain<'_> {
    fn path(&self) -> &str {
        self.pq.split_once('?').map_or(self.pq, |(p, _)| p)
    }
}

/// Is this a plain request (HTTP/1.1, no body, no upgrade, `Expect` or unusual hop-by-hop
/// header, one Host), and what it says; `None`: the general path's.
fn plain<'a>(req: &httparse::Request<'_, 'a>) -> Option<Plain<'a>> {
    let (method, pq) = (req.method?, req.path?);
    if req.version != Some(1) || method == "CONNECT" || !pq.starts_with('/') {
        return None;
    }
    if !kept_as_is(pq) {
        return None;
    }
    let mut host = None;
    let mut close = false;
    let mut wants_html = false;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return None;
            }
            host = Some(std::str::from_utf8(h.value).ok()?);
        } else if name.eq_ignore_ascii_case("content-length") {
            if h.value != b"0" {
                return None;
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("upgrade")
            || name.eq_ignore_ascii_case("expect")
        {
            return None;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in std::str::from_utf8(h.value).ok()?.split(',') {
                match token.trim() {
                    t if t.eq_ignore_ascii_case("close") => close = true,
                    t if t.eq_ignore_ascii_case("keep-alive") || t.is_empty() => {}
                    // It names more hop-by-hop headers: the general path strips them.
                    _ => return None,
                }
            }
        } else if name.eq_ignore_ascii_case("accept") {
            wants_html = h.value.windows(9).any(|w| w == b"text/html");
        }
    }
    Some(Plain {
        method,
        pq,
        host: host?,
        close,
        wants_html,
    })
}

/// Is `target` a request target the `http` types keep exactly as it is? httparse takes some they
/// refuse (a backtick in a path) or read otherwise (a `#fragment` is dropped): hyper answers the
/// first 400 and routes the second by what is left, so this path forwards only what they keep
/// (the proxy_head fuzz target found all three cases).
fn kept_as_is(target: &str) -> bool {
    hyper::http::uri::PathAndQuery::try_from(target).is_ok_and(|pq| pq.as_str() == target)
}

/// The head the app gets for a plain request routed to `target`: the path it wants, the
/// client's headers without hop-by-hop ones, the token cookie and the forwarding headers the
/// rule decides ([`super::forwarding`]), then Hangar's own forwarding headers. `None`: Hangar
/// answers this one itself (the bare prefix, the waiting page's stream) or its path cannot be
/// rewritten: the general path's.
fn upstream_head(
    req: &httparse::Request,
    plain: &Plain,
    target: &Target,
    peer: SocketAddr,
) -> Option<Vec<u8>> {
    if super::own_answer(plain.path(), target).is_some() {
        return None;
    }
    let upstream = upstream_path(target.base, plain.pq, target.upstream_path())?;
    // A rewritten target is parsed again by the general path (upstream_uri): so here too.
    if upstream.len() != plain.pq.len() && !kept_as_is(&upstream) {
        return None;
    }
    let mut out = Vec::with_capacity(plain.pq.len() + 512);
    for part in [plain.method, " ", &upstream, " HTTP/1.1\r\n"] {
        out.extend_from_slice(part.as_bytes());
    }
    let mut xff: Vec<&[u8]> = Vec::new();
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("x-forwarded-for") {
            xff.push(h.value);
        }
        if super::is_hop_by_hop(name) || super::is_forwarding(name) {
            continue;
        }
        if name.eq_ignore_ascii_case("cookie") {
            match crate::base::web::without_token_cookie(h.value) {
                None => header_line(&mut out, name, h.value),
                Some(rest) if rest.is_empty() => {}
                Some(rest) => header_line(&mut out, name, &rest),
            }
            continue;
        }
        header_line(&mut out, name, h.value);
    }
    let set = super::forwarding(
        xff.into_iter(),
        plain.host.as_bytes(),
        peer,
        target.public_prefix(),
    );
    for (name, value) in set {
        header_line(&mut out, name, &value);
    }
    out.extend_from_slice(b"\r\n");
    Some(out)
}

/// The fast path's whole treatment of one request head, routed to `target`: the head the app
/// gets, or `None` when this path hands it over (for the fuzz target: see
/// [`super::heads_for_fuzzing`]).
pub(super) fn fast_head(head: &[u8], target: &Target, peer: SocketAddr) -> Option<Vec<u8>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        _ => return None,
    }
    let plain = plain(&req)?;
    upstream_head(&req, &plain, target, peer)
}

fn header_line(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// How the end of an answer's body is known.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the app closes the connection.
    Close,
}

/// Send the request, relay the answer. `Ok(true)`: the client connection can take another
/// request. `Err`: the client connection is broken (or got an error page and closes).
async fn exchange(
    proxy: &Proxy,
    pool: &Pool,
    app: &AppEntry,
    plan: &Plan,
    client: &mut TcpStream,
) -> Result<bool, ()> {
    let timeout = proxy.engine.config.upstream_timeout;
    let stalled = proxy.engine.config.client_write_timeout;
    let mut resp = BytesMut::with_capacity(8192);
    let (mut conn, head_len) =
        match tokio::time::timeout(timeout, ask(pool, app.addr, plan, &mut resp)).await {
            Ok(Ok(got)) => got,
            Ok(Err(why)) => {
                tracing::debug!(app = %app.name, "upstream error: {why}");
                let page = pages::bad_gateway(plan.wants_html, &app.name, &why);
                let _ = write_page(client, page, stalled).await;
                return Err(());
            }
            Err(_) => {
                let page = pages::gateway_timeout(plan.wants_html, &app.name, timeout);
                let _ = write_page(client, page, stalled).await;
                return Err(());
            }
        };

    // The answer's head, rewritten for the client.
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut headers);
    if !matches!(
        r.parse(&resp[..head_len]),
        Ok(httparse::Status::Complete(_))
    ) {
        return Err(());
    }
    let code = r.code.unwrap_or(502);
    if code == 101 {
        return Err(()); // Switching protocols unasked: not HTTP any more; both sides close.
    }
    let (framing, mut app_keeps) = match framing(&r, plan.head_method) {
        Some(f) => f,
        None => return Err(()), // Conflicting or unreadable framing: not relayed.
    };
    let mut out = Vec::with_capacity(head_len + 64);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(code.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(r.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in r.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("transfer-encoding") {
            header_line(&mut out, name, h.value);
            continue;
        }
        if name.eq_ignore_ascii_case("content-length") {
            if matches!(framing, Framing::Length(_)) || plan.head_method || code == 304 {
                header_line(&mut out, name, h.value);
            }
            continue;
        }
        if super::is_hop_by_hop(name) {
            continue;
        }
        if let Some(prefix) = &plan.strip {
            if name.eq_ignore_ascii_case("location") {
                if let Some(loc) = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|l| super::rewrite_location(l, prefix))
                {
                    header_line(&mut out, name, loc.as_bytes());
                    continue;
                }
            } else if name.eq_ignore_ascii_case("set-cookie") {
                if let Ok(c) = std::str::from_utf8(h.value) {
                    let c = super::rewrite_cookie_path(c, prefix);
                    header_line(&mut out, name, c.as_bytes());
                    continue;
                }
            }
        }
        header_line(&mut out, name, h.value);
    }
    if framing == Framing::Close {
        app_keeps = false;
    }
    if framing == Framing::Close || plan.close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    resp.advance(head_len);

    // The body: what came with the head goes out in the same write.
    let mut relay = Relay::new(framing);
    let used = relay.feed(&resp).map_err(|_| ())?;
    out.extend_from_slice(&resp[..used]);
    if used < resp.len() {
        app_keeps = false; // More than the answer: the app is not speaking HTTP/1.1 well.
    }
    // A client that stops reading fails the write after client_write_timeout: the app's
    // connection and its activity are not held for it.
    write_all(client, &out, stalled).await.map_err(|_| ())?;
    if !relay.done() {
        let mut chunk = vec![0u8; CHUNK];
        while !relay.done() {
            let n = conn.read(&mut chunk).await.map_err(|_| ())?;
            if n == 0 {
                if framing == Framing::Close {
                    break;
                }
                return Err(());
            }
            let used = relay.feed(&chunk[..n]).map_err(|_| ())?;
            write_all(client, &chunk[..used], stalled)
                .await
                .map_err(|_| ())?;
            if used < n {
                app_keeps = false;
                break;
            }
        }
    }
    if app_keeps && relay.done() {
        pool.keep(app.addr, conn);
    }
    Ok(framing != Framing::Close)
}

/// The body's framing (RFC 9112 §6.3) and whether the app keeps the connection open;
/// `None` when the lengths conflict or cannot be read, or a length and a transfer coding
/// are both given.
fn framing(r: &httparse::Response, head_method: bool) -> Option<(Framing, bool)> {
    let code = r.code?;
    let mut keeps = r.version == Some(1);
    let mut length: Option<u64> = None;
    let mut coded: Option<bool> = None; // Some(chunked last?)
    for h in r.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            if h.value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
            {
                keeps = false;
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .unwrap_or(b"")
                .trim_ascii();
            coded = Some(last.eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()?;
            if length.is_some_and(|m| m != n) {
                return None;
            }
            length = Some(n);
        }
    }
    if head_method || code == 204 || code == 304 || (100..200).contains(&code) {
        return Some((Framing::None, keeps));
    }
    match (coded, length) {
        (Some(_), Some(_)) => None,
        (Some(true), None) => Some((Framing::Chunked, keeps)),
        (Some(false), None) => Some((Framing::Close, false)),
        (None, Some(n)) => Some((Framing::Length(n), keeps)),
        (None, None) => Some((Framing::Close, false)),
    }
}

/// Send the head on a kept connection (or a new one) and read the answer's head into `resp`.
/// A kept connection found closed before any answer byte is replaced once, for idempotent
/// requests (others go on a new connection from the start).
async fn ask(
    pool: &Pool,
    addr: SocketAddr,
    plan: &Plan,
    resp: &mut BytesMut,
) -> Result<(TcpStream, usize), String> {
    if plan.idempotent {
        if let Some(mut conn) = pool.take(addr) {
            match send_and_read_head(&mut conn, &plan.head, resp).await {
                Ok(n) => return Ok((conn, n)),
                Err(Failure::BeforeAnswer) => resp.clear(),
                Err(Failure::Broken(why)) => return Err(why),
            }
        }
    }
    let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => {
            return Err(format!(
                "connecting took longer than {} s",
                CONNECT_TIMEOUT.as_secs()
            ))
        }
    };
    let _ = conn.set_nodelay(true);
    match send_and_read_head(&mut conn, &plan.head, resp).await {
        Ok(n) => Ok((conn, n)),
        Err(Failure::BeforeAnswer) => Err("the connection was closed before an answer".into()),
        Err(Failure::Broken(why)) => Err(why),
    }
}

enum Failure {
    /// Closed or reset before a single byte of an answer.
    BeforeAnswer,
    Broken(String),
}

async fn send_and_read_head(
    conn: &mut TcpStream,
    head: &[u8],
    resp: &mut BytesMut,
) -> Result<usize, Failure> {
    if conn.write_all(head).await.is_err() {
        return Err(Failure::BeforeAnswer);
    }
    let mut answered = false;
    loop {
        if !resp.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut r = httparse::Response::new(&mut headers);
            match r.parse(resp) {
                Ok(httparse::Status::Complete(n)) => {
                    // Informational answers (103 Early Hints, a stray 100) are dropped, as
                    // the general path does: the real answer follows.
                    if r.code.is_some_and(|c| (100..200).contains(&c) && c != 101) {
                        resp.advance(n);
                        continue;
                    }
                    return Ok(n);
                }
                Ok(httparse::Status::Partial) if resp.len() < MAX_HEADER_BYTES => {}
                Ok(httparse::Status::Partial) => {
                    return Err(Failure::Broken("the answer's head is too large".into()))
                }
                Err(e) => {
                    return Err(Failure::Broken(format!(
                        "the answer's head is malformed: {e}"
                    )))
                }
            }
        }
        resp.reserve(4096);
        match conn.read_buf(resp).await {
            Ok(0) | Err(_) if !answered => return Err(Failure::BeforeAnswer),
            Ok(0) => return Err(Failure::Broken("the answer's head was cut short".into())),
            Err(e) => return Err(Failure::Broken(e.to_string())),
            Ok(_) => answered = true,
        }
    }
}

/// Follows an answer's body through its framing, to know where it ends.
struct Relay {
    framing: Framing,
    /// Length: bytes still to come. Chunked: bytes of the current chunk still to come.
    left: u64,
    state: Chunk,
    /// Chunked: the size or trailer line read so far (bounded).
    line: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Chunk {
    Size,
    Data,
    DataEnd,
    Trailer,
    Done,
}

/// Chunk-size and trailer lines longer than this are refused.
const MAX_LINE: usize = 4096;

impl Relay {
    fn new(framing: Framing) -> Relay {
        Relay {
            framing,
            left: if let Framing::Length(n) = framing {
                n
            } else {
                0
            },
            state: Chunk::Size,
            line: Vec::new(),
        }
    }

    fn done(&self) -> bool {
        match self.framing {
            Framing::None => true,
            Framing::Length(_) => self.left == 0,
            Framing::Chunked => self.state == Chunk::Done,
            Framing::Close => false,
        }
    }

    /// How many bytes of `data` belong to the body (the rest follows it).
    fn feed(&mut self, data: &[u8]) -> Result<usize, &'static str> {
        match self.framing {
            Framing::None => Ok(0),
            Framing::Close => Ok(data.len()),
            Framing::Length(_) => {
                let n = (data.len() as u64).min(self.left);
                self.left -= n;
                Ok(n as usize)
            }
            Framing::Chunked => self.feed_chunked(data),
        }
    }

    fn feed_chunked(&mut self, data: &[u8]) -> Result<usize, &'static str> {
        let mut i = 0;
        while i < data.len() && self.state != Chunk::Done {
            match self.state {
                Chunk::Size | Chunk::Trailer | Chunk::DataEnd => {
                    let b = data[i];
                    i += 1;
                    if self.line.len() >= MAX_LINE {
                        return Err("a chunk line is too long");
                    }
                    self.line.push(b);
                    if b != b'\n' {
                        continue;
                    }
                    let line = std::mem::take(&mut self.line);
                    let text = line
                        .strip_suffix(b"\r\n")
                        .ok_or("a chunk line without CRLF")?;
                    match self.state {
                        Chunk::Size => {
                            let size = text.split(|&b| b == b';').next().unwrap_or(b"");
                            let size = std::str::from_utf8(size.trim_ascii())
                                .ok()
                                .and_then(|s| u64::from_str_radix(s, 16).ok())
                                .ok_or("a chunk size is not hexadecimal")?;
                            if size == 0 {
                                self.state = Chunk::Trailer;
                            } else {
                                self.left = size;
                                self.state = Chunk::Data;
                            }
                        }
                        Chunk::DataEnd => {
                            if !text.is_empty() {
                                return Err("a chunk is longer than its size");
                            }
                            self.state = Chunk::Size;
                        }
                        _ => {
                            if text.is_empty() {
                                self.state = Chunk::Done;
                            }
                        }
                    }
                }
                Chunk::Data => {
                    let n = ((data.len() - i) as u64).min(self.left);
                    self.left -= n;
                    i += n as usize;
                    if self.left == 0 {
                        self.state = Chunk::DataEnd;
                    }
                }
                Chunk::Done => {}
            }
        }
        Ok(i)
    }
}

/// One of Hangar's own answers, written out whole (they are small), then the connection closes.
async fn write_page(
    client: &mut TcpStream,
    page: Response<Body>,
    stalled: Duration,
) -> std::io::Result<()> {
    let (parts, body) = page.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(body.len() + 256);
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            parts.status.as_u16(),
            parts.status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    for (name, value) in parts.headers.iter() {
        if name != hyper::header::CONTENT_LENGTH {
            header_line(&mut out, name.as_str(), value.as_bytes());
        }
    }
    out.extend_from_slice(
        format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);
    write_all(client, &out, stalled).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_with_a_fragment_is_left_to_the_general_path() {
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut req = httparse::Request::new(&mut headers);
        let head = b"GET /_app/shop/api/i#fo?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        assert!(req.parse(head).expect("parses").is_complete());
        assert!(plain(&req).is_none());
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut req = httparse::Request::new(&mut headers);
        let head = b"GET /_app/shop/api/i?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        assert!(req.parse(head).expect("parses").is_complete());
        assert!(plain(&req).is_some());
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut req = httparse::Request::new(&mut headers);
        let head = b"HEAD /notes?page< HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        assert!(req.parse(head).expect("parses").is_complete());
        assert!(plain(&req).is_none(), "a target hyper refuses");
    }

    fn relay_all(framing: Framing, parts: &[&[u8]]) -> (Vec<u8>, bool, usize) {
        let mut r = Relay::new(framing);
        let mut out = Vec::new();
        let mut rest = 0;
        for p in parts {
            let n = r.feed(p).unwrap();
            out.extend_from_slice(&p[..n]);
            rest += p.len() - n;
        }
        (out, r.done(), rest)
    }

    #[test]
    fn chunked_bodies_end_where_their_framing_says_however_they_are_split() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n";
        for split in 0..body.len() {
            let (a, b) = body.split_at(split);
            let mut tail = b.to_vec();
            tail.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
            let (out, done, rest) = relay_all(Framing::Chunked, &[a, &tail]);
            assert!(done, "split at {split}");
            assert_eq!(out, body, "split at {split}");
            assert_eq!(rest, 17, "split at {split}: the next answer is not body");
        }
    }

    #[test]
    fn bad_chunks_are_errors() {
        for bad in [&b"zz\r\n"[..], b"4\r\nWikiXX\r\n", b"4\nWiki"] {
            let mut r = Relay::new(Framing::Chunked);
            assert!(r.feed(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut r = Relay::new(Framing::Chunked);
        assert!(r.feed(&vec![b'1'; MAX_LINE + 1]).is_err());
    }

    #[test]
    fn lengths_count_down_and_leave_what_follows() {
        let (out, done, rest) = relay_all(Framing::Length(5), &[b"abc", b"defgh"]);
        assert_eq!(out, b"abcde");
        assert!(done);
        assert_eq!(rest, 3);
        let (_, done, _) = relay_all(Framing::Length(5), &[b"abc"]);
        assert!(!done);
        assert!(Relay::new(Framing::None).done());
        assert!(!Relay::new(Framing::Close).done());
    }
}

//! The proxy: the one front door. A request's path through it reads top to bottom in
//! [`Proxy::handle`]: Hangar's own paths → route → count it as activity → make sure the app
//! runs (start on first visit) → rewrite → forward (or tunnel an upgrade) → rewrite the answer.
//!
//! Invariants: bodies stream both ways and are never held whole; headers are bounded (64 KiB,
//! else 431) and malformed requests get 400 from hyper; the proxy never serves the API (its only
//! own path is the waiting page's status stream, `/_hangar/wait/<name>` under the place that
//! routes to that app, and only there); a Host that does not lead to this machine ([`Names`])
//! gets 421 and nothing of any app (no DNS rebinding); a panic while handling
//! one request answers that request with 500 and harms no other (each connection is its own
//! task); one slow or dead app never holds up another.

mod activity;
mod budget;
mod fast;
mod limits;
mod pages;
pub use pages::escape;
mod wake;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::{combinators::BoxBody, BodyExt};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::watch;

use crate::base::config::Prefix;
use crate::base::validate::MAIN;
use crate::engine::Engine;
use crate::run::logs::AppLog;
use crate::run::supervisor::{AppState, Status};
use crate::store::registry::StartMode;
use activity::{Active, Activity, Tracked};

type Body = BoxBody<Bytes, hyper::Error>;

/// The largest request head accepted (request line and headers); larger gets 431.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// What the proxy knows of one app: rebuilt from the registry when its record changes (a route
/// event), except its activity counter, which outlives the rebuilds.
pub(crate) struct AppEntry {
    name: String,
    /// `/_app/<name>`.
    base: String,
    /// `127.0.0.1:<port>`.
    authority: Authority,
    addr: SocketAddr,
    prefix: Prefix,
    /// The readiness probe's path as the app sees it (its log lines about it are noise).
    health: String,
    start_mode: StartMode,
    /// Pinned apps are never put to sleep by the memory budget.
    pinned: bool,
    idle_timeout: Option<Duration>,
    state: watch::Receiver<AppState>,
    log: Arc<AppLog>,
    activity: Arc<Activity>,
}

#[derive(Default)]
struct Table {
    apps: HashMap<String, Arc<AppEntry>>,
    domains: HashMap<String, Arc<AppEntry>>,
}

/// Why a request goes to no app.
enum Miss {
    /// No app of that name (`main` when it is the main app's place).
    NoApp(String),
    /// The Host is not a name that leads to this machine (see [`Names`]): answered 421.
    Misdirected,
}

/// The Hosts the proxy answers to, so that no web page reaches an app through a name of its
/// own that it made resolve to this machine (DNS rebinding). Always: `localhost`, `*.localhost`,
/// a loopback address (127.0.0.0/8, `[::1]`) and the custom domains apps were given. On a bind
/// that is not loopback (`proxy_bind`, shared on a network) also: any address literal (a page
/// can never be on a bare address's origin by a name of its own) and the machine's host name,
/// with and without `.local` (mDNS). A request with no Host at all is no browser's: it passes.
struct Names {
    shared: bool,
    machine: Vec<String>,
}

impl Names {
    fn of(bind: std::net::IpAddr) -> Names {
        let shared = !bind.is_loopback();
        let mut machine = Vec::new();
        if shared {
            if let Ok(n) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
                let n = n.trim().trim_end_matches('.').to_ascii_lowercase();
                if !n.is_empty() {
                    machine.push(format!("{n}.local"));
                    machine.push(n);
                }
            }
        }
        Names { shared, machine }
    }

    /// Does `host` (lower case, without its port or a final dot) lead here? Custom domains are
    /// the route table's, asked by the caller.
    fn lead_here(&self, host: &str) -> bool {
        if host.is_empty() || host == "localhost" || host.ends_with(".localhost") {
            return true;
        }
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        match literal.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback() || self.shared,
            Err(_) => self.machine.iter().any(|n| n == host),
        }
    }
}

/// Where a request goes.
struct Route {
    app: Arc<AppEntry>,
    /// The path (`/_app/<name>/…`) chose the app, rather than the Host.
    by_path: bool,
}

pub(crate) struct Proxy {
    engine: Arc<Engine>,
    table: RwLock<Table>,
    activities: Mutex<HashMap<String, Arc<Activity>>>,
    /// When a request for an unknown app last read the registry (see [`Proxy::route_fresh`]).
    last_miss: Mutex<Option<Instant>>,
    /// The engine's runtime: registry queries run there, not on the proxy workers.
    engine_rt: tokio::runtime::Handle,
    /// The memory budget's memory of each app's peak (see budget.rs).
    budget: budget::Budget,
    /// The Hosts that lead to this machine.
    names: Names,
    /// Whole-table loads and one-app updates so far (tests read them).
    loads: std::sync::atomic::AtomicU64,
    updates: std::sync::atomic::AtomicU64,
}

type Upstream = Client<HttpConnector, Incoming>;

/// Accept on the engine's runtime; serve on one single-threaded runtime per core, each with
/// its own connection pool. A request and the upstream connection it uses then live on one
/// thread: no cross-thread wake-ups (futex, eventfd) on the hot path, as in nginx's workers.
pub async fn serve(engine: Arc<Engine>, listener: tokio::net::TcpListener) {
    let proxy = Proxy::follow(engine.clone()).await;
    tokio::spawn(activity::watch_idle(proxy.clone()));
    tokio::spawn(budget::watch(proxy.clone()));

    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_WORKERS);
    let mut queues = Vec::with_capacity(workers);
    for i in 0..workers {
        let (tx, rx) = tokio::sync::mpsc::channel(ACCEPT_QUEUE);
        let proxy = proxy.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("hangar-proxy-{i}"))
            .spawn(move || worker(proxy, rx));
        match spawned {
            Ok(_) => queues.push(tx),
            Err(e) => tracing::error!("cannot start proxy worker {i}: {e}"),
        }
    }
    if queues.is_empty() {
        tracing::error!("no proxy worker could start; the proxy is not serving");
        return;
    }
    let peers = limits::Peers::new(engine.config.max_connections_per_ip);
    let mut next = 0usize;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!("proxy accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // One address holds at most max_connections_per_ip: over it, closed at once.
        let Some(slot) = peers.admit(peer.ip()) else {
            tracing::debug!(%peer, "over max_connections_per_ip; the connection is closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        // Round robin; a worker whose queue is full passes its turn.
        let mut conn = (stream, peer, slot);
        let mut placed = false;
        for _ in 0..queues.len() {
            next = (next + 1) % queues.len();
            match queues[next].try_send(conn) {
                Ok(()) => {
                    placed = true;
                    break;
                }
                Err(TrySendError::Full(c)) | Err(TrySendError::Closed(c)) => conn = c,
            }
        }
        if !placed {
            tracing::warn!("every proxy worker is saturated; a connection was refused");
        }
    }
}

/// Proxy workers (at most one per core).
const MAX_WORKERS: usize = 16;
/// Accepted connections waiting for a worker, per worker.
const ACCEPT_QUEUE: usize = 1024;

/// An accepted connection, its client's address and its place in that address's count.
type Accepted = (std::net::TcpStream, SocketAddr, limits::Slot);

fn worker(proxy: Arc<Proxy>, mut accepted: tokio::sync::mpsc::Receiver<Accepted>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("proxy worker runtime: {e}");
            return;
        }
    };
    rt.block_on(async move {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client: Upstream = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .pool_timer(TokioTimer::new())
            .build(connector);
        let pool = fast::Pool::start();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .max_header_size(MAX_HEADER_BYTES)
            .header_read_timeout(proxy.engine.config.client_header_timeout);
        let write_timeout = proxy.engine.config.client_write_timeout;
        while let Some((stream, peer, slot)) = accepted.recv().await {
            let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                continue;
            };
            let proxy = proxy.clone();
            let client = client.clone();
            let http = http.clone();
            let pool = pool.clone();
            tokio::spawn(async move {
                // Plain requests to running apps take the fast path; the first that needs
                // more hands the connection, with what was read of it, to hyper.
                let (stream, read) = match fast::serve(&proxy, &pool, stream, peer).await {
                    fast::Outcome::Done => return,
                    fast::Outcome::Handover(stream, read) => (stream, read.freeze()),
                };
                let svc = hyper::service::service_fn(move |req| {
                    let proxy = proxy.clone();
                    let client = client.clone();
                    async move {
                        let answer = guarded(proxy.handle(&client, req, peer)).await;
                        Ok::<_, Infallible>(answer)
                    }
                });
                let io = Replay {
                    read,
                    io: stream,
                    deadline: limits::WriteDeadline::new(write_timeout),
                    _slot: slot,
                };
                let _ = http
                    .serve_connection(TokioIo::new(io), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
}

/// A client connection with bytes already read from it in front (the fast path's handover);
/// its writes fail once one makes no progress for `client_write_timeout`, and it holds its
/// address's slot until it is dropped (after an upgrade too: the tunnel owns it).
struct Replay {
    read: Bytes,
    io: tokio::net::TcpStream,
    deadline: limits::WriteDeadline,
    _slot: limits::Slot,
}

impl tokio::io::AsyncRead for Replay {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let me = self.get_mut();
        if !me.read.is_empty() {
            let n = me.read.len().min(buf.remaining());
            buf.put_slice(&me.read.split_to(n));
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut me.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Replay {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        let outcome = std::pin::Pin::new(&mut me.io).poll_write(cx, buf);
        me.deadline.check(cx, outcome)
    }
    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        let outcome = std::pin::Pin::new(&mut me.io).poll_write_vectored(cx, bufs);
        me.deadline.check(cx, outcome)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Handle one request; a panic in it answers that request with 500 (and is logged) instead of
/// dropping the connection.
async fn guarded(handling: impl std::future::Future<Output = Response<Body>>) -> Response<Body> {
    AssertUnwindSafe(handling)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            tracing::error!("a request handler panicked; answered 500");
            pages::error(
                false,
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "Hangar failed while handling this request.",
                None,
                &[],
            )
        })
}

/// Keep the route table in step with the registry: only the events that change routes (a
/// record created, edited, restored or imported; an app removed) touch it, one app at a time;
/// a start, a stop or any other change of state does not. A subscriber that fell behind may have
/// missed one, so it loads the whole table again.
async fn follow_registry(
    proxy: Arc<Proxy>,
    mut events: tokio::sync::broadcast::Receiver<crate::run::supervisor::Event>,
) {
    use crate::run::supervisor::Event;
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(Event::Record { name }) => proxy.update(&name).await,
            Ok(Event::Removed { name }) => proxy.forget(&name),
            Ok(Event::App { .. }) => {}
            Err(RecvError::Lagged(_)) => proxy.reload().await,
            Err(RecvError::Closed) => return,
        }
    }
}

impl Proxy {
    /// A proxy for `engine` with its table loaded, following the engine's route events.
    async fn follow(engine: Arc<Engine>) -> Arc<Proxy> {
        let proxy = Arc::new(Proxy {
            engine: engine.clone(),
            table: RwLock::new(Table::default()),
            activities: Mutex::new(HashMap::new()),
            last_miss: Mutex::new(None),
            engine_rt: tokio::runtime::Handle::current(),
            loads: Default::default(),
            updates: Default::default(),
            budget: budget::Budget::default(),
            names: Names::of(engine.config.proxy_bind),
        });
        // Subscribe before the first load, so no change falls between the two.
        let events = engine.events.subscribe();
        proxy.reload().await;
        tokio::spawn(follow_registry(proxy.clone(), events));
        proxy
    }

    /// What the proxy knows of app `a` (`None`: not supervised yet, or no usable port).
    fn entry(&self, a: &crate::store::registry::AppRecord) -> Option<Arc<AppEntry>> {
        let handle = self.engine.supervisor.get(&a.name)?;
        let authority = Authority::try_from(format!("127.0.0.1:{}", a.port)).ok()?;
        let runtime = self.engine.runtimes.of(a).ok();
        let prefix = runtime.as_ref().map(|r| r.prefix).unwrap_or(Prefix::Keep);
        let health = runtime
            .as_ref()
            .map(|r| crate::run::launch::health_path(&a.name, r))
            .unwrap_or_default();
        let activity = self
            .activities
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(a.name.clone())
            .or_default()
            .clone();
        Some(Arc::new(AppEntry {
            base: crate::run::launch::base_path(&a.name),
            authority,
            addr: SocketAddr::from(([127, 0, 0, 1], a.port)),
            prefix,
            health,
            start_mode: a.start_mode,
            pinned: a.pinned,
            idle_timeout: a.idle_timeout.map(|s| Duration::from_secs(s.into())),
            state: handle.state.clone(),
            log: handle.log.clone(),
            activity,
            name: a.name.clone(),
        }))
    }

    /// The domain `a` is routed by, if any and routable.
    fn domain_of(a: &crate::store::registry::AppRecord) -> Option<String> {
        let d = a.domain.as_ref()?.to_ascii_lowercase();
        // A registry from before the domain rule refused IP addresses and .localhost may hold
        // one: it would take every request to the front door.
        match crate::base::validate::domain(&d) {
            Ok(()) => Some(d),
            Err(e) => {
                tracing::warn!(app = %a.name, "its domain is not routed: {e}");
                None
            }
        }
    }

    /// Load the whole table from the registry (at the start, and after missed events).
    async fn reload(&self) {
        let Ok(apps) = self.engine.registry.list().await else {
            return;
        };
        self.loads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut t = Table::default();
        for a in apps {
            // Supervised before its first event; one that is not (yet) comes with its event.
            let Some(entry) = self.entry(&a) else {
                continue;
            };
            if let Some(d) = Self::domain_of(&a) {
                t.domains.insert(d, entry.clone());
            }
            t.apps.insert(a.name, entry);
        }
        self.activities
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|name, _| t.apps.contains_key(name));
        if let Ok(mut table) = self.table.write() {
            *table = t;
        }
    }

    /// Read one app's record again and put what it says in the table (its route event).
    async fn update(&self, name: &str) {
        self.updates
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let record = match self.engine.registry.get(name).await {
            Ok(a) => a,
            Err(crate::store::registry::RegistryError::NotFound(_)) => {
                self.forget(name);
                return;
            }
            Err(e) => {
                tracing::warn!(app = %name, "the route table could not read the app: {e}");
                return;
            }
        };
        let entry = self.entry(&record);
        let domain = Self::domain_of(&record);
        if let Ok(mut t) = self.table.write() {
            t.domains.retain(|_, e| e.name != name);
            match entry {
                Some(entry) => {
                    if let Some(d) = domain {
                        t.domains.insert(d, entry.clone());
                    }
                    t.apps.insert(name.to_string(), entry);
                }
                None => {
                    t.apps.remove(name);
                }
            }
        }
    }

    /// Take a removed app out of the table.
    fn forget(&self, name: &str) {
        if let Ok(mut t) = self.table.write() {
            t.apps.remove(name);
            t.domains.retain(|_, e| e.name != name);
        }
        self.activities
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    /// What of a start visitors may see.
    fn shown(&self) -> wake::Shown {
        wake::Shown {
            output: self.engine.config.show_app_output_to_visitors,
        }
    }

    /// Every app the proxy knows.
    fn apps(&self) -> Vec<Arc<AppEntry>> {
        self.table
            .read()
            .map(|t| t.apps.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Choose the app: custom domain, then `<name>.localhost` (any port), then
    /// `/_app/<name>/`, else main; a Host that does not lead here ([`Names`]) chooses none.
    fn route(&self, host: &str, path: &str) -> Result<Route, Miss> {
        let table = self
            .table
            .read()
            .map_err(|_| Miss::NoApp("route table poisoned".to_string()))?;
        let host = host
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h);
        let host = host.trim_end_matches('.');
        let lower;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = host.to_ascii_lowercase();
            lower.as_str()
        } else {
            host
        };
        let found = |app: Option<&Arc<AppEntry>>, by_path| {
            app.map(|app| Route {
                app: app.clone(),
                by_path,
            })
        };
        if let Some(r) = found(table.domains.get(host), false) {
            return Ok(r);
        }
        if !self.names.lead_here(host) {
            return Err(Miss::Misdirected);
        }
        let none = |name: &str| Miss::NoApp(name.to_string());
        if let Some(name) = host.strip_suffix(".localhost") {
            return found(table.apps.get(name), false).ok_or_else(|| none(name));
        }
        if let Some(rest) = path.strip_prefix("/_app/") {
            let name = rest.split('/').next().unwrap_or("");
            if name == MAIN {
                return Err(none(name));
            }
            return found(table.apps.get(name), true).ok_or_else(|| none(name));
        }
        found(table.apps.get(MAIN), false).ok_or_else(|| none(MAIN))
    }

    /// Route, and when the app is unknown, read its record once (at most every 50 ms) in case
    /// it was created a moment ago and its event is still on its way, and try again.
    async fn route_fresh(self: &Arc<Self>, host: &str, path: &str) -> Result<Route, Miss> {
        let first = self.route(host, path);
        let Err(Miss::NoApp(name)) = &first else {
            return first;
        };
        let due = self
            .last_miss
            .lock()
            .map(|mut t| {
                let due = t.is_none_or(|t| t.elapsed() > Duration::from_millis(50));
                if due {
                    *t = Some(Instant::now());
                }
                due
            })
            .unwrap_or(false);
        if !due || crate::base::validate::name(name).is_err() {
            return first;
        }
        let me = self.clone();
        let name = name.clone();
        let _ = self
            .engine_rt
            .spawn(async move { me.update(&name).await })
            .await;
        self.route(host, path)
    }

    async fn handle(
        self: Arc<Self>,
        client: &Upstream,
        mut req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        if req.method() == Method::CONNECT {
            return pages::error(
                pages::wants_html(req.headers()),
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Not allowed",
                "CONNECT is not served here: this is a reverse proxy.",
                None,
                &[],
            );
        }

        // 1. Route: custom domain, `<name>.localhost`, `/_app/<name>/`, else main.
        let host = request_host(&req);
        let route = match self
            .route_fresh(host.to_str().unwrap_or(""), req.uri().path())
            .await
        {
            Ok(r) => r,
            Err(Miss::NoApp(name)) => return not_found(&req, &name),
            Err(Miss::Misdirected) => return misdirected(&req, &host),
        };
        let app = route.app;
        if app.name == MAIN && !self.engine.config.main.enabled {
            return not_found(&req, MAIN);
        }
        let target = Target {
            base: &app.base,
            by_path: route.by_path,
            prefix: app.prefix,
        };
        match own_answer(req.uri().path(), &target) {
            None => {}
            Some(Own::BarePrefix) => {
                let q = req
                    .uri()
                    .query()
                    .map(|q| format!("?{q}"))
                    .unwrap_or_default();
                return pages::redirect(&format!("{}/{q}", app.base));
            }
            // The waiting page's status stream, of the app the request routes to (never of
            // another app by its name: a stranger's Host routes elsewhere).
            Some(Own::WaitStream(name)) => {
                return match name == app.name && req.method() == Method::GET {
                    true => wake::status_stream(app.clone(), self.shown()),
                    false => not_found(&req, name),
                };
            }
        }

        // 2. It is activity (idle stop) until its answer is sent; waits out an idle stop.
        let active = app.activity.enter().await;

        // 3. Make sure the app runs: a stopped on-visit app starts here, once however many
        //    wait; browsers see the waiting page, programs are held (wake.rs).
        if app.state.borrow().status != Status::Running {
            if let Err(answer) = wake::wake(&self, &app, &req, route.by_path).await {
                return answer;
            }
        }

        // 4. Rewrite the request for the app: its address, the prefix kept or stripped (an app
        //    that keeps it and is reached by its Host gets it too), the X-Forwarded-* headers.
        let strip = target.strips();
        let upgrade = req.headers().get(header::UPGRADE).cloned();
        if rewrite_request(&mut req, &target, &app.authority, &host, peer).is_none() {
            return bad_request(&req);
        }

        // 5. Upgrades (WebSocket and others) become a tunnel, active while it is open.
        if let Some(protocol) = upgrade {
            return self.tunnel(client, req, protocol, &app, active).await;
        }

        // 6. Forward, streaming both ways; the answer keeps the app active until it is sent.
        let mut resp = match self.send(client, &app, req).await {
            Ok(r) => r,
            Err(answer) => return answer,
        };
        strip_hop_headers(resp.headers_mut(), false);
        if strip {
            rewrite_answer(resp.headers_mut(), &app.base);
        }
        resp.map(|b| Tracked::new(b, active).boxed())
    }

    /// Send to the app; 502 when it cannot be reached or drops the connection, 504 when its
    /// answer does not begin within `upstream_timeout`.
    async fn send(
        &self,
        client: &Upstream,
        app: &AppEntry,
        req: Request<Incoming>,
    ) -> Result<Response<Incoming>, Response<Body>> {
        let html = pages::wants_html(req.headers());
        let timeout = self.engine.config.upstream_timeout;
        match tokio::time::timeout(timeout, client.request(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => {
                tracing::debug!(app = %app.name, "upstream error: {e}");
                Err(pages::bad_gateway(html, &app.name, &root_cause(&e)))
            }
            Err(_) => Err(pages::gateway_timeout(html, &app.name, timeout)),
        }
    }

    async fn tunnel(
        &self,
        client: &Upstream,
        mut req: Request<Incoming>,
        protocol: HeaderValue,
        app: &AppEntry,
        active: Active,
    ) -> Response<Body> {
        let client_side = hyper::upgrade::on(&mut req);
        req.headers_mut().insert(header::UPGRADE, protocol);
        req.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        let mut resp = match self.send(client, app, req).await {
            Ok(r) => r,
            Err(answer) => return answer,
        };
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            strip_hop_headers(resp.headers_mut(), false);
            return resp.map(|b| Tracked::new(b, active).boxed());
        }
        let app_side = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            let _active = active;
            let (Ok(c), Ok(a)) = (client_side.await, app_side.await) else {
                return;
            };
            let mut c = TokioIo::new(c);
            let mut a = TokioIo::new(a);
            let _ = tokio::io::copy_bidirectional(&mut c, &mut a).await;
        });
        let mut out = Response::new(pages::empty());
        *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *out.headers_mut() = std::mem::take(resp.headers_mut());
        out
    }
}

fn not_found<B>(req: &Request<B>, name: &str) -> Response<Body> {
    let message = if name == MAIN {
        "There is no main app here ([main] enabled = false in hangar.toml).".to_string()
    } else {
        format!("There is no app named “{name}” here.")
    };
    pages::error(
        pages::wants_html(req.headers()),
        StatusCode::NOT_FOUND,
        "not_found",
        "No such app",
        &message,
        None,
        &[],
    )
}

/// 421: this server does not answer the name the request was sent to (see [`Names`]).
fn misdirected<B>(req: &Request<B>, host: &HeaderValue) -> Response<Body> {
    let host = String::from_utf8_lossy(host.as_bytes());
    pages::error(
        pages::wants_html(req.headers()),
        StatusCode::MISDIRECTED_REQUEST,
        "misdirected",
        "Not served under this name",
        &format!(
            "This Hangar answers only names that lead to this machine (localhost, *.localhost, a loopback address, an app's own domain), not {host:?}."
        ),
        None,
        &[],
    )
}

fn bad_request<B>(req: &Request<B>) -> Response<Body> {
    pages::error(
        pages::wants_html(req.headers()),
        StatusCode::BAD_REQUEST,
        "bad_request",
        "Bad request",
        "The request's path is not valid.",
        None,
        &[],
    )
}

/// Where routing sent a request, as its rewrite needs it.
#[derive(Debug, Clone, Copy)]
struct Target<'a> {
    /// The app's `/_app/<name>`.
    base: &'a str,
    /// The path (`/_app/<name>/…`) chose the app, rather than the Host.
    by_path: bool,
    prefix: Prefix,
}

impl Target<'_> {
    /// The path the app wants: an app that strips the prefix loses it when the path chose it;
    /// one that keeps it gets it added when its Host chose it.
    fn upstream_path(&self) -> UpstreamPath {
        match (self.by_path, self.prefix) {
            (true, Prefix::Strip) => UpstreamPath::Strip,
            (false, Prefix::Keep) => UpstreamPath::AddBase,
            _ => UpstreamPath::AsIs,
        }
    }

    /// Its answers' Location and cookie paths go back under the prefix.
    fn strips(&self) -> bool {
        self.by_path && self.prefix == Prefix::Strip
    }

    /// The public prefix the app is told (`X-Forwarded-Prefix`): only when the path chose it.
    fn public_prefix(&self) -> Option<&str> {
        self.by_path.then_some(self.base)
    }
}

/// What a request says its Host is: the authority of an absolute-form target, else the Host
/// header, else nothing.
fn request_host<B>(req: &Request<B>) -> HeaderValue {
    req.uri()
        .authority()
        .map(|a| HeaderValue::from_str(a.as_str()).ok())
        .unwrap_or_else(|| req.headers().get(header::HOST).cloned())
        .unwrap_or_else(|| HeaderValue::from_static(""))
}

/// A routed request Hangar answers itself, before any app is asked.
enum Own<'a> {
    /// `/_app/<name>` without its slash: redirected under it.
    BarePrefix,
    /// The waiting page's status stream of the app named.
    WaitStream(&'a str),
}

/// Does Hangar answer this routed request itself? Both paths ask (the fast path then hands it
/// to the general one).
fn own_answer<'a>(path: &'a str, target: &Target) -> Option<Own<'a>> {
    if target.by_path && path == target.base {
        return Some(Own::BarePrefix);
    }
    wake::wait_stream(path, target.base, target.by_path).map(Own::WaitStream)
}

/// The general path's step 4: the request as the app gets it, its URI (the app's address, the
/// path it wants) and headers. `None`: the path cannot be rewritten (the client gets 400).
fn rewrite_request<B>(
    req: &mut Request<B>,
    target: &Target,
    authority: &Authority,
    host: &HeaderValue,
    peer: SocketAddr,
) -> Option<()> {
    let uri = upstream_uri(target.base, authority, req.uri(), target.upstream_path())?;
    *req.uri_mut() = uri;
    let upgrade = req.headers().contains_key(header::UPGRADE);
    forward_headers(
        req.headers_mut(),
        host,
        peer,
        target.public_prefix(),
        upgrade,
    );
    Some(())
}

/// The general path's treatment of one request head routed to `target`, as a pure function
/// (for the fuzz target, see [`heads_for_fuzzing`]): parsed as hyper parses it (httparse, then
/// the `http` types, which refuse what they cannot hold), answered by Hangar itself where
/// [`Proxy::handle`] would (CONNECT, [`own_answer`], a path that cannot be rewritten): `None`;
/// else rewritten by [`rewrite_request`] and written out as hyper's client writes it (origin
/// form; a Host from the app's address only when the client sent none).
fn general_head(
    head: &[u8],
    target: &Target,
    authority: &Authority,
    peer: SocketAddr,
) -> Option<Vec<u8>> {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        _ => return None,
    }
    let method = Method::from_bytes(parsed.method?.as_bytes()).ok()?;
    let uri: Uri = parsed.path?.parse().ok()?;
    let version = match parsed.version? {
        0 => hyper::Version::HTTP_10,
        _ => hyper::Version::HTTP_11,
    };
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .version(version)
        .body(())
        .ok()?;
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        req.headers_mut().append(name, value);
    }
    if req.method() == Method::CONNECT || own_answer(req.uri().path(), target).is_some() {
        return None;
    }
    let host = request_host(&req);
    rewrite_request(&mut req, target, authority, &host, peer)?;
    if !req.headers().contains_key(header::HOST) {
        let h = HeaderValue::from_str(authority.as_str()).ok()?;
        req.headers_mut().insert(header::HOST, h);
    }
    let mut out = Vec::with_capacity(head.len() + 256);
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.push(b' ');
    let pq = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    out.extend_from_slice(pq.as_bytes());
    out.extend_from_slice(match req.version() {
        hyper::Version::HTTP_10 => b" HTTP/1.0\r\n",
        _ => b" HTTP/1.1\r\n",
    });
    for (name, value) in req.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Some(out)
}

/// Both paths' rewrite of one request head, for `fuzz/fuzz_targets/proxy_head.rs`: `head` as a
/// client sent it, routed to app `app` by its path (`by_path`) or its Host, with its prefix
/// stripped or kept. Returns (fast path, general path): the head the app would get, or `None`
/// when that path does not forward it as is (the fast path hands it over; the general path
/// answers it itself or refuses it). Not a stable interface.
#[doc(hidden)]
pub fn heads_for_fuzzing(
    head: &[u8],
    app: &str,
    by_path: bool,
    strip: bool,
    peer: SocketAddr,
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let base = crate::run::launch::base_path(app);
    let target = Target {
        base: &base,
        by_path,
        prefix: if strip { Prefix::Strip } else { Prefix::Keep },
    };
    let authority = Authority::from_static("127.0.0.1:14000");
    (
        fast::fast_head(head, &target, peer),
        general_head(head, &target, &authority, peer),
    )
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum UpstreamPath {
    AsIs,
    /// Reached by `/_app/<name>/…`, wants the path without it.
    Strip,
    /// Reached by its Host, wants `/_app/<name>` in front (unless the path has it already:
    /// the app's own absolute links).
    AddBase,
}

/// The app's own address with the path it wants.
fn upstream_uri(base: &str, authority: &Authority, uri: &Uri, path: UpstreamPath) -> Option<Uri> {
    let pq = match uri.path_and_query() {
        None => PathAndQuery::from_static("/"),
        Some(pq) => match upstream_path(base, pq.as_str(), path)? {
            // Unchanged: no copy.
            std::borrow::Cow::Borrowed(p) if p.len() == pq.as_str().len() => pq.clone(),
            p => PathAndQuery::try_from(p.as_ref()).ok()?,
        },
    };
    let mut parts = hyper::http::uri::Parts::default();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(authority.clone());
    parts.path_and_query = Some(pq);
    Uri::from_parts(parts).ok()
}

/// The path and query the app wants, from the one the client sent (`pq`, origin form).
fn upstream_path<'a>(
    base: &str,
    pq: &'a str,
    path: UpstreamPath,
) -> Option<std::borrow::Cow<'a, str>> {
    use std::borrow::Cow;
    match path {
        UpstreamPath::AsIs => Some(Cow::Borrowed(pq)),
        UpstreamPath::Strip => {
            let rest = pq.get(base.len()..)?;
            if rest.starts_with('/') {
                Some(Cow::Borrowed(rest))
            } else {
                Some(Cow::Owned(format!("/{rest}")))
            }
        }
        UpstreamPath::AddBase => {
            let p = pq.split_once('?').map_or(pq, |(p, _)| p);
            let under_base = p
                .strip_prefix(base)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
            if base.is_empty() || under_base {
                Some(Cow::Borrowed(pq))
            } else {
                Some(Cow::Owned(format!("{base}{pq}")))
            }
        }
    }
}

const HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
];

/// Hop-by-hop headers (RFC 9110 §7.6.1): never forwarded as they are.
fn is_hop_by_hop(name: &str) -> bool {
    HOP.iter().any(|h| name.eq_ignore_ascii_case(h.as_str()))
        || name.eq_ignore_ascii_case("keep-alive")
        || name.eq_ignore_ascii_case("proxy-connection")
}

fn strip_hop_headers(h: &mut HeaderMap, keep_upgrade: bool) {
    // Headers named in Connection are hop-by-hop too.
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .filter_map(|s| HeaderName::from_bytes(s.as_bytes()).ok())
        .collect();
    for n in named {
        if !(keep_upgrade && n == header::UPGRADE) {
            h.remove(n);
        }
    }
    for n in HOP.iter() {
        if !(keep_upgrade && (*n == header::UPGRADE || *n == header::CONNECTION)) {
            h.remove(n);
        }
    }
    h.remove("keep-alive");
    h.remove("proxy-connection");
}

fn forward_headers(
    h: &mut HeaderMap,
    host: &HeaderValue,
    peer: SocketAddr,
    prefix: Option<&str>,
    upgrade: bool,
) {
    strip_hop_headers(h, upgrade);
    crate::base::web::strip_token_cookie(h);
    let set = forwarding(
        h.get_all("x-forwarded-for")
            .iter()
            .map(HeaderValue::as_bytes),
        host.as_bytes(),
        peer,
        prefix,
    );
    let client_sent: Vec<HeaderName> = h
        .keys()
        .filter(|n| is_forwarding(n.as_str()))
        .cloned()
        .collect();
    for n in client_sent {
        h.remove(n);
    }
    for (name, value) in set {
        // Valid header bytes joined with ASCII: valid; were it not, the header is left out.
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            h.append(name, v);
        }
    }
}

/// The forwarding rule, the same on both paths. Hangar is the app's reverse proxy and vouches
/// only for what it saw itself:
/// - `X-Forwarded-For`: the chain the client sent (every such header, in order) and then the
///   peer's address: the last entry is the one Hangar saw;
/// - `X-Forwarded-Host`, `-Proto`, `-Prefix`: Hangar's own (the Host it routed by, `http`, and
///   the `/_app/<name>` prefix only when the path chose the app); a client's are dropped;
/// - every other `X-Forwarded-*` (`-Port`, `-Server`, `-Ssl`, …), `Forwarded` (RFC 7239) and
///   `X-Real-IP`: dropped, so an app that reads them (for a visitor's address, for absolute
///   URLs, to decide it is behind HTTPS) never takes a client's word for them.
///
/// Is `name` one of the headers this rule decides (the client's copy is never forwarded)?
fn is_forwarding(name: &str) -> bool {
    (name.len() > 12 && name[..12].eq_ignore_ascii_case("x-forwarded-"))
        || name.eq_ignore_ascii_case("forwarded")
        || name.eq_ignore_ascii_case("x-real-ip")
}

/// The forwarding headers the app gets (see [`is_forwarding`]), from the client's
/// `X-Forwarded-For` values, the Host the request was routed by (empty: none), the peer, and
/// the public prefix.
fn forwarding<'a>(
    client_xff: impl Iterator<Item = &'a [u8]>,
    host: &[u8],
    peer: SocketAddr,
    prefix: Option<&str>,
) -> Vec<(&'static str, Vec<u8>)> {
    let mut xff = Vec::new();
    for prev in client_xff {
        xff.extend_from_slice(prev);
        xff.extend_from_slice(b", ");
    }
    xff.extend_from_slice(peer.ip().to_string().as_bytes());
    let mut set = vec![("x-forwarded-for", xff)];
    if !host.is_empty() {
        set.push(("x-forwarded-host", host.to_vec()));
    }
    set.push(("x-forwarded-proto", b"http".to_vec()));
    if let Some(p) = prefix {
        set.push(("x-forwarded-prefix", p.as_bytes().to_vec()));
    }
    set
}

/// With the prefix stripped, the app's absolute paths must go back under it.
fn rewrite_answer(h: &mut HeaderMap, prefix: &str) {
    if let Some(loc) = h.get(header::LOCATION).and_then(|v| v.to_str().ok()) {
        if let Some(v) = rewrite_location(loc, prefix).and_then(|l| HeaderValue::from_str(&l).ok())
        {
            h.insert(header::LOCATION, v);
        }
    }
    let cookies: Vec<HeaderValue> =
        h.get_all(header::SET_COOKIE)
            .iter()
            .map(|v| match v.to_str() {
                Ok(s) => HeaderValue::from_str(&rewrite_cookie_path(s, prefix))
                    .unwrap_or_else(|_| v.clone()),
                Err(_) => v.clone(),
            })
            .collect();
    if !cookies.is_empty() {
        h.remove(header::SET_COOKIE);
        for c in cookies {
            h.append(header::SET_COOKIE, c);
        }
    }
}

/// An absolute path outside the prefix goes under it; `None`: leave the Location as it is.
fn rewrite_location(loc: &str, prefix: &str) -> Option<String> {
    let outside = loc.starts_with('/')
        && !loc.starts_with("//")
        && !loc
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'));
    outside.then(|| format!("{prefix}{loc}"))
}

fn rewrite_cookie_path(cookie: &str, prefix: &str) -> String {
    let mut found = false;
    let parts: Vec<String> = cookie
        .split(';')
        .map(|part| {
            let t = part.trim_start();
            if t.len() >= 5 && t[..5].eq_ignore_ascii_case("path=") {
                found = true;
                let p = &t[5..];
                let p = if p == "/" {
                    format!("{prefix}/")
                } else {
                    format!("{prefix}{p}")
                };
                format!(" Path={p}")
            } else {
                part.to_string()
            }
        })
        .collect();
    let mut out = parts.join(";");
    if !found {
        out.push_str(&format!("; Path={prefix}/"));
    }
    out
}

fn root_cause(e: &hyper_util::client::legacy::Error) -> String {
    let mut src: &dyn std::error::Error = e;
    while let Some(next) = src.source() {
        src = next;
    }
    src.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_request_gets_500() {
        let r = guarded(async { panic!("boom") }).await;
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let r = guarded(async { pages::redirect("/x/") }).await;
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    }

    /// Issue 18: the route table changes on the events that change routes (create, edit,
    /// delete) and only on those; a stop and any number of state events leave it alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_route_table_follows_route_events_only() {
        use std::sync::atomic::Ordering::Relaxed;
        let home = tempfile::tempdir().unwrap();
        let engine = Engine::open(crate::base::home::Home::at(home.path()), Default::default())
            .await
            .unwrap();
        let proxy = Proxy::follow(engine.clone()).await;
        let counts = || (proxy.loads.load(Relaxed), proxy.updates.load(Relaxed));
        let routed = |host: &str| proxy.route(host, "/").ok().map(|r| r.app.name.clone());
        let until = |host: &'static str, want: Option<&'static str>| {
            let routed = &routed;
            async move {
                for _ in 0..1000 {
                    if routed(host).as_deref() == want {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                panic!("{host} never routed to {want:?}");
            }
        };
        assert_eq!(counts(), (1, 0), "one load at the start");
        assert_eq!(routed("a.localhost"), None);

        engine
            .create(crate::engine::CreateApp {
                name: "a".into(),
                start_mode: Some(StartMode::OnVisit),
                ..Default::default()
            })
            .await
            .unwrap();
        until("a.localhost", Some("a")).await;
        assert_eq!(counts(), (1, 1), "a create updates one entry");

        // State events: a stop, and as many as a start, a crash loop or a busy panel send.
        engine.stop("a").await.unwrap();
        for _ in 0..100 {
            let _ = engine
                .events
                .send(crate::run::supervisor::Event::App { name: "a".into() });
        }
        // A route event after them: once its effect shows, every event before it was seen.
        engine
            .edit(
                "a",
                crate::store::registry::AppEdit {
                    domain: Some(Some("a.example.com".into())),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        until("a.example.com", Some("a")).await;
        assert_eq!(counts(), (1, 2), "state events left the table alone");

        engine.delete("a", false).await.unwrap();
        until("a.example.com", None).await;
        assert_eq!(routed("a.localhost"), None);
        assert_eq!(counts().0, 1, "never loaded whole again");
    }

    /// The request line, then the header lines with lowercase names, sorted (the order of
    /// different names means nothing to an app).
    fn lines(head: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(head);
        let mut l: Vec<String> = text.split("\r\n").map(str::to_string).collect();
        let mut fields: Vec<String> = l
            .split_off(1)
            .into_iter()
            .filter(|f| !f.is_empty())
            .map(|f| match f.split_once(':') {
                Some((n, v)) => format!("{}:{v}", n.to_ascii_lowercase()),
                None => f,
            })
            .collect();
        fields.sort();
        l.extend(fields);
        l
    }

    #[test]
    fn both_paths_rewrite_a_head_alike() {
        let peer = SocketAddr::from(([10, 0, 0, 9], 40000));
        let spoof = "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\nX-Forwarded-Host: e\r\nX-Forwarded-Port: 1\r\nForwarded: for=6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n";
        for (path, by_path, strip) in [
            ("/_app/shop/api?x=1", true, false),
            ("/_app/shop/api?x=1", true, true),
            ("/api?x=1", false, false),
            ("/_app/shop/api", false, true),
        ] {
            let head = format!(
                "GET {path} HTTP/1.1\r\nHost: h\r\nCookie: a=\u{e9}; hangar_token=s\r\n{spoof}Connection: keep-alive\r\n\r\n"
            );
            let (fast, general) = heads_for_fuzzing(head.as_bytes(), "shop", by_path, strip, peer);
            let (fast, general) = (lines(&fast.unwrap()), lines(&general.unwrap()));
            assert_eq!(fast, general, "{path} {by_path} {strip}");
            let all = fast.join("\n");
            assert!(
                all.contains("x-forwarded-for: 1.1.1.1, 2.2.2.2, 10.0.0.9"),
                "{all}"
            );
            assert!(all.contains("cookie: a=\u{e9}\n"), "{all}");
            for gone in [
                "hangar_token",
                "forwarded:",
                "x-real-ip",
                "x-forwarded-port",
                ": e\n",
            ] {
                assert!(!all.contains(gone), "{gone}: {all}");
            }
        }
        // What the general path answers itself or refuses, the fast path never forwards.
        for (head, by_path) in [
            ("GET /_app/shop/a`b HTTP/1.1\r\nHost: h\r\n\r\n", true),
            ("GET /a`b HTTP/1.1\r\nHost: h\r\n\r\n", false),
            ("GET /_app/shop HTTP/1.1\r\nHost: h\r\n\r\n", true),
            (
                "GET /_app/shop/_hangar/wait/shop HTTP/1.1\r\nHost: h\r\n\r\n",
                true,
            ),
            ("GET /_hangar/wait/shop HTTP/1.1\r\nHost: h\r\n\r\n", false),
        ] {
            assert_eq!(
                heads_for_fuzzing(head.as_bytes(), "shop", by_path, false, peer),
                (None, None),
                "{head}"
            );
        }
        // A prefix stripped at a place routing never cuts (after the `?`): the backtick moves
        // from the query into the path, which the general path then refuses.
        let head = b"GET /_apps?op/`x HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(
            heads_for_fuzzing(head, "shop", true, true, peer),
            (None, None)
        );
        // A fragment: hyper drops it (and routes by what is left), so the fast path leaves the
        // request to the general one.
        let head = b"GET /_app/shop/a#b HTTP/1.1\r\nHost: h\r\n\r\n";
        let (fast, general) = heads_for_fuzzing(head, "shop", true, false, peer);
        assert_eq!(fast, None);
        assert!(general
            .unwrap()
            .starts_with(b"GET /_app/shop/a HTTP/1.1\r\n"));
    }

    #[test]
    fn names_that_lead_here() {
        let lo = Names {
            shared: false,
            machine: Vec::new(),
        };
        for h in [
            "",
            "localhost",
            "a.localhost",
            "127.0.0.1",
            "127.200.1.1",
            "[::1]",
        ] {
            assert!(lo.lead_here(h), "{h}");
        }
        for h in [
            "rebind.attacker.example",
            "192.168.1.5",
            "[2001:db8::1]",
            "localhost.evil",
            "[::ffff:127.0.0.1]",
            "0.0.0.0",
        ] {
            assert!(!lo.lead_here(h), "{h}");
        }
        let lan = Names {
            shared: true,
            machine: vec!["box.local".into(), "box".into()],
        };
        for h in [
            "192.168.1.5",
            "[2001:db8::1]",
            "box",
            "box.local",
            "localhost",
        ] {
            assert!(lan.lead_here(h), "{h}");
        }
        for h in ["rebind.attacker.example", "box.evil", "evil.box"] {
            assert!(!lan.lead_here(h), "{h}");
        }
    }

    #[test]
    fn cookie_paths_go_under_the_prefix() {
        assert_eq!(
            rewrite_cookie_path("a=1; Path=/", "/_app/x"),
            "a=1; Path=/_app/x/"
        );
        assert_eq!(
            rewrite_cookie_path("a=1; path=/admin; HttpOnly", "/_app/x"),
            "a=1; Path=/_app/x/admin; HttpOnly"
        );
        assert_eq!(rewrite_cookie_path("a=1", "/_app/x"), "a=1; Path=/_app/x/");
    }

    #[test]
    fn locations_go_under_the_prefix() {
        let mut h = HeaderMap::new();
        h.insert(header::LOCATION, HeaderValue::from_static("/login"));
        rewrite_answer(&mut h, "/_app/x");
        assert_eq!(h[header::LOCATION], "/_app/x/login");
        let mut h = HeaderMap::new();
        h.insert(
            header::LOCATION,
            HeaderValue::from_static("https://other.example/"),
        );
        rewrite_answer(&mut h, "/_app/x");
        assert_eq!(h[header::LOCATION], "https://other.example/");
    }
}

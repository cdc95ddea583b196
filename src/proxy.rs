//! The proxy: the one front door. A request's path through it reads top to bottom in
//! [`handle`]: route → make sure the app runs → rewrite → forward (or tunnel an upgrade) →
//! rewrite the answer.
//!
//! Invariants: bodies stream both ways and are never held whole; the proxy never serves the
//! API; one failing request never takes the proxy down (each connection is its own task).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::config::Prefix;
use crate::engine::Engine;
use crate::supervisor::{Status, WakeError};
use crate::validate::MAIN;

type Body = BoxBody<Bytes, hyper::Error>;

/// What the proxy needs to know of an app, kept in memory and rebuilt on every registry event.
#[derive(Debug, Clone)]
struct Entry {
    port: u16,
    prefix: Prefix,
}

#[derive(Debug, Default)]
struct Table {
    apps: HashMap<String, Entry>,
    domains: HashMap<String, String>,
}

/// Where a request goes.
#[derive(Debug, PartialEq)]
pub struct Route {
    pub app: String,
    /// `/_app/<name>` when the path chose the app.
    pub prefix: Option<String>,
}

struct Proxy {
    engine: Arc<Engine>,
    table: RwLock<Table>,
    client: Client<HttpConnector, Incoming>,
}

pub async fn serve(engine: Arc<Engine>, listener: tokio::net::TcpListener) {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build(connector);
    let proxy = Arc::new(Proxy {
        engine: engine.clone(),
        table: RwLock::new(Table::default()),
        client,
    });
    proxy.reload().await;
    tokio::spawn(follow_registry(proxy.clone()));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("proxy accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let proxy = proxy.clone();
                async move { Ok::<_, Infallible>(proxy.handle(req, peer).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .max_buf_size(64 * 1024)
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            let _ = conn.await;
        });
    }
}

async fn follow_registry(proxy: Arc<Proxy>) {
    // Creates, edits (port, domain) and deletes all arrive as events; reloading is one small
    // registry query, done off the request path.
    let mut events = proxy.engine.events.subscribe();
    loop {
        match events.recv().await {
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                proxy.reload().await
            }
            Err(_) => return,
        }
    }
}

impl Proxy {
    async fn reload(&self) {
        let Ok(apps) = self.engine.registry.list().await else {
            return;
        };
        let mut t = Table::default();
        for a in apps {
            let rt = a
                .runtime
                .clone()
                .unwrap_or_else(|| self.engine.config.main.runtime.clone());
            let prefix = self
                .engine
                .config
                .runtime(&rt)
                .map(|r| r.prefix)
                .unwrap_or(Prefix::Keep);
            if let Some(d) = &a.domain {
                t.domains.insert(d.clone(), a.name.clone());
            }
            t.apps.insert(
                a.name.clone(),
                Entry {
                    port: a.port,
                    prefix,
                },
            );
        }
        if let Ok(mut table) = self.table.write() {
            *table = t;
        }
    }

    /// Choose the app: custom domain, then `<name>.localhost`, then `/_app/<name>/`, else main.
    fn route(&self, host: &str, path: &str) -> Result<Route, String> {
        let table = self
            .table
            .read()
            .map_err(|_| "route table poisoned".to_string())?;
        let host = host
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h);
        let host = host.to_ascii_lowercase();
        if let Some(app) = table.domains.get(&host) {
            return Ok(Route {
                app: app.clone(),
                prefix: None,
            });
        }
        if let Some(name) = host.strip_suffix(".localhost") {
            return if table.apps.contains_key(name) {
                Ok(Route {
                    app: name.to_string(),
                    prefix: None,
                })
            } else {
                Err(name.to_string())
            };
        }
        if let Some(rest) = path.strip_prefix("/_app/") {
            let name = rest.split('/').next().unwrap_or("");
            return if table.apps.contains_key(name) && name != MAIN {
                Ok(Route {
                    app: name.to_string(),
                    prefix: Some(format!("/_app/{name}")),
                })
            } else {
                Err(name.to_string())
            };
        }
        Ok(Route {
            app: MAIN.to_string(),
            prefix: None,
        })
    }

    async fn handle(&self, mut req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        // (Content-Length with Transfer-Encoding: hyper frames by Transfer-Encoding alone and
        // closes the connection afterwards, RFC 9112 §6.1, so nothing can be smuggled behind it.)
        // 1. Route.
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string();
        let path = req.uri().path().to_string();
        let route = match self.route(&host, &path) {
            Ok(r) => r,
            Err(name) => {
                return page(
                    StatusCode::NOT_FOUND,
                    "No such app",
                    &format!("There is no app named “{name}” here."),
                )
            }
        };
        if let Some(prefix) = &route.prefix {
            if path == *prefix {
                let q = req
                    .uri()
                    .query()
                    .map(|q| format!("?{q}"))
                    .unwrap_or_default();
                return redirect(&format!("{prefix}/{q}"));
            }
        }
        let Some(entry) = self
            .table
            .read()
            .ok()
            .and_then(|t| t.apps.get(&route.app).cloned())
        else {
            return page(
                StatusCode::NOT_FOUND,
                "No such app",
                "This app was just removed.",
            );
        };

        // 2. Make sure it runs: a stopped on-visit app starts here, once, however many wait.
        if let Err(resp) = self.ensure_running(&route.app).await {
            return resp;
        }

        // 3. Rewrite the request for the app.
        let strip = entry.prefix == Prefix::Strip && route.prefix.is_some();
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let upstream_pq = match (&route.prefix, strip) {
            (Some(prefix), true) => {
                let rest = &pq[prefix.len()..];
                if rest.is_empty() {
                    "/".to_string()
                } else {
                    rest.to_string()
                }
            }
            _ => pq.to_string(),
        };
        let uri: Uri = match format!("http://127.0.0.1:{}{upstream_pq}", entry.port).parse() {
            Ok(u) => u,
            Err(_) => {
                return page(
                    StatusCode::BAD_REQUEST,
                    "Bad request",
                    "The request's path is not valid.",
                )
            }
        };
        *req.uri_mut() = uri;
        let upgrade = req.headers().get(header::UPGRADE).cloned();
        forward_headers(
            req.headers_mut(),
            &host,
            peer,
            route.prefix.as_deref(),
            upgrade.is_some(),
        );

        // 4. Upgrades (WebSocket and others) become a tunnel.
        if let Some(protocol) = upgrade {
            return self.tunnel(req, protocol).await;
        }

        // 5. Forward, streaming both ways; rewrite the answer when the prefix was stripped.
        match self.client.request(req).await {
            Ok(mut resp) => {
                strip_hop_headers(resp.headers_mut(), false);
                if strip {
                    if let Some(prefix) = &route.prefix {
                        rewrite_answer(resp.headers_mut(), prefix);
                    }
                }
                resp.map(|b| b.boxed())
            }
            Err(e) => {
                tracing::debug!(app = %route.app, "upstream error: {e}");
                page(
                    StatusCode::BAD_GATEWAY,
                    "Bad gateway",
                    &format!("{} did not answer: {}", route.app, root_cause(&e)),
                )
            }
        }
    }

    async fn ensure_running(&self, name: &str) -> Result<(), Response<Body>> {
        if self
            .engine
            .supervisor
            .get(name)
            .is_some_and(|h| h.state.borrow().status == Status::Running)
        {
            return Ok(());
        }
        match tokio::time::timeout(Duration::from_secs(120), self.engine.supervisor.wake(name))
            .await
        {
            Ok(Ok(_port)) => Ok(()),
            Ok(Err(WakeError::Stopped(n))) => Err(page(
                StatusCode::SERVICE_UNAVAILABLE,
                "App stopped",
                &format!(
                    "“{n}” was stopped by the operator. Start it from Hangar to use it again."
                ),
            )),
            Ok(Err(e)) => Err(page(
                StatusCode::BAD_GATEWAY,
                "App failed to start",
                &format!("{name}: {e}"),
            )),
            Err(_) => {
                let mut r = page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Still starting",
                    &format!("{name} is still starting; try again shortly."),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                Err(r)
            }
        }
    }

    async fn tunnel(&self, mut req: Request<Incoming>, protocol: HeaderValue) -> Response<Body> {
        let client_side = hyper::upgrade::on(&mut req);
        req.headers_mut().insert(header::UPGRADE, protocol.clone());
        req.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        let mut resp = match self.client.request(req).await {
            Ok(r) => r,
            Err(e) => {
                return page(
                    StatusCode::BAD_GATEWAY,
                    "Bad gateway",
                    &format!("upgrade failed: {}", root_cause(&e)),
                )
            }
        };
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return resp.map(|b| b.boxed());
        }
        let app_side = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            let (Ok(c), Ok(a)) = (client_side.await, app_side.await) else {
                return;
            };
            let mut c = TokioIo::new(c);
            let mut a = TokioIo::new(a);
            let _ = tokio::io::copy_bidirectional(&mut c, &mut a).await;
        });
        let mut out = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
        if let Some(h) = out.headers_mut() {
            for (k, v) in resp.headers() {
                h.append(k.clone(), v.clone());
            }
        }
        out.body(empty())
            .unwrap_or_else(|_| page(StatusCode::BAD_GATEWAY, "Bad gateway", "upgrade"))
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
    host: &str,
    peer: SocketAddr,
    prefix: Option<&str>,
    upgrade: bool,
) {
    strip_hop_headers(h, upgrade);
    crate::ui_server::strip_token_cookie(h);
    let ip = peer.ip().to_string();
    let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {ip}"),
        None => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert("x-forwarded-for", v);
    }
    if let Ok(v) = HeaderValue::from_str(host) {
        h.insert("x-forwarded-host", v);
    }
    h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    match prefix.and_then(|p| HeaderValue::from_str(p).ok()) {
        Some(v) => {
            h.insert("x-forwarded-prefix", v);
        }
        None => {
            h.remove("x-forwarded-prefix");
        }
    }
}

/// With the prefix stripped, the app's absolute paths must go back under it.
fn rewrite_answer(h: &mut HeaderMap, prefix: &str) {
    if let Some(loc) = h.get(header::LOCATION).and_then(|v| v.to_str().ok()) {
        if loc.starts_with('/') && !loc.starts_with("//") && !loc.starts_with(&format!("{prefix}/"))
        {
            if let Ok(v) = HeaderValue::from_str(&format!("{prefix}{loc}")) {
                h.insert(header::LOCATION, v);
            }
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

fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

fn redirect(to: &str) -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A small HTML page of Hangar's own (404, 502, 503…).
fn page(status: StatusCode, title: &str, message: &str) -> Response<Body> {
    let html = format!(
        "<!doctype html><html><head><meta charset=utf-8><title>{t}</title><style>body{{font:16px system-ui,sans-serif;margin:4rem auto;max-width:40rem;padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}@media(prefers-color-scheme:dark){{body{{background:#111;color:#ddd}}}}</style></head><body><h1>{t}</h1><p>{m}</p><p><small>Hangar</small></p></body></html>",
        t = escape(title),
        m = escape(message)
    );
    let mut r = Response::new(
        Full::new(Bytes::from(html))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

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

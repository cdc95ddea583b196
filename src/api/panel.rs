//! The control panel's side of the API port: the built UI's static files and the browser login.
//!
//! The UI is served from the API's own origin, so it calls the API without CORS. The browser is
//! logged in without ever seeing the token: the engine mints a one-time login code
//! (`hangar serve` prints a URL with one; `hangar open` and the desktop shell ask for a fresh one
//! through the token-protected `POST /api/v1/login-code`). `GET /login?code=` is the UI's page;
//! it POSTs the code to `/login` and gets a panel session, a secret of its own (not the token),
//! which it keeps in its origin's `localStorage` and sends as `Authorization: Bearer`. No cookie
//! carries a credential: cookies ignore ports, so every app's port on 127.0.0.1 would get it.
//!
//! Invariants: a login code is random (128 bits), single-use, expires after
//! [`LOGIN_CODE_TTL`]; a session is random (256 bits), ends after [`SESSION_TTL`], at `POST
//! /api/v1/logout` or with the engine; both are bounded in number per engine. Static files are
//! served only from inside the UI folder (no `..`, no absolute paths, symlinks resolved and
//! checked); the files and `/login` need no token but still check the Host (no DNS rebinding),
//! and the exchange the Origin; everything under `/api/` that no API route answers is a JSON
//! 404, never the UI's index page; the proxy still strips the legacy `hangar_token` cookie
//! before a request reaches an app.

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::api::error::{error, ErrorKind};
use crate::api::types::{LoginExchange, LoginLink, PanelSession, Sorted};
use crate::engine::Engine;

/// How long a login code may wait to be used.
pub const LOGIN_CODE_TTL: Duration = Duration::from_secs(300);
/// At most this many codes are outstanding per engine; minting more forgets the oldest.
const MAX_CODES: usize = 32;
/// How long a panel session lasts from its login (then the page asks for a fresh link).
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// At most this many panel sessions per engine; a new login forgets the oldest.
const MAX_SESSIONS: usize = 64;
/// The legacy cookie (the token itself, before panel sessions): the API no longer reads it, a
/// login deletes it, and the proxy still strips it from every request it forwards.
pub use crate::base::web::TOKEN_COOKIE as COOKIE;

/// Random secrets of one kind, per engine (one process may host several in tests), bounded,
/// each for a while: the login codes and the panel sessions.
struct Secrets {
    ttl: Duration,
    max: usize,
    list: Mutex<Vec<Held>>,
}

struct Held {
    api_port: u16,
    secret: String,
    expires: Instant,
}

impl Secrets {
    const fn new(ttl: Duration, max: usize) -> Secrets {
        Secrets {
            ttl,
            max,
            list: Mutex::new(Vec::new()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Vec<Held>> {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        list.retain(|c| c.expires > now);
        list
    }

    /// A fresh secret of `bytes` random bytes (hex); over the bound, the oldest goes first.
    fn mint(&self, api_port: u16, bytes: usize) -> String {
        let secret = crate::base::secret::random_hex(bytes);
        let mut list = self.held();
        while list.iter().filter(|c| c.api_port == api_port).count() >= self.max {
            match list.iter().position(|c| c.api_port == api_port) {
                Some(i) => list.remove(i),
                None => break,
            };
        }
        list.push(Held {
            api_port,
            secret: secret.clone(),
            expires: Instant::now() + self.ttl,
        });
        secret
    }

    fn position(list: &[Held], api_port: u16, secret: &str) -> Option<usize> {
        if secret.is_empty() {
            return None;
        }
        list.iter()
            .position(|c| c.api_port == api_port && crate::base::secret::equal(&c.secret, secret))
    }

    /// Is `secret` held for this engine (and not expired)?
    fn holds(&self, api_port: u16, secret: &str) -> bool {
        Self::position(&self.held(), api_port, secret).is_some()
    }

    /// Forget `secret`: true when it was held (so a code is used once).
    fn take(&self, api_port: u16, secret: &str) -> bool {
        let mut list = self.held();
        match Self::position(&list, api_port, secret) {
            Some(i) => {
                list.remove(i);
                true
            }
            None => false,
        }
    }
}

static CODES: Secrets = Secrets::new(LOGIN_CODE_TTL, MAX_CODES);
static SESSIONS: Secrets = Secrets::new(SESSION_TTL, MAX_SESSIONS);

/// A fresh one-time login code for the engine on `api_port` (128 bits).
pub fn mint_code(api_port: u16) -> String {
    CODES.mint(api_port, 16)
}

/// Use up a login code: true once, for a code minted for this engine and not yet expired.
pub fn redeem_code(api_port: u16, code: &str) -> bool {
    CODES.take(api_port, code)
}

/// A new panel session for the engine on `api_port` (256 bits): what the control panel sends
/// as its bearer, in place of the API token, which never reaches a page.
pub fn mint_session(api_port: u16) -> String {
    SESSIONS.mint(api_port, 32)
}

/// Is `secret` a live panel session of the engine on `api_port`?
pub fn session_ok(api_port: u16, secret: &str) -> bool {
    SESSIONS.holds(api_port, secret)
}

/// End a panel session (`POST /api/v1/logout`); true when it was one.
pub fn end_session(api_port: u16, secret: &str) -> bool {
    SESSIONS.take(api_port, secret)
}

/// The URL that logs a browser in to the engine on `api_port` (mints a code).
pub fn login_url(api_port: u16) -> String {
    format!(
        "http://127.0.0.1:{api_port}/login?code={}",
        mint_code(api_port)
    )
}

/// `POST /api/v1/login-code` (behind the token guard): a fresh login URL, for `hangar open` and
/// the desktop shell.
pub(crate) async fn login_code(State(e): State<Arc<Engine>>) -> Sorted<LoginLink> {
    let port = e.config.api_port;
    let code = mint_code(port);
    Sorted(LoginLink {
        url: format!("http://127.0.0.1:{port}/login?code={code}"),
        code,
        expires_in_seconds: LOGIN_CODE_TTL.as_secs(),
    })
}

/// `POST /api/v1/logout` (behind the guard): the session presented as the bearer ends.
pub(crate) async fn logout(State(e): State<Arc<Engine>>, headers: HeaderMap) -> StatusCode {
    if let Some(s) = crate::api::access::bearer(&headers) {
        end_session(e.config.api_port, s);
    }
    StatusCode::NO_CONTENT
}

/// Where the built UI is: `HANGAR_UI_DIR`, else `<exe dir>/../share/hangar/ui`, else the source
/// tree's `ui/dist`. The first folder holding an `index.html` wins.
pub fn find_ui_dir() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(d) = std::env::var_os("HANGAR_UI_DIR") {
        candidates.push(PathBuf::from(d));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        candidates.push(exe_dir.join("../share/hangar/ui"));
    }
    candidates.push(PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/ui/dist"
    )));
    candidates
        .into_iter()
        .find(|d| d.join("index.html").is_file())
        .and_then(|d| d.canonicalize().ok())
}

#[derive(Clone)]
struct Ui {
    engine: Arc<Engine>,
    dir: Option<Arc<PathBuf>>,
}

/// The routes that need no token: `/login` (the page, and the code's exchange), and the UI's
/// files with an SPA fallback. Merged into the API's router after its guard layer.
pub fn router(engine: Arc<Engine>) -> Router<Arc<Engine>> {
    let dir = find_ui_dir();
    match &dir {
        Some(d) => tracing::info!(dir = %d.display(), "serving the control panel"),
        None => tracing::warn!("the control panel is not built (no ui/dist, share/hangar/ui or HANGAR_UI_DIR); the API works without it"),
    }
    let ui = Ui {
        engine,
        dir: dir.map(Arc::new),
    };
    Router::new()
        // GET: the UI's page, which reads the code and POSTs it back here.
        .route("/login", post(exchange).get(static_file))
        .fallback(get(static_file))
        .with_state(ui)
}

fn forbidden_host(port: u16) -> Response {
    (
        StatusCode::FORBIDDEN,
        format!("This is Hangar's control panel; open it as http://127.0.0.1:{port}/\n"),
    )
        .into_response()
}

/// Headers every answer of the control panel carries: no framing, no sniffing, no referrer
/// (a login URL must not travel), a tight content policy.
fn harden(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
}

fn html_page(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html><meta charset=utf-8><meta name=color-scheme content=\"light dark\"><title>{t}</title>\
         <body style=\"font:16px system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em\">\
         <h1>{t}</h1><p>{b}</p></body>",
        t = crate::base::web::escape(title),
        b = crate::base::web::escape(body)
    );
    let mut r = (status, page).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    harden(&mut r);
    r
}

/// `POST /login {code}`: a one-time code for a panel session `{session, expires_in_seconds}`.
/// The page keeps the session in its origin's own storage and sends it as its bearer: no cookie
/// carries a credential (cookies ignore ports, so every app's port would receive it). Only the
/// API's own Host and Origin may ask; a JSON body needs a CORS preflight from any other site,
/// which this origin never grants. The answer also deletes the cookie older panels set.
async fn exchange(
    State(ui): State<Ui>,
    headers: HeaderMap,
    body: Result<Json<LoginExchange>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let port = ui.engine.config.api_port;
    if let Err(refused) = crate::api::access::own_origin(port, &headers) {
        return refused;
    }
    let mut r = match body {
        Err(_) => error(
            ErrorKind::Invalid,
            Some("code"),
            "send {\"code\": \"…\"}, the code of a login link (`hangar open` prints one)",
        ),
        Ok(Json(b)) if !redeem_code(port, &b.code) => error(
            ErrorKind::Forbidden,
            Some("code"),
            "this login link cannot be used: it was already used, it expired (links last 5 minutes), or it belongs to another engine; run `hangar open` for a fresh link",
        ),
        Ok(_) => {
            let grant = PanelSession {
                session: mint_session(port),
                expires_in_seconds: SESSION_TTL.as_secs(),
            };
            let mut r = Json(grant).into_response();
            let gone = format!("{COOKIE}=; Path=/api/v1; Max-Age=0; HttpOnly; SameSite=Strict");
            if let Ok(v) = HeaderValue::from_str(&gone) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
    };
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    harden(&mut r);
    r
}

/// The content type of a file, by its extension.
pub fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") | Some("map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("txt") => "text/plain; charset=utf-8",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// The file a URL path names inside `root`, or None when the path tries to leave it (`..`, an
/// absolute or Windows-prefixed part, a NUL) or names nothing. Symlinks are resolved and must
/// stay inside `root` (which is canonical).
pub fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(url_path.trim_start_matches('/'))?;
    if decoded.contains('\0') || decoded.contains('\\') {
        return None;
    }
    let rel = Path::new(&decoded);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    let full = root.join(rel).canonicalize().ok()?;
    if !full.starts_with(root) || !full.is_file() {
        return None;
    }
    Some(full)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn static_file(State(ui): State<Ui>, req: Request) -> Response {
    let port = ui.engine.config.api_port;
    if !crate::api::access::host_ok(port, req.headers()) {
        return forbidden_host(port);
    }
    let path = req.uri().path().to_string();
    if path == "/api" || path.starts_with("/api/") {
        let mut r = error(ErrorKind::NotFound, None, &format!("no API route {path}"));
        harden(&mut r);
        return r;
    }
    let Some(root) = ui.dir.as_deref() else {
        return html_page(
            StatusCode::NOT_FOUND,
            "The control panel is not built",
            "Build it with `npm --prefix ui ci && npm --prefix ui run build`, or point HANGAR_UI_DIR at a built copy. The API and the CLI work without it.",
        );
    };
    let (file, immutable) = match resolve(root, &path) {
        Some(f) => {
            let hashed = path.starts_with("/assets/");
            (f, hashed)
        }
        // An unknown path with no extension is a UI route (SPA fallback); a missing asset is 404.
        None if !path.rsplit('/').next().unwrap_or("").contains('.') => {
            (root.join("index.html"), false)
        }
        None => {
            return html_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "The control panel has no such file.",
            )
        }
    };
    let body = match tokio::fs::read(&file).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(file = %file.display(), "cannot read a UI file: {e}");
            return html_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Cannot read the control panel",
                &format!("{}: {e}", file.display()),
            );
        }
    };
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&file)),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    harden(&mut r);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_single_use_and_per_engine() {
        let c = mint_code(40001);
        assert!(!redeem_code(40002, &c), "another engine's code");
        assert!(redeem_code(40001, &c));
        assert!(!redeem_code(40001, &c), "used twice");
        assert!(!redeem_code(40001, ""));
    }

    #[test]
    fn sessions_are_per_engine_and_end() {
        let s = mint_session(40011);
        assert_eq!(s.len(), 64, "256 bits");
        assert!(session_ok(40011, &s));
        assert!(session_ok(40011, &s), "a session is not used up");
        assert!(!session_ok(40012, &s), "another engine's session");
        assert!(!session_ok(40011, ""));
        assert!(!redeem_code(40011, &s), "a session is no login code");
        assert!(end_session(40011, &s));
        assert!(!session_ok(40011, &s), "ended");
    }

    #[test]
    fn outstanding_codes_are_bounded() {
        let first = mint_code(40003);
        for _ in 0..MAX_CODES {
            mint_code(40003);
        }
        assert!(!redeem_code(40003, &first), "the oldest was forgotten");
        let n = CODES.held().iter().filter(|c| c.api_port == 40003).count();
        assert!(n <= MAX_CODES);
    }

    #[test]
    fn paths_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("assets")).unwrap();
        std::fs::write(root.join("index.html"), "x").unwrap();
        std::fs::write(root.join("assets/a.js"), "x").unwrap();
        std::fs::write(dir.path().parent().unwrap().join("secret-ui-test"), "x").ok();
        assert_eq!(
            resolve(&root, "/assets/a.js"),
            Some(root.join("assets/a.js"))
        );
        assert_eq!(resolve(&root, "/"), None, "a folder is not a file");
        for bad in [
            "/../secret-ui-test",
            "/assets/../../secret-ui-test",
            "/%2e%2e/secret-ui-test",
            "/assets/%2E%2E/%2E%2E/secret-ui-test",
            "//etc/passwd",
            "/..%5csecret-ui-test",
            "/a%00b",
            "/%zz",
        ] {
            assert_eq!(resolve(&root, bad), None, "{bad}");
        }
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        assert_eq!(resolve(&root, "/link"), None, "a symlink out of the root");
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type(Path::new("a/index.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("x.JS")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("x.svg")), "image/svg+xml");
        assert_eq!(content_type(Path::new("x")), "application/octet-stream");
    }
}

//! The HTTP routes, all below the mount path `M`.
//!
//! Besides the notes app itself, the routes under `M/api/` give tests something real to
//! supervise and proxy: CPU burn, memory held, child processes, crashes, large streams in
//! both directions, server-sent events, slow answers, cookies, redirects and WebSockets.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::db::{Db, Note, MAX_AUTHOR_CHARS, MAX_BODY_CHARS};
use crate::html::{self, PageInfo};
use crate::output::{err, out};

const ADMIN_NOTES: i64 = 200;
const MIB: u64 = 1024 * 1024;
const MAX_BURN_MS: u64 = 60_000;
const MAX_BURNERS: usize = 8;
const MAX_HOLD_MB: u64 = 4096;
const MAX_STREAM_MB: u64 = 1024;
const MAX_SPAWN_SECS: u64 = 86_400;
const MAX_SLOW_MS: u64 = 600_000;
const MAX_SSE_COUNT: u64 = 10_000;
const MAX_SSE_INTERVAL_MS: u64 = 60_000;

/// What `M/api/info` tells.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub app: String,
    pub base_path: String,
    pub port: u16,
    pub pid: u32,
    pub db_dialect: String,
    pub schema_version: i64,
    pub version: String,
    pub public_url: Option<String>,
    pub data_dir: String,
}

/// The simulated boot: `/_health` answers 503 until `delay` has passed since `started`.
pub struct Boot {
    pub started: Instant,
    pub delay: Duration,
    pub plugins: u32,
}

impl Boot {
    /// While booting, the plugin being loaded (1-based); `None` once booted.
    pub fn loading(&self) -> Option<u32> {
        let elapsed = self.started.elapsed();
        if elapsed >= self.delay {
            return None;
        }
        let done = elapsed.as_millis() * u128::from(self.plugins) / self.delay.as_millis().max(1);
        Some((done as u32 + 1).min(self.plugins))
    }
}

pub struct AppState {
    pub db: Db,
    pub info: Info,
    pub boot: Boot,
    held: tokio::sync::Mutex<Vec<Vec<u8>>>,
    burners: AtomicUsize,
}

impl AppState {
    pub fn new(db: Db, info: Info, boot: Boot) -> Self {
        AppState {
            db,
            info,
            boot,
            held: tokio::sync::Mutex::new(Vec::new()),
            burners: AtomicUsize::new(0),
        }
    }
}

type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    let base = state.info.base_path.clone();
    let at = |path: &str| format!("{base}{path}");
    let mut router = Router::new()
        .route(&at("/"), get(root_redirect))
        .route(&at("/_health"), get(health))
        .route(&at("/admin"), get(admin_slash))
        .route(&at("/admin/"), get(admin))
        .route(&at("/admin/notes"), post(admin_add_note))
        .route(&at("/api/notes"), get(list_notes).post(add_note))
        .route(&at("/api/info"), get(info))
        .route(&at("/api/burn"), get(burn))
        .route(&at("/api/hold"), get(hold))
        .route(&at("/api/release"), get(release))
        .route(&at("/api/spawn"), get(spawn))
        .route(&at("/api/exit"), get(exit))
        .route(&at("/api/stream"), get(stream))
        .route(&at("/api/echo"), post(echo))
        .route(&at("/api/sse"), get(sse))
        .route(&at("/api/slow"), get(slow))
        .route(&at("/api/cookie"), get(cookie))
        .route(&at("/api/redirect"), get(redirect))
        .route(&at("/api/headers"), get(headers))
        .route(&at("/ws"), get(websocket));
    if !base.is_empty() {
        router = router.route(&base, get(root_redirect));
    }
    router
        .fallback(not_found)
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// Logs `<METHOD> <path> <status> <ms>ms` once the response head is ready.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    out(format!(
        "{method} {path} {} {}ms",
        response.status().as_u16(),
        started.elapsed().as_millis()
    ));
    response
}

/// An error answered as JSON `{"error": "..."}`.
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        err(format!("error: {error:#}"));
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{error:#}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// Query parameters whose errors are answered as JSON 400s.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Params(value)),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}

fn found(location: &str) -> Response {
    redirect_with(StatusCode::FOUND, location)
}

fn redirect_with(status: StatusCode, location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (status, [(header::LOCATION, value)]).into_response(),
        Err(_) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "bad redirect target").into_response()
        }
    }
}

async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, "not found\n")
}

/// `M/` → `M/admin/`: the one absolute URL the app builds from its mount path.
async fn root_redirect(State(state): State<Shared>) -> Response {
    found(&format!("{}/admin/", state.info.base_path))
}

async fn admin_slash() -> Response {
    found("admin/")
}

async fn health(State(state): State<Shared>) -> Response {
    match state.boot.loading() {
        Some(plugin) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "booting",
                "message": format!("loading plugins ({plugin}/{})", state.boot.plugins),
            })),
        )
            .into_response(),
        None => Json(json!({ "status": "ok" })).into_response(),
    }
}

// ---- notes -------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct NewNote {
    #[serde(default)]
    body: String,
    #[serde(default)]
    author: String,
}

/// Checks a note; returns the body and the trimmed author, or what is wrong.
fn validate(note: &NewNote) -> Result<(String, String), String> {
    if note.body.trim().is_empty() {
        return Err("a note needs a body".to_string());
    }
    if note.body.chars().count() > MAX_BODY_CHARS {
        return Err(format!(
            "a note body has at most {MAX_BODY_CHARS} characters"
        ));
    }
    let author = note.author.trim();
    if author.chars().count() > MAX_AUTHOR_CHARS {
        return Err(format!(
            "an author name has at most {MAX_AUTHOR_CHARS} characters"
        ));
    }
    Ok((note.body.clone(), author.to_string()))
}

fn page_info(state: &AppState) -> PageInfo<'_> {
    PageInfo {
        app: &state.info.app,
        db_dialect: &state.info.db_dialect,
        schema_version: state.info.schema_version,
        version: &state.info.version,
    }
}

async fn admin(State(state): State<Shared>) -> Result<Html<String>, ApiError> {
    let notes = state.db.list_notes(ADMIN_NOTES).await?;
    Ok(Html(html::admin_page(&page_info(&state), &notes, None)))
}

async fn admin_add_note(
    State(state): State<Shared>,
    form: Result<Form<NewNote>, FormRejection>,
) -> Result<Response, ApiError> {
    let checked = match form {
        Ok(Form(note)) => validate(&note),
        Err(rejection) => Err(rejection.body_text()),
    };
    match checked {
        Ok((body, author)) => {
            state.db.add_note(&body, &author).await?;
            Ok(redirect_with(StatusCode::SEE_OTHER, "./"))
        }
        Err(problem) => {
            let notes = state.db.list_notes(ADMIN_NOTES).await?;
            let page = html::admin_page(&page_info(&state), &notes, Some(&problem));
            Ok((StatusCode::BAD_REQUEST, Html(page)).into_response())
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListParams {
    limit: Option<i64>,
}

/// The newest notes (1000 unless `?limit=N`, at most 10000), oldest first.
async fn list_notes(
    State(state): State<Shared>,
    Params(params): Params<ListParams>,
) -> Result<Json<Vec<Note>>, ApiError> {
    let limit = params.limit.unwrap_or(1000).clamp(0, 10_000);
    let mut notes = state.db.list_notes(limit).await?;
    notes.reverse();
    Ok(Json(notes))
}

async fn add_note(
    State(state): State<Shared>,
    payload: Result<Json<NewNote>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(note) = payload.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let (body, author) = validate(&note).map_err(ApiError::bad_request)?;
    let note = state.db.add_note(&body, &author).await?;
    Ok((StatusCode::CREATED, Json(note)).into_response())
}

async fn info(State(state): State<Shared>) -> Json<Info> {
    Json(state.info.clone())
}

// ---- load and process behaviour ----------------------------------------------------------

#[derive(Debug, Deserialize)]
struct BurnParams {
    ms: Option<u64>,
    background: Option<String>,
}

/// Keeps one core busy for `duration`.
fn burn_cpu(duration: Duration) {
    let started = Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while started.elapsed() < duration {
        for i in 0..10_000u64 {
            x = x.rotate_left(7) ^ i.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        }
        std::hint::black_box(x);
    }
}

/// Releases a burner slot when dropped, however the burn ends.
struct BurnerSlot(Shared);

impl Drop for BurnerSlot {
    fn drop(&mut self) {
        self.0.burners.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn burn(
    State(state): State<Shared>,
    Params(params): Params<BurnParams>,
) -> Result<Response, ApiError> {
    let ms = params.ms.unwrap_or(1000).min(MAX_BURN_MS);
    let background = matches!(params.background.as_deref(), Some("1" | "true" | "yes"));
    if state.burners.fetch_add(1, Ordering::SeqCst) >= MAX_BURNERS {
        state.burners.fetch_sub(1, Ordering::SeqCst);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("at most {MAX_BURNERS} burns at once"),
        ));
    }
    let slot = BurnerSlot(state.clone());
    let work = move || {
        let _slot = slot;
        burn_cpu(Duration::from_millis(ms));
    };
    if background {
        std::thread::Builder::new()
            .name("burn".into())
            .spawn(work)
            .map_err(|e| anyhow::anyhow!("cannot start a burn thread: {e}"))?;
        return Ok(Json(json!({ "burning_ms": ms, "background": true })).into_response());
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| anyhow::anyhow!("burn failed: {e}"))?;
    Ok(Json(json!({ "burned_ms": ms })).into_response())
}

#[derive(Debug, Deserialize)]
struct HoldParams {
    mb: Option<u64>,
}

/// Allocates and touches `mb` MiB more and keeps it (in total at most 4096 MiB).
async fn hold(
    State(state): State<Shared>,
    Params(params): Params<HoldParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut held = state.held.lock().await;
    let held_mb: u64 = held.iter().map(|block| block.len() as u64 / MIB).sum();
    let mb = params
        .mb
        .unwrap_or(64)
        .min(MAX_HOLD_MB - held_mb.min(MAX_HOLD_MB));
    if mb > 0 {
        let block = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
            let bytes = (mb * MIB) as usize;
            let mut block = Vec::new();
            block
                .try_reserve_exact(bytes)
                .map_err(|e| format!("cannot allocate {mb} MiB: {e}"))?;
            // Writing every byte makes the pages resident, so the process's RSS grows.
            block.resize(bytes, 0xA5);
            Ok(block)
        })
        .await
        .map_err(|e| anyhow::anyhow!("allocation failed: {e}"))?
        .map_err(|e| ApiError::new(StatusCode::INSUFFICIENT_STORAGE, e))?;
        held.push(block);
    }
    Ok(Json(json!({ "held_mb": held_mb + mb })))
}

async fn release(State(state): State<Shared>) -> Json<serde_json::Value> {
    let mut held = state.held.lock().await;
    let released: u64 = held.iter().map(|block| block.len() as u64 / MIB).sum();
    held.clear();
    held.shrink_to_fit();
    Json(json!({ "held_mb": 0, "released_mb": released }))
}

#[derive(Debug, Deserialize)]
struct SpawnParams {
    secs: Option<u64>,
}

/// Starts `sleep N` as a child (a grandchild of the supervisor) and does not wait for it.
async fn spawn(Params(params): Params<SpawnParams>) -> Result<Json<serde_json::Value>, ApiError> {
    let secs = params.secs.unwrap_or(60).min(MAX_SPAWN_SECS);
    let mut child = tokio::process::Command::new("sleep")
        .arg(secs.to_string())
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start sleep: {e}"))?;
    let pid = child.id().unwrap_or(0);
    out(format!("spawned child pid {pid}: sleep {secs}"));
    // Reap it when it ends, so it never lingers as a zombie.
    tokio::spawn(async move {
        match child.wait().await {
            Ok(status) => out(format!("child pid {pid} ended: {status}")),
            Err(e) => err(format!("child pid {pid}: cannot wait: {e}")),
        }
    });
    Ok(Json(json!({ "pid": pid })))
}

#[derive(Debug, Deserialize)]
struct ExitParams {
    code: Option<i32>,
}

/// Answers, then ends the process with the given code about 50 ms later.
async fn exit(Params(params): Params<ExitParams>) -> Result<Json<serde_json::Value>, ApiError> {
    let code = params.code.unwrap_or(1);
    if !(0..=255).contains(&code) {
        return Err(ApiError::bad_request("code must be between 0 and 255"));
    }
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        out(format!("exiting with code {code} as asked by /api/exit"));
        std::process::exit(code);
    });
    Ok(Json(json!({ "exiting": code })))
}

// ---- streaming and proxy behaviour -------------------------------------------------------

const CHUNK_LEN: usize = 64 * 1024;

/// One 64 KiB chunk: byte i is `i % 251`, so a reader can spot a lost or changed byte.
static CHUNK: [u8; CHUNK_LEN] = {
    let mut chunk = [0u8; CHUNK_LEN];
    let mut i = 0;
    while i < CHUNK_LEN {
        chunk[i] = (i % 251) as u8;
        i += 1;
    }
    chunk
};

#[derive(Debug, Deserialize)]
struct StreamParams {
    mb: Option<u64>,
}

/// Streams `mb` MiB in 64 KiB chunks, all borrowed from one static chunk.
async fn stream(Params(params): Params<StreamParams>) -> Response {
    let mb = params.mb.unwrap_or(1).min(MAX_STREAM_MB);
    let chunks = mb * MIB / CHUNK_LEN as u64;
    let body = futures_util::stream::iter(
        (0..chunks).map(|_| Ok::<_, Infallible>(Bytes::from_static(&CHUNK))),
    );
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(mb * MIB)),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// Sends the request body back as it arrives. The first chunk is read before the answer
/// starts, so a client that sent `Expect: 100-continue` gets its `100 Continue` at once.
async fn echo(request: Request) -> Response {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut data = request.into_body().into_data_stream();
    let first = data.next().await;
    let body = Body::from_stream(futures_util::stream::iter(first).chain(data));
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

#[derive(Debug, Deserialize)]
struct SseParams {
    count: Option<u64>,
    interval_ms: Option<u64>,
}

/// `data: tick K` for K = 1..=count, the first at once, then one every `interval_ms`.
async fn sse(Params(params): Params<SseParams>) -> impl IntoResponse {
    let count = params.count.unwrap_or(10).min(MAX_SSE_COUNT);
    let interval =
        Duration::from_millis(params.interval_ms.unwrap_or(1000).min(MAX_SSE_INTERVAL_MS));
    let events = futures_util::stream::unfold(0u64, move |sent| async move {
        if sent >= count {
            return None;
        }
        if sent > 0 {
            tokio::time::sleep(interval).await;
        }
        let event = Event::default().data(format!("tick {}", sent + 1));
        Some((Ok::<_, Infallible>(event), sent + 1))
    });
    Sse::new(events)
}

#[derive(Debug, Deserialize)]
struct SlowParams {
    ms: Option<u64>,
}

async fn slow(Params(params): Params<SlowParams>) -> &'static str {
    let ms = params.ms.unwrap_or(1000).min(MAX_SLOW_MS);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "slow done"
}

/// Sets `demo=1` for the app's own path, so a proxy can be seen rewriting it.
async fn cookie(State(state): State<Shared>) -> Response {
    let cookie = format!("demo=1; Path={}/", state.info.base_path);
    match HeaderValue::from_str(&cookie) {
        Ok(value) => ([(header::SET_COOKIE, value)], "cookie set\n").into_response(),
        Err(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "bad cookie").into_response(),
    }
}

/// A redirect with an absolute-path Location, so a proxy can be seen rewriting it.
async fn redirect(State(state): State<Shared>) -> Response {
    found(&format!("{}/admin/", state.info.base_path))
}

/// The request's headers as a JSON object; repeated headers are joined with ", ".
async fn headers(headers: HeaderMap) -> Json<serde_json::Map<String, serde_json::Value>> {
    let mut object = serde_json::Map::new();
    for (name, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match object.get_mut(name.as_str()) {
            Some(serde_json::Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                object.insert(name.as_str().to_string(), serde_json::Value::String(value));
            }
        }
    }
    Json(object)
}

async fn websocket(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(echo_socket)
}

/// Echoes text and binary messages until the peer closes.
async fn echo_socket(mut socket: WebSocket) {
    while let Some(message) = socket.recv().await {
        let reply = match message {
            Ok(Message::Text(text)) => Message::Text(text),
            Ok(Message::Binary(data)) => Message::Binary(data),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) | Err(_) => break,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

//! The API: JSON over HTTP on loopback, for the CLI, the UI and the desktop shell.
//!
//! Invariants: listens on 127.0.0.1 only; every request carries a bearer credential (the token,
//! or a control-panel session, panel.rs) and never is one taken from a cookie; the Host must be
//! the API's own loopback address and an Origin, when sent, the UI's own, so neither DNS
//! rebinding nor another web page can drive it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use crate::api::error::{error, ApiResult, ErrorKind};
use crate::api::types::{
    AppList, DbTest, DeleteQuery, EngineInfo, ExportQuery, LogLines, LogQuery, NameQuery, Removed,
    Sorted, Stopping, UpgradeList, Verdict,
};
use crate::engine::apply::ApplyRequest;
use crate::engine::{CreateApp, Engine, EngineError, ViewEvent};
use crate::run::supervisor::Status;
use crate::store::registry::AppEdit;

type Shared = Arc<Engine>;

pub async fn serve(engine: Arc<Engine>, listener: tokio::net::TcpListener) {
    let app = router(engine);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("API server: {e}");
    }
}

/// Every route, written once as a template (a client's paths come from `api::routes`).
pub fn router(engine: Arc<Engine>) -> Router {
    let api = Router::new()
        .route("/engine", get(engine_info))
        .route("/statuses", get(statuses))
        .route("/apps", get(list).post(create))
        .route("/apps/{name}", get(status).patch(edit).delete(delete))
        .route("/apps/{name}/start", post(start))
        .route("/apps/{name}/stop", post(stop))
        .route("/apps/{name}/restart", post(restart))
        .route("/apps/{name}/upgrade", post(upgrade))
        .route("/upgrade", post(upgrade_all))
        .route("/reload", post(reload))
        .route("/apps/{name}/exec", post(exec_setting))
        .route("/apps/{name}/logs", get(logs))
        .route("/apps/{name}/logs/follow", get(follow_logs))
        .route("/apps/{name}/logs/search", get(metrics::search))
        .route("/apps/{name}/metrics", get(metrics::history))
        .route("/metrics/stream", get(metrics::stream))
        .route("/host", get(metrics::host))
        .route("/events", get(events))
        .route("/kill", post(kill))
        .route("/validate/name", get(validate_name))
        .route("/export/{kind}", get(export))
        .route("/db/test", post(db_test))
        .route("/apps/{name}/backup", post(data::backup))
        .route("/backups", get(data::backups))
        .route("/restore", post(data::restore))
        .route("/jobs/{id}", get(data::job))
        .route("/import/nocobase", post(data::import_nocobase))
        .route("/apply", post(apply))
        .route("/login-code", post(crate::api::panel::login_code))
        .route("/logout", post(crate::api::panel::logout));
    Router::new()
        .nest("/api/v1", api)
        .layer(middleware::from_fn_with_state(engine.clone(), guard))
        // The control panel's files and `/login`: no token (see panel.rs).
        .merge(crate::api::panel::router(engine.clone()))
        .with_state(engine)
}

/// Host, Origin and credential checks, before anything else. The credential is a bearer only:
/// the API token (the CLI, the desktop shell) or a panel session (panel.rs). No cookie is
/// read, so a request a browser replays with its cookies alone is refused whatever it claims.
async fn guard(State(engine): State<Shared>, req: Request, next: Next) -> Response {
    let port = engine.config.api_port;
    let h = req.headers();
    if let Err(refused) = access::own_origin(port, h) {
        return refused;
    }
    let presented = access::bearer(h).unwrap_or("");
    if !crate::base::secret::equal(presented, &engine.token)
        && !crate::api::panel::session_ok(port, presented)
    {
        return error(
            ErrorKind::Unauthorized,
            None,
            "a valid token is required (the home folder's token file), or a control-panel session (`hangar open` logs a browser in)",
        );
    }
    next.run(req).await
}

async fn engine_info(State(e): State<Shared>) -> Sorted<EngineInfo> {
    Sorted(EngineInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        home: e.home.root().to_path_buf(),
        proxy_port: e.config.proxy_port,
        api_port: e.config.api_port,
        main_runtime: e.config.main.runtime.clone(),
        runtimes: e.runtimes.all().keys().cloned().collect(),
        data_service: e
            .config
            .data_service
            .as_deref()
            .and_then(crate::base::dialect::Dialect::of)
            .map(|d| d.as_str().to_string()),
        start_parallel: crate::engine::START_PARALLEL,
    })
}

/// The rules of each app status (`supervisor::Status`'s methods), for clients that cannot call
/// them: `{statuses: [{status, active, can_start, can_stop, failing}]}`, in the order of an
/// app's life.
async fn statuses() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "statuses": Status::ALL.map(Status::rules) }))
}

async fn list(State(e): State<Shared>) -> ApiResult<Sorted<AppList>> {
    Ok(Sorted(AppList {
        apps: e.list().await?,
    }))
}

async fn status(State(e): State<Shared>, Path(name): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(Json(e.view(&name).await?))
}

async fn create(
    State(e): State<Shared>,
    body: Result<Json<CreateApp>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let Json(req) = body.map_err(|r| {
        EngineError::Invalid(crate::base::validate::Invalid::new("body", r.body_text()))
    })?;
    let view = e.create(req).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn edit(
    State(e): State<Shared>,
    Path(name): Path<String>,
    body: Result<Json<AppEdit>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let Json(req) = body.map_err(|r| {
        EngineError::Invalid(crate::base::validate::Invalid::new("body", r.body_text()))
    })?;
    Ok(Json(e.edit(&name, req).await?))
}

async fn delete(
    State(e): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(e.delete(&name, q.drop_db).await?))
}

async fn start(State(e): State<Shared>, Path(name): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(Json(e.start(&name).await?))
}

async fn stop(State(e): State<Shared>, Path(name): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(Json(e.stop(&name).await?))
}

async fn restart(
    State(e): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(e.restart(&name).await?))
}

async fn upgrade(
    State(e): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(e.upgrade(&name).await?))
}

/// `hangar apply`: the plan of an apps file, carried out unless `dry_run` (engine/apply.rs).
async fn apply(
    State(e): State<Shared>,
    body: Result<Json<ApplyRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let Json(req) = body.map_err(|r| {
        EngineError::Invalid(crate::base::validate::Invalid::new("body", r.body_text()))
    })?;
    Ok(Json(e.apply(req).await?))
}

async fn upgrade_all(State(e): State<Shared>) -> ApiResult<Sorted<UpgradeList>> {
    Ok(Sorted(UpgradeList {
        apps: e.upgrade_all().await?,
    }))
}

async fn reload(State(e): State<Shared>) -> ApiResult<Sorted<crate::engine::reload::ReloadReport>> {
    Ok(Sorted(e.reload().await?))
}

/// The environment and folder `hangar exec` runs a program with (secrets included: the token
/// guards it, as it guards every route).
async fn exec_setting(
    State(e): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<Sorted<crate::engine::exec::ExecSetting>> {
    Ok(Sorted(e.exec_setting(&name).await?))
}

async fn kill(State(e): State<Shared>) -> Sorted<Stopping> {
    let engine = e.clone();
    // Answer first; the engine ends right after.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        engine.kill().await;
    });
    Sorted(Stopping { stopping: true })
}

async fn validate_name(State(e): State<Shared>, Query(q): Query<NameQuery>) -> Sorted<Verdict> {
    let verdict = match crate::base::validate::name(&q.name) {
        Err(i) => Some(i.message),
        Ok(()) if e.registry.get(&q.name).await.is_ok() => Some(format!(
            "an app named {:?} already exists; names are unique",
            q.name
        )),
        Ok(()) => None,
    };
    Sorted(Verdict {
        ok: verdict.is_none(),
        message: verdict,
    })
}

/// Try a connection URL for the create form's "Test connection": `{ok, message}`; the message
/// carries the server's reason, never the password.
async fn db_test(
    body: Result<Json<DbTest>, axum::extract::rejection::JsonRejection>,
) -> Sorted<Verdict> {
    let Ok(Json(req)) = body else {
        return Sorted(Verdict {
            ok: false,
            message: Some("send {\"url\": \"postgres://…\"}".into()),
        });
    };
    let (ok, message) = match crate::store::provision::test_url(&req.url).await {
        Ok(()) => (
            true,
            format!("connected to {}", crate::store::provision::redact(&req.url)),
        ),
        Err(e) => (false, e.to_string()),
    };
    Sorted(Verdict {
        ok,
        message: Some(message),
    })
}

async fn export(
    State(e): State<Shared>,
    Path(kind): Path<String>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let text = match kind.as_str() {
        "nginx" => {
            e.export_nginx(q.app.as_deref(), q.direct, q.listen.unwrap_or(80))
                .await?
        }
        "kubernetes" => {
            e.export_kubernetes(
                q.app.as_deref(),
                q.image.as_deref().unwrap_or("{runtime}:latest"),
                q.secrets,
            )
            .await?
        }
        other => {
            return Err(EngineError::Invalid(crate::base::validate::Invalid::new(
                "kind",
                format!("{other:?} is not an export; accepted: nginx, kubernetes"),
            ))
            .into())
        }
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

async fn logs(
    State(e): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Sorted<LogLines>> {
    e.registry.get(&name).await.map_err(EngineError::from)?;
    let n = q.n.unwrap_or(100).min(100_000);
    let path = e.home.app_log(&name);
    let lines = tokio::task::spawn_blocking(move || crate::run::logs::tail(&path, n))
        .await
        .unwrap_or_default();
    Ok(Sorted(LogLines { lines }))
}

async fn follow_logs(
    State(e): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    e.registry.get(&name).await.map_err(EngineError::from)?;
    let handle = e
        .supervisor
        .get(&name)
        .ok_or_else(|| EngineError::NotFound(name.clone()))?;
    // Subscribe before reading the tail so no line falls between the two.
    let live = BroadcastStream::new(handle.log.subscribe());
    let n = q.n.unwrap_or(0).min(100_000);
    let path = e.home.app_log(&name);
    let initial = if n > 0 {
        tokio::task::spawn_blocking(move || crate::run::logs::tail(&path, n))
            .await
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let head = futures_util::stream::iter(initial.into_iter().map(|l| Ok(line_event(&l))));
    let tail = live.map(|item| {
        Ok(match item {
            Ok(l) => line_event(&l),
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(k)) => {
                line_event(&crate::run::logs::LogLine::now(
                    crate::run::logs::Stream::Sys,
                    format!("… {k} lines skipped: this viewer fell behind"),
                ))
            }
        })
    });
    Ok(Sse::new(head.chain(tail)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn line_event(l: &crate::run::logs::LogLine) -> SseEvent {
    SseEvent::default()
        .event("line")
        .data(serde_json::to_string(l).unwrap_or_default())
}

async fn events(State(e): State<Shared>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    // An open window: the sampler runs every second while it is connected.
    let watching = e.monitor.watch();
    // Each event's view is read once for every open panel (`Engine::view_events`).
    let stream = BroadcastStream::new(e.view_events()).map(move |item| {
        let _watching = &watching;
        Ok(match item {
            Ok(ViewEvent::App(v)) => SseEvent::default()
                .event("app")
                .data(serde_json::to_string(&*v).unwrap_or_default()),
            Ok(ViewEvent::Removed(name)) => removed_event(name),
            Ok(ViewEvent::Resync) | Err(_) => SseEvent::default().event("resync").data("{}"),
        })
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn removed_event(name: String) -> SseEvent {
    SseEvent::default()
        .event("removed")
        .data(serde_json::to_string(&Removed { name }).unwrap_or_default())
}

pub(crate) mod access;
pub mod client;
pub(crate) mod data;
pub(crate) mod error;
pub(crate) mod metrics;
pub mod panel;
pub mod routes;
pub mod types;

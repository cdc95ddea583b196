//! The API's routes for figures and logs over time (merged into api.rs's router, behind the
//! same Host, Origin and token guard):
//!
//! - `GET /apps/{name}/metrics?range=5m|1h|24h|7d` — history and timeline of one app
//!   (`name` may be `@host` for the machine);
//! - `GET /metrics/stream` — server-sent events: `tick` (every app's and the host's figures),
//!   `event` (start, stop, crash, restart); while one is open the sampler runs every second;
//! - `GET /host` — the machine's current figures and the sampler in use;
//! - `GET /apps/{name}/logs/search?q=&regex=&since=&until=&limit=` — search over the current
//!   and rotated log files.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;

use crate::engine::Engine;
use crate::run::monitor::{Live, HOST};

type Shared = Arc<Engine>;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/apps/{name}/metrics", get(history))
        .route("/apps/{name}/logs/search", get(search))
        .route("/metrics/stream", get(stream))
        .route("/host", get(host))
}

use crate::api::error::{error, ErrorKind};

fn invalid(field: &str, message: &str) -> Response {
    error(ErrorKind::Invalid, Some(field), message)
}

async fn known(e: &Engine, name: &str) -> Result<(), Response> {
    if name == HOST {
        return Ok(());
    }
    match e.registry.get(name).await {
        Ok(_) => Ok(()),
        Err(crate::store::registry::RegistryError::NotFound(_)) => Err(error(
            ErrorKind::NotFound,
            None,
            &format!("no app named {name:?}; `hangar list` shows the apps there are"),
        )),
        Err(other) => Err(error(ErrorKind::Internal, None, &other.to_string())),
    }
}

#[derive(Deserialize)]
struct RangeQuery {
    range: Option<String>,
}

async fn history(
    State(e): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Response {
    if let Err(r) = known(&e, &name).await {
        return r;
    }
    let secs = match crate::run::monitor::parse_range(q.range.as_deref().unwrap_or("1h")) {
        Ok(s) => s,
        Err(m) => return invalid("range", &m),
    };
    match e.monitor.history(&name, secs).await {
        Ok(h) => {
            let current = if name == HOST {
                serde_json::to_value(e.sampler.host()).unwrap_or_default()
            } else {
                serde_json::to_value(e.sampler.usage(&name)).unwrap_or_default()
            };
            let mut v = serde_json::to_value(h).unwrap_or_default();
            v["current"] = current;
            Json(v).into_response()
        }
        Err(err) => error(ErrorKind::Internal, None, &err.to_string()),
    }
}

async fn host(State(e): State<Shared>) -> Json<serde_json::Value> {
    Json(json!({
        "host": e.sampler.host(),
        "sampler": e.sampler.kind().as_str(),
        "processes_seen": e.sampler.processes(),
        "watchers": e.monitor.watchers(),
    }))
}

async fn stream(State(e): State<Shared>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let guard = e.monitor.watch();
    let rx = e.monitor.subscribe();
    let first = crate::run::sampler::Snapshot {
        t: crate::run::sampler::unix_ms(std::time::SystemTime::now()),
        host: e.sampler.host().unwrap_or_default(),
        apps: crate::run::monitor::current(&e),
    };
    let head = futures_util::stream::iter([Ok(tick_event(&first))]);
    let live = BroadcastStream::new(rx).filter_map(move |item| {
        // The guard lives as long as the stream: the sampler stays at 1 s while it is open.
        let _watching = &guard;
        let out = match item {
            Ok(l) => match &*l {
                Live::Tick(s) => Some(Ok(tick_event(s))),
                ev @ Live::Event { .. } => Some(Ok(SseEvent::default()
                    .event("event")
                    .data(serde_json::to_string(ev).unwrap_or_default()))),
            },
            // A reader that fell behind skips the ticks it missed.
            Err(_) => None,
        };
        std::future::ready(out)
    });
    Sse::new(head.chain(live)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn tick_event(s: &crate::run::sampler::Snapshot) -> SseEvent {
    SseEvent::default()
        .event("tick")
        .data(serde_json::to_string(s).unwrap_or_default())
}

#[derive(Deserialize)]
struct SearchParams {
    q: Option<String>,
    regex: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

async fn search(
    State(e): State<Shared>,
    Path(name): Path<String>,
    Query(p): Query<SearchParams>,
) -> Response {
    if let Err(r) = known(&e, &name).await {
        return r;
    }
    let regex = match p.regex.as_deref() {
        None | Some("") | Some("0") | Some("false") => false,
        Some("1") | Some("true") => true,
        Some(other) => {
            return invalid(
                "regex",
                &format!("{other:?} is not accepted; accepted: true or false"),
            )
        }
    };
    let pattern = p.q.unwrap_or_default();
    if pattern.len() > 4096 {
        return invalid("q", "the pattern is longer than 4096 bytes");
    }
    let mut q = crate::run::logs::SearchQuery {
        pattern,
        regex,
        since: None,
        until: None,
        limit: p.limit.unwrap_or(1000),
    };
    if q.limit == 0 || q.limit > 100_000 {
        return invalid("limit", "must be from 1 to 100000");
    }
    for (key, raw, slot) in [
        ("since", p.since, &mut q.since),
        ("until", p.until, &mut q.until),
    ] {
        if let Some(raw) = raw.filter(|s| !s.is_empty()) {
            match crate::run::logs::parse_time(&raw, key) {
                Ok(t) => *slot = Some(t),
                Err(m) => return invalid(key, &m.to_string()),
            }
        }
    }
    let path = e.home.app_log(&name);
    match tokio::task::spawn_blocking(move || crate::run::logs::search(&path, &q)).await {
        Ok(Ok(r)) => Json(r).into_response(),
        Ok(Err(crate::run::logs::SearchError::Invalid(m))) => invalid("q", &m),
        Err(err) => error(ErrorKind::Internal, None, &err.to_string()),
    }
}

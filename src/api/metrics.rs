//! The API's routes for figures and logs over time (in `api::router`, behind the same Host,
//! Origin and token guard):
//!
//! - `GET /apps/{name}/metrics?range=5m|1h|24h|7d` — history and timeline of one app
//!   (`name` may be `@host` for the machine);
//! - `GET /metrics/stream` — server-sent events: `tick` (every app's and the host's figures),
//!   `event` (start, stop, crash, restart); while one is open the sampler runs every second;
//! - `GET /host` — the machine's current figures and the sampler in use;
//! - `GET /apps/{name}/logs/search?q=&regex=&since=&until=&limit=&stream=` — search over the current
//!   and rotated log files.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use crate::api::error::{error, ApiError, ErrorKind};
use crate::api::types::{AppMetrics, Current, HostInfo, RangeQuery, SearchParams, Sorted};
use crate::base::validate::Invalid;
use crate::engine::{Engine, EngineError};
use crate::run::logs::SearchResult;
use crate::run::monitor::{Live, HOST};

type Shared = Arc<Engine>;

/// A refusal of these routes: the engine's, as every route's, or a query value's. A value's
/// sentence already names its field ("range \"2w\" is not accepted…"), so it is served as it
/// is, without the `field: ` an engine refusal puts first.
pub(crate) enum Refusal {
    Engine(ApiError),
    Query(Invalid),
}

impl From<EngineError> for Refusal {
    fn from(e: EngineError) -> Self {
        Refusal::Engine(ApiError(e))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Engine(e) => e.into_response(),
            Refusal::Query(i) => error(ErrorKind::Invalid, Some(i.field), &i.message),
        }
    }
}

pub(crate) type MetricsResult<T> = Result<T, Refusal>;

fn refuse<T>(field: &'static str, message: impl Into<String>) -> MetricsResult<T> {
    Err(Refusal::Query(Invalid::new(field, message)))
}

/// An app of the registry, or `@host`.
async fn known(e: &Engine, name: &str) -> Result<(), EngineError> {
    if name != HOST {
        e.registry.get(name).await?;
    }
    Ok(())
}

pub(crate) async fn history(
    State(e): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<RangeQuery>,
) -> MetricsResult<Sorted<AppMetrics>> {
    known(&e, &name).await?;
    let secs = match crate::run::monitor::parse_range(q.range.as_deref().unwrap_or("1h")) {
        Ok(s) => s,
        Err(m) => return refuse("range", m),
    };
    let history = e
        .monitor
        .history(&name, secs)
        .await
        .map_err(EngineError::from)?;
    let current = if name == HOST {
        e.sampler.host().map(Current::Host)
    } else {
        e.sampler.usage(&name).map(Current::App)
    };
    Ok(Sorted(AppMetrics { history, current }))
}

pub(crate) async fn host(State(e): State<Shared>) -> Sorted<HostInfo> {
    Sorted(HostInfo {
        host: e.sampler.host(),
        sampler: e.sampler.kind().as_str().to_string(),
        processes_seen: e.sampler.processes(),
        watchers: e.monitor.watchers(),
        memory_budget: crate::run::monitor::budget(&e),
    })
}

pub(crate) async fn stream(
    State(e): State<Shared>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
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

pub(crate) async fn search(
    State(e): State<Shared>,
    Path(name): Path<String>,
    Query(p): Query<SearchParams>,
) -> MetricsResult<Json<SearchResult>> {
    known(&e, &name).await?;
    let regex = match p.regex.as_deref() {
        None | Some("") | Some("0") | Some("false") => false,
        Some("1") | Some("true") => true,
        Some(other) => {
            return refuse(
                "regex",
                format!("{other:?} is not accepted; accepted: true or false"),
            )
        }
    };
    let pattern = p.q.unwrap_or_default();
    if pattern.len() > 4096 {
        return refuse("q", "the pattern is longer than 4096 bytes");
    }
    let mut q = crate::run::logs::SearchQuery {
        pattern,
        regex,
        since: None,
        until: None,
        limit: p.limit.unwrap_or(1000),
        stream: None,
    };
    if let Some(raw) = p.stream.filter(|s| !s.is_empty()) {
        match crate::run::logs::Stream::parse(&raw) {
            Some(s) => q.stream = Some(s),
            None => {
                return refuse(
                    "stream",
                    format!("{raw:?} is not a stream; accepted: out, err, sys, file"),
                )
            }
        }
    }
    if q.limit == 0 || q.limit > 100_000 {
        return refuse("limit", "must be from 1 to 100000");
    }
    for (key, raw, slot) in [
        ("since", p.since, &mut q.since),
        ("until", p.until, &mut q.until),
    ] {
        if let Some(raw) = raw.filter(|s| !s.is_empty()) {
            match crate::run::logs::parse_time(&raw, key) {
                Ok(t) => *slot = Some(t),
                Err(m) => return refuse(key, m.to_string()),
            }
        }
    }
    let path = e.home.app_log(&name);
    match tokio::task::spawn_blocking(move || crate::run::logs::search(&path, &q)).await {
        Ok(Ok(r)) => Ok(Json(r)),
        Ok(Err(crate::run::logs::SearchError::Invalid(m))) => refuse("q", m),
        Err(err) => Err(EngineError::from(err).into()),
    }
}

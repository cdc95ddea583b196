//! Start on first visit: what a visitor of an app that is not running gets.
//!
//! The supervisor starts the app once however many ask ([`crate::run::supervisor::Supervisor::wake`]
//! queues the waiters); this module decides what each visitor sees meanwhile:
//! - a browser navigation (GET with `Accept: text/html`) gets the waiting page unless the app
//!   is ready within a short grace; the page follows `/_hangar/wait/<name>` under the place
//!   that routes to the app (`/_app/<name>/_hangar/wait/<name>` when the path chose it;
//!   server-sent events: state, startup log lines, progress) and reloads itself when the app is
//!   ready;
//! - anything else is held until ready, up to `wake_timeout`, then gets 503 + `Retry-After`;
//! - an app the operator stopped gets 503 "stopped" and is not started;
//! - a start that fails (or crashes before it is ready) gets 502 with the reason and the last
//!   log lines: a page for browsers, JSON for programs.
//!
//! Invariants: the status stream of an app is served only to a request that routes to that app
//! (its Host or its `/_app/<name>/` path), never by name alone; it shows log lines only of a
//! start in progress (from its "starting:" line on) and ends when the app is ready or has
//! failed. Log lines and the reason a start failed (which may quote the app's stderr) reach a
//! visitor only when `show_app_output_to_visitors` is on (the default on a loopback bind); off,
//! a visitor sees Hangar's own progress: the status, the time, the health path's message.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use super::pages::{self, escape};
use super::{AppEntry, Body, Proxy};
use crate::run::logs::{LogLine, Stream};
use crate::run::supervisor::{Status, WakeError};

/// Hangar's reserved path on the proxy port, under the place that routes to an app: the
/// waiting page's status stream.
pub const WAIT_PATH: &str = "/_hangar/wait/";

/// The app name a request's path asks the status stream of, when it is one: the path after the
/// app's public prefix (`base`, when the path chose the app) starts with [`WAIT_PATH`]. Both
/// paths of the proxy ask this, so neither forwards such a request to an app.
pub(super) fn wait_stream<'a>(path: &'a str, base: &str, by_path: bool) -> Option<&'a str> {
    let rest = if by_path {
        path.strip_prefix(base)?
    } else {
        path
    };
    rest.strip_prefix(WAIT_PATH)
}

/// What of a start visitors may see (`show_app_output_to_visitors`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Shown {
    /// The app's log lines and the reasons that may quote them.
    pub output: bool,
}

/// How long a browser navigation waits before it is shown the waiting page.
const NAVIGATION_GRACE: Duration = Duration::from_millis(300);
/// What a held request that timed out is told to wait before it retries.
const RETRY_AFTER_SECS: u64 = 5;
/// The status stream ends after this long in any case (the page then reloads).
const STREAM_LIMIT: Duration = Duration::from_secs(600);
/// Startup log lines the waiting page and the failure answers show at most.
const LOG_LINES: usize = 40;

/// Get `app` running for this request, or the answer the visitor gets instead.
pub(super) async fn wake<B>(
    proxy: &Proxy,
    app: &Arc<AppEntry>,
    req: &Request<B>,
    by_path: bool,
) -> Result<(), Response<Body>> {
    let shown = proxy.shown();
    let html = pages::wants_html(req.headers());
    let navigation = html
        && (req.method() == Method::GET || req.method() == Method::HEAD)
        && !req.headers().contains_key(header::UPGRADE);
    tracing::debug!(app = %app.name, "a visit wakes the app");
    // Under a memory budget, the room this app took in its last run is made first.
    super::budget::make_room(proxy, app).await;
    let engine = proxy.engine.clone();
    let name = app.name.clone();
    // Its own task: the start goes on even if this visitor leaves.
    let mut woken = tokio::spawn(async move { engine.supervisor.wake(&name).await });
    let mut state = app.state.clone();
    state.borrow_and_update();
    let limit = if navigation {
        NAVIGATION_GRACE
    } else {
        proxy.engine.config.wake_timeout
    };
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            r = &mut woken => return match r {
                Ok(Ok(_port)) => {
                    tracing::debug!(app = %app.name, "woken; forwarding the visit");
                    Ok(())
                }
                Ok(Err(WakeError::Stopped(_))) => Err(stopped(html, &app.name)),
                Ok(Err(WakeError::Failed(why))) => Err(failed(html, app, Why::Supervisor(&why), shown)),
                Ok(Err(WakeError::Gone)) | Err(_) => Err(pages::with_retry_after(pages::error(
                    html, StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "Shutting down",
                    "Hangar is shutting down.", Some(&app.name), &[]), RETRY_AFTER_SECS)),
            },
            _ = &mut deadline => {
                return Err(if navigation {
                    waiting_page(app, by_path, shown)
                } else {
                    pages::with_retry_after(pages::error(
                        html, StatusCode::SERVICE_UNAVAILABLE, "still_starting", "Still starting",
                        &format!("{} is still starting after {} s; try again shortly.", app.name, limit.as_secs()),
                        Some(&app.name), &[]), RETRY_AFTER_SECS)
                });
            }
            changed = state.changed() => {
                if changed.is_err() {
                    return Err(stopped(html, &app.name));
                }
                if state.borrow_and_update().status == Status::Backoff {
                    // It exited before it was ready: this start failed (Hangar retries it).
                    let why = format!("{} exited before it was ready; Hangar will try again shortly", app.name);
                    return Err(failed(html, app, Why::Hangar(&why), shown));
                }
            }
        }
    }
}

fn stopped(html: bool, name: &str) -> Response<Body> {
    pages::error(
        html,
        StatusCode::SERVICE_UNAVAILABLE,
        "stopped",
        "App stopped",
        &format!("“{name}” was stopped by the operator. Start it from Hangar to use it again."),
        Some(name),
        &[],
    )
}

/// Is this log line worth showing a visitor? None is unless the operator lets visitors see
/// the app's output (Hangar's own lines quote it: the last stderr lines of a failure); the app's
/// own lines about Hangar's readiness probes (one every few milliseconds while it boots) never.
fn is_shown(app: &AppEntry, l: &LogLine, shown: Shown) -> bool {
    shown.output
        && (l.stream == Stream::Sys
            || app.health.is_empty()
            || !l.text.contains(app.health.as_str()))
}

/// The last log lines of the app's latest start (from its "starting:" line on) a visitor may see.
fn start_lines(app: &AppEntry, n: usize, shown: Shown) -> Vec<LogLine> {
    if !shown.output {
        return Vec::new();
    }
    let recent = app.log.recent(200, None);
    let from = recent
        .iter()
        .rposition(|l| l.stream == Stream::Sys && l.text.starts_with("starting:"))
        .unwrap_or(0);
    let lines: Vec<LogLine> = recent[from..]
        .iter()
        .filter(|l| is_shown(app, l, shown))
        .cloned()
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// The health path's boot message: its `message` when it is JSON that has one (at the top, or
/// in an `error` object as NocoBase's 503 `{"error": {"code", "message"}}`), else as is.
fn progress_text(progress: Option<&str>) -> String {
    let Some(p) = progress else {
        return String::new();
    };
    let message = |v: &serde_json::Value| v.get("message")?.as_str().map(str::to_string);
    serde_json::from_str::<serde_json::Value>(p)
        .ok()
        .and_then(|v| message(&v).or_else(|| message(v.get("error")?)))
        .unwrap_or_else(|| p.trim().to_string())
}

/// Why a start failed, as the proxy knows it.
enum Why<'a> {
    /// The proxy's own words.
    Hangar(&'a str),
    /// The supervisor's reason, which may quote the app's last stderr lines.
    Supervisor(&'a str),
}

/// A failed start's answer: the reason and the last log lines, as far as visitors may see them.
fn failed(html: bool, app: &AppEntry, why: Why, shown: Shown) -> Response<Body> {
    let log: Vec<String> = start_lines(app, LOG_LINES, shown)
        .iter()
        .map(|l| format!("{} {} {}", l.ts, l.stream.as_str(), l.text))
        .collect();
    let message = match why {
        Why::Hangar(why) => format!("{} did not start: {why}", app.name),
        Why::Supervisor(why) if shown.output => format!("{} did not start: {why}", app.name),
        Why::Supervisor(_) => format!(
            "{} did not start; why is in its log, which the operator sees in Hangar",
            app.name
        ),
    };
    pages::error(
        html,
        StatusCode::BAD_GATEWAY,
        "start_failed",
        "App failed to start",
        &message,
        Some(&app.name),
        &log,
    )
}

fn elapsed_ms(since: Option<SystemTime>) -> u128 {
    since
        .and_then(|t| t.elapsed().ok())
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// The page a browser sees while its app starts; `by_path`: the path chose the app (its stream
/// is then under the same prefix, so it routes to the app too).
fn waiting_page(app: &AppEntry, by_path: bool, shown: Shown) -> Response<Body> {
    let (elapsed, progress) = {
        let s = app.state.borrow();
        (elapsed_ms(s.starting_since), s.progress.clone())
    };
    let lines: String = start_lines(app, LOG_LINES, shown)
        .iter()
        .map(|l| format!("{}\n", escape(&l.text)))
        .collect();
    let name = escape(&app.name);
    let public = if by_path { app.base.as_str() } else { "" };
    let stream_url = format!("{public}{WAIT_PATH}{}", app.name);
    let body = format!(
        "<h1>Starting {name}…</h1>\
<p><span id=t>{secs:.1}</span> s · <span id=status>starting</span> <span id=progress class=muted>{progress}</span></p>\
<pre id=log>{lines}</pre>\
<p class=muted>This page moves on to {name} by itself when it is ready.</p>\
<noscript><p>Reload this page in a few seconds.</p></noscript>\
<script>(function(){{\
var t0=Date.now()-{elapsed},t=document.getElementById('t'),log=document.getElementById('log'),st=document.getElementById('status'),pr=document.getElementById('progress');\
setInterval(function(){{t.textContent=((Date.now()-t0)/1000).toFixed(1)}},100);\
var es=new EventSource('{stream_url}'),again=function(ms){{es.close();setTimeout(function(){{location.reload()}},ms)}};\
es.addEventListener('line',function(e){{var l=JSON.parse(e.data);log.textContent+=l.text+'\\n';log.scrollTop=log.scrollHeight}});\
es.addEventListener('state',function(e){{var s=JSON.parse(e.data);st.textContent=s.status;pr.textContent=s.progress||''}});\
es.addEventListener('ready',function(){{again(0)}});\
es.addEventListener('failed',function(){{again(0)}});\
es.onerror=function(){{again(1000)}};\
}})();</script>",
        secs = elapsed as f64 / 1000.0,
        progress = escape(&progress_text(progress.as_deref())),
    );
    let mut r = pages::html(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("Starting {}", app.name),
        "",
        &body,
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    r
}

fn sse(event: &str, data: &str) -> Bytes {
    let mut s = String::with_capacity(event.len() + data.len() + 16);
    s.push_str("event: ");
    s.push_str(event);
    for line in data.split('\n') {
        s.push_str("\ndata: ");
        s.push_str(line);
    }
    s.push_str("\n\n");
    Bytes::from(s)
}

fn state_event(app: &AppEntry, shown: Shown) -> Bytes {
    let s = app.state.borrow();
    let doc = json!({
        "status": s.status.as_str(),
        "elapsed_ms": elapsed_ms(s.starting_since) as u64,
        "progress": progress_text(s.progress.as_deref()),
        "error": s.error.as_ref().filter(|_| shown.output),
    });
    sse("state", &doc.to_string())
}

fn line_event(l: &LogLine) -> Bytes {
    sse("line", &serde_json::to_string(l).unwrap_or_default())
}

/// `GET /_hangar/wait/<name>` (under the app's route): the waiting page's status stream
/// (server-sent events `state`, `line`, then `ready` or `failed`).
pub(super) fn status_stream(app: Arc<AppEntry>, shown: Shown) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        // Subscribe before reading the recent lines, so none falls between the two.
        let mut lines = app.log.subscribe();
        let mut state = app.state.clone();
        state.borrow_and_update();
        let mut send = Vec::with_capacity(LOG_LINES + 1);
        send.push(state_event(&app, shown));
        let starting = matches!(
            app.state.borrow().status,
            Status::Starting | Status::Upgrading | Status::Backoff
        );
        if starting {
            send.extend(start_lines(&app, LOG_LINES, shown).iter().map(line_event));
        }
        for b in send {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        let end = tokio::time::sleep(STREAM_LIMIT);
        tokio::pin!(end);
        let mut keepalive = tokio::time::interval(Duration::from_secs(15));
        keepalive.tick().await;
        loop {
            let status = app.state.borrow().status;
            if status == Status::Running {
                let _ = tx.send(sse("ready", "{}")).await;
                return;
            }
            if !status.is_active() {
                let _ = tx.send(sse("failed", &state_doc(&app, shown))).await;
                return;
            }
            let next: Option<Bytes> = tokio::select! {
                _ = tx.closed() => return,
                _ = &mut end => return,
                _ = keepalive.tick() => Some(Bytes::from_static(b": keep-alive\n\n")),
                changed = state.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    state.borrow_and_update();
                    Some(state_event(&app, shown))
                }
                line = lines.recv() => match line {
                    Ok(l) => is_shown(&app, &l, shown).then(|| line_event(&l)),
                    Err(RecvError::Lagged(k)) => shown.output.then(|| line_event(&LogLine::now(
                        Stream::Sys,
                        format!("… {k} lines skipped"),
                    ))),
                    Err(RecvError::Closed) => return,
                },
            };
            let Some(next) = next else {
                continue;
            };
            if tx.send(next).await.is_err() {
                return;
            }
        }
    });
    let body =
        StreamBody::new(ReceiverStream::new(rx).map(|b| Ok::<_, Infallible>(Frame::data(b))))
            .map_err(|never| match never {})
            .boxed();
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn state_doc(app: &AppEntry, shown: Shown) -> String {
    let s = app.state.borrow();
    let error = s.error.as_ref().filter(|_| shown.output);
    json!({ "status": s.status.as_str(), "error": error }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_messages() {
        assert_eq!(
            progress_text(Some(
                r#"{"status":"booting","message":"loading plugins (2/5)"}"#
            )),
            "loading plugins (2/5)"
        );
        assert_eq!(progress_text(Some(" warming up \n")), "warming up");
        // NocoBase while it boots: 503 with its progress in `error.message`.
        assert_eq!(
            progress_text(Some(
                r#"{"error":{"code":"APP_COMMANDING","message":"load plugin [ai], 50/77","status":503}}"#
            )),
            "load plugin [ai], 50/77"
        );
        assert_eq!(progress_text(None), "");
    }

    #[test]
    fn the_wait_stream_is_under_the_route() {
        let base = "/_app/x";
        assert_eq!(wait_stream("/_app/x/_hangar/wait/x", base, true), Some("x"));
        assert_eq!(wait_stream("/_hangar/wait/x", base, false), Some("x"));
        assert_eq!(wait_stream("/_hangar/wait/x", base, true), None);
        assert_eq!(wait_stream("/_app/x/api", base, true), None);
        assert_eq!(wait_stream("/_app/x/_hangar/wait/x", base, false), None);
    }

    #[test]
    fn sse_frames() {
        assert_eq!(
            &sse("line", "a\nb")[..],
            b"event: line\ndata: a\ndata: b\n\n"
        );
    }
}

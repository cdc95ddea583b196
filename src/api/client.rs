//! The API's typed client, for the CLI and the desktop shell's attached mode: finds the engine
//! of a home (starting one in the background when none runs, as pm2 does) and offers one method
//! per route, taking and returning the types the server uses (`api::types` and the engine's).
//!
//! Invariants: every path comes from `api::routes`; every refusal is a [`ClientError::Api`]
//! carrying the API's error shape, and its message is the one sentence shown to the operator.

use std::process::Stdio;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::routes;
use crate::api::types::{
    AppList, AppMetrics, BackupBody, BackupList, BackupsQuery, DbTest, DeleteQuery, EngineInfo,
    ErrorBody, ErrorDetail, ExportQuery, HostInfo, JobStarted, LogLines, LogQuery, LoginLink,
    NameQuery, RangeQuery, Removed, SearchParams, Stopping, UpgradeList, Verdict,
};
use crate::base::home::Home;
use crate::base::jobs::JobState;
use crate::engine::apply::{ApplyReport, ApplyRequest};
use crate::engine::backup::RestoreRequest;
use crate::engine::import::{ImportReport, ImportRequest};
use crate::engine::{AppView, CreateApp, DeleteReport, UpgradeReport};
use crate::run::logs::{LogLine, SearchResult};
use crate::run::monitor::Live;
use crate::run::sampler::Snapshot;
use crate::store::registry::AppEdit;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API refused: its status and its `{error: {code, field, message}}`.
    #[error("{}", .error.message)]
    Api { status: u16, error: ErrorDetail },
    #[error("no engine runs on {0}; start one with `hangar serve`")]
    NoEngine(String),
    #[error("cannot reach the engine at {addr}: {source}")]
    Unreachable {
        addr: String,
        source: reqwest::Error,
    },
    #[error("the engine did not come up within {secs} s; see {log}")]
    Timeout { secs: u64, log: String },
    #[error("cannot start the engine: {0}")]
    Spawn(std::io::Error),
    /// The engine this client started ended before it answered: its own error.
    #[error("the engine could not start: {message} (its log: {log})")]
    EngineFailed { message: String, log: String },
    #[error(transparent)]
    Home(#[from] crate::base::home::HomeError),
    #[error("unexpected answer from the engine: {0}")]
    Decode(String),
}

/// What the event stream (`GET /events`) tells.
#[derive(Debug, Clone)]
// An event is read, handled and dropped one at a time; boxing the view would cost an
// allocation per event for no memory kept.
#[allow(clippy::large_enum_variant)]
pub enum AppEvent {
    /// An app changed: its view now.
    App(AppView),
    Removed(Removed),
    /// The reader fell behind: read the whole list again.
    Resync,
}

pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// The body of a POST that carries nothing: `{}`.
fn nothing() -> serde_json::Map<String, serde_json::Value> {
    serde_json::Map::new()
}

impl Client {
    /// Connect to the engine of `home`; with `autostart`, start one in the background first
    /// when none runs.
    pub async fn connect(home: &Home, autostart: bool) -> Result<Client, ClientError> {
        let mut started = None;
        if !home.engine_running() {
            if !autostart {
                return Err(ClientError::NoEngine(home.root().display().to_string()));
            }
            started = Some(start_background(home)?);
            eprintln!(
                "hangar: started the engine in the background (home {})",
                home.root().display()
            );
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            // The engine started here ended (a bad hangar.toml, a port taken): its own error,
            // at once. Another engine that took the home meanwhile is as good.
            if let Some((child, from)) = started.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    if !home.engine_running() {
                        return Err(engine_failed(home, *from, status));
                    }
                    started = None;
                }
            }
            if let (Some(info), Ok(token)) = (home.engine_info(), home.read_token()) {
                let client = Client {
                    base: format!("http://{}/api/v1", info.api),
                    token,
                    http: reqwest::Client::builder()
                        .no_proxy()
                        .build()
                        .map_err(|e| ClientError::Decode(e.to_string()))?,
                };
                match client.engine().await {
                    Ok(_) => return Ok(client),
                    Err(e) if std::time::Instant::now() > deadline => return Err(e),
                    Err(_) => {}
                }
            } else if std::time::Instant::now() > deadline {
                return Err(ClientError::Timeout {
                    secs: 30,
                    log: home.engine_log().display().to_string(),
                });
            }
            if !home.engine_running() && !autostart {
                return Err(ClientError::NoEngine(home.root().display().to_string()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    // ---- the engine and its apps ------------------------------------------------------------

    pub async fn engine(&self) -> Result<EngineInfo, ClientError> {
        self.json(self.get(routes::ENGINE)).await
    }

    pub async fn list(&self) -> Result<Vec<AppView>, ClientError> {
        let l: AppList = self.json(self.get(routes::APPS)).await?;
        Ok(l.apps)
    }

    pub async fn status(&self, name: &str) -> Result<AppView, ClientError> {
        self.json(self.get(&routes::app(name))).await
    }

    pub async fn create(&self, app: &CreateApp) -> Result<AppView, ClientError> {
        self.json(self.post(routes::APPS, app)).await
    }

    pub async fn edit(&self, name: &str, edit: &AppEdit) -> Result<AppView, ClientError> {
        let req = self.request(Method::PATCH, &routes::app(name)).json(edit);
        self.json(req).await
    }

    pub async fn delete(&self, name: &str, drop_db: bool) -> Result<DeleteReport, ClientError> {
        let req = self
            .request(Method::DELETE, &routes::app(name))
            .query(&DeleteQuery { drop_db });
        self.json(req).await
    }

    pub async fn start(&self, name: &str) -> Result<AppView, ClientError> {
        self.json(self.post(&routes::start(name), &nothing())).await
    }

    pub async fn stop(&self, name: &str) -> Result<AppView, ClientError> {
        self.json(self.post(&routes::stop(name), &nothing())).await
    }

    pub async fn restart(&self, name: &str) -> Result<AppView, ClientError> {
        self.json(self.post(&routes::restart(name), &nothing()))
            .await
    }

    /// A failed upgrade is an answer too: `result` is `failed` and `error` says why.
    pub async fn upgrade(&self, name: &str) -> Result<UpgradeReport, ClientError> {
        self.json(self.post(&routes::upgrade(name), &nothing()))
            .await
    }

    pub async fn upgrade_all(&self) -> Result<Vec<UpgradeReport>, ClientError> {
        let l: UpgradeList = self
            .json(self.post(routes::UPGRADE_ALL, &nothing()))
            .await?;
        Ok(l.apps)
    }

    /// Read hangar.toml again: its runtimes apply to the next start of their apps.
    pub async fn reload(&self) -> Result<crate::engine::reload::ReloadReport, ClientError> {
        self.json(self.post(routes::RELOAD, &nothing())).await
    }

    /// The environment and folder `name`'s process is given (secrets included).
    pub async fn exec_setting(
        &self,
        name: &str,
    ) -> Result<crate::engine::exec::ExecSetting, ClientError> {
        self.json(self.post(&routes::exec(name), &nothing())).await
    }

    /// Ask the engine to stop every app and end; it answers first.
    pub async fn kill(&self) -> Result<Stopping, ClientError> {
        self.json(self.post(routes::KILL, &nothing())).await
    }

    /// Whether `name` is free and well formed (the create form's live check).
    pub async fn validate_name(&self, name: &str) -> Result<Verdict, ClientError> {
        let q = NameQuery {
            name: name.to_string(),
        };
        self.json(self.get(routes::VALIDATE_NAME).query(&q)).await
    }

    /// Try a connection URL; the verdict's message carries the server's reason.
    pub async fn db_test(&self, url: &str) -> Result<Verdict, ClientError> {
        let body = DbTest {
            url: url.to_string(),
        };
        self.json(self.post(routes::DB_TEST, &body)).await
    }

    /// nginx server blocks or Kubernetes manifests, as text.
    pub async fn export(&self, kind: &str, q: &ExportQuery) -> Result<String, ClientError> {
        self.text(self.get(&routes::export(kind)).query(q)).await
    }

    /// A one-time link that logs a browser in to the control panel.
    pub async fn login_code(&self) -> Result<LoginLink, ClientError> {
        self.json(self.post(routes::LOGIN_CODE, &nothing())).await
    }

    /// Every change of every app, live. The stream ends (or errs) when the engine goes away.
    pub async fn events(
        &self,
    ) -> Result<impl Stream<Item = Result<AppEvent, ClientError>> + 'static, ClientError> {
        self.sse(self.get(routes::EVENTS), |m| match m.event.as_str() {
            "app" => Some(m.decode().map(AppEvent::App)),
            "removed" => Some(m.decode().map(AppEvent::Removed)),
            "resync" => Some(Ok(AppEvent::Resync)),
            _ => None,
        })
        .await
    }

    // ---- logs -------------------------------------------------------------------------------

    /// The last `n` lines of an app's log.
    pub async fn logs(&self, name: &str, n: usize) -> Result<Vec<LogLine>, ClientError> {
        let q = LogQuery { n: Some(n) };
        let l: LogLines = self.json(self.get(&routes::logs(name)).query(&q)).await?;
        Ok(l.lines)
    }

    /// The last `n` lines, then each new one.
    pub async fn follow_logs(
        &self,
        name: &str,
        n: usize,
    ) -> Result<impl Stream<Item = Result<LogLine, ClientError>> + 'static, ClientError> {
        let q = LogQuery { n: Some(n) };
        let req = self.get(&routes::follow_logs(name)).query(&q);
        self.sse(req, |m| (m.event == "line").then(|| m.decode()))
            .await
    }

    /// Search over the current and rotated log files.
    pub async fn search_logs(
        &self,
        name: &str,
        q: &SearchParams,
    ) -> Result<SearchResult, ClientError> {
        self.json(self.get(&routes::search_logs(name)).query(q))
            .await
    }

    // ---- figures ----------------------------------------------------------------------------

    /// One app's (or `@host`'s) history over `range` (`5m`, `1h`, `24h`, `7d`…).
    pub async fn metrics(&self, name: &str, range: &str) -> Result<AppMetrics, ClientError> {
        let q = RangeQuery {
            range: Some(range.to_string()),
        };
        self.json(self.get(&routes::metrics(name)).query(&q)).await
    }

    /// Every app's and the machine's figures each tick, and the timeline's events; the sampler
    /// runs every second while the stream is open.
    pub async fn metrics_stream(
        &self,
    ) -> Result<impl Stream<Item = Result<Live, ClientError>> + 'static, ClientError> {
        self.sse(self.get(routes::METRICS_STREAM), |m| {
            match m.event.as_str() {
                "tick" => Some(m.decode::<Snapshot>().map(Live::Tick)),
                "event" => Some(m.decode::<Live>()),
                _ => None,
            }
        })
        .await
    }

    pub async fn host(&self) -> Result<HostInfo, ClientError> {
        self.json(self.get(routes::HOST)).await
    }

    // ---- backups, restores, import ----------------------------------------------------------

    /// Start a backup of `name`; follow the job with [`Client::job`].
    pub async fn backup(&self, name: &str, body: &BackupBody) -> Result<JobState, ClientError> {
        let s: JobStarted = self.json(self.post(&routes::backup(name), body)).await?;
        Ok(s.job)
    }

    /// The archives (all, or one app's), newest first.
    pub async fn backups(&self, app: Option<&str>) -> Result<BackupList, ClientError> {
        let q = BackupsQuery {
            app: app.map(String::from),
        };
        self.json(self.get(routes::BACKUPS).query(&q)).await
    }

    /// Start a restore; follow the job with [`Client::job`] (its result is the app's view).
    pub async fn restore(&self, req: &RestoreRequest) -> Result<JobState, ClientError> {
        let s: JobStarted = self.json(self.post(routes::RESTORE, req)).await?;
        Ok(s.job)
    }

    pub async fn job(&self, id: &str) -> Result<JobState, ClientError> {
        self.json(self.get(&routes::job(id))).await
    }

    pub async fn import_nocobase(&self, req: &ImportRequest) -> Result<ImportReport, ClientError> {
        self.json(self.post(routes::IMPORT_NOCOBASE, req)).await
    }

    /// `hangar apply`: the plan (and with `dry_run` false, what was done).
    pub async fn apply(&self, req: &ApplyRequest) -> Result<ApplyReport, ClientError> {
        self.json(self.post(routes::APPLY, req)).await
    }

    // ---- one request ------------------------------------------------------------------------

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    fn post(&self, path: &str, body: &impl Serialize) -> RequestBuilder {
        self.request(Method::POST, path).json(body)
    }

    fn unreachable(&self, source: reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            addr: self.base.clone(),
            source,
        }
    }

    /// Send: the answer on success, the API's error otherwise.
    async fn send(&self, req: RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.map_err(|e| self.unreachable(e))?;
        Err(api_error(status, &text))
    }

    /// The answer's text.
    async fn text(&self, req: RequestBuilder) -> Result<String, ClientError> {
        let resp = self.send(req).await?;
        resp.text().await.map_err(|e| self.unreachable(e))
    }

    /// The answer, read as `T`.
    async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T, ClientError> {
        decode(&self.text(req).await?)
    }

    /// A server-sent event stream, each event read by `read`: an item, or None to skip it (an
    /// event the caller does not take). A broken connection is an item too, and ends it.
    async fn sse<T: 'static>(
        &self,
        req: RequestBuilder,
        read: fn(SseMessage) -> Option<Result<T, ClientError>>,
    ) -> Result<impl Stream<Item = Result<T, ClientError>> + 'static, ClientError> {
        let resp = self.send(req).await?;
        let base = self.base.clone();
        let mut buf = String::new();
        Ok(resp.bytes_stream().flat_map(move |chunk| {
            let mut out = Vec::new();
            match chunk {
                Ok(bytes) => {
                    buf.push_str(&String::from_utf8_lossy(&bytes));
                    while let Some(i) = buf.find("\n\n") {
                        let block: String = buf.drain(..i + 2).collect();
                        out.extend(SseMessage::parse(&block).and_then(read));
                    }
                }
                Err(source) => out.push(Err(ClientError::Unreachable {
                    addr: base.clone(),
                    source,
                })),
            }
            futures_util::stream::iter(out)
        }))
    }
}

/// One server-sent event: its name (`message` when none is given) and its data lines joined.
struct SseMessage {
    event: String,
    data: String,
}

impl SseMessage {
    /// One block of the stream (the lines before a blank line); None for a keep-alive comment.
    fn parse(block: &str) -> Option<SseMessage> {
        let field = |l: &str, name: &str| {
            l.strip_prefix(name)
                .and_then(|r| r.strip_prefix(':'))
                .map(|v| v.strip_prefix(' ').unwrap_or(v).to_string())
        };
        let mut event = None;
        let mut data = Vec::new();
        for l in block.lines() {
            if let Some(v) = field(l, "data") {
                data.push(v);
            } else if let Some(v) = field(l, "event") {
                event = Some(v);
            }
        }
        if data.is_empty() {
            return None;
        }
        Some(SseMessage {
            event: event.unwrap_or_else(|| "message".into()),
            data: data.join("\n"),
        })
    }

    fn decode<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        decode(&self.data)
    }
}

fn decode<T: DeserializeOwned>(text: &str) -> Result<T, ClientError> {
    serde_json::from_str(text).map_err(|e| ClientError::Decode(format!("{e}: {text}")))
}

/// A refusal: the API's error shape, or (from something else on the port) the status and text.
fn api_error(status: StatusCode, text: &str) -> ClientError {
    let error = serde_json::from_str::<ErrorBody>(text)
        .map(|b| b.error)
        .unwrap_or_else(|_| ErrorDetail {
            code: String::new(),
            field: None,
            message: format!("{status}: {text}"),
        });
    ClientError::Api {
        status: status.as_u16(),
        error,
    }
}

/// The error of an engine that ended before it answered: the last `hangar: …` line it wrote
/// to its log after `from` (the log's length before it started), else its last line.
fn engine_failed(home: &Home, from: u64, status: std::process::ExitStatus) -> ClientError {
    use std::io::{Read, Seek, SeekFrom};
    const MOST: u64 = 64 * 1024;
    let path = home.engine_log();
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(&path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(from);
        let start = from.max(len.saturating_sub(MOST));
        if f.seek(SeekFrom::Start(start)).is_ok() {
            let _ = f.take(MOST).read_to_string(&mut text);
        }
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let message = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("hangar: "))
        .or(lines.last().copied())
        .map(str::to_string)
        .unwrap_or_else(|| format!("it exited ({status}) without a word"));
    ClientError::EngineFailed {
        message,
        log: path.display().to_string(),
    }
}

/// Start `hangar serve` for `home`, detached, its output going to the engine's log; the child,
/// and the log's length before it started.
fn start_background(home: &Home) -> Result<(std::process::Child, u64), ClientError> {
    home.prepare()?;
    let exe = std::env::current_exe().map_err(ClientError::Spawn)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.engine_log())
        .map_err(ClientError::Spawn)?;
    let from = log.metadata().map(|m| m.len()).unwrap_or(0);
    let log2 = log.try_clone().map_err(ClientError::Spawn)?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--home")
        .arg(home.root())
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    // A session of its own: the engine outlives this command and its terminal.
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(ClientError::Spawn)?;
    Ok((child, from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sse_block_gives_its_event_and_data() {
        let m = SseMessage::parse("event: line\ndata: {\"a\":1}\n\n").expect("a message");
        assert_eq!((m.event.as_str(), m.data.as_str()), ("line", "{\"a\":1}"));
        let m = SseMessage::parse("data:x\ndata: y\n\n").expect("a message");
        assert_eq!((m.event.as_str(), m.data.as_str()), ("message", "x\ny"));
        assert!(SseMessage::parse(":keep-alive\n\n").is_none());
        // `datax:` is no data field.
        assert!(SseMessage::parse("event: e\ndatax: 1\n\n").is_none());
    }

    #[test]
    fn a_refusal_keeps_the_api_error_shape() {
        let body = r#"{"error":{"code":"invalid","field":"name","message":"name: no"}}"#;
        let e = api_error(StatusCode::BAD_REQUEST, body);
        assert_eq!(e.to_string(), "name: no");
        let ClientError::Api { status, error } = e else {
            panic!("not an API error: {e:?}");
        };
        assert_eq!(status, 400);
        assert_eq!(error.field.as_deref(), Some("name"));
        // Something else on the port: the status and text are the message.
        let e = api_error(StatusCode::BAD_GATEWAY, "upstream down");
        assert_eq!(e.to_string(), "502 Bad Gateway: upstream down");
    }
}

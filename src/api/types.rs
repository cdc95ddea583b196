//! The API's contract as types: the request bodies, queries and answers the routes shape
//! themselves, shared by the server (`api/mod.rs`, `data.rs`, `metrics.rs`, `panel.rs`) and the
//! typed client (`client.rs`), so the CLI and the desktop shell read what the server writes.
//! The types of an engine operation live with it and are used as they are: `CreateApp`,
//! `AppView`, `DeleteReport`, `UpgradeReport` (engine), `AppEdit` (store::registry),
//! `RestoreRequest` (engine::backup), `ImportRequest`/`ImportReport` (engine::import),
//! `JobState` (base::jobs), `BackupInfo` (store::archive), `LogLine`/`SearchResult` (run::logs),
//! `History`/`Live` (run::monitor), `Snapshot`/`Usage`/`HostUsage` (run::sampler).
//!
//! Invariant: an answer wrapped in [`Sorted`] is written through a `serde_json::Value`, whose
//! maps keep their keys sorted at every level: byte for byte the JSON these routes served when
//! they built it with `json!`. The field order of these structs therefore changes nothing.

use std::path::PathBuf;

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::base::jobs::JobState;
use crate::base::validate::Invalid;
use crate::engine::{AppView, UpgradeReport};
use crate::run::logs::LogLine;
use crate::run::monitor::History;
use crate::run::sampler::{HostUsage, Usage};
use crate::store::archive::BackupInfo;

/// An answer served with its keys sorted at every level (see the module's invariant).
pub(crate) struct Sorted<T>(pub(crate) T);

impl<T: Serialize> IntoResponse for Sorted<T> {
    fn into_response(self) -> Response {
        // Serializing these types into a Value cannot fail: every map key is a string.
        Json(serde_json::to_value(&self.0).unwrap_or_default()).into_response()
    }
}

/// The API's one error shape: `{"error": {"code", "field", "message"}}` (written by
/// `api/error.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// `invalid`, `conflict`, `not_found`, `refused`, `start_failed`, `forbidden`,
    /// `unauthorized` or `internal`.
    pub code: String,
    /// The request field a refusal is about, when it is about one.
    pub field: Option<String>,
    pub message: String,
}

/// `GET /engine`: the engine a client talks to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineInfo {
    pub version: String,
    pub pid: u32,
    pub home: PathBuf,
    pub proxy_port: u16,
    pub api_port: u16,
    pub main_runtime: String,
    pub runtimes: Vec<String>,
    /// `postgres` or `mysql` when a data service is configured.
    pub data_service: Option<String>,
    /// How many starts or stops a bulk action runs at once (`engine::START_PARALLEL`: the
    /// engine's boot, `hangar start NAME…` and the panel use the one figure).
    #[serde(default = "one")]
    pub start_parallel: usize,
}

/// An engine that does not say runs one at a time.
fn one() -> usize {
    1
}

/// `GET /apps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppList {
    pub apps: Vec<AppView>,
}

/// `POST /upgrade`: every app's upgrade, one after another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpgradeList {
    pub apps: Vec<UpgradeReport>,
}

/// `DELETE /apps/{name}?drop_db=`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeleteQuery {
    #[serde(default)]
    pub drop_db: bool,
}

/// `POST /kill`: answered before the engine ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stopping {
    pub stopping: bool,
}

/// `GET /validate/name?name=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameQuery {
    pub name: String,
}

/// A check's verdict (`GET /validate/name`, `POST /db/test`): `message` says why not, or, for
/// a connection, where it connected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub ok: bool,
    pub message: Option<String>,
}

/// The body of `POST /db/test`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DbTest {
    pub url: String,
}

/// `GET /export/{kind}?app=&direct=&listen=&image=&secrets=`; the answer is plain text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportQuery {
    pub app: Option<String>,
    #[serde(default)]
    pub direct: bool,
    /// nginx: the port the server blocks listen on (default 80).
    pub listen: Option<u16>,
    /// kubernetes: the image, `{runtime}` and `{name}` replaced (default `{runtime}:latest`).
    pub image: Option<String>,
    /// kubernetes: write the secret values (credentials, `APP_KEY`, the apps' env); without
    /// it their names are kept and their values left empty.
    #[serde(default)]
    pub secrets: bool,
}

/// `GET /apps/{name}/logs?n=` and `/logs/follow?n=`: how many of the last lines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogQuery {
    pub n: Option<usize>,
}

/// `GET /apps/{name}/logs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLines {
    pub lines: Vec<LogLine>,
}

/// `GET /apps/{name}/logs/search?q=&regex=&since=&until=&limit=&stream=`, as the query carries it (the
/// route checks each field and names the one it refuses).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchParams {
    pub q: Option<String>,
    /// `true`/`1` or `false`/`0`.
    pub regex: Option<String>,
    /// RFC 3339, or a time ago such as `10m`.
    pub since: Option<String>,
    pub until: Option<String>,
    /// 1 to 100000 (default 1000).
    pub limit: Option<usize>,
    /// Only lines of this stream: out, err, sys or file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
}

/// `GET /apps/{name}/metrics?range=`: `5m`, `1h` (default), `24h`, `7d`…
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RangeQuery {
    pub range: Option<String>,
}

/// `GET /apps/{name}/metrics`: the history, and the figures of now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppMetrics {
    #[serde(flatten)]
    pub history: History,
    /// None until the sampler has seen it (or while the app is down).
    pub current: Option<Current>,
}

/// The figures of now: the machine's for `@host`, else the app's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Current {
    Host(HostUsage),
    App(Usage),
}

/// `GET /host`: the machine's figures and the sampler in use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostInfo {
    pub host: Option<HostUsage>,
    /// `proc` or `sysinfo`.
    pub sampler: String,
    pub processes_seen: usize,
    /// Open metrics streams and event streams (the sampler runs every second while any is).
    pub watchers: usize,
    /// The memory budget (`memory_budget`) and what the apps hold; absent: no budget.
    #[serde(default)]
    pub memory_budget: Option<crate::run::monitor::BudgetFigures>,
}

/// The body of `POST /apps/{name}/backup`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupBody {
    /// An absolute folder to write the archive to (default: the home's backups/).
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

impl BackupBody {
    /// `dir`, when given, is absolute (checked before a job starts).
    pub fn check(&self) -> Result<(), Invalid> {
        match &self.dir {
            Some(d) if !d.is_absolute() => Err(Invalid::new(
                "dir",
                format!("{} is relative; give an absolute folder", d.display()),
            )),
            _ => Ok(()),
        }
    }
}

/// `POST /apps/{name}/backup` and `POST /restore` answer `202` with the job they started;
/// `GET /jobs/{id}` follows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobStarted {
    pub job: JobState,
}

/// `GET /backups?app=`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupsQuery {
    pub app: Option<String>,
}

/// `GET /backups`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupList {
    pub backups: Vec<BackupInfo>,
    /// Days automatic backups are kept.
    pub keep_days: u32,
}

/// `POST /login-code`: a one-time link that logs a browser in to the control panel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginLink {
    pub code: String,
    pub url: String,
    pub expires_in_seconds: u64,
}

/// `POST /login` (the control panel's page, no token): a login link's one-time code…
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginExchange {
    pub code: String,
}

/// …traded for a panel session: the page's bearer from then on, never the token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PanelSession {
    pub session: String,
    pub expires_in_seconds: u64,
}

/// The data of the event stream's `removed` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Removed {
    pub name: String,
}

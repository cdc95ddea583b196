//! The API routes of backups, restores and the legacy import (see api/mod.rs for the guard
//! every route is behind). A backup or a restore answers `202` at once with a job; `GET /jobs/{id}`
//! reports its step and bytes until it is `done` (with its result) or `failed` (with why).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::api::error::{error, ApiError, ApiResult, ErrorKind};
use crate::api::types::{BackupBody, BackupList, BackupsQuery, JobStarted, Sorted};
use crate::base::jobs::JobState;
use crate::base::validate::Invalid;
use crate::engine::backup::RestoreRequest;
use crate::engine::import::ImportRequest;
use crate::engine::{Engine, EngineError};

type Shared = Arc<Engine>;

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(v)| v)
        .map_err(|r| ApiError(EngineError::Invalid(Invalid::new("body", r.body_text()))))
}

pub async fn backup(
    State(e): State<Shared>,
    Path(name): Path<String>,
    b: Result<Json<BackupBody>, JsonRejection>,
) -> ApiResult<Response> {
    let req = body(b)?;
    req.check().map_err(EngineError::from)?;
    e.registry.get(&name).await.map_err(EngineError::from)?;
    let job = e.jobs.start("backup", &name);
    let state = job.snapshot();
    let engine = e.clone();
    tokio::spawn(async move {
        match engine.backup(&name, req.dir.as_deref(), &job).await {
            Ok(info) => job.done(json!(info)),
            Err(err) => job.failed(err.to_string()),
        }
    });
    Ok((StatusCode::ACCEPTED, Sorted(JobStarted { job: state })).into_response())
}

pub async fn backups(State(e): State<Shared>, Query(q): Query<BackupsQuery>) -> Sorted<BackupList> {
    let home = e.home.clone();
    let list =
        tokio::task::spawn_blocking(move || crate::store::archive::list(&home, q.app.as_deref()))
            .await
            .unwrap_or_default();
    Sorted(BackupList {
        backups: list,
        keep_days: e.config.backup_keep_days,
    })
}

pub async fn restore(
    State(e): State<Shared>,
    b: Result<Json<RestoreRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let req = body(b)?;
    req.check().map_err(EngineError::from)?;
    let path = e.backup_path(&req.file)?;
    let job = e
        .jobs
        .start("restore", &req.as_name.clone().unwrap_or_default());
    let state = job.snapshot();
    let engine = e.clone();
    tokio::spawn(async move {
        let req = RestoreRequest {
            file: path.display().to_string(),
            ..req
        };
        match engine.restore(req, &job).await {
            Ok(view) => job.done(json!(view)),
            Err(err) => job.failed(err.to_string()),
        }
    });
    Ok((StatusCode::ACCEPTED, Sorted(JobStarted { job: state })).into_response())
}

pub async fn job(
    State(e): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<JobState>, Response> {
    e.jobs.get(&id).map(Json).ok_or_else(|| {
        error(
            ErrorKind::NotFound,
            None,
            &format!(
                "no job {id:?}; the engine keeps its last {} jobs until it restarts",
                crate::base::jobs::KEEP
            ),
        )
    })
}

pub async fn import_nocobase(
    State(e): State<Shared>,
    b: Result<Json<ImportRequest>, JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let req = body(b)?;
    Ok(Json(e.import_nocobase(req).await?))
}

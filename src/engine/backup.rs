//! The engine's backup operations: `hangar backup`, `hangar restore`, and the checks of a
//! restore request. The archive itself (format, dumps, loads) is `store::archive`.
//!
//! Invariants: a restore checks everything it can (name, manifest, dialects) before it makes
//! anything, and a failure after the app was made deletes it again, with what was provisioned
//! for it, so nothing is left half-restored.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::base::db::{AppDb, DbMethod};
use crate::base::dialect::Dialect;
use crate::base::jobs::Job;
use crate::base::validate::Invalid;
use crate::engine::{AppView, CreateApp, CreateOpts, Engine, EngineError};
use crate::store::archive::*;

impl From<BackupError> for EngineError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Invalid(i) => EngineError::Invalid(i),
            BackupError::Refused(s) => EngineError::Refused(s),
            other => EngineError::Backup(other),
        }
    }
}

/// What `restore` is asked.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// A path, or the name of an archive in `backups/`.
    pub file: String,
    /// Restore under this name instead of the archived one.
    #[serde(default, rename = "as")]
    pub as_name: Option<String>,
    /// Where the database goes: `new-database`, `schema` or a URL (default: as it was; an
    /// attached database goes to a new database on the data service).
    #[serde(default)]
    pub db: Option<String>,
}

impl RestoreRequest {
    /// The checks that need only the request, made before a job starts: a new name (`as`) is
    /// a valid name, `db` has an accepted form.
    pub fn check(&self) -> Result<(), Invalid> {
        if let Some(n) = self.as_name.as_deref().filter(|n| !n.is_empty()) {
            crate::base::validate::name(n)?;
        }
        if let Some(m) = self.db.as_deref() {
            crate::base::validate::db_method(m)?;
        }
        Ok(())
    }
}

impl Engine {
    /// An archive path from what the operator gave: a path, or a name in `backups/`.
    pub fn backup_path(&self, file: &str) -> Result<PathBuf, EngineError> {
        let p = PathBuf::from(file);
        if p.is_absolute() {
            return Ok(p);
        }
        let in_backups = self.home.backups_dir().join(&p);
        if p.components().count() == 1 && in_backups.is_file() {
            return Ok(in_backups);
        }
        Err(Invalid::new(
            "file",
            format!("no backup {file:?}: give an absolute path, or the name of a file in {} (`hangar backups` lists them)", self.home.backups_dir().display()),
        )
        .into())
    }

    /// Back up one app now (`hangar backup`).
    pub async fn backup(
        &self,
        name: &str,
        dir: Option<&Path>,
        job: &Job,
    ) -> Result<BackupInfo, EngineError> {
        let app = self.registry.get(name).await?;
        if let Some(d) = dir {
            if !d.is_absolute() {
                return Err(Invalid::new(
                    "dir",
                    format!("{} is relative; give an absolute folder", d.display()),
                )
                .into());
            }
        }
        Ok(write(&self.home, &self.config, &app, Reason::Manual, dir, job).await?)
    }

    /// Bring an archived app back, under its own name or another: a new app (new port, new
    /// database made like a new app's) with the archived definition, data folder and data.
    pub async fn restore(
        self: &Arc<Self>,
        req: RestoreRequest,
        job: &Job,
    ) -> Result<AppView, EngineError> {
        let path = self.backup_path(&req.file)?;
        job.step("reading the manifest");
        let p2 = path.clone();
        let manifest = tokio::task::spawn_blocking(move || read_manifest(&p2)).await??;
        let old = &manifest.app;
        let name = req
            .as_name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| old.name.clone());
        let same = name == old.name;
        if same && self.registry.get(&name).await.is_ok() {
            return Err(EngineError::Conflict(Invalid::new(
                "name",
                format!("an app named {name:?} exists; restore this backup beside it with --as NEW_NAME, or delete it first"),
            )));
        }
        // Where the data goes, checked before anything is made.
        let dump_dialect = manifest.dump.dialect();
        let service = self.config.data_service.as_deref().and_then(Dialect::of);
        let mut given_db = None;
        let method = match (manifest.dump, req.db.as_deref()) {
            (DumpKind::Sqlite, None | Some("new-database")) => {
                given_db = Some(AppDb::sqlite_file(&self.home.app_dir(&name)));
                None
            }
            (DumpKind::Sqlite, Some(_)) => {
                return Err(Invalid::new("db", "this backup holds a SQLite database, which is restored into the app's own SQLite file; leave --db out").into())
            }
            (_, Some(m)) => Some(m.to_string()),
            (_, None) => Some(match old.db_method {
                DbMethod::Schema => "schema".to_string(),
                _ => "new-database".to_string(),
            }),
        };
        if let (Some(want), Some(m)) = (dump_dialect, method.as_deref()) {
            let target = match m {
                "new-database" | "schema" => service,
                url => Dialect::of(url),
            };
            if target != Some(want) {
                let there = match (m, target) {
                    ("new-database" | "schema", None) => {
                        "hangar.toml has no [data_service] (apps get SQLite files)".to_string()
                    }
                    ("new-database" | "schema", Some(t)) => format!("the data service is {t}"),
                    (_, t) => format!("--db is a {} URL", t.map_or("unknown", Dialect::as_str)),
                };
                return Err(EngineError::Refused(format!(
                    "this backup holds a {want} dump and {there}; set [data_service] url to a {want} server, or give --db with a {want} URL of an empty database; nothing was restored"
                )));
            }
            if manifest.dump == DumpKind::PostgresSchema && m != "schema" {
                return Err(Invalid::new("db", "this backup holds one PostgreSQL schema; restore it with --db schema (the default)").into());
            }
        }
        let port = if same
            && !self.registry.used_ports().await?.contains(&old.port)
            && !crate::run::launch::port_taken(old.port)
        {
            Some(old.port as u32)
        } else {
            None
        };
        // An archive is whatever a file holds: variables that make a program load or run code
        // it names (`LD_PRELOAD` into the archive's own data folder) are left out, and said so.
        let (dropped, env): (Vec<_>, Vec<_>) = old
            .env
            .clone()
            .into_iter()
            .partition(|(k, _)| crate::base::validate::runs_code(k));
        let dropped: Vec<String> = dropped.into_iter().map(|(k, _)| k).collect();
        let create = CreateApp {
            name: name.clone(),
            display_name: Some(if same || old.display_name != old.name {
                old.display_name.clone()
            } else {
                name.clone()
            }),
            start_mode: Some(old.start_mode),
            port,
            // A domain leads to one app: a copy beside the original gets none.
            domain: if same { old.domain.clone() } else { None },
            pinned: old.pinned,
            idle_timeout: old.idle_timeout.map(i64::from),
            memory_max: old.memory_max.map(crate::base::validate::SizeInput::Bytes),
            nice: old.nice.map(i64::from),
            db: method,
            runtime: old
                .runtime
                .clone()
                .filter(|r| self.runtimes.get(r).is_some()),
            env: env.into_iter().collect(),
            command: old.command.clone(),
        };
        job.step("making the app and its database");
        let view = self
            .create_with(
                create,
                CreateOpts {
                    db: given_db,
                    hold: true,
                    app_key: same.then(|| old.app_key.clone()),
                },
            )
            .await?;
        match self.fill(&name, &path, &manifest, job).await {
            Ok(()) => {}
            Err(e) => {
                job.step("undoing");
                let owned = self
                    .registry
                    .get(&name)
                    .await
                    .map(|a| !a.db.owned.is_empty())
                    .unwrap_or(false);
                if let Err(u) = self.delete_with(&name, owned, false).await {
                    tracing::warn!(app = %name, "undoing a failed restore: {u}");
                    return Err(EngineError::Refused(format!(
                        "{e}; undoing it also failed ({u}): delete {name} by hand"
                    )));
                }
                return Err(EngineError::Refused(format!(
                    "{e}; the half-restored app was removed again"
                )));
            }
        }
        if let Some(v) = &old.last_version {
            let _ = self.registry.set_last_version(&name, v).await;
        }
        // A restored app stays stopped (registered `hold`) until the operator starts it, even
        // one that started with the engine: nothing of the archive runs before someone looked.
        tracing::info!(app = %name, from = %path.display(), "restored");
        let mut notices = Vec::new();
        if !dropped.is_empty() {
            notices.push(format!(
                "left out of its env, as variables that make a program load or run code: {}; set them again with `hangar edit {name} --env KEY=VALUE` if you trust them",
                dropped.join(", ")
            ));
        }
        notices.push(format!(
            "restored stopped: nothing of it runs until you start it (`hangar start {name}`)"
        ));
        if let Some(h) = self.supervisor.get(&name) {
            for n in &notices {
                h.log.sys(format!("restored from {}: {n}", path.display()));
            }
        }
        let mut view = self.view(&name).await.unwrap_or(view);
        view.notices.extend(notices);
        if !same && old.domain.is_some() {
            view.notices.push(format!(
                "the domain {} stays with {}; give {name} one of its own with an edit",
                old.domain.clone().unwrap_or_default(),
                old.name
            ));
        }
        Ok(view)
    }

    async fn fill(
        &self,
        name: &str,
        path: &Path,
        manifest: &Manifest,
        job: &Job,
    ) -> Result<(), BackupError> {
        let app = self
            .registry
            .get(name)
            .await
            .map_err(|e| BackupError::Refused(e.to_string()))?;
        let data_dir = self.home.app_dir(name);
        let backups = self.home.backups_dir();
        std::fs::create_dir_all(&backups)
            .map_err(io_err(format_args!("create {}", backups.display())))?;
        let staging = backups.join(format!(".restore-{}", crate::base::secret::random_hex(6)));
        private_dir(&staging)?;
        let max_bytes = self.config.restore_max_bytes;
        job.set_total(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0));
        job.step("unpacking the data folder");
        let (p, d, s, j) = (
            path.to_path_buf(),
            data_dir.clone(),
            staging.clone(),
            job.clone(),
        );
        let r = async {
            tokio::task::spawn_blocking(move || extract(&p, &d, &s, max_bytes, &j))
                .await
                .map_err(|e| BackupError::io(e.to_string(), e))??;
            job.step("loading the database");
            load(&app.db, manifest, &staging).await
        }
        .await;
        let _ = std::fs::remove_dir_all(&staging);
        r
    }
}

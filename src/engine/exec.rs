//! `hangar exec NAME -- PROGRAM`: what a program needs to run as the app runs — its
//! environment (the database settings and `APP_KEY` included) and its working folder — built by
//! the same code as a start (`launch::setting`).
//!
//! Invariant: the environment travels only in the API's answer (loopback, token) and the
//! program's own environment: never on a command line, never in a log line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, EngineError};
use crate::run::launch;

/// The environment and working folder of one app's process, as its next start gives them.
#[derive(Clone, Serialize, Deserialize)]
pub struct ExecSetting {
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
}

impl std::fmt::Debug for ExecSetting {
    // Values hold the database password and the app key: only the names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecSetting")
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .finish()
    }
}

impl Engine {
    /// What `name`'s process would be given if it started now (the runtimes in force).
    pub async fn exec_setting(&self, name: &str) -> Result<ExecSetting, EngineError> {
        let app = self.registry.get(name).await?;
        let runtime = self.runtimes.of(&app).map_err(|rt| {
            EngineError::Refused(format!("{name}'s runtime {rt:?} is not in hangar.toml"))
        })?;
        let dir = self.home.app_dir(name);
        std::fs::create_dir_all(&dir)
            .map_err(EngineError::io(format!("cannot create {}", dir.display())))?;
        let mut s = launch::setting(&self.home, &app, &runtime, self.config.proxy_port)
            .map_err(|e| EngineError::Refused(e.to_string()))?;
        // A confined app's own HOME, as its start gives it.
        if runtime.confine && crate::run::confine::support().is_ok() {
            crate::run::confine::give_own_home(&dir, &mut s.env)
                .map_err(|e| EngineError::Refused(e.to_string()))?;
        }
        tracing::info!(app = %name, "environment handed out for exec");
        Ok(ExecSetting {
            env: s.env,
            cwd: s.cwd,
        })
    }
}

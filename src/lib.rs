//! Hangar's engine: a library the `hangar` CLI and the desktop shell both host.
//! See ARCHITECTURE.md for the map.

pub mod api;
mod api_data;
pub mod backup;
pub mod cli;
mod cli_data;
pub mod client;
pub mod config;
pub mod db;
pub mod engine;
pub mod export;
pub mod home;
pub mod import;
pub mod jobs;
pub mod launch;
pub mod logfiles;
pub mod logs;
pub mod metrics;
pub mod metrics_api;
pub mod monit;
pub mod monitor;
pub mod process;
pub mod provision;
pub mod proxy;
pub mod registry;
pub mod secret;
pub mod supervisor;
pub mod ui_server;
pub mod validate;

/// Hangar's own log lines, for both programs: to stderr through `tracing`, filtered by
/// `HANGAR_LOG` (an `EnvFilter`, `info` when unset).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HANGAR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// What the fuzz targets (`fuzz/`) reach that is not otherwise public: the API's request
/// bodies. Not a stable interface.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::api::DbTest;
    pub use crate::api_data::BackupBody;
    pub use crate::backup::RestoreRequest;
    pub use crate::engine::CreateApp;
    pub use crate::import::ImportRequest;
    pub use crate::registry::AppEdit;
}

//! Hangar's engine: a library the `hangar` CLI and the desktop shell both host.
//! See ARCHITECTURE.md for the map and the layer rule.

// The layers, lowest first. A module imports only from its own layer and the ones listed
// before it (`api` and `proxy` share a floor and never import each other); `host` starts the
// services. ARCHITECTURE.md states the rule and tests/it/layers.rs checks it.
pub mod api;
pub mod base;
pub mod engine;
pub mod host;
pub mod proxy;
pub mod run;
pub mod store;

/// Hangar's own log lines, for both programs: to stderr through `tracing`, filtered by
/// `HANGAR_LOG` (an `EnvFilter`, `info` when unset).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HANGAR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal and never under NO_COLOR (no-color.org): a kept log
    // (`hangar serve 2>file`, logs/engine.log, journald) carries no escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// What the fuzz targets (`fuzz/`) reach that is not otherwise public: the API's request
/// bodies, and the proxy's two head rewrites. Not a stable interface.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::api::types::{BackupBody, DbTest};
    pub use crate::engine::backup::RestoreRequest;
    pub use crate::engine::import::ImportRequest;
    pub use crate::engine::CreateApp;
    pub use crate::proxy::heads_for_fuzzing as proxy_heads;
    pub use crate::store::registry::AppEdit;
}

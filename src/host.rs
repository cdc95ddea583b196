//! The host: binds the two ports and runs the services of one engine — the proxy (the front
//! door), the API (with the control panel) and the sampling loop — until the engine shuts down.
//! `hangar serve` and the desktop shell both host an engine through [`serve`].
//!
//! Invariant: the only module that starts the front doors; nothing below it imports `api` or
//! `proxy`. The API listens on loopback only; `engine.json` is written once both ports are bound.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::base::home::EngineInfo;
use crate::engine::{Engine, EngineError};

/// Run the engine's servers (proxy, API) and the sampler until shutdown.
pub async fn serve(engine: &Arc<Engine>) -> Result<(), EngineError> {
    let config = &engine.config;
    let proxy_addr = SocketAddr::new(config.proxy_bind, config.proxy_port);
    let api_addr = SocketAddr::from(([127, 0, 0, 1], config.api_port));
    let proxy = tokio::net::TcpListener::bind(proxy_addr)
        .await
        .map_err(|source| EngineError::Listen {
            addr: proxy_addr,
            service: "the proxy",
            setting: "proxy_port",
            source,
        })?;
    let api = tokio::net::TcpListener::bind(api_addr)
        .await
        .map_err(|source| EngineError::Listen {
            addr: api_addr,
            service: "the API",
            setting: "api_port",
            source,
        })?;
    engine.home.write_engine_info(&EngineInfo {
        pid: std::process::id(),
        api: api_addr.to_string(),
        proxy: proxy_addr.to_string(),
        token_file: engine.home.token_file(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    })?;
    tracing::info!(%proxy_addr, %api_addr, home = %engine.home.root().display(), "engine listening");
    let sampler = tokio::spawn(crate::run::monitor::run(engine.core()));
    let config_watch = tokio::spawn(crate::engine::reload::watch(engine.clone()));
    let p = tokio::spawn(crate::proxy::serve(engine.clone(), proxy));
    let a = tokio::spawn(crate::api::serve(engine.clone(), api));
    let mut down = engine.shutdown_signal();
    let _ = down.wait_for(|d| *d).await;
    sampler.abort();
    config_watch.abort();
    p.abort();
    a.abort();
    engine.monitor.flush().await;
    Ok(())
}

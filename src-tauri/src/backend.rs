//! The engine the shell talks to: hosted in this process (the same engine as `hangar serve`), or
//! one that already runs on this home, reached through its API. Every method is one engine call;
//! no engine logic lives here.
//!
//! Invariants: at most one engine per home (the engine's lock decides; losing the race means
//! attaching); `quit` returns only when every app's process is gone and, for a hosted engine, the
//! servers are down and the registry is closed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use hangar::api::client::{Client, ClientError};
use hangar::base::home::{Home, HomeError};
use hangar::engine::{AppView, Engine, EngineError, Overrides};
use hangar::run::logs::{LogLine, Stream as LogStream};
use tokio::task::JoinHandle;

use crate::menu_model::QuitProgress;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error("the engine stopped while starting: {0}")]
    Serve(String),
}

/// How many apps Start all / Stop all touch at once.
const PARALLEL: usize = 4;
/// How long a quit waits for an attached engine to let go of the home.
const QUIT_WAIT: Duration = Duration::from_secs(120);

pub struct Local {
    pub engine: Arc<Engine>,
    serve: Mutex<Option<JoinHandle<Result<(), EngineError>>>>,
}

pub struct Remote {
    pub client: Client,
    pub home: Home,
    pub api_port: u16,
    pub proxy_port: u16,
}

pub enum Backend {
    Local(Local),
    Remote(Remote),
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

impl Backend {
    /// Attach to the engine running on `home`, or host one here (booted and serving).
    pub async fn open(home: Home, overrides: Overrides) -> Result<Backend, BackendError> {
        if !home.engine_running() {
            match Engine::open(home.clone(), overrides).await {
                Ok(engine) => return Backend::host(engine).await,
                Err(EngineError::Home(
                    HomeError::Taken { .. } | HomeError::TakenUnknown { .. },
                )) => {
                    // Another engine won the race for this home: use it.
                }
                Err(e) => return Err(e.into()),
            }
        }
        Backend::attach(home).await
    }

    pub async fn attach(home: Home) -> Result<Backend, BackendError> {
        let client = Client::connect(&home, false).await?;
        let info = home
            .engine_info()
            .ok_or_else(|| BackendError::Serve("the engine left no engine.json".into()))?;
        tracing::info!(api = %info.api, home = %home.root().display(), "attached to a running engine");
        Ok(Backend::Remote(Remote {
            client,
            api_port: port_of(&info.api),
            proxy_port: port_of(&info.proxy),
            home,
        }))
    }

    /// Boot `engine` and serve it on the current tokio runtime; returns once its API answers.
    pub async fn host(engine: Arc<Engine>) -> Result<Backend, BackendError> {
        engine.boot().await?;
        let e = engine.clone();
        let mut serve = tokio::spawn(async move { hangar::host::serve(&e).await });
        let api = format!("127.0.0.1:{}", engine.config.api_port);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if serve.is_finished() {
                let why = match (&mut serve).await {
                    Ok(Ok(())) => "it ended at once".to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                };
                engine.shutdown().await;
                return Err(BackendError::Serve(why));
            }
            if tokio::net::TcpStream::connect(&api).await.is_ok() {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                serve.abort();
                engine.shutdown().await;
                return Err(BackendError::Serve(format!(
                    "the API at {api} did not answer"
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::info!(home = %engine.home.root().display(), "hosting the engine in-process");
        Ok(Backend::Local(Local {
            engine,
            serve: Mutex::new(Some(serve)),
        }))
    }

    pub fn mode(&self) -> &'static str {
        match self {
            Backend::Local(_) => "in-process",
            Backend::Remote(_) => "attached",
        }
    }

    pub fn api_port(&self) -> u16 {
        match self {
            Backend::Local(l) => l.engine.config.api_port,
            Backend::Remote(r) => r.api_port,
        }
    }

    pub fn proxy_port(&self) -> u16 {
        match self {
            Backend::Local(l) => l.engine.config.proxy_port,
            Backend::Remote(r) => r.proxy_port,
        }
    }

    pub fn token(&self) -> &str {
        match self {
            Backend::Local(l) => &l.engine.token,
            Backend::Remote(r) => r.client.token(),
        }
    }

    /// A one-time login code for the engine's control panel: a window loads the login link
    /// with it, and the page trades it for a panel session (the token never reaches a page).
    pub async fn login_code(&self) -> Result<String, BackendError> {
        match self {
            Backend::Local(l) => Ok(hangar::api::panel::mint_code(l.engine.config.api_port)),
            Backend::Remote(r) => Ok(r.client.login_code().await?.code),
        }
    }

    pub fn home(&self) -> &Home {
        match self {
            Backend::Local(l) => &l.engine.home,
            Backend::Remote(r) => &r.home,
        }
    }

    pub async fn list(&self) -> Result<Vec<AppView>, BackendError> {
        match self {
            Backend::Local(l) => Ok(l.engine.list().await?),
            Backend::Remote(r) => Ok(r.client.list().await?),
        }
    }

    pub async fn start(&self, name: &str) -> Result<AppView, BackendError> {
        match self {
            Backend::Local(l) => Ok(l.engine.start(name).await?),
            Backend::Remote(r) => Ok(r.client.start(name).await?),
        }
    }

    pub async fn stop(&self, name: &str) -> Result<AppView, BackendError> {
        match self {
            Backend::Local(l) => Ok(l.engine.stop(name).await?),
            Backend::Remote(r) => Ok(r.client.stop(name).await?),
        }
    }

    /// Start every app that is not up; the errors, one line per app that did not start.
    pub async fn start_all(&self) -> Result<Vec<String>, BackendError> {
        let names: Vec<String> = self
            .list()
            .await?
            .into_iter()
            .filter(|a| a.status.can_start())
            .map(|a| a.name)
            .collect();
        let errors = futures_util::stream::iter(names)
            .map(|n| async move { self.start(&n).await.err().map(|e| e.to_string()) })
            .buffer_unordered(PARALLEL)
            .filter_map(|e| async move { e })
            .collect()
            .await;
        Ok(errors)
    }

    /// Stop every app that is up (the operator's stop: they stay stopped).
    pub async fn stop_all(&self) -> Result<Vec<String>, BackendError> {
        let names: Vec<String> = self
            .list()
            .await?
            .into_iter()
            .filter(|a| a.status.can_stop())
            .map(|a| a.name)
            .collect();
        let errors = futures_util::stream::iter(names)
            .map(|n| async move { self.stop(&n).await.err().map(|e| e.to_string()) })
            .buffer_unordered(PARALLEL)
            .filter_map(|e| async move { e })
            .collect()
            .await;
        Ok(errors)
    }

    /// The last `n` lines of an app's log.
    pub async fn log_tail(&self, name: &str, n: usize) -> Result<Vec<LogLine>, BackendError> {
        let n = n.min(100_000);
        match self {
            Backend::Local(l) => {
                l.engine.view(name).await?;
                let path = l.engine.home.app_log(name);
                Ok(
                    tokio::task::spawn_blocking(move || hangar::run::logs::tail(&path, n))
                        .await
                        .unwrap_or_default(),
                )
            }
            Backend::Remote(r) => Ok(r.client.logs(name, n).await?),
        }
    }

    /// An app's new log lines, live. A viewer that falls behind gets one line saying so.
    pub async fn follow(&self, name: &str) -> Result<BoxStream<'static, LogLine>, BackendError> {
        match self {
            Backend::Local(l) => {
                l.engine.view(name).await?;
                let handle = l
                    .engine
                    .supervisor
                    .get(name)
                    .ok_or_else(|| EngineError::NotFound(name.to_string()))?;
                let s = tokio_stream::wrappers::BroadcastStream::new(handle.log.subscribe()).map(
                    |item| match item {
                        Ok(line) => LogLine::clone(&line),
                        Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(
                            k,
                        )) => LogLine::now(
                            LogStream::Sys,
                            format!("… {k} lines skipped: this viewer fell behind"),
                        ),
                    },
                );
                Ok(s.boxed())
            }
            Backend::Remote(r) => {
                // Live lines only (the tail is `log_tail`'s); what cannot be read is skipped.
                let s = r.client.follow_logs(name, 0).await?;
                Ok(s.filter_map(|item| async move { item.ok() }).boxed())
            }
        }
    }

    /// A tick for every change the engine announces (app changed or removed). The stream ends
    /// when the engine goes away.
    pub async fn changes(&self) -> Result<BoxStream<'static, ()>, BackendError> {
        match self {
            Backend::Local(l) => Ok(tokio_stream::wrappers::BroadcastStream::new(
                l.engine.events.subscribe(),
            )
            .map(|_| ())
            .boxed()),
            Backend::Remote(r) => {
                // An event this shell cannot read is still news; a broken stream ends it.
                let s = r.client.events().await?;
                Ok(s.take_while(|i| {
                    futures_util::future::ready(!matches!(i, Err(ClientError::Unreachable { .. })))
                })
                .map(|_| ())
                .boxed())
            }
        }
    }

    /// Stop every app gracefully (keeping what the operator wanted, so the next start brings
    /// back what ran), reporting how many are left, then end the engine.
    pub async fn quit(&self, progress: impl Fn(QuitProgress)) -> Result<(), BackendError> {
        let busy = |apps: &[AppView]| apps.iter().filter(|a| a.status.is_active()).count();
        let total = busy(&self.list().await.unwrap_or_default());
        progress(QuitProgress { left: total, total });
        match self {
            Backend::Local(l) => {
                let mut changes = self.changes().await?;
                let engine = l.engine.clone();
                let mut down = tokio::spawn(async move { engine.shutdown().await });
                loop {
                    tokio::select! {
                        _ = &mut down => break,
                        Some(()) = changes.next() => {
                            let left = busy(&l.engine.list().await.unwrap_or_default());
                            progress(QuitProgress { left, total });
                        }
                    }
                }
                let serve = l.serve.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(serve) = serve {
                    let _ = serve.await;
                }
                l.engine.registry.close().await;
                // The engine's lock goes with the process; its address file is removed when the
                // engine is dropped, which an exiting GUI process never gets to do.
                let _ = std::fs::remove_file(l.engine.home.engine_file());
            }
            Backend::Remote(r) => {
                let mut changes = self.changes().await.ok();
                r.client.kill().await?;
                let deadline = tokio::time::Instant::now() + QUIT_WAIT;
                if let Some(changes) = changes.as_mut() {
                    // The event stream ends when the engine exits.
                    while let Ok(Some(())) = tokio::time::timeout_at(deadline, changes.next()).await
                    {
                        if let Ok(apps) = self.list().await {
                            progress(QuitProgress {
                                left: busy(&apps),
                                total,
                            });
                        }
                    }
                }
                while r.home.engine_running() && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        progress(QuitProgress { left: 0, total });
        Ok(())
    }
}

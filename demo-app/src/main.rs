//! `hangar-demo`: the small web app that is Hangar's embedded default runtime.
//!
//! It reads what Hangar gives an app process (`PORT`, `HANGAR_BASE_PATH`, `HANGAR_APP`,
//! `DATABASE_URL`, `DB_SCHEMA`, `HANGAR_DATA_DIR`, ...), serves a notes page and a JSON API
//! under its base path, keeps a versioned schema that `upgrade` brings forward, and offers
//! routes that let tests exercise a supervisor and a proxy.

mod db;
mod html;
mod output;
mod routes;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use tokio::signal::unix::{signal, SignalKind};

use crate::db::{Db, SchemaMismatch};
use crate::output::{err, out};
use crate::routes::{AppState, Boot, Info};

/// Exit status when the database schema is not the one this binary needs.
const EXIT_SCHEMA: u8 = 3;
/// Seconds a graceful shutdown may wait for open connections before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How many "plugins" the simulated boot loads.
const BOOT_PLUGINS: u32 = 5;

const ENV_HELP: &str = "\
Environment:
  PORT                 port for `serve` (or --port)
  HANGAR_BASE_PATH     mount path for `serve` (or --mount), e.g. /_app/a1; empty: the root
  HANGAR_APP           the app's name, shown on its page (default: demo)
  DATABASE_URL         sqlite:PATH, postgres://... or mysql://...
                       (default: sqlite file demo.sqlite in HANGAR_DATA_DIR)
  DB_SCHEMA            PostgreSQL schema to keep the tables in (search_path)
  HANGAR_DATA_DIR      the app's own folder (default: .)
  HANGAR_PUBLIC_URL    the app's public URL, reported by /api/info
  HANGAR_DEMO_SCHEMA   play an older binary: target schema version 1 or 2 (default: 2)

Exit status: 0 success, 1 failure, 2 usage error, 3 database schema is not the one needed";

#[derive(Parser)]
#[command(
    name = "hangar-demo",
    about = "A small notes web app: Hangar's embedded default runtime",
    after_help = ENV_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the app on 127.0.0.1 (installs the schema on an empty database)
    Serve(ServeArgs),
    /// Bring the database schema (DATABASE_URL) up to this binary's schema version
    Upgrade,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Port to listen on, on 127.0.0.1 (0 picks a free one)
    #[arg(long, env = "PORT")]
    port: Option<u16>,
    /// Path prefix every route lives under, e.g. /_app/a1 (empty: the root)
    #[arg(long, env = "HANGAR_BASE_PATH")]
    mount: Option<String>,
    /// Answer /_health with 503 "booting" for this many milliseconds after start
    #[arg(long, value_name = "MS", default_value_t = 0)]
    boot_delay_ms: u64,
    /// Fail to boot: print an error and exit 1 after about 100 ms
    #[arg(long)]
    fail_boot: bool,
    /// Ignore SIGTERM (only SIGINT or SIGKILL stop the process)
    #[arg(long)]
    ignore_sigterm: bool,
    /// Grow: allocate and keep this many MiB more every second (at most 4096 MiB in all)
    #[arg(long, value_name = "MIB", default_value_t = 0)]
    grow_mb_per_s: u64,
}

/// The schema version this binary works with: 2, or `HANGAR_DEMO_SCHEMA` (1 or 2) so tests
/// can play an older binary.
fn target_schema() -> Result<i64> {
    match std::env::var("HANGAR_DEMO_SCHEMA") {
        Ok(value) if !value.trim().is_empty() => match value.trim().parse::<i64>() {
            Ok(v) if (db::MIN_SCHEMA..=db::MAX_SCHEMA).contains(&v) => Ok(v),
            _ => bail!(
                "HANGAR_DEMO_SCHEMA is {value:?}; it must be between {} and {}",
                db::MIN_SCHEMA,
                db::MAX_SCHEMA
            ),
        },
        _ => Ok(db::MAX_SCHEMA),
    }
}

fn main() -> ExitCode {
    let target = match target_schema() {
        Ok(target) => target,
        Err(e) => {
            err(format!("error: {e:#}"));
            return ExitCode::from(2);
        }
    };
    let version = format!("{}+schema.{target}", env!("CARGO_PKG_VERSION"));
    // clap wants a 'static version string; this one is made once per process.
    let version: &'static str = Box::leak(version.into_boxed_str());
    let matches = Cli::command().version(version).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            err(format!("error: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args, target, version).await,
            Command::Upgrade => upgrade(target).await,
        }
    });
    // Background work (burn threads, a held-open stream) must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            err(format!("error: {e:#}"));
            if e.downcast_ref::<SchemaMismatch>().is_some() {
                ExitCode::from(EXIT_SCHEMA)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Normalizes a mount path: "" or "/" is the root; otherwise "/a/b" without a trailing slash.
fn normalize_mount(raw: &str) -> Result<String> {
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let mount = if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/-_.~".contains(c);
    if !mount.chars().all(allowed) || mount.contains("//") {
        bail!("the mount path {raw:?} may hold only letters, digits, '/', '-', '_', '.' and '~'");
    }
    Ok(mount)
}

/// Waits for the signal that ends `serve`: SIGTERM or SIGINT, or only SIGINT when SIGTERM
/// is ignored. The handlers are installed before this future is first polled.
fn shutdown_signal(
    ignore_sigterm: bool,
) -> Result<impl std::future::Future<Output = &'static str>> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    if ignore_sigterm {
        tokio::spawn(async move {
            while term.recv().await.is_some() {
                out("received SIGTERM; ignoring it (--ignore-sigterm)");
            }
        });
        return Ok(futures_util::future::Either::Left(async move {
            int.recv().await;
            "SIGINT"
        }));
    }
    Ok(futures_util::future::Either::Right(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }))
}

/// A leak on purpose: `mb` MiB more every second, written so it is resident, kept until the
/// process ends (at most 4096 MiB).
fn grow(mb: u64) {
    out(format!("growing by {mb} MiB a second"));
    std::thread::spawn(move || {
        let mut held: Vec<Vec<u8>> = Vec::new();
        let mut total = 0u64;
        while total + mb <= 4096 {
            held.push(vec![0xA5u8; (mb << 20) as usize]);
            total += mb;
            std::thread::sleep(Duration::from_secs(1));
        }
        // Keep it until the process ends.
        loop {
            std::thread::sleep(Duration::from_secs(3600));
            std::hint::black_box(&held);
        }
    });
}

/// Opens the database named by the environment and reports the target version check.
async fn open_db() -> Result<Db> {
    let url = db::database_url()?;
    Db::connect(&url).await
}

async fn serve(args: ServeArgs, target: i64, version: &'static str) -> Result<()> {
    let Some(port) = args.port else {
        bail!("no port given: pass --port N or set PORT");
    };
    let mount = normalize_mount(args.mount.as_deref().unwrap_or_default())?;
    // Handlers first: a SIGTERM during the database work must still end in a clean exit.
    let stop = shutdown_signal(args.ignore_sigterm)?;

    if args.fail_boot {
        out(format!("hangar-demo {version} starting"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        err("error: cannot boot: simulated failure");
        std::process::exit(1);
    }

    if args.grow_mb_per_s > 0 {
        grow(args.grow_mb_per_s);
    }
    let mut db = open_db().await?;
    let schema = match db.schema_version().await? {
        None => {
            out(format!(
                "empty {} database: installing schema version {target}",
                db.dialect.name()
            ));
            db.migrate(0, target, &|line| out(line)).await?;
            target
        }
        Some(found) if found == target => found,
        Some(found) => {
            db.close().await;
            return Err(SchemaMismatch {
                found,
                needed: target,
            }
            .into());
        }
    };
    db.set_schema(schema);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let port = listener.local_addr().context("no local address")?.port();
    let boot = Boot {
        started: Instant::now(),
        delay: Duration::from_millis(args.boot_delay_ms),
        plugins: BOOT_PLUGINS,
    };
    let info = Info {
        app: std::env::var("HANGAR_APP")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "demo".to_string()),
        base_path: mount.clone(),
        port,
        pid: std::process::id(),
        db_dialect: db.dialect.name().to_string(),
        schema_version: schema,
        version: version.to_string(),
        public_url: std::env::var("HANGAR_PUBLIC_URL")
            .ok()
            .filter(|s| !s.is_empty()),
        data_dir: db::data_dir(),
    };
    let dialect = info.db_dialect.clone();
    let state = Arc::new(AppState::new(db, info, boot));
    let app = routes::router(state.clone());

    out(format!(
        "hangar-demo {version} listening on 127.0.0.1:{port} base={mount} db={dialect}"
    ));
    if args.boot_delay_ms > 0 {
        tokio::spawn(report_boot(args.boot_delay_ms));
    }

    let shutdown = async move {
        let which = stop.await;
        out(format!("received {which}; shutting down"));
        tokio::spawn(async {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            out(format!(
                "connections still open after {} s; exiting anyway",
                SHUTDOWN_GRACE.as_secs()
            ));
            std::process::exit(0);
        });
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("the server failed")?;
    state.db.close().await;
    out("hangar-demo stopped");
    Ok(())
}

/// Prints the simulated boot's progress, one line per plugin, then that it is ready.
async fn report_boot(delay_ms: u64) {
    let step = Duration::from_millis(delay_ms) / BOOT_PLUGINS;
    for plugin in 1..=BOOT_PLUGINS {
        out(format!(
            "booting: loading plugins ({plugin}/{BOOT_PLUGINS})"
        ));
        tokio::time::sleep(step).await;
    }
    out(format!("booted after {delay_ms} ms; ready"));
}

async fn upgrade(target: i64) -> Result<()> {
    let db = open_db().await?;
    let result = upgrade_db(&db, target).await;
    db.close().await;
    result
}

async fn upgrade_db(db: &Db, target: i64) -> Result<()> {
    let report = |line: String| out(line);
    match db.schema_version().await? {
        None => {
            out(format!(
                "upgrade: empty {} database; installing schema version {target}",
                db.dialect.name()
            ));
            db.migrate(0, target, &report).await
        }
        Some(found) if found == target => {
            out(format!(
                "upgrade: schema is already version {target}; nothing to do"
            ));
            Ok(())
        }
        Some(found) if found < target => {
            out(format!(
                "upgrade: {} database schema is version {found}; upgrading to {target}",
                db.dialect.name()
            ));
            db.migrate(found, target, &report).await
        }
        Some(found) => Err(SchemaMismatch {
            found,
            needed: target,
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_mount;

    #[test]
    fn mounts_are_normalized() {
        assert_eq!(normalize_mount("").ok().as_deref(), Some(""));
        assert_eq!(normalize_mount("/").ok().as_deref(), Some(""));
        assert_eq!(
            normalize_mount("/_app/a1/").ok().as_deref(),
            Some("/_app/a1")
        );
        assert_eq!(normalize_mount("_app/a1").ok().as_deref(), Some("/_app/a1"));
        assert!(normalize_mount("/a b").is_err());
        assert!(normalize_mount("/{x}").is_err());
        assert!(normalize_mount("/a//b").is_err());
    }
}

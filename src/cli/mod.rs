//! The `hangar` command line (the contract in docs/contracts.md). Each verb is one API call, except `serve`,
//! which hosts the engine itself.

// First: `out!` and `outln!` are for every module below.
#[macro_use]
pub(crate) mod output;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use hangar::api::client::Client;
use hangar::api::types::ExportQuery;
use hangar::base::home::Home;
use hangar::engine::{AppView, CreateApp, Engine, Overrides};

#[derive(Parser, Debug)]
#[command(
    name = "hangar",
    version,
    about = "Run a main web app and many sub-apps on one machine."
)]
pub struct Cli {
    /// Home folder (default: the OS data folder's `hangar`).
    #[arg(long, global = true, env = "HANGAR_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the engine headless, in the foreground.
    Serve {
        /// The proxy's port (default: hangar.toml's proxy_port).
        #[arg(long, value_name = "N")]
        proxy_port: Option<u16>,
        /// The API's port (default: hangar.toml's api_port).
        #[arg(long, value_name = "N")]
        api_port: Option<u16>,
    },
    /// Register a new sub-app.
    Create(CreateArgs),
    /// Change an app: every field of the control panel's edit form.
    Edit(crate::cli::edit::EditArgs),
    /// Every app: status, pid, port, CPU %, memory, uptime, restarts.
    #[command(alias = "ls")]
    List {
        /// Print JSON instead of text (shapes: docs/contracts.md).
        #[arg(long)]
        json: bool,
    },
    /// One app.
    Status {
        name: String,
        /// Print JSON instead of text (shapes: docs/contracts.md).
        #[arg(long)]
        json: bool,
    },
    /// Start apps (names, globs, --all, --status, --runtime), up to four at once, each waited
    /// for until ready.
    Start(crate::cli::bulk::BulkArgs),
    /// Stop apps (up to four at once); each stays stopped until started again.
    Stop(crate::cli::bulk::BulkArgs),
    /// Stop and start apps one at a time, each answering again before the next (rolling);
    /// without names only the apps that run.
    Restart(crate::cli::bulk::BulkArgs),
    /// Remove an app; its data folder is kept aside unless --drop-db.
    #[command(alias = "rm")]
    Delete {
        name: String,
        /// Also drop the database Hangar created for it.
        #[arg(long)]
        drop_db: bool,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Print JSON instead of text (shapes: docs/contracts.md).
        #[arg(long)]
        json: bool,
    },
    /// Stop every app, the main app included, and the engine.
    Kill {
        /// Print JSON instead of text (shapes: docs/contracts.md).
        #[arg(long)]
        json: bool,
    },
    /// Write the apps' routes for nginx, or manifests for Kubernetes.
    Export(ExportArgs),
    /// Run the runtime's upgrade command for apps whose runtime version moved.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["name", "all"])))]
    Upgrade {
        name: Option<String>,
        /// Every app, one after another.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of text (shapes: docs/contracts.md).
        #[arg(long)]
        json: bool,
    },
    /// Back up an app (its definition, data folder and database) into an archive.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["name", "all", "list"])))]
    Backup {
        name: Option<String>,
        /// Every app, one after another.
        #[arg(long)]
        all: bool,
        /// Write the archive into DIR instead of the home's backups/.
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: Option<PathBuf>,
        /// List the backups in the home's backups/ (as `hangar backups`).
        #[arg(long, conflicts_with_all = ["all", "output"])]
        list: bool,
        /// Print JSON instead of text (shapes: docs/contracts.md).
        #[arg(long)]
        json: bool,
    },
    /// List the backups (all, or one app's), newest first.
    Backups {
        name: Option<String>,
        /// Print JSON instead of text (shapes: docs/contracts.md).
        #[arg(long)]
        json: bool,
    },
    /// Bring an app back from a backup archive: a path, or a file name from `hangar backups`.
    Restore {
        file: String,
        /// Restore beside the original under another name (a new port, a new database).
        #[arg(long = "as", value_name = "NEW_NAME")]
        as_name: Option<String>,
        /// Where the database goes: new-database, schema or a URL (default: as it was).
        #[arg(long, value_name = "new-database|schema|URL")]
        db: Option<String>,
        /// Print JSON instead of text (shapes: docs/contracts.md).
        #[arg(long)]
        json: bool,
    },
    /// Bring in the sub-apps of a legacy multi-app table, attached to their databases.
    Import {
        /// What to import from.
        #[arg(value_parser = ["nocobase"])]
        kind: String,
        /// The NocoBase main database: postgres://…, mysql://… or sqlite:///path.
        #[arg(long, value_name = "URL")]
        from: String,
        /// Show what would happen; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The runtime the imported apps run (default: the hangar.toml runtime built on the
        /// `nocobase` preset).
        #[arg(long, value_name = "NAME")]
        runtime: Option<String>,
        /// Print JSON instead of text (shapes: docs/contracts.md).
        #[arg(long)]
        json: bool,
    },
    /// Show an app's log.
    Logs(crate::cli::logs::LogsArgs),
    /// Make the apps what a TOML file says: create what is missing, change what differs.
    Apply(crate::cli::apply::ApplyArgs),
    /// Write today's apps as a file `hangar apply` takes.
    Dump(crate::cli::apply::DumpArgs),
    /// CPU and memory of every app and of the machine, refreshed live.
    Monit {
        /// Stop after this many refreshes (default: until interrupted).
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// One JSON sample a line.
        #[arg(long)]
        json: bool,
    },
    /// Run a program with an app's environment, working folder and database settings; its exit
    /// status is hangar's.
    Exec {
        name: String,
        /// Hangar's own refusals (no such app, a program that cannot be run) as the one JSON
        /// error shape on stdout; the program's output is its own.
        #[arg(long)]
        json: bool,
        /// The program and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "PROGRAM [ARGS]")]
        program: Vec<String>,
    },
    /// Read hangar.toml again: new and changed runtimes apply to the next start of their apps.
    Reload {
        /// Print JSON instead of text (shapes: docs/contracts.md).
        #[arg(long)]
        json: bool,
    },
    /// Print a shell's completion script: hangar completions bash > /etc/bash_completion.d/hangar
    Completions {
        #[arg(value_enum)]
        shell: crate::cli::shell::ShellKind,
    },
    /// Print the man page (roff), or write one per verb with --dir.
    Man(crate::cli::shell::ManArgs),
    /// Install and enable a systemd unit that runs `hangar serve` for this home at boot.
    Startup(crate::cli::startup::StartupArgs),
    /// Disable and remove the unit `hangar startup` installed.
    Unstartup(crate::cli::startup::StartupArgs),
    /// Print (and try to open in a browser) a one-time link that logs a browser in to the
    /// control panel.
    Open {
        /// Only print the link.
        #[arg(long)]
        no_browser: bool,
        /// Print JSON instead of text (shapes: docs/contracts.md).
        #[arg(long)]
        json: bool,
    },
}

// The arguments of the verbs with many; no doc comment here, so each verb's own is its help.
#[derive(Args, Debug)]
pub struct CreateArgs {
    pub name: String,
    // The flags `edit` takes too.
    #[command(flatten)]
    pub app: crate::cli::edit::AppFlags,
    /// new-database (default), schema, or a connection URL.
    #[arg(long, value_name = "new-database|schema|URL")]
    pub db: Option<String>,
    /// Runtime from hangar.toml (default: the main app's).
    #[arg(long, value_name = "R")]
    pub runtime: Option<String>,
    /// With `-- PROGRAM`: whether the program sees the /_app/NAME prefix (default: strip).
    #[arg(long, value_name = "keep|strip", requires = "program")]
    pub prefix: Option<String>,
    /// With `-- PROGRAM`: the path that answers 2xx once it is ready (default: /).
    #[arg(long, value_name = "PATH", requires = "program")]
    pub health: Option<String>,
    /// The program to run and its arguments (after `--`); `${PORT}` and the other variables
    /// are replaced when it starts (quote them for the shell: '${PORT}').
    #[arg(last = true, value_name = "PROGRAM [ARGS]")]
    pub program: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// nginx or kubernetes.
    #[arg(value_parser = ["nginx", "kubernetes"])]
    pub kind: String,
    /// One app (default: every app, as with --all).
    pub name: Option<String>,
    /// Every app (the default without NAME).
    #[arg(long, conflicts_with = "name")]
    pub all: bool,
    /// nginx: send each path straight to the app's port instead of the Hangar proxy.
    #[arg(long)]
    pub direct: bool,
    /// nginx: the port the server blocks listen on.
    #[arg(long, default_value_t = 80)]
    pub listen: u16,
    /// kubernetes: the container image; {runtime} and {name} are replaced.
    #[arg(long, default_value = "{runtime}:latest")]
    pub image: String,
    /// kubernetes: also write the secret values (database credentials, APP_KEY, the apps'
    /// env); otherwise their names are kept with empty values.
    #[arg(long)]
    pub secrets: bool,
    /// Write to FILE (mode 0600) instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// {"kind", "text"} (or {"kind", "file"} with -o).
    #[arg(long)]
    pub json: bool,
}

/// A usage error clap's own rules cannot express, told as clap tells one (its `error:` line
/// and the verb's usage, exit status 2), before anything is connected or started.
pub fn check_usage(cli: &Cli) {
    use clap::CommandFactory;
    let (verb, message) = match &cli.command {
        Command::Start(a) | Command::Stop(a) | Command::Restart(a) if a.selects_nothing() => {
            let verb = match &cli.command {
                Command::Start(_) => "start",
                Command::Stop(_) => "stop",
                _ => "restart",
            };
            (
                verb,
                format!("give the apps to {verb}: names, --all, --status or --runtime"),
            )
        }
        Command::Edit(a) if !a.changes_something() => (
            "edit",
            "nothing to change: give a flag (`hangar edit --help` lists them)".to_string(),
        ),
        _ => return,
    };
    let mut cmd = Cli::command();
    // Built, so the verb's usage reads `hangar VERB …`.
    cmd.build();
    let err = match cmd.find_subcommand_mut(verb) {
        Some(sub) => sub.error(clap::error::ErrorKind::MissingRequiredArgument, message),
        None => cmd.error(clap::error::ErrorKind::MissingRequiredArgument, message),
    };
    err.exit()
}

pub async fn run(cli: Cli) -> Result<()> {
    let home = Home::resolve(cli.home.clone())?;
    match cli.command {
        Command::Serve {
            proxy_port,
            api_port,
        } => {
            serve(
                home,
                Overrides {
                    proxy_port,
                    api_port,
                },
            )
            .await
        }
        Command::Kill { json } => {
            if !home.engine_running() {
                if json {
                    outln!("{}", json!({ "stopped": false, "engine": false }));
                } else {
                    outln!("no engine runs on {}", home.root().display());
                }
                return Ok(());
            }
            let c = Client::connect(&home, false).await?;
            c.kill().await?;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while home.engine_running() && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            if home.engine_running() {
                bail!("the engine is still stopping its apps after 120 s");
            }
            if json {
                outln!("{}", json!({ "stopped": true, "engine": true }));
            } else {
                outln!("every app stopped; the engine ended");
            }
            Ok(())
        }
        // Verbs that need no engine.
        Command::Completions { shell } => crate::cli::shell::completions(shell),
        Command::Man(args) => crate::cli::shell::man(args),
        Command::Startup(args) => crate::cli::startup::startup(&home, args),
        Command::Unstartup(args) => crate::cli::startup::unstartup(&home, args),
        Command::Open { no_browser, json } => {
            let c = Client::connect(&home, true).await?;
            open(&c, &home, no_browser, json).await
        }
        command => {
            let c = Client::connect(&home, true).await?;
            client_command(&c, command).await
        }
    }
}

async fn serve(home: Home, overrides: Overrides) -> Result<()> {
    let engine = Engine::open(home, overrides).await?;
    engine.boot().await?;
    let e = engine.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping every app");
        e.shutdown().await;
    });
    eprintln!(
        "Hangar is running: main app on http://127.0.0.1:{}/ · API on 127.0.0.1:{} · home {}",
        engine.config.proxy_port,
        engine.config.api_port,
        engine.home.root().display()
    );
    // A login code is a credential for five minutes: shown on a terminal, never written where
    // output is kept (journald, logs/engine.log, a pipe).
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!(
            "Control panel: {}  (a one-time link; `hangar open` makes another)",
            hangar::api::panel::login_url(engine.config.api_port)
        );
    } else {
        eprintln!("Control panel: run `hangar open` (it opens a one-time login link)");
    }
    hangar::host::serve(&engine).await?;
    engine.registry.close().await;
    Ok(())
}

/// Every verb but `serve` and `kill`: one function per verb (or group of verbs).
async fn client_command(c: &Client, command: Command) -> Result<()> {
    match command {
        Command::Create(args) => create(c, args).await,
        Command::Edit(args) => crate::cli::edit::run(c, args).await,
        Command::List { json } => list(c, json).await,
        Command::Status { name, json } => status(c, &name, json).await,
        Command::Start(args) => crate::cli::bulk::run(c, crate::cli::bulk::Verb::Start, args).await,
        Command::Stop(args) => crate::cli::bulk::run(c, crate::cli::bulk::Verb::Stop, args).await,
        Command::Restart(args) => {
            crate::cli::bulk::run(c, crate::cli::bulk::Verb::Restart, args).await
        }
        Command::Delete {
            name,
            drop_db,
            yes,
            json,
        } => delete(c, &name, drop_db, yes, json).await,
        // One app's log, or (no name) every app's lines in time order.
        Command::Logs(args) if args.name.is_none() => crate::cli::logs_all::run(c, args).await,
        Command::Logs(args) => crate::cli::logs::run(c, args).await,
        Command::Export(args) => export(c, args).await,
        Command::Upgrade { name, all, json } => upgrade(c, name, all, json).await,
        Command::Backup {
            name,
            list: true,
            json,
            ..
        } => crate::cli::data::backups(c, name, json).await,
        Command::Backup {
            name,
            all,
            output,
            json,
            ..
        } => crate::cli::data::backup(c, name, all, output, json).await,
        Command::Backups { name, json } => crate::cli::data::backups(c, name, json).await,
        Command::Restore {
            file,
            as_name,
            db,
            json,
        } => crate::cli::data::restore(c, file, as_name, db, json).await,
        Command::Import {
            kind: _,
            from,
            dry_run,
            runtime,
            json,
        } => crate::cli::data::import(c, from, dry_run, runtime, json).await,
        Command::Open { .. } => unreachable!("handled with the home"),
        Command::Apply(args) => crate::cli::apply::apply(c, args).await,
        Command::Dump(args) => crate::cli::apply::dump(c, args).await,
        Command::Monit { count, json } => crate::cli::monit::run(c, count, json).await,
        Command::Exec {
            name,
            json,
            program,
        } => crate::cli::run_cmd::exec(c, &name, program, json).await,
        Command::Reload { json } => crate::cli::run_cmd::reload(c, json).await,
        Command::Serve { .. }
        | Command::Kill { .. }
        | Command::Completions { .. }
        | Command::Man(_)
        | Command::Startup(_)
        | Command::Unstartup(_) => unreachable!("handled before connecting"),
    }
}

async fn create(c: &Client, a: CreateArgs) -> Result<()> {
    let f = &a.app;
    let req = CreateApp {
        env: f.env_given()?,
        start_mode: f.start_mode()?,
        memory_max: f.memory_max(),
        name: a.name,
        display_name: f.display_name.clone(),
        port: f.port,
        domain: f.domain.clone(),
        pinned: f.pin,
        db: a.db,
        runtime: a.runtime,
        idle_timeout: f.idle_timeout,
        command: crate::cli::run_cmd::app_command(a.program, a.prefix, a.health)?,
        nice: f.nice,
    };
    let v = c.create(&req).await?;
    if f.json {
        outln!("{}", serde_json::to_string_pretty(&json_view(&v))?);
        return Ok(());
    }
    outln!(
        "created {} ({}, port {}, {}); open {}",
        v.name,
        v.start_mode,
        v.port,
        v.db,
        v.url
    );
    print_notices(&v);
    Ok(())
}

/// What a new app (created or restored) asks of the operator.
pub(crate) fn print_notices(v: &AppView) {
    for n in &v.notices {
        outln!("note: {n}");
    }
    if v.start_mode == hangar::store::registry::StartMode::OnVisit {
        outln!(
            "it starts on its first visit, or now with `hangar start {}`",
            v.name
        );
    }
}

async fn list(c: &Client, json: bool) -> Result<()> {
    let apps = c.list().await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&json_views(&apps))?);
    } else {
        print_table(&apps);
        // With a memory budget, what is left of it: the operator's "how many more fit".
        if let Some(b) = c.host().await?.memory_budget {
            let asleep = apps
                .iter()
                .filter(|a| {
                    a.reason
                        .as_deref()
                        .is_some_and(|r| r.starts_with(hangar::run::monitor::BUDGET_REASON))
                })
                .filter(|a| !a.status.is_active())
                .count();
            outln!(
                "memory budget: apps hold {} of {}{}",
                human_bytes(Some(b.used_bytes)),
                human_bytes(Some(b.budget_bytes)),
                match asleep {
                    0 => String::new(),
                    n => format!("; {n} put to sleep for it (woken on their next visit)"),
                }
            );
        }
    }
    Ok(())
}

async fn status(c: &Client, name: &str, json: bool) -> Result<()> {
    let v = c.status(name).await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&json_view(&v))?);
    } else {
        print_status(&v);
    }
    Ok(())
}

async fn delete(c: &Client, name: &str, drop_db: bool, yes: bool, json: bool) -> Result<()> {
    if drop_db && !yes {
        if !std::io::stdin().is_terminal() {
            bail!("--drop-db deletes {name}'s data for good; add --yes to confirm");
        }
        out!("This deletes {name} and drops its database. Type its name to confirm: ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != name {
            bail!("not confirmed; nothing was deleted");
        }
    }
    let r = c.delete(name, drop_db).await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    outln!("deleted {}", r.name);
    for d in r.dropped {
        outln!("  dropped: {d}");
    }
    for k in r.kept {
        outln!("  kept: {k}");
    }
    Ok(())
}

async fn export(c: &Client, a: ExportArgs) -> Result<()> {
    let q = ExportQuery {
        app: a.name,
        direct: a.direct,
        listen: Some(a.listen),
        image: Some(a.image),
        secrets: a.secrets,
    };
    let text = c.export(&a.kind, &q).await?;
    match a.output {
        Some(path) => {
            crate::cli::apply::write_private(&path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if a.json {
                outln!("{}", json!({ "kind": a.kind, "file": path }));
            } else {
                eprintln!("wrote {}", path.display());
            }
        }
        None if a.json => outln!("{}", json!({ "kind": a.kind, "text": text })),
        None => out!("{text}"),
    }
    Ok(())
}

/// `hangar open`: a fresh one-time login link. With `--no-browser` it is printed (the operator
/// asked for it); otherwise it goes into a private redirect file (0600, in the home's `open/`)
/// and the browser is given that file, so the code is never on a command line that every local
/// user can read in `/proc/PID/cmdline`.
async fn open(c: &Client, home: &Home, no_browser: bool, json: bool) -> Result<()> {
    let link = c.login_code().await?;
    if no_browser {
        if json {
            outln!("{}", json!({ "url": link.url }));
        } else {
            outln!("{}", link.url);
        }
        return Ok(());
    }
    let file = home
        .login_redirect(&link.url)
        .context("cannot write the login redirect file")?;
    let file_url = url::Url::from_file_path(&file)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| format!("file://{}", file.display()));
    if json {
        outln!("{}", json!({ "url": file_url }));
    } else {
        outln!("{file_url}");
    }
    open_in_browser(&file_url);
    Ok(())
}

/// The browser command: the first entry of `BROWSER` (entries separated by `:`, `%s` standing
/// for the URL, else the URL appended), else the desktop's opener.
fn browser_command(url: &str) -> Vec<String> {
    let from_env = std::env::var("BROWSER").ok().and_then(|b| {
        b.split(':')
            .map(str::trim)
            .find(|e| !e.is_empty())
            .map(str::to_string)
    });
    let Some(entry) = from_env else {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        return vec![opener.to_string(), url.to_string()];
    };
    let mut words: Vec<String> = entry.split_whitespace().map(str::to_string).collect();
    if words.iter().any(|w| w.contains("%s")) {
        for w in &mut words {
            *w = w.replace("%s", url);
        }
    } else {
        words.push(url.to_string());
    }
    words
}

/// Try the browser; the file's URL is printed either way, so a failure only says so.
fn open_in_browser(url: &str) {
    let argv = browser_command(url);
    match std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(_) => eprintln!(
            "opening the control panel with {}; the login link in that file works once and for 5 minutes",
            argv[0]
        ),
        Err(e) => eprintln!(
            "could not run {} ({e}); open the file above in a browser",
            argv[0]
        ),
    }
}

/// The contract's `--json` fields, and nothing else: everything `status` prints.
fn json_view(v: &AppView) -> Value {
    json!({
        "name": v.name, "display_name": v.display_name, "status": v.status, "asleep": v.asleep(),
        "pid": v.pid, "port": v.port,
        "start_mode": v.start_mode, "domain": v.domain, "pinned": v.pinned, "url": v.url,
        "urls": v.urls, "runtime": v.runtime, "db": v.db,
        "cpu_percent": v.cpu_percent, "memory_bytes": v.memory_bytes, "uptime_seconds": v.uptime_seconds,
        "restarts": v.restarts, "error": v.error, "idle_timeout": v.idle_timeout,
        "memory_max": v.memory_max, "memory_enforced_by": v.memory_enforced_by,
        "memory_restarts": v.memory_restarts, "nice": v.nice, "reason": v.reason,
        "command": v.command.as_ref().map(|c| &c.argv),
    })
}

fn json_views(apps: &[AppView]) -> Value {
    Value::Array(apps.iter().map(json_view).collect())
}

pub fn human_bytes(b: Option<u64>) -> String {
    match b {
        None => "-".into(),
        Some(b) if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        Some(b) => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
    }
}

pub fn human_duration(s: Option<u64>) -> String {
    match s {
        None => "-".into(),
        Some(s) if s < 60 => format!("{s}s"),
        Some(s) if s < 3600 => format!("{}m", s / 60),
        Some(s) if s < 86400 => format!("{}h", s / 3600),
        Some(s) => format!("{}d", s / 86400),
    }
}

fn print_table(apps: &[AppView]) {
    let rows: Vec<[String; 9]> = apps
        .iter()
        .map(|a| {
            [
                a.name.clone(),
                a.shown_status().to_string(),
                a.pid.map(|p| p.to_string()).unwrap_or("-".into()),
                a.port.to_string(),
                a.cpu_percent
                    .map(|c| format!("{c:.1}%"))
                    .unwrap_or("-".into()),
                human_bytes(a.memory_bytes),
                human_duration(a.uptime_seconds),
                a.restarts.to_string(),
                a.url.clone(),
            ]
        })
        .collect();
    let head = [
        "NAME", "STATUS", "PID", "PORT", "CPU", "MEM", "UPTIME", "RESTARTS", "URL",
    ];
    let mut widths = head.map(|h| h.len());
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    outln!("{}", line(head.to_vec()));
    for r in &rows {
        outln!("{}", line(r.iter().map(|s| s.as_str()).collect()));
    }
    for a in apps.iter().filter(|a| a.error.is_some()) {
        outln!("{}: {}", a.name, a.error.as_deref().unwrap_or(""));
    }
}

fn print_status(v: &AppView) {
    let rows = [
        ("name", v.name.clone()),
        ("display name", v.display_name.clone()),
        (
            "status",
            if v.asleep() {
                "asleep (its next visit starts it)".to_string()
            } else {
                v.status.to_string()
            },
        ),
        ("pid", v.pid.map(|p| p.to_string()).unwrap_or("-".into())),
        ("port", v.port.to_string()),
        ("start mode", v.start_mode.to_string()),
        ("runtime", v.runtime.clone()),
        ("urls", v.urls.join(" ")),
        ("domain", v.domain.clone().unwrap_or("-".into())),
        ("pinned", v.pinned.to_string()),
        ("database", v.db.clone()),
        (
            "cpu",
            v.cpu_percent
                .map(|c| format!("{c:.1}%"))
                .unwrap_or("-".into()),
        ),
        ("memory", human_bytes(v.memory_bytes)),
        ("uptime", human_duration(v.uptime_seconds)),
        ("restarts", v.restarts.to_string()),
        (
            "idle stop",
            v.idle_timeout
                .map(|s| format!("after {s} s"))
                .unwrap_or("never".into()),
        ),
        (
            "memory limit",
            match v.memory_max {
                None => "none".into(),
                Some(b) => format!(
                    "{} ({}; {} restarts for it)",
                    human_bytes(Some(b)),
                    v.memory_enforced_by
                        .clone()
                        .unwrap_or("applies at its next start".into()),
                    v.memory_restarts
                ),
            },
        ),
        ("nice", v.nice.unwrap_or(0).to_string()),
        ("reason", v.reason.clone().unwrap_or("-".into())),
        ("error", v.error.clone().unwrap_or("-".into())),
    ];
    for (k, val) in rows {
        outln!("{k:>13}  {val}");
    }
    if let Some(c) = &v.command {
        outln!(
            "{:>13}  {}",
            "command",
            crate::cli::run_cmd::shell_words(&c.argv)
        );
    }
}

/// The apps a verb taking `NAME | --all` works on.
pub(crate) async fn name_or_all(
    c: &Client,
    name: Option<String>,
    all: bool,
) -> Result<Vec<String>> {
    match (name, all) {
        (Some(n), false) => Ok(vec![n]),
        (None, true) => Ok(c.list().await?.into_iter().map(|a| a.name).collect()),
        _ => bail!("give either an app's name or --all"),
    }
}

/// `hangar upgrade NAME | --all [--json]`: one API call per app, so each result shows as it
/// comes (a row of the table, and "upgrading NAME…" on a terminal while it runs).
async fn upgrade(c: &Client, name: Option<String>, all: bool, json: bool) -> Result<()> {
    use hangar::engine::{UpgradeReport, UpgradeResult};
    let names = name_or_all(c, name, all).await?;
    let width = names.iter().map(|n| n.len()).max().unwrap_or(4).max(4);
    let progress = !json && std::io::stderr().is_terminal();
    if !json {
        outln!("{:<width$}  {:<10}  VERSION", "NAME", "RESULT");
    }
    let mut reports: Vec<UpgradeReport> = Vec::new();
    for n in &names {
        if progress {
            eprint!("upgrading {n}…");
            let _ = std::io::stderr().flush();
        }
        let r = c.upgrade(n).await?;
        if progress {
            eprint!("\r\x1b[K");
        }
        if !json {
            let version = match (&r.from, &r.to) {
                (Some(f), Some(t)) if f != t => format!("{f} → {t}"),
                (_, Some(t)) => t.clone(),
                _ => "-".into(),
            };
            let mut row = format!("{:<width$}  {:<10}  {version}", r.name, r.result);
            if let Some(e) = &r.error {
                row.push_str(&format!("  ({e})"));
            }
            outln!("{row}");
        }
        reports.push(r);
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&reports)?);
    }
    let failed: Vec<&UpgradeReport> = reports
        .iter()
        .filter(|r| r.result == UpgradeResult::Failed)
        .collect();
    // With --json the reports above are the one document; they tell each failure.
    let line = match failed.as_slice() {
        [] => return Ok(()),
        [one] if reports.len() == 1 => format!(
            "{} was not upgraded: {}",
            one.name,
            one.error.as_deref().unwrap_or("failed")
        ),
        _ => format!(
            "{} of {} upgrades failed: {}",
            failed.len(),
            reports.len(),
            failed
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Err(crate::cli::output::Reported(line).into())
}

mod apply;
mod bulk;
mod data;
mod edit;
mod logs;
mod logs_all;
mod monit;
mod run_cmd;
mod shell;
mod startup;

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every flag of every verb says what it does in `--help`.
    #[test]
    fn every_flag_has_a_help_line() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let builtin = matches!(a.get_id().as_str(), "help" | "version");
                if !a.is_positional() && !builtin && a.get_help().is_none() {
                    missing.push(format!("{path} --{}", a.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        let mut cmd = super::Cli::command();
        cmd.build();
        walk(&cmd, "hangar", &mut missing);
        assert!(missing.is_empty(), "flags without help: {missing:?}");
        let start = cmd.find_subcommand("start").expect("start");
        let about = start.get_about().map(|a| a.to_string()).unwrap_or_default();
        assert!(about.contains("up to four at once"), "{about}");
    }
}

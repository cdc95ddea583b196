//! The CLI's `backup`, `backups`, `restore` and `import` verbs: API calls, progress on a
//! terminal (a backup or restore is a job the CLI polls), and the reports.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::cli::{name_or_all, print_notices};
use hangar::api::client::Client;
use hangar::api::types::BackupBody;
use hangar::base::jobs::JobState;
use hangar::engine::backup::RestoreRequest;
use hangar::engine::import::{ImportRequest, ImportRow};
use hangar::engine::AppView;
use hangar::store::archive::BackupInfo;

fn human(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
    } else if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

/// Poll a job until it ends; its progress on one terminal line. The result, or its error.
async fn follow(c: &Client, job: &JobState, label: &str) -> Result<Value> {
    let progress = std::io::stderr().is_terminal();
    let mut last = String::new();
    loop {
        let s = c.job(&job.id).await?;
        if progress {
            let amount = match s.total_bytes {
                Some(t) if t > 0 => format!(
                    " {} of {} ({}%)",
                    human(s.bytes),
                    human(t),
                    (s.bytes.saturating_mul(100) / t).min(100)
                ),
                _ if s.bytes > 0 => format!(" {}", human(s.bytes)),
                _ => String::new(),
            };
            let line = format!("{label}: {}{amount}", s.step);
            if line != last {
                eprint!("\r\x1b[K{line}");
                let _ = std::io::stderr().flush();
                last = line;
            }
        }
        match s.state.as_str() {
            "done" => {
                if progress {
                    eprint!("\r\x1b[K");
                }
                return Ok(s.result.unwrap_or(Value::Null));
            }
            "failed" => {
                if progress {
                    eprint!("\r\x1b[K");
                }
                bail!("{}", s.error.unwrap_or_else(|| "failed".into()));
            }
            _ => tokio::time::sleep(Duration::from_millis(150)).await,
        }
    }
}

pub async fn backup(
    c: &Client,
    name: Option<String>,
    all: bool,
    output: Option<PathBuf>,
    json: bool,
) -> Result<()> {
    let names = name_or_all(c, name, all).await?;
    let dir = match output {
        Some(d) => {
            let d = if d.is_absolute() {
                d
            } else {
                std::env::current_dir()?.join(d)
            };
            // Written as the operator reads it: `-o ./bk` is `/cwd/bk`, not `/cwd/./bk`.
            let d: PathBuf = d.components().collect();
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
            Some(d)
        }
        None => None,
    };
    let mut made = Vec::new();
    let mut failed = Vec::new();
    for n in &names {
        let job = c.backup(n, &BackupBody { dir: dir.clone() }).await?;
        match follow(c, &job, &format!("backing up {n}")).await {
            Ok(result) => {
                let info: BackupInfo =
                    serde_json::from_value(result).context("the backup's result")?;
                if !json {
                    outln!(
                        "backed up {} to {} ({})",
                        info.app,
                        info.file.display(),
                        human(info.size)
                    );
                }
                made.push(info);
            }
            Err(e) if names.len() > 1 => {
                eprintln!("{n}: {e}");
                failed.push(n.clone());
            }
            Err(e) => return Err(e),
        }
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&made)?);
    }
    if !failed.is_empty() {
        // With --json the list above is the one document.
        return Err(crate::cli::output::Reported(format!(
            "{} of {} backups failed: {}",
            failed.len(),
            names.len(),
            failed.join(", ")
        ))
        .into());
    }
    Ok(())
}

pub async fn backups(c: &Client, name: Option<String>, json: bool) -> Result<()> {
    let answer = c.backups(name.as_deref()).await?;
    let list = answer.backups;
    if json {
        outln!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        outln!("no backups yet (`hangar backup NAME` makes one)");
        return Ok(());
    }
    let w = list.iter().map(|b| b.app.len()).max().unwrap_or(3).max(3);
    outln!(
        "{:<w$}  {:<20}  {:<14}  {:>10}  FILE",
        "APP",
        "CREATED",
        "REASON",
        "SIZE"
    );
    for b in &list {
        outln!(
            "{:<w$}  {:<20}  {:<14}  {:>10}  {}",
            b.app,
            b.created_at,
            b.reason,
            human(b.size),
            b.name
        );
    }
    outln!(
        "automatic backups (before-upgrade, before-delete) are kept {} days; restore one with `hangar restore FILE [--as NEW_NAME]`",
        answer.keep_days
    );
    Ok(())
}

pub async fn restore(
    c: &Client,
    file: String,
    as_name: Option<String>,
    db: Option<String>,
    json: bool,
) -> Result<()> {
    // A path as the operator sees it (relative to here), or the name of a file in backups/.
    let p = PathBuf::from(&file);
    let file = if p.exists() {
        std::fs::canonicalize(&p)
            .with_context(|| format!("cannot read {}", p.display()))?
            .display()
            .to_string()
    } else {
        file
    };
    let job = c.restore(&RestoreRequest { file, as_name, db }).await?;
    let result = follow(c, &job, "restoring").await?;
    let view: AppView = serde_json::from_value(result).context("the restored app")?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    outln!(
        "restored {} (port {}, {}); open {}",
        view.name,
        view.port,
        view.db,
        view.url
    );
    print_notices(&view);
    Ok(())
}

pub async fn import(
    c: &Client,
    from: String,
    dry_run: bool,
    runtime: Option<String>,
    json: bool,
) -> Result<()> {
    let r = c
        .import_nocobase(&ImportRequest {
            from,
            dry_run,
            runtime,
        })
        .await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let made = if r.dry_run { "would create" } else { "created" };
    let mut rows: Vec<(&str, &ImportRow)> = Vec::new();
    rows.extend(r.created.iter().map(|x| (made, x)));
    rows.extend(r.skipped.iter().map(|x| ("skipped", x)));
    rows.extend(r.conflicts.iter().map(|x| ("conflict", x)));
    let w = rows
        .iter()
        .map(|(_, x)| x.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    if r.dry_run {
        outln!("dry run: nothing is changed");
    }
    outln!(
        "{} applications in {} (runtime {})",
        r.rows,
        r.source,
        r.runtime
    );
    if !rows.is_empty() {
        outln!("{:<w$}  {:<12}  {:<9}  DATABASE", "NAME", "RESULT", "START");
    }
    for (what, x) in &rows {
        let mut line = format!(
            "{:<w$}  {:<12}  {:<9}  {}",
            x.name, what, x.start_mode, x.db
        );
        if let Some(why) = &x.reason {
            line.push_str(&format!("  ({why})"));
        }
        outln!("{line}");
    }
    outln!(
        "{} {made}, {} skipped, {} conflicting",
        r.created.len(),
        r.skipped.len(),
        r.conflicts.len()
    );
    Ok(())
}

//! `hangar apply -f FILE [--prune] [--dry-run]` and `hangar dump [--secrets]`: a whole setup as
//! one TOML file. The plan is the engine's (`engine/apply.rs`, `POST /apply`); this prints it
//! as a diff.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use hangar::api::client::Client;
use hangar::engine::apply::{Action, ApplyReport, ApplyRequest, AppsFile, Step};

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// The apps file (TOML, one [apps.NAME] table per app); `-` reads standard input.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Also delete the apps the file does not name (their databases are kept unless the file
    /// says drop_db_on_prune = true).
    #[arg(long)]
    pub prune: bool,
    /// Print the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON instead of text (shapes: docs/contracts.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    /// Also write each app's env values (otherwise the env is left out, and apply leaves it
    /// as it is).
    #[arg(long)]
    pub secrets: bool,
    /// Write to FILE (mode 0600) instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The same file as JSON (`apply` reads TOML).
    #[arg(long, conflicts_with = "output")]
    pub json: bool,
}

pub async fn apply(c: &Client, a: ApplyArgs) -> Result<()> {
    let text = if a.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(&a.file)
            .with_context(|| format!("cannot read {}", a.file.display()))?
    };
    let file = AppsFile::parse(&text).map_err(|e| {
        crate::cli::output::Failure::field(e.at.clone(), format!("{}: {e}", a.file.display()))
    })?;
    let report = c
        .apply(&ApplyRequest {
            file,
            prune: a.prune,
            dry_run: a.dry_run,
        })
        .await?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_plan(&report);
    }
    match report.failed() {
        Some(s) => bail!(
            "{} {} failed: {}; the steps after it were not tried",
            s.action.as_str(),
            s.name,
            s.error.as_deref().unwrap_or("")
        ),
        None => Ok(()),
    }
}

/// The plan as a diff: `+` create, `~` change, `-` delete, then one summary line.
fn print_plan(r: &ApplyReport) {
    for s in r.steps.iter().filter(|s| s.action != Action::Unchanged) {
        outln!("{}", step_head(s));
        for f in &s.fields {
            let env = f.field.starts_with("env.");
            let line = match (&f.from, &f.to, env) {
                (None, Some(_), true) => format!("    + {}", f.field),
                (Some(_), None, true) => format!("    - {}", f.field),
                (_, _, true) => format!("    ~ {} (value changed)", f.field),
                (None, Some(to), false) => format!("      {} = {to}", f.field),
                // The engine renices a running app at once (no restart), as `edit` does.
                (Some(from), Some(to), false) if f.field == "nice" => {
                    format!("    ~ nice: {from} → {to} (applied without restart)")
                }
                (Some(from), Some(to), false) => format!("    ~ {}: {from} → {to}", f.field),
                (Some(from), None, false) => format!("    ~ {}: {from} → (none)", f.field),
                (None, None, false) => format!("      {}", f.field),
            };
            outln!("{line}");
        }
        if let Some(e) = &s.error {
            outln!("    failed: {e}");
        }
    }
    let n = |a| r.count(a);
    let restarts = r.steps.iter().filter(|s| s.restart).count();
    if r.dry_run {
        outln!(
            "plan: {} to create, {} to change ({restarts} to restart), {} to delete, {} unchanged (dry run: nothing was changed)",
            n(Action::Create),
            n(Action::Change),
            n(Action::Delete),
            n(Action::Unchanged)
        );
    } else if r.failed().is_none() {
        outln!(
            "applied: {} created, {} changed ({restarts} restarted), {} deleted, {} unchanged",
            n(Action::Create),
            n(Action::Change),
            n(Action::Delete),
            n(Action::Unchanged)
        );
    }
}

fn step_head(s: &Step) -> String {
    match s.action {
        Action::Create => format!("+ {} (create)", s.name),
        Action::Change if s.restart => format!("~ {} (change, restart)", s.name),
        Action::Change => format!("~ {} (change)", s.name),
        Action::Delete if s.drop_db => format!("- {} (delete, database dropped)", s.name),
        Action::Delete => format!("- {} (delete, database kept)", s.name),
        Action::Unchanged => format!("  {}", s.name),
    }
}

pub async fn dump(c: &Client, a: DumpArgs) -> Result<()> {
    let apps = c.list().await?;
    let file = AppsFile::of(&apps, a.secrets);
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&file)?);
        return Ok(());
    }
    let mut text =
        String::from("# Hangar apps: `hangar apply -f FILE` makes the apps what this file says.\n");
    if !a.secrets {
        text.push_str(
            "# env values left out (`hangar dump --secrets` writes them); apply leaves them as they are.\n",
        );
    }
    text.push_str(&file.to_toml().context("cannot write the apps as TOML")?);
    match a.output {
        Some(path) => {
            write_private(&path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {} ({} apps)", path.display(), file.apps.len());
        }
        None => out!("{text}"),
    }
    Ok(())
}

/// A file only its owner reads (it may hold secrets: `dump`, `export`): made 0600, and a file
/// that was there already is made 0600 before anything is written into it.
pub(crate) fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(text.as_bytes())
}

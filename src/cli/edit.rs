//! `hangar edit NAME [flags]`: every field of the control panel's edit form (display name,
//! start mode, port, domain, pinned, env, idle stop), and the env files of `create` and `edit`
//! (`--env-file FILE`, dotenv syntax: `base/dotenv.rs`). Env values are sent as `--env`'s are
//! and never printed: only their keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use hangar::api::client::Client;
use hangar::base::validate::{self, SizeInput};
use hangar::engine::AppView;
use hangar::store::registry::{AppEdit, StartMode};

use crate::cli::output::Failure;

// The flags `create` and `edit` share, flattened into both: one declaration each (name, value,
// type, rule). The help texts are create's; `EditArgs` gives edit's own wording (`mut_arg`).
// No doc comment on these structs: a flattened struct's would replace the verb's own help.
#[derive(Args, Debug)]
pub struct AppFlags {
    /// The name shown in the control panel and the tray (default: NAME).
    #[arg(long, value_name = "S")]
    pub display_name: Option<String>,
    /// with-main: starts with the engine; on-visit (default): starts on its first request.
    #[arg(long, value_name = "MODE")]
    pub start_mode: Option<String>,
    /// Its own port (default: a free one).
    #[arg(long, value_name = "N")]
    pub port: Option<u32>,
    /// A custom domain that leads to it.
    #[arg(long, value_name = "HOST")]
    pub domain: Option<String>,
    /// Pin it to the menu.
    #[arg(long)]
    pub pin: bool,
    /// Its own environment values.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Environment values from an env file (dotenv: KEY=VALUE, quotes, # comments, export);
    /// repeatable, later files and --env win.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// On-visit apps: go dormant after SECS with no request and no open connection (a
    /// visit starts it again). Default: never.
    #[arg(long, value_name = "SECS")]
    pub idle_timeout: Option<i64>,
    /// Restart it when its whole process tree holds more than SIZE (600M, 1.5G; 0: the
    /// runtime's default); the kernel enforces it too where Hangar can make a cgroup.
    #[arg(long, value_name = "SIZE")]
    pub memory_max: Option<String>,
    /// CPU priority of its process group, -20 (first) to 19 (last); default: the runtime's.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub nice: Option<i64>,
    /// Print JSON instead of text (shapes: docs/contracts.md).
    #[arg(long)]
    pub json: bool,
}

impl AppFlags {
    pub fn start_mode(&self) -> Result<Option<StartMode>> {
        Ok(self
            .start_mode
            .as_deref()
            .map(str::parse::<StartMode>)
            .transpose()?)
    }

    /// The env values given: the env files', then `--env`'s.
    pub fn env_given(&self) -> Result<BTreeMap<String, String>> {
        env_values(&self.env_file, &self.env)
    }

    pub fn memory_max(&self) -> Option<SizeInput> {
        self.memory_max.clone().map(SizeInput::Text)
    }
}

#[derive(Args, Debug)]
#[command(
    mut_arg("start_mode", |a| a.help("with-main or on-visit")),
    mut_arg("port", |a| a.help("Its own port; a running app moves at its next restart")),
    mut_arg("display_name", |a| a.help("The name shown in the control panel and the tray")),
    mut_arg("domain", |a| a.help("A custom domain; an empty one (\"\") removes it")),
    mut_arg("env", |a| a.help("Set these environment values (repeatable); other keys are kept")),
    mut_arg("env_file", |a| a.help("Set the values of an env file (dotenv: KEY=VALUE, quotes, # comments, export); repeatable, later files and --env win")),
    mut_arg("idle_timeout", |a| a.help("Seconds of no visit after which an on-visit app goes dormant; 0: never")),
    mut_arg("memory_max", |a| a.help("Restart it when its whole process tree holds more than SIZE (600M, 1.5G); 0 removes its own limit (the runtime's applies). Takes effect at its next start")),
    mut_arg("nice", |a| a.help("CPU priority of its process group, -20 to 19; 0 removes its own (the runtime's applies). A running app is reniced at once")),
)]
pub struct EditArgs {
    pub name: String,
    #[command(flatten)]
    pub app: AppFlags,
    /// Unpin it from the menu.
    #[arg(long, conflicts_with = "pin")]
    pub unpin: bool,
    /// Remove these environment keys (repeatable).
    #[arg(long = "unset-env", value_name = "KEY")]
    pub unset_env: Vec<String>,
    /// Replace the whole environment with what --env-file and --env give.
    #[arg(long)]
    pub replace_env: bool,
    /// Restart the app when it runs and its port or environment changed.
    #[arg(long)]
    pub restart: bool,
}

impl EditArgs {
    /// Whether a flag asks for a change (`--restart` and `--json` alone do not): without one,
    /// a usage error (`cli::check_usage`), found before any engine is reached or started.
    pub fn changes_something(&self) -> bool {
        let f = &self.app;
        f.display_name.is_some()
            || f.start_mode.is_some()
            || f.port.is_some()
            || f.domain.is_some()
            || f.pin
            || self.unpin
            || !f.env.is_empty()
            || !f.env_file.is_empty()
            || !self.unset_env.is_empty()
            || self.replace_env
            || f.idle_timeout.is_some()
            || f.memory_max.is_some()
            || f.nice.is_some()
    }
}

/// The values of `files` (in order), then of `args` (`KEY=VALUE`): the later wins.
pub fn env_values(files: &[PathBuf], args: &[String]) -> Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for f in files {
        env.extend(read_env_file(f)?);
    }
    for e in args {
        let (k, v) = hangar::base::validate::parse_env_arg(e)?;
        env.insert(k, v);
    }
    Ok(env)
}

fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::field("env_file", format!("cannot read {}: {e}", path.display())))?;
    hangar::base::dotenv::parse(&text)
        .map_err(|e| Failure::field("env_file", format!("{} {e}", path.display())).into())
}

pub async fn run(c: &Client, a: EditArgs) -> Result<()> {
    let before = c.status(&a.name).await?;
    let f = &a.app;
    let start_mode = f.start_mode()?;
    let given = f.env_given()?;
    let env_touched = !given.is_empty() || !a.unset_env.is_empty() || a.replace_env;
    let env = env_touched.then(|| {
        let mut env = if a.replace_env {
            BTreeMap::new()
        } else {
            before.env.clone()
        };
        env.extend(given);
        for k in &a.unset_env {
            env.remove(k);
        }
        env
    });
    let edit = AppEdit {
        display_name: f.display_name.clone(),
        start_mode,
        // The rules create's values meet, checked here for edit's narrower types.
        port: f
            .port
            .map(|p| validate::port(i64::from(p), &[]))
            .transpose()?,
        domain: f.domain.clone().map(|d| (!d.is_empty()).then_some(d)),
        pinned: match (f.pin, a.unpin) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        env,
        idle_timeout: f.idle_timeout.map(validate::idle_timeout).transpose()?,
        // An app's own program is changed through the API (`PATCH /apps/NAME` with `command`).
        command: None,
        memory_max: f.memory_max(),
        nice: f.nice.map(validate::nice).transpose()?,
    };
    let nothing = edit.display_name.is_none()
        && edit.start_mode.is_none()
        && edit.port.is_none()
        && edit.domain.is_none()
        && edit.pinned.is_none()
        && edit.env.is_none()
        && edit.idle_timeout.is_none()
        && edit.memory_max.is_none()
        && edit.nice.is_none();
    if nothing {
        return Err(Failure::field(
            "name",
            "nothing to change: give a flag (`hangar edit --help` lists them)",
        )
        .into());
    }
    let after = c.edit(&a.name, &edit).await?;
    let changes = changes(&before, &after);
    let run_settings = before.port != after.port || before.env != after.env;
    let mut restarted = false;
    if a.restart && run_settings && after.status.is_active() {
        c.restart(&a.name).await?;
        restarted = true;
    }
    if f.json {
        let out = serde_json::json!({
            "name": after.name,
            "changed": changes.iter().map(|(f, _)| f).collect::<Vec<_>>(),
            "restarted": restarted,
            "status": after.status,
        });
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if changes.is_empty() {
        outln!("{}: nothing changed", after.name);
        return Ok(());
    }
    outln!("edited {}", after.name);
    for (_, line) in &changes {
        outln!("  {line}");
    }
    if restarted {
        outln!("restarted {}", after.name);
    } else if run_settings && after.status.is_active() {
        outln!(
            "{} runs with its old settings until restarted: `hangar restart {}` (or edit --restart)",
            after.name, after.name
        );
    }
    Ok(())
}

/// What differs between two views, field by field; env keys only, never values.
fn changes(b: &AppView, a: &AppView) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut diff = |field: &str, from: String, to: String| {
        if from != to {
            out.push((field.to_string(), format!("{field}: {from} → {to}")));
        }
    };
    diff(
        "display_name",
        b.display_name.clone(),
        a.display_name.clone(),
    );
    diff(
        "start_mode",
        b.start_mode.to_string(),
        a.start_mode.to_string(),
    );
    diff("port", b.port.to_string(), a.port.to_string());
    let none = |d: &Option<String>| d.clone().unwrap_or("(none)".into());
    diff("domain", none(&b.domain), none(&a.domain));
    diff("pinned", b.pinned.to_string(), a.pinned.to_string());
    let idle = |s: Option<u32>| s.map_or("never".to_string(), |s| format!("{s} s"));
    diff("idle_timeout", idle(b.idle_timeout), idle(a.idle_timeout));
    let mem = |m: Option<u64>| m.map_or("none".to_string(), |m| crate::cli::human_bytes(Some(m)));
    diff("memory_max", mem(b.memory_max), mem(a.memory_max));
    let nice = |n: Option<i32>| n.map_or("0".to_string(), |n| n.to_string());
    diff("nice", nice(b.nice), nice(a.nice));
    let keys: std::collections::BTreeSet<&String> = b.env.keys().chain(a.env.keys()).collect();
    for k in keys {
        let line = match (b.env.get(k), a.env.get(k)) {
            (None, Some(_)) => format!("env {k}: set"),
            (Some(_), None) => format!("env {k}: removed"),
            (Some(x), Some(y)) if x != y => format!("env {k}: changed"),
            _ => continue,
        };
        out.push((format!("env.{k}"), line));
    }
    out
}

//! `hangar start|stop|restart` on several apps: names (globs too), `--all`, `--status`,
//! `--runtime`. Each app waited for; a start or stop handles a few at once
//! (`engine::START_PARALLEL`), a restart one at a time (it waits until the app answers its
//! health path again before the next begins: a rolling restart); a line per app in the order
//! the apps were selected, one summary line, and exit status 1 when any failed. `restart` without names restarts only the apps
//! that run (a stopped or dormant app stays so) unless `--status` says otherwise.

use anyhow::{bail, Result};
use clap::Args;
use futures_util::StreamExt;
use serde_json::json;

use hangar::api::client::Client;
use hangar::engine::{AppView, START_PARALLEL};

use crate::cli::output::{Failure, Reported};

#[derive(Args, Debug)]
pub struct BulkArgs {
    /// Apps by name; a name with *, ? or [ ] is a glob (quote it for the shell).
    pub names: Vec<String>,
    /// Every app (narrowed by --status and --runtime).
    #[arg(long)]
    pub all: bool,
    /// Only apps in this status (repeatable): stopped, starting, running, stopping,
    /// upgrading, backoff, error.
    #[arg(long, value_name = "STATUS")]
    pub status: Vec<String>,
    /// Only apps of this runtime (repeatable).
    #[arg(long, value_name = "R")]
    pub runtime: Vec<String>,
    /// Print JSON instead of text (shapes: docs/contracts.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Start,
    Stop,
    Restart,
}

impl Verb {
    fn past(self) -> &'static str {
        match self {
            Verb::Start => "started",
            Verb::Stop => "stopped",
            Verb::Restart => "restarted",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Restart => "restart",
        }
    }
}

const STATUSES: &str = "stopped, starting, running, stopping, upgrading, backoff, error";

/// The apps `a` selects, in `list`'s order.
fn select(apps: Vec<AppView>, a: &BulkArgs, verb: Verb) -> Result<Vec<AppView>> {
    for s in &a.status {
        if !STATUSES.split(", ").any(|k| k == s) {
            return Err(Failure::field(
                "status",
                format!("--status {s:?} is not a status; accepted: {STATUSES}"),
            )
            .into());
        }
    }
    let mut patterns = Vec::new();
    for n in &a.names {
        let p = glob::Pattern::new(n)
            .map_err(|e| Failure::field("name", format!("{n:?} is not a valid glob: {e}")))?;
        patterns.push((n, p));
    }
    // A plain name that no app has is an error, as for one app.
    for (n, _) in &patterns {
        let glob = n.contains(['*', '?', '[']);
        if !glob && !apps.iter().any(|x| &x.name == *n) {
            bail!("no app named {n:?}; `hangar list` shows the apps there are");
        }
    }
    let by_name = |x: &AppView| {
        a.all || patterns.is_empty() || patterns.iter().any(|(_, p)| p.matches(&x.name))
    };
    let by_status = |x: &AppView| {
        if a.status.is_empty() {
            // A bulk restart leaves what does not run as it is.
            verb != Verb::Restart || a.names.iter().any(|n| n == &x.name) || x.status.is_active()
        } else {
            a.status.iter().any(|s| s == x.status.as_str())
        }
    };
    let by_runtime = |x: &AppView| a.runtime.is_empty() || a.runtime.contains(&x.runtime);
    let chosen: Vec<AppView> = apps
        .into_iter()
        .filter(|x| by_name(x) && by_status(x) && by_runtime(x))
        .collect();
    Ok(chosen)
}

impl BulkArgs {
    /// No name and no filter: a usage error (`cli::check_usage`), found before any engine is
    /// reached or started.
    pub fn selects_nothing(&self) -> bool {
        self.names.is_empty() && !self.all && self.status.is_empty() && self.runtime.is_empty()
    }
}

pub async fn run(c: &Client, verb: Verb, a: BulkArgs) -> Result<()> {
    let one = a.names.len() == 1
        && !a.all
        && a.status.is_empty()
        && a.runtime.is_empty()
        && !a.names[0].contains(['*', '?', '[']);
    let names: Vec<String> = if one {
        a.names.clone()
    } else {
        select(c.list().await?, &a, verb)?
            .into_iter()
            .map(|x| x.name)
            .collect()
    };
    if names.is_empty() {
        if a.json {
            outln!("{}", json!({ "apps": [], "ok": 0, "failed": 0 }));
        } else {
            outln!("no app matches; nothing to {}", verb.name());
        }
        return Ok(());
    }
    let mut results = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    // `buffered` answers in the order the calls were made, whichever lands first.
    let at_once = if verb == Verb::Restart {
        1
    } else {
        START_PARALLEL
    };
    let calls = futures_util::stream::iter(&names)
        .map(|name| async move {
            let r = match verb {
                Verb::Start => c.start(name).await,
                Verb::Stop => c.stop(name).await,
                Verb::Restart => c.restart(name).await,
            };
            (name, r)
        })
        .buffered(at_once);
    futures_util::pin_mut!(calls);
    while let Some((name, r)) = calls.next().await {
        match r {
            Ok(v) => {
                if !a.json {
                    outln!("{}", done_line(verb, &v));
                }
                results.push(json!({ "name": v.name, "ok": true, "status": v.status, "pid": v.pid, "error": null }));
            }
            Err(e) if one => return Err(e.into()),
            Err(e) => {
                if !a.json {
                    outln!("{name}: {} failed: {e}", verb.name());
                }
                results.push(json!({ "name": name, "ok": false, "status": null, "pid": null, "error": e.to_string() }));
                failed.push((name.clone(), e.to_string()));
            }
        }
    }
    let ok = names.len() - failed.len();
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "apps": results, "ok": ok, "failed": failed.len() })
            )?
        );
    } else if !one {
        outln!(
            "{} {ok} of {} apps{}",
            verb.past(),
            names.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!("; {} failed", failed.len())
            }
        );
    }
    if !failed.is_empty() {
        let line = format!(
            "{} of {} apps failed to {}: {}",
            failed.len(),
            names.len(),
            verb.name(),
            failed
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        // With --json the results above are the one document; they tell each failure.
        return Err(Reported(line).into());
    }
    Ok(())
}

/// The line of one app, as `hangar start|stop|restart NAME` has always printed it.
fn done_line(verb: Verb, v: &AppView) -> String {
    let pid = v.pid.map(|p| p.to_string()).unwrap_or("-".into());
    match verb {
        Verb::Start => format!("{} is {} (pid {pid}, {})", v.name, v.status, v.url),
        Verb::Stop => format!("{} is {}", v.name, v.status),
        Verb::Restart => format!("{} is {} (pid {pid})", v.name, v.status),
    }
}

//! `hangar monit`: every app's CPU and memory and the machine's, redrawn on each tick of the
//! engine's metrics stream (which keeps the sampler at one second while it is open). Plain ANSI:
//! the screen is cleared and redrawn; without a terminal, each refresh is printed as plain text.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use futures_util::StreamExt;

use crate::cli::human_bytes;
use hangar::api::client::{Client, ClientError};
use hangar::engine::AppView;
use hangar::run::monitor::Live;
use hangar::run::sampler::Snapshot;

pub async fn run(c: &Client, count: Option<u64>, json: bool) -> Result<()> {
    let tty = std::io::stdout().is_terminal() && !json;
    let s = c.metrics_stream().await?;
    futures_util::pin_mut!(s);
    let mut shown = 0u64;
    loop {
        let snap = match s.next().await {
            Some(Ok(Live::Tick(snap))) => snap,
            // A timeline event (the next tick shows its effect), or one this client cannot read.
            Some(Ok(Live::Event { .. })) | Some(Err(ClientError::Decode(_))) => continue,
            Some(Err(_)) | None => return crate::cli::logs::stream_ended(c, None).await,
        };
        let mut out = std::io::stdout().lock();
        if json {
            // One sample a line: the metrics stream's own tick.
            writeln!(out, "{}", serde_json::to_string(&snap)?)?;
            out.flush()?;
            shown += 1;
            if count.is_some_and(|n| shown >= n) {
                break;
            }
            continue;
        }
        let apps = match c.list().await {
            Ok(apps) => apps,
            Err(e) => {
                crate::cli::logs::stream_ended(c, None).await?;
                return Err(e.into());
            }
        };
        let frame = render(&snap, &apps, tty);
        if tty {
            // Home, draw, clear what is left of the previous frame.
            write!(out, "\x1b[H{frame}\x1b[J")?;
        } else {
            writeln!(out, "{frame}")?;
        }
        out.flush()?;
        shown += 1;
        if count.is_some_and(|n| shown >= n) {
            break;
        }
    }
    Ok(())
}

fn bar(percent: f64, width: usize) -> String {
    let filled = ((percent / 100.0).clamp(0.0, 1.0) * width as f64).round() as usize;
    format!("{}{}", "#".repeat(filled), ".".repeat(width - filled))
}

pub fn render(snap: &Snapshot, apps: &[AppView], tty: bool) -> String {
    let h = &snap.host;
    let clock = time::OffsetDateTime::from_unix_timestamp(snap.t / 1000)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_default();
    let (bold, dim, reset) = if tty {
        ("\x1b[1m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    let eol = if tty { "\x1b[K\n" } else { "\n" };
    let mut s = format!(
        "{bold}host{reset}  CPU {:5.1}% of {} cores [{}]  memory {} / {}  {dim}{clock}{reset}{eol}{eol}",
        h.cpu_percent,
        h.cpus,
        bar(h.cpu_percent, 20),
        human_bytes(Some(h.memory_used_bytes)),
        human_bytes(Some(h.memory_total_bytes)),
    );
    let width = apps.iter().map(|a| a.name.len()).max().unwrap_or(4).max(4);
    s.push_str(&format!(
        "{bold}{:<width$}  {:<9}  {:>7}  {:>10}  {:<20}  {:>8}{reset}{eol}",
        "NAME", "STATUS", "CPU", "MEM", "CPU (one core = full)", "RESTARTS"
    ));
    for a in apps {
        let usage = snap.apps.get(&a.name);
        let cpu = usage.map(|u| u.cpu_percent);
        s.push_str(&format!(
            "{:<width$}  {:<9}  {:>7}  {:>10}  {:<20}  {:>8}{eol}",
            a.name,
            a.status,
            cpu.map(|c| format!("{c:.1}%")).unwrap_or("-".into()),
            human_bytes(usage.map(|u| u.memory_bytes)),
            cpu.map(|c| bar(c, 20)).unwrap_or_default(),
            a.restarts,
        ));
    }
    if tty {
        s.push_str(&format!("{eol}{dim}Ctrl-C to quit{reset}{eol}"));
    }
    s
}

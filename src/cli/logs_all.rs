//! `hangar logs` without a name: every app's lines in one stream, in time order, each prefixed
//! with its app's name (in a colour of its own on a terminal, never under `NO_COLOR`). The
//! last N lines (or the engine's search with `--grep`, `--since`, `--until`) of every app are
//! merged by their time stamps and the newest N kept; `-f` then follows every app at once.
//! Apps created while following are not picked up (run it again).

use std::io::Write;

use anyhow::Result;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use hangar::api::client::{Client, ClientError};
use hangar::run::logs::LogLine;

use crate::cli::logs::{format_line, json_line, line_filter, search_params, LogsArgs};
use crate::cli::output::{colour, paint};

/// Live lines waiting to be printed, all apps together.
const LIVE_QUEUE: usize = 1024;

pub async fn run(c: &Client, a: LogsArgs) -> Result<()> {
    let searching = a.searching();
    let n = a.count();
    let keep = line_filter(&a)?;
    let names: Vec<String> = c.list().await?.into_iter().map(|v| v.name).collect();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    let painted = colour() && !a.json;
    let show = |app: &str, l: &LogLine| {
        if a.json {
            json_line(app, l)
        } else {
            let tag = format!("{app:<width$} |");
            format!("{} {}", paint(app, &tag, painted), format_line(l))
        }
    };
    // Follow first, so no line falls between the tail and the live stream (one that is in
    // both is printed once: live lines up to the tail's last stamp are skipped).
    let (tx, mut rx) = mpsc::channel::<(String, LogLine)>(LIVE_QUEUE);
    if a.follow {
        for name in &names {
            let s = c.follow_logs(name, 0).await?;
            let tx = tx.clone();
            let name = name.clone();
            tokio::spawn(async move {
                futures_util::pin_mut!(s);
                while let Some(item) = s.next().await {
                    match item {
                        Ok(l) => {
                            if tx.send((name.clone(), l)).await.is_err() {
                                return;
                            }
                        }
                        Err(ClientError::Decode(_)) => {}
                        // The app was deleted, or the engine ended: its stream ends.
                        Err(_) => return,
                    }
                }
            });
        }
    }
    drop(tx);
    let mut tail: Vec<(String, LogLine)> = Vec::new();
    if n > 0 {
        for name in &names {
            let lines = if searching {
                c.search_logs(name, &search_params(&a, n)).await?.lines
            } else {
                c.logs(name, n).await?
            };
            tail.extend(
                lines
                    .into_iter()
                    .filter(|l| searching || keep(l))
                    .map(|l| (name.clone(), l)),
            );
        }
    }
    let tail = merge(tail, n);
    let mut last: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    {
        let mut out = std::io::stdout().lock();
        for (app, l) in &tail {
            writeln!(out, "{}", show(app, l))?;
            last.insert(app.clone(), l.ts.clone());
        }
        out.flush()?;
    }
    if a.follow {
        while let Some((app, l)) = rx.recv().await {
            if last.get(&app).is_some_and(|ts| l.ts <= *ts) || !keep(&l) {
                continue;
            }
            let mut o = std::io::stdout().lock();
            writeln!(o, "{}", show(&app, &l))?;
            o.flush()?;
        }
        // Every app's stream ended: the engine's end, told once.
        return crate::cli::logs::stream_ended(c, None).await;
    }
    Ok(())
}

/// Lines of several apps in time order (stamps are RFC 3339 UTC with milliseconds, so their
/// text sorts as their time; one app's lines keep their order), the newest `n` kept.
fn merge(mut lines: Vec<(String, LogLine)>, n: usize) -> Vec<(String, LogLine)> {
    lines.sort_by(|x, y| x.1.ts.cmp(&y.1.ts));
    let skip = lines.len().saturating_sub(n);
    lines.split_off(skip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangar::run::logs::Stream;

    fn line(ts: &str, text: &str) -> LogLine {
        LogLine {
            ts: ts.into(),
            stream: Stream::Out,
            text: text.into(),
        }
    }

    #[test]
    fn lines_of_apps_merge_in_time_order_and_keep_the_newest() {
        let a = vec![
            ("a".to_string(), line("2026-01-01T00:00:00.001Z", "a1")),
            ("a".to_string(), line("2026-01-01T00:00:00.003Z", "a2")),
            ("b".to_string(), line("2026-01-01T00:00:00.002Z", "b1")),
            ("b".to_string(), line("2026-01-01T00:00:00.004Z", "b2")),
        ];
        let m: Vec<String> = merge(a, 3).into_iter().map(|(_, l)| l.text).collect();
        assert_eq!(m, ["b1", "a2", "b2"]);
    }
}

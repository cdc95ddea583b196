//! `hangar logs`: the last lines of an app's log, a search by the engine over the current and
//! rotated files (`--grep`, `--since`, `--until`), and live lines (`-f`), filtered here as the
//! search filters.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use futures_util::StreamExt;

use hangar::api::client::{Client, ClientError};
use hangar::api::types::SearchParams;
use hangar::run::logs::LogLine;

// No doc comment here, so the verb's own is its help.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The app; without it, every app's lines in time order, each prefixed with its name.
    pub name: Option<String>,
    /// Keep following new lines.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// How many of the last lines to show.
    #[arg(short = 'n', long, value_name = "N")]
    pub lines: Option<usize>,
    /// Only lines containing PATTERN, searched by the engine over the current and rotated
    /// files.
    #[arg(long, value_name = "PATTERN")]
    pub grep: Option<String>,
    /// Read PATTERN as a regular expression.
    #[arg(long, requires = "grep")]
    pub regex: bool,
    /// Only lines from this time on: RFC 3339, or a time ago such as 10m, 2h, 7d.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only lines up to this time: RFC 3339, or a time ago.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Lines as JSON, one object a line: {app, ts, stream, text}.
    #[arg(long)]
    pub json: bool,
}

/// One app's log (`hangar logs NAME`); without a name the CLI runs `logs_all::run` instead.
pub async fn run(c: &Client, a: LogsArgs) -> Result<()> {
    let Some(name) = a.name.clone() else {
        anyhow::bail!("an app's name is needed here; `hangar logs` without one shows every app");
    };
    let searching = a.grep.is_some() || a.since.is_some() || a.until.is_some();
    let n = a.lines.unwrap_or(if searching { 1000 } else { 20 });
    let keep = line_filter(&a)?;
    let show = |l: &LogLine| {
        if a.json {
            json_line(&name, l)
        } else {
            format_line(l)
        }
    };
    let mut out = std::io::stdout().lock();
    if searching && n > 0 {
        // The engine searches every file, rotations included.
        let q = search_params(&a, n);
        for l in &c.search_logs(&name, &q).await?.lines {
            writeln!(out, "{}", show(l))?;
        }
        out.flush()?;
    }
    if a.follow {
        let initial = if searching { 0 } else { n };
        let s = c.follow_logs(&name, initial).await?;
        drop(out);
        futures_util::pin_mut!(s);
        while let Some(item) = s.next().await {
            match item {
                Ok(l) if keep(&l) => {
                    let mut o = std::io::stdout().lock();
                    writeln!(o, "{}", show(&l))?;
                    o.flush()?;
                }
                // A line this client cannot read is skipped.
                Ok(_) | Err(ClientError::Decode(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    } else if !searching {
        for l in c.logs(&name, n).await?.iter().filter(|l| keep(l)) {
            writeln!(out, "{}", show(l))?;
        }
    }
    Ok(())
}

/// The live lines `-f` keeps: those the engine's search would find (`--grep`, `--regex`).
pub(crate) fn line_filter(
    a: &LogsArgs,
) -> Result<impl Fn(&LogLine) -> bool + Send + Sync + 'static> {
    let re = match (&a.grep, a.regex) {
        (Some(g), true) => Some(regex::Regex::new(g).map_err(|e| {
            anyhow::anyhow!(
                "--grep {g:?} is not a valid regular expression: {}",
                hangar::run::logs::regex_error(&e)
            )
        })?),
        _ => None,
    };
    let grep = a.grep.clone();
    Ok(move |l: &LogLine| match (&re, &grep) {
        (Some(re), _) => re.is_match(&l.text),
        (None, Some(g)) => l.text.contains(g.as_str()),
        (None, None) => true,
    })
}

/// The engine's search of `a`'s `--grep`, `--regex`, `--since`, `--until`, at most `n` lines.
pub(crate) fn search_params(a: &LogsArgs, n: usize) -> SearchParams {
    SearchParams {
        q: a.grep.clone(),
        regex: a.regex.then(|| "true".to_string()),
        since: a.since.clone(),
        until: a.until.clone(),
        limit: Some(n.clamp(1, 100_000)),
    }
}

pub(crate) fn format_line(l: &LogLine) -> String {
    format!("{} {} {}", l.ts, l.stream.as_str(), l.text)
}

/// One line as `--json` writes it: `{app, ts, stream, text}`.
pub(crate) fn json_line(app: &str, l: &LogLine) -> String {
    serde_json::json!({ "app": app, "ts": l.ts, "stream": l.stream.as_str(), "text": l.text })
        .to_string()
}

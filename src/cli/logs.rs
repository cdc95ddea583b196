//! `hangar logs`: the last lines of an app's log, a search by the engine over the current and
//! rotated files (`--grep`, `--since`, `--until`), and live lines (`-f`), filtered here as the
//! search filters.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use futures_util::StreamExt;

use hangar::api::client::{Client, ClientError};
use hangar::api::types::SearchParams;
use hangar::run::logs::{LogLine, Stream};

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
    /// Only the app's standard output (as pm2's --out).
    #[arg(long, conflicts_with = "err")]
    pub out: bool,
    /// Only the app's standard error (as pm2's --err).
    #[arg(long)]
    pub err: bool,
    /// Lines as JSON, one object a line: {app, ts, stream, text}.
    #[arg(long)]
    pub json: bool,
}

impl LogsArgs {
    /// The one stream asked for (`--out`, `--err`).
    pub(crate) fn stream(&self) -> Option<Stream> {
        match (self.out, self.err) {
            (true, _) => Some(Stream::Out),
            (_, true) => Some(Stream::Err),
            _ => None,
        }
    }

    /// Whether the engine searches the files (a pattern, a time, a stream) rather than
    /// giving the last lines.
    pub(crate) fn searching(&self) -> bool {
        self.grep.is_some()
            || self.since.is_some()
            || self.until.is_some()
            || self.stream().is_some()
    }

    /// How many lines: `-n`, else 1000 for a search by pattern or time, else 20.
    pub(crate) fn count(&self) -> usize {
        let found = self.grep.is_some() || self.since.is_some() || self.until.is_some();
        self.lines.unwrap_or(if found { 1000 } else { 20 })
    }
}

/// One app's log (`hangar logs NAME`); without a name the CLI runs `logs_all::run` instead.
pub async fn run(c: &Client, a: LogsArgs) -> Result<()> {
    let Some(name) = a.name.clone() else {
        anyhow::bail!("an app's name is needed here; `hangar logs` without one shows every app");
    };
    let searching = a.searching();
    let n = a.count();
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
        loop {
            match s.next().await {
                Some(Ok(l)) if keep(&l) => {
                    let mut o = std::io::stdout().lock();
                    writeln!(o, "{}", show(&l))?;
                    o.flush()?;
                }
                // A line this client cannot read is skipped.
                Some(Ok(_)) | Some(Err(ClientError::Decode(_))) => {}
                Some(Err(_)) | None => return stream_ended(c, Some(&name)).await,
            }
        }
    } else if !searching {
        for l in c.logs(&name, n).await?.iter().filter(|l| keep(l)) {
            writeln!(out, "{}", show(l))?;
        }
    }
    Ok(())
}

/// A live stream (`logs -f`, `monit`) ended: one line that says why, never an HTTP client's
/// chain of causes. The engine ended; or `app` was deleted (its own refusal); or the engine,
/// still answering, closed it as it stops.
pub(crate) async fn stream_ended(c: &Client, app: Option<&str>) -> Result<()> {
    if c.engine().await.is_err() {
        anyhow::bail!("the engine ended; nothing more to show");
    }
    if let Some(name) = app {
        c.status(name).await?;
    }
    anyhow::bail!("the engine closed the stream; it is stopping")
}

/// The live lines `-f` keeps: those the engine's search would find (`--grep`, `--regex`,
/// `--out`, `--err`).
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
    let stream = a.stream();
    Ok(move |l: &LogLine| {
        stream.is_none_or(|s| l.stream == s)
            && match (&re, &grep) {
                (Some(re), _) => re.is_match(&l.text),
                (None, Some(g)) => l.text.contains(g.as_str()),
                (None, None) => true,
            }
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
        stream: a.stream().map(|s| s.as_str().to_string()),
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

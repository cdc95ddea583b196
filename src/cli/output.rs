//! What every verb shares about its output: writing to standard output (`out!`, `outln!`: a
//! reader that went away, as `hangar list | head -1`'s, ends the process as it ends other
//! command-line programs, never with a panic), the one error shape of `--json`
//! (`{"error": MESSAGE, "field": FIELD-or-null}` on standard output, with exit status 1), colour
//! only on a terminal and never under `NO_COLOR`, and the per-app progress and summary line of
//! the bulk verbs.

use std::io::{IsTerminal, Write};

/// `print!` for the CLI: see [`write_out`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write_out(format_args!($($arg)*), false)
    };
}

/// `println!` for the CLI: see [`write_out`].
macro_rules! outln {
    () => {
        $crate::cli::output::write_out(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write_out(format_args!($($arg)*), true)
    };
}

/// Write to standard output (a line with `newline`). std's `print!` panics when the reader has
/// gone ("failed printing to stdout: Broken pipe"); here that ends the process quietly.
pub fn write_out(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut o = std::io::stdout().lock();
    let written = o
        .write_fmt(args)
        .and_then(|()| if newline { o.write_all(b"\n") } else { Ok(()) });
    if let Err(e) = written {
        drop(o);
        stdout_failed(&e);
    }
}

/// Standard output cannot be written. A reader that went away (EPIPE): the process ends as
/// SIGPIPE ends any command-line program, silently (a shell sees status 141); anything else:
/// one line on stderr and exit status 1.
pub fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        closed_pipe();
    }
    eprintln!("hangar: cannot write to standard output: {e}");
    std::process::exit(1);
}

/// End as a closed pipe ends other programs: SIGPIPE, with its default action. Only here is
/// the signal's action reset: while the CLI works, a write to a socket the engine closed stays
/// an error (Rust ignores SIGPIPE), never a silent death.
fn closed_pipe() -> ! {
    use nix::sys::signal::{raise, signal, SigHandler, Signal};
    // SAFETY: the default action is not a handler; no code runs on the signal.
    if unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.is_ok() {
        let _ = raise(Signal::SIGPIPE);
    }
    std::process::exit(141);
}

/// Whether an error that ends a verb is standard output's closed pipe (a verb that writes
/// with `writeln!` returns it): the caller ends as [`stdout_failed`] does.
pub fn closed_stdout(e: &anyhow::Error) -> Option<&std::io::Error> {
    e.downcast_ref::<std::io::Error>()
        .filter(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

use serde_json::json;

use hangar::api::client::ClientError;

/// A failure of the CLI itself that is about one field (a key of an apps file, a flag).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub field: Option<String>,
    pub message: String,
}

impl Failure {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

/// A failure whose `--json` document is already on standard output (a bulk verb's per-app
/// results): the process ends with status 1 and this line on stderr, and no second document.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Reported(pub String);

/// Whether `e`'s JSON document was already written (see [`Reported`]).
pub fn reported(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Reported>())
}

/// The one line an error is told in: the error and its causes, each told once (a cause whose
/// text an earlier one already carries, as an HTTP client's chain often repeats, is left out).
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let m = cause.to_string();
        if m.is_empty() || line.contains(&m) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&m);
    }
    line
}

/// The field an error is about, when it is about one: an API refusal's, a CLI failure's, or an
/// input rule's.
pub fn field_of(e: &anyhow::Error) -> Option<String> {
    for cause in e.chain() {
        if let Some(ClientError::Api { error, .. }) = cause.downcast_ref::<ClientError>() {
            return error.field.clone();
        }
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.field.clone();
        }
        if let Some(i) = cause.downcast_ref::<hangar::base::validate::Invalid>() {
            return Some(i.field.to_string());
        }
    }
    None
}

/// `--json`'s error: `{"error": "…", "field": "…" | null}`, the message being the line the
/// text output writes on stderr.
pub fn error_json(e: &anyhow::Error) -> serde_json::Value {
    json!({ "error": error_line(e), "field": field_of(e) })
}

/// Whether the command line asks for `--json` (before a `--`).
pub fn wants_json() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// Colour on standard output: a terminal, and `NO_COLOR` unset or empty (no-color.org).
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `text` in one of six ANSI colours chosen by `key` (the same key, the same colour, on every
/// run), or as it is without colour.
pub fn paint(key: &str, text: &str, on: bool) -> String {
    if !on {
        return text.to_string();
    }
    // FNV-1a: stable across runs and builds, unlike the std hasher.
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    const COLOURS: [u8; 6] = [31, 32, 33, 34, 35, 36];
    format!("\x1b[{}m{text}\x1b[0m", COLOURS[(h % 6) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_keeps_its_colour_and_no_colour_is_plain() {
        assert_eq!(paint("shop", "shop", true), paint("shop", "shop", true));
        assert!(paint("shop", "shop", true).starts_with("\x1b["));
        assert_eq!(paint("shop", "shop |", false), "shop |");
    }

    #[test]
    fn an_error_names_its_field() {
        let e = anyhow::Error::new(Failure::field("apps.shop.port", "bad port"));
        assert_eq!(
            error_json(&e),
            json!({"error": "bad port", "field": "apps.shop.port"})
        );
        let plain = anyhow::anyhow!("no");
        assert_eq!(error_json(&plain), json!({"error": "no", "field": null}));
    }

    #[test]
    fn a_cause_is_told_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot reach the engine: {0}")]
        struct Outer(#[source] Inner);
        #[derive(Debug, thiserror::Error)]
        #[error("connection reset")]
        struct Inner;
        let e = anyhow::Error::new(Outer(Inner)).context("following shop's log");
        assert_eq!(
            error_line(&e),
            "following shop's log: cannot reach the engine: connection reset"
        );
    }
}

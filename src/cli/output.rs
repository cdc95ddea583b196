//! What every verb shares about its output: the one error shape of `--json`
//! (`{"error": MESSAGE, "field": FIELD-or-null}` on standard output, with exit status 1), colour
//! only on a terminal and never under `NO_COLOR`, and the per-app progress and summary line of
//! the bulk verbs.

use std::io::IsTerminal;

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
    let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    json!({ "error": msg.join(": "), "field": field_of(e) })
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
    std::io::stdout().is_terminal() && !std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
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
}

//! Env files (`create/edit --env-file FILE`), in the dotenv syntax pm2's and Docker's users
//! write: `KEY=VALUE` a line, blank lines and `#` comments skipped, an optional `export `
//! before the key, values bare (a ` #` starts a comment; spaces around are trimmed), in single
//! quotes (taken literally) or in double quotes (`\n`, `\r`, `\t`, `\"`, `\\` and `\$` read as
//! escapes); a quoted value may run over several lines. Nothing is expanded: `${X}` stays as it
//! is, as `--env` values do.
//!
//! Invariant: every key and value passes the `--env` rule (`validate::env_entry`); a refusal
//! names the line, and the key when there is one, and never quotes a value.

use std::collections::BTreeMap;

use crate::base::validate;

/// Why an env file was refused: the line, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct EnvFileError {
    pub line: usize,
    pub message: String,
}

/// The entries of an env file, in its order; a key given twice keeps its last value.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, EnvFileError> {
    let mut out = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let number = i + 1;
        let err = |message: String| EnvFileError {
            line: number,
            message,
        };
        let line = lines[i].trim_start_matches('\u{feff}').trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export")
            .filter(|rest| rest.starts_with([' ', '\t']))
            .map_or(line, str::trim_start);
        let Some((key, rest)) = line.split_once('=') else {
            return Err(err(
                "expected KEY=VALUE (a comment starts with #)".to_string()
            ));
        };
        let key = key.trim();
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => {
                // The quoted value, perhaps over several lines.
                let mut body = rest[1..].to_string();
                loop {
                    if let Some((value, after)) = close(&body, q) {
                        let after = after.trim();
                        if !after.is_empty() && !after.starts_with('#') {
                            return Err(err(format!(
                                "{key}: only a comment may follow the closing quote"
                            )));
                        }
                        break value;
                    }
                    if i >= lines.len() {
                        return Err(err(format!("{key}: the quote {q} is never closed")));
                    }
                    body.push('\n');
                    body.push_str(lines[i]);
                    i += 1;
                }
            }
            _ => {
                let bare = match rest.find(" #").or_else(|| rest.find("\t#")) {
                    Some(at) => &rest[..at],
                    None => rest,
                };
                bare.trim().to_string()
            }
        };
        validate::env_entry(key, &value).map_err(|e| err(e.to_string()))?;
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

/// The value of a quoted body up to its closing quote `q`, and what follows it; `None` when
/// the body has no closing quote yet.
fn close(body: &str, q: char) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        if c == q {
            return Some((value, &body[at + 1..]));
        }
        if q == '"' && c == '\\' {
            match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, 't')) => value.push('\t'),
                Some((_, e @ ('"' | '\\' | '$'))) => value.push(e),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => value.push('\\'),
            }
            continue;
        }
        value.push(c);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_comments_and_export() {
        let text = "# a comment\n\
                    \n\
                    export API_KEY=abc123\n\
                    PLAIN = some value   # a comment\n\
                    HASH=a#b\n\
                    DQ=\"line one\\nline \\\"two\\\"\" # trailing\n\
                    SQ='literal \\n ${HOME} # kept'\n\
                    MULTI=\"first\n\
                    second\"\n\
                    EMPTY=\n\
                    export\tTABBED=x\n";
        let env = parse(text).expect("parses");
        let get = |k: &str| env.get(k).map(String::as_str);
        assert_eq!(get("API_KEY"), Some("abc123"));
        assert_eq!(get("PLAIN"), Some("some value"));
        assert_eq!(get("HASH"), Some("a#b"));
        assert_eq!(get("DQ"), Some("line one\nline \"two\""));
        assert_eq!(get("SQ"), Some("literal \\n ${HOME} # kept"));
        assert_eq!(get("MULTI"), Some("first\nsecond"));
        assert_eq!(get("EMPTY"), Some(""));
        assert_eq!(get("TABBED"), Some("x"));
        assert_eq!(env.len(), 8);
    }

    #[test]
    fn a_refusal_names_the_line_and_never_the_value() {
        let e = parse("A=1\nnot a pair\n").expect_err("no =");
        assert_eq!(e.line, 2);
        let e = parse("A=1\nPORT=80\n").expect_err("reserved");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("PORT"), "{e}");
        let e = parse("S=\"secret-value\n").expect_err("unclosed");
        assert!(!e.to_string().contains("secret-value"), "{e}");
        let e = parse("1BAD=x\n").expect_err("bad key");
        assert_eq!(e.line, 1);
        let e = parse("Q=\"a\" b\n").expect_err("junk after quote");
        assert!(e.message.contains("closing quote"), "{e}");
    }
}

//! The time stamps Hangar writes (registry rows, jobs, archives): RFC 3339 in UTC; and the one
//! reader of the times and spans an operator types (`logs --since/--until`, a metrics range):
//! RFC 3339, or a span such as `30s`, `10m`, `2h`, `7d` (humantime's grammar), every step of
//! its arithmetic checked.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// A time or span the operator typed that cannot be read; the message names the key, the
/// input, what is wrong and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadTime(pub String);

const SPANS: &str = "a time ago such as 30s, 10m, 2h, 7d or 1h30m";

/// A span: `30s`, `10m`, `2h`, `7d`, `1h30m` (humantime's units; `m` is minutes).
pub fn parse_span(s: &str, key: &str) -> Result<std::time::Duration, BadTime> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        BadTime(format!(
            "{key} {s:?} is not a span of time ({e}); accepted: {SPANS}"
        ))
    })
}

/// A moment: an RFC 3339 time (any offset), or a span ago (see [`parse_span`]). A span that
/// reaches before 1970 means 1970 (nothing Hangar keeps is older), never an overflow.
pub fn parse_moment(s: &str, key: &str) -> Result<OffsetDateTime, BadTime> {
    let t = s.trim();
    // A date: four digits and a dash. Its error is about the date, not about units.
    let dated =
        t.len() >= 5 && t.as_bytes()[..4].iter().all(u8::is_ascii_digit) && t.as_bytes()[4] == b'-';
    if dated {
        return OffsetDateTime::parse(t, &Rfc3339).map_err(|e| {
            BadTime(format!(
                "{key} {s:?} is not a valid date and time ({e}); accepted: an RFC 3339 time such as 2026-11-24T02:10:00Z, or {SPANS}"
            ))
        });
    }
    let ago = match humantime::parse_duration(t) {
        Ok(d) => time::Duration::try_from(d).ok(),
        // More than a u64 of seconds: further back than anything, as a big number is.
        Err(humantime::DurationError::NumberOverflow) => None,
        Err(_) => {
            return Err(BadTime(format!(
                "{key} {s:?} is not accepted; accepted: an RFC 3339 time such as 2026-11-24T02:10:00Z, or {SPANS}"
            )))
        }
    };
    Ok(ago
        .and_then(|d| OffsetDateTime::now_utc().checked_sub(d))
        .filter(|t| *t > OffsetDateTime::UNIX_EPOCH)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_moments_are_read_with_checked_arithmetic() {
        assert_eq!(parse_span("10m", "range").unwrap().as_secs(), 600);
        assert_eq!(parse_span("7d", "range").unwrap().as_secs(), 604_800);
        assert_eq!(parse_span("1h30m", "range").unwrap().as_secs(), 5400);
        assert!(parse_span("5", "range").is_err());
        assert!(parse_span("-5m", "range").is_err());
        // Far back: 1970, no panic.
        let t = parse_moment("99999999999d", "since").unwrap();
        assert_eq!(t, OffsetDateTime::UNIX_EPOCH);
        let t = parse_moment("99999999999999999999999d", "since").unwrap();
        assert_eq!(t, OffsetDateTime::UNIX_EPOCH);
        let hour_ago = parse_moment("1h", "since").unwrap();
        let d = OffsetDateTime::now_utc() - hour_ago;
        assert!(d >= time::Duration::minutes(59) && d <= time::Duration::minutes(61));
        let t = parse_moment("2026-11-24T02:10:00+01:00", "until").unwrap();
        assert_eq!(t.unix_timestamp(), 1_795_486_200 - 3600);
    }

    #[test]
    fn a_bad_date_is_called_a_bad_date() {
        let e = parse_moment("2026-13-01T00:00:00Z", "since").unwrap_err().0;
        assert!(e.contains("not a valid date and time"), "{e}");
        assert!(e.contains("month"), "{e}");
        assert!(!e.contains("unit"), "{e}");
        let e = parse_moment("yesterday", "since").unwrap_err().0;
        assert!(e.contains("since \"yesterday\" is not accepted"), "{e}");
    }
}

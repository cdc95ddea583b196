//! The time stamps Hangar writes (registry rows, jobs, archives): RFC 3339 in UTC.

pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

//! UTC wall-clock strings for log stream names and log lines.

use time::OffsetDateTime;

/// `2026-11-26T12:00:00.000Z`, as Lambda stamps its log lines.
pub(crate) fn rfc3339_now() -> String {
    let now = OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

/// `2026/11/26`, the date part of a Lambda log stream name.
pub(crate) fn utc_date_path() -> String {
    let now = OffsetDateTime::now_utc();
    format!(
        "{:04}/{:02}/{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    )
}

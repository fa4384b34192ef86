//! How `logs` prints a line: `<ISO timestamp> <env> <message>`, or one JSON object.

use serde::Serialize;

use super::attribute::{Attributed, Owner};

/// The env column of a line no environment could be claimed for (shown with `--unattributed`).
pub const UNATTRIBUTED: &str = "?";

/// `--json`: one object per line.
#[derive(Debug, Serialize)]
struct JsonLine<'a> {
    timestamp: String,
    /// `null` for a line that could not be attributed.
    env: Option<&'a str>,
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    stream: &'a str,
    message: &'a str,
}

pub fn render(line: &Attributed, json: bool) -> String {
    let env = match &line.owner {
        Owner::Env(env) => Some(env.as_str()),
        Owner::Shared(_) | Owner::Unknown => None,
    };
    let timestamp = iso_timestamp(line.event.timestamp);
    // Lambda ends every line with a newline; a stack trace keeps its inner ones.
    let message = line.event.message.trim_end_matches(['\n', '\r']);
    if json {
        let object = JsonLine {
            timestamp,
            env,
            request_id: line.request_id.as_deref(),
            stream: &line.event.stream,
            message,
        };
        serde_json::to_string(&object).expect("a log line serializes")
    } else {
        format!("{timestamp} {} {message}", env.unwrap_or(UNATTRIBUTED))
    }
}

/// Milliseconds since the epoch as `2026-11-29T10:00:00.123Z` (UTC, always three decimals so
/// the columns line up).
pub fn iso_timestamp(millis: i64) -> String {
    let days = millis.div_euclid(86_400_000);
    let of_day = millis.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3_600_000,
        of_day / 60_000 % 60,
        of_day / 1_000 % 60,
        of_day % 1_000
    )
}

/// Days since 1970-01-01 as a proleptic Gregorian date (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::attribute::LogEvent;

    #[test]
    fn timestamps_are_iso_8601_utc_with_milliseconds() {
        assert_eq!(iso_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_timestamp(1_795_946_400_123), "2026-11-29T10:00:00.123Z");
        assert_eq!(iso_timestamp(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso_timestamp(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
    }

    fn line(owner: Owner, request_id: Option<&str>) -> Attributed {
        Attributed {
            event: LogEvent {
                id: "1".into(),
                stream: "2026/11/29/[7]abc".into(),
                timestamp: 1_795_946_400_123,
                message: "START RequestId: r-1 Version: 7\n".into(),
            },
            owner,
            request_id: request_id.map(str::to_owned),
        }
    }

    #[test]
    fn text_lines_are_timestamp_environment_message() {
        assert_eq!(
            render(&line(Owner::Env("staging".into()), Some("r-1")), false),
            "2026-11-29T10:00:00.123Z staging START RequestId: r-1 Version: 7"
        );
        assert_eq!(
            render(&line(Owner::Unknown, None), false),
            "2026-11-29T10:00:00.123Z ? START RequestId: r-1 Version: 7"
        );
    }

    #[test]
    fn json_lines_have_the_documented_keys() {
        let json: serde_json::Value =
            serde_json::from_str(&render(&line(Owner::Env("prod".into()), Some("r-1")), true))
                .unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "timestamp": "2026-11-29T10:00:00.123Z",
                "env": "prod",
                "requestId": "r-1",
                "stream": "2026/11/29/[7]abc",
                "message": "START RequestId: r-1 Version: 7",
            })
        );
        let json: serde_json::Value =
            serde_json::from_str(&render(&line(Owner::Unknown, None), true)).unwrap();
        assert_eq!(json["env"], serde_json::Value::Null);
        assert!(json.get("requestId").is_none(), "{json}");
    }
}

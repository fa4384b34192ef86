//! [`FlatJson`]: one flat JSON object per line, as Lambda's own JSON log format and Powertools
//! write them: `timestamp`, `level`, `message`, the fields of every enclosing span (`requestId`
//! from lambda_runtime's, `env` from lambda-stage's) and the event's own fields, all at the top
//! level, so CloudWatch Logs Insights can `filter env = "prod" and level = "ERROR"`.

use std::fmt;

use serde_json::{Map, Value};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields as _, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats events as flat JSON objects. Span fields are read from what [`JsonFields`] stored
/// when each span was created, so the layer must format fields with [`JsonFields`].
#[derive(Debug, Default, Clone, Copy)]
pub struct FlatJson;

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut own_fields = String::new();
        ctx.format_fields(Writer::new(&mut own_fields), event)?;
        let own_fields = fields_of(&own_fields);

        let mut line = Line::default();
        line.set("timestamp", Value::String(timestamp));
        line.set("level", Value::from(event.metadata().level().as_str()));
        if let Some(message) = own_fields.get("message") {
            line.set("message", message.clone());
        }
        // Outermost span first, so an inner span's field wins over an outer one of the same
        // name, and the event's own fields over any span's.
        for span in ctx
            .event_scope()
            .into_iter()
            .flat_map(|scope| scope.from_root())
        {
            if let Some(fields) = span.extensions().get::<FormattedFields<JsonFields>>() {
                line.merge(fields_of(fields));
            }
        }
        line.merge(own_fields);
        writeln!(writer, "{line}")
    }
}

/// A JSON object that keeps its keys in insertion order (`timestamp` and `level` first, as
/// people read them); a later value for a key replaces the earlier one in place, except that
/// `timestamp` and `level` are the formatter's own.
#[derive(Default)]
struct Line(Vec<(String, Value)>);

impl Line {
    fn set(&mut self, key: &str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, old)) => *old = value,
            None => self.0.push((key.to_owned(), value)),
        }
    }

    fn merge(&mut self, fields: Map<String, Value>) {
        for (key, value) in fields {
            if key != "timestamp" && key != "level" {
                self.set(&key, value);
            }
        }
    }
}

/// The fields [`JsonFields`] wrote as one JSON object (nothing for a span without fields).
fn fields_of(json: &str) -> Map<String, Value> {
    serde_json::from_str(json).unwrap_or_default()
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}:{value}", Value::from(key.as_str()))?;
        }
        f.write_str("}")
    }
}

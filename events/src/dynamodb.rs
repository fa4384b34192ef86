//! Plain JSON to DynamoDB's attribute-value JSON, so `--body '{"id":"1"}'` reads like the item.

use serde_json::{json, Map, Value};

/// `{"id":"1","n":2}` → `{"id":{"S":"1"},"n":{"N":"2"}}`.
pub(crate) fn item(object: &Map<String, Value>) -> Value {
    Value::Object(
        object
            .iter()
            .map(|(name, value)| (name.clone(), attribute(value)))
            .collect(),
    )
}

fn attribute(value: &Value) -> Value {
    match value {
        Value::Null => json!({ "NULL": true }),
        Value::Bool(flag) => json!({ "BOOL": flag }),
        Value::Number(number) => json!({ "N": number.to_string() }),
        Value::String(text) => json!({ "S": text }),
        Value::Array(values) => json!({ "L": values.iter().map(attribute).collect::<Vec<_>>() }),
        Value::Object(object) => json!({ "M": item(object) }),
    }
}

//! The fields a config type declares, read from its `Deserialize` implementation without any
//! data, so that only the secret references of those fields are resolved: a reference in an
//! unrelated `APP_*` variable costs no AWS call and fails nothing.

use std::fmt;

use serde::de::{self, DeserializeOwned, Visitor};

/// The field names `C` declares, aliases included (lower case, as envy matches variables), or
/// `None` when its `Deserialize` implementation does not list them (a map, a struct with a
/// `#[serde(flatten)]` field, a hand-written implementation): then every variable may be a field.
pub(crate) fn declared<C: DeserializeOwned>() -> Option<&'static [&'static str]> {
    let mut fields = None;
    // The probe always fails: it only records what `deserialize_struct` was told.
    let _ = C::deserialize(Probe {
        fields: &mut fields,
    });
    fields
}

/// Whether `field` (a variable's field part, any case) is one of `declared`.
pub(crate) fn is_declared(declared: Option<&[&str]>, field: &str) -> bool {
    declared.is_none_or(|fields| fields.iter().any(|f| f.eq_ignore_ascii_case(field)))
}

/// A deserializer with no data that records the fields of the struct asked for.
struct Probe<'a> {
    fields: &'a mut Option<&'static [&'static str]>,
}

/// The probe's only answer: there is nothing to read.
#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probing the config's fields")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.fields = Some(fields);
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    #[allow(dead_code)] // only probed
    struct Config {
        greeting: String,
        #[serde(default, alias = "loud")]
        shout: bool,
        api_key: Option<crate::Secret<String>>,
        #[serde(skip)]
        cache: Vec<u8>,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)] // only probed
    struct Flattened {
        greeting: String,
        #[serde(flatten)]
        rest: HashMap<String, String>,
    }

    #[test]
    fn lists_the_fields_a_struct_declares_with_their_aliases() {
        let mut fields = declared::<Config>().unwrap().to_vec();
        fields.sort_unstable();
        assert_eq!(fields, ["api_key", "greeting", "loud", "shout"]);
        assert!(is_declared(Some(&fields), "API_KEY"));
        assert!(!is_declared(Some(&fields), "CACHE"));
    }

    #[test]
    fn types_that_do_not_list_fields_accept_every_variable() {
        assert_eq!(declared::<Flattened>(), None);
        assert_eq!(declared::<HashMap<String, String>>(), None);
        assert!(is_declared(None, "ANYTHING"));
    }
}

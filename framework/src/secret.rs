//! [`Secret<T>`]: a config value that is never printed.

use std::fmt;

use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value that must never reach a log line, an error message or `Debug` output.
///
/// `Debug`, `Display` and `Serialize` all print `[redacted]`; the only way to the value is
/// [`Secret::expose`], which makes every use easy to find. The memory is zeroed on drop
/// (through the `secrecy` crate).
///
/// ```
/// let key: lambda_stage::Secret<String> = lambda_stage::Secret::new("hunter2".to_owned());
/// assert_eq!(format!("{key:?} {key}"), "[redacted] [redacted]");
/// assert_eq!(key.expose(), "hunter2");
/// ```
pub struct Secret<T: Zeroize>(SecretBox<T>);

const REDACTED: &str = "[redacted]";

impl<T: Zeroize> Secret<T> {
    /// Wraps `value`, which from now on prints as `[redacted]`.
    pub fn new(value: T) -> Self {
        Secret(SecretBox::new(Box::new(value)))
    }

    /// The secret value. Keep what you do with it out of logs and errors.
    pub fn expose(&self) -> &T {
        self.0.expose_secret()
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret::new(value)
    }
}

impl<T: Zeroize + Clone> Clone for Secret<T> {
    fn clone(&self) -> Self {
        Secret::new(self.expose().clone())
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Zeroize> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de, T: Zeroize + Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rendering_is_redacted() {
        let secret = Secret::new("canary-4f1d".to_owned());
        let rendered = [
            format!("{secret:?}"),
            format!("{secret:#?}"),
            format!("{secret}"),
            serde_json::to_string(&secret).unwrap(),
        ];
        for text in rendered {
            assert!(!text.contains("canary"), "leaked in {text}");
            assert!(text.contains(REDACTED));
        }
        assert_eq!(secret.clone().expose(), "canary-4f1d");
    }
}

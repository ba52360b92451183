//! [`Secret`]: a string that never shows itself in logs, errors or config views.

use std::fmt;

use serde::{Serialize, Serializer};

/// What a [`Secret`] prints instead of its value.
const REDACTED: &str = "***";

/// A password or token from the config file.
///
/// `Debug`, `Display` and `Serialize` all print `***`, so a `Secret` can sit in any struct that
/// is logged or shown through the admin API. [`Secret::expose`] is the one way to read it; call it
/// only where the value is sent or compared (compare in constant time, e.g. with `subtle`).
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value read from configuration.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Equality of the values, for telling whether a reloaded config changed. Not constant-time:
/// authenticate with a constant-time comparison of [`Secret::expose`] instead.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// Whether a `[queue.kafka.properties]` key names a value that must be redacted in views.
///
/// True for keys containing `password`, `secret` or `sasl` (any case), and for `ssl.key.*`
/// (private key material such as `ssl.key.pem`).
pub fn is_sensitive_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "sasl"]
        .iter()
        .any(|word| key.contains(word))
        || key.starts_with("ssl.key.")
}

/// The placeholder printed for redacted values.
pub(super) const fn redacted() -> &'static str {
    REDACTED
}

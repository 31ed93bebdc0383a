//! Credential metadata: a JSON object of at most 4 KiB that travels with a
//! key or token (set at generation or by an import) and is returned by
//! every binding, so callers can carry their own ids (Heratio's original
//! key and user ids, say) without another lookup.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Largest metadata document, in bytes of its compact JSON form.
pub const MAX_METADATA_LEN: usize = 4096;

/// A JSON object, stored and returned in compact form. Cheap to clone (the
/// validator's cache shares it).
#[derive(Clone, PartialEq, Eq)]
pub struct Metadata(Arc<str>);

impl Metadata {
    /// Parses and checks a metadata document.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) if the
    /// text is not a JSON object or its compact form exceeds 4 KiB.
    pub fn parse(text: &str) -> Result<Metadata> {
        let object: Map<String, Value> = serde_json::from_str(text)
            .map_err(|e| Error::invalid_input(format!("metadata must be a JSON object: {e}")))?;
        Metadata::from_object(object)
    }

    /// Metadata from a JSON object built in code.
    ///
    /// # Errors
    ///
    /// As [`Metadata::parse`], for the size.
    pub fn from_object(object: Map<String, Value>) -> Result<Metadata> {
        let compact = Value::Object(object).to_string();
        if compact.len() > MAX_METADATA_LEN {
            return Err(Error::invalid_input(format!(
                "metadata is {} bytes as compact JSON; at most {MAX_METADATA_LEN}",
                compact.len()
            )));
        }
        Ok(Metadata(compact.into()))
    }

    /// The compact JSON text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The object, for bindings that hand out structured values.
    #[must_use]
    pub fn to_object(&self) -> Map<String, Value> {
        serde_json::from_str(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Metadata({})", self.0)
    }
}

impl fmt::Display for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_up_to_four_kib() {
        let m = Metadata::parse(r#"{ "heratio_key_id": 7, "heratio_user_id": 3 }"#).unwrap();
        assert_eq!(m.as_str(), r#"{"heratio_key_id":7,"heratio_user_id":3}"#);
        assert_eq!(m.to_object()["heratio_key_id"], 7);
        for bad in ["[]", "7", "\"x\"", "null", "{", ""] {
            assert!(Metadata::parse(bad).is_err(), "{bad}");
        }
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_METADATA_LEN));
        assert!(Metadata::parse(&big).is_err());
        let fits = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_METADATA_LEN - 8));
        assert_eq!(
            Metadata::parse(&fits).unwrap().as_str().len(),
            MAX_METADATA_LEN
        );
    }
}

//! `Heratio\\Keys\\Result`: the read-only answer PHP receives. It keeps the
//! core's [`Validation`] and derives each property when PHP reads it, with
//! the same values as the core's [`ValidationView`] (the binding of the
//! CLI's and web's JSON): building every field up front (message, name,
//! scopes and metadata copies) cost more than the validation itself for a
//! middleware that reads three of them.
//!
//! [`ValidationView`]: heratio_keys_core::ValidationView

use ext_php_rs::convert::{FromZval, IntoZval};
use ext_php_rs::exception::PhpException;
use ext_php_rs::flags::{ClassFlags, DataType};
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendHashTable, Zval};
use ext_php_rs::zend::ce;
use heratio_keys_core::model::Credential;
use heratio_keys_core::{Metadata, Validation};
use serde_json::{Map, Value};

/// The outcome of a validation, read-only.
///
/// `valid`, `status` (core's status names), `httpStatus` and `message`
/// (safe to send to the HTTP client) are always set; `clientId`, `keyId`,
/// `name`, `scopes` and `metadata` describe the matched credential when one
/// was found; `rateLimit`, `rateRemaining` and `retryAfter` its hourly
/// budget.
#[php_class]
#[php(name = "Heratio\\Keys\\Result")]
#[php(flags = ClassFlags::Final.union(ClassFlags::NoDynamicProperties))]
#[derive(Debug, Clone)]
pub struct KeyResult {
    validation: Validation,
}

impl KeyResult {
    fn credential(&self) -> Option<&Credential> {
        self.validation.credential.as_deref()
    }
}

#[php_impl]
impl KeyResult {
    /// Whether the credential was accepted.
    #[php(getter)]
    pub fn get_valid(&self) -> bool {
        self.validation.is_valid()
    }

    /// The status name.
    #[php(getter)]
    pub fn get_status(&self) -> String {
        self.validation.status.name().to_owned()
    }

    /// The HTTP status to answer with.
    #[php(getter)]
    pub fn get_http_status(&self) -> i64 {
        i64::from(self.validation.status.http_status())
    }

    /// A message for the HTTP client; never contains the key.
    #[php(getter)]
    pub fn get_message(&self) -> String {
        self.validation.message()
    }

    /// The owning client, when a credential was matched.
    #[php(getter)]
    pub fn get_client_id(&self) -> Option<i64> {
        self.credential().map(|c| c.client_id)
    }

    /// The credential's id, when one was matched.
    #[php(getter)]
    pub fn get_key_id(&self) -> Option<i64> {
        self.credential().map(|c| c.id)
    }

    /// The credential's label (`production`, …), when one was matched.
    #[php(getter)]
    pub fn get_name(&self) -> Option<String> {
        self.credential().map(|c| c.name.clone())
    }

    /// The scopes the credential holds (empty when none was matched).
    #[php(getter)]
    pub fn get_scopes(&self) -> Vec<String> {
        self.credential()
            .map_or_else(Vec::new, |c| c.scopes.as_slice().to_vec())
    }

    /// The credential's metadata object as an associative array (`[]` when
    /// it has none or none was matched).
    #[php(getter)]
    pub fn get_metadata(&self) -> MetadataArray {
        MetadataArray(
            self.credential()
                .and_then(|c| c.metadata.as_ref())
                .map(Metadata::to_object),
        )
    }

    /// The credential's hourly rate limit (`null`: unlimited, or none
    /// matched).
    #[php(getter)]
    pub fn get_rate_limit(&self) -> Option<i64> {
        self.credential().and_then(|c| c.rate_limit)
    }

    /// Requests left this hour, when this validation was counted against
    /// the credential's limit.
    #[php(getter)]
    pub fn get_rate_remaining(&self) -> Option<i64> {
        self.validation.rate_remaining()
    }

    /// Seconds until the hourly budget renews, when `rate_limited`.
    #[php(getter)]
    pub fn get_retry_after(&self) -> Option<i64> {
        self.validation.retry_after()
    }

    /// Refuses the write: the result is read-only.
    #[php(setter)]
    pub fn set_valid(&mut self, _value: bool) {
        // Thrown directly: ext-php-rs ignores a setter's return value.
        read_only("valid").throw();
    }

    /// Refuses the write: the result is read-only.
    #[php(setter)]
    pub fn set_status(&mut self, _value: String) {
        // Thrown directly: ext-php-rs ignores a setter's return value.
        read_only("status").throw();
    }

    /// Refuses the write: the result is read-only.
    #[php(setter)]
    pub fn set_http_status(&mut self, _value: i64) {
        // Thrown directly: ext-php-rs ignores a setter's return value.
        read_only("httpStatus").throw();
    }

    /// Refuses the write: the result is read-only.
    #[php(setter)]
    pub fn set_message(&mut self, _value: String) {
        // Thrown directly: ext-php-rs ignores a setter's return value.
        read_only("message").throw();
    }

    /// Refuses the write: the result is read-only.
    #[php(setter)]
    pub fn set_client_id(&mut self, _value: Option<i64>) {
        // Thrown directly: ext-php-rs ignores a setter's return value.
        read_only("clientId").throw();
    }

    /// Refuses the write: the result is read-only.
    #[php(setter)]
    pub fn set_key_id(&mut self, _value: Option<i64>) {
        // Thrown directly: ext-php-rs ignores a setter's return value.
        read_only("keyId").throw();
    }

    /// Refuses the write: the result is read-only.
    #[php(setter)]
    pub fn set_name(&mut self, _value: Option<String>) {
        // Thrown directly: ext-php-rs ignores a setter's return value.
        read_only("name").throw();
    }

    /// Refuses the write: the result is read-only.
    #[php(setter)]
    pub fn set_scopes(&mut self, _value: Vec<String>) {
        // Thrown directly: ext-php-rs ignores a setter's return value.
        read_only("scopes").throw();
    }

    /// Refuses the write: the result is read-only.
    #[php(setter)]
    pub fn set_metadata(&mut self, _value: MetadataArray) {
        // Thrown directly: ext-php-rs ignores a setter's return value.
        read_only("metadata").throw();
    }

    /// Refuses the write: the result is read-only.
    #[php(setter)]
    pub fn set_rate_limit(&mut self, _value: Option<i64>) {
        // Thrown directly: ext-php-rs ignores a setter's return value.
        read_only("rateLimit").throw();
    }

    /// Refuses the write: the result is read-only.
    #[php(setter)]
    pub fn set_rate_remaining(&mut self, _value: Option<i64>) {
        // Thrown directly: ext-php-rs ignores a setter's return value.
        read_only("rateRemaining").throw();
    }

    /// Refuses the write: the result is read-only.
    #[php(setter)]
    pub fn set_retry_after(&mut self, _value: Option<i64>) {
        // Thrown directly: ext-php-rs ignores a setter's return value.
        read_only("retryAfter").throw();
    }
}

/// `Result::$metadata`: the metadata object, handed to PHP as
/// `json_decode($json, true)` would: objects become associative arrays,
/// arrays lists, integers `int` (beyond 64 bits `float`), other numbers
/// `float`; keys that are decimal integers become integer keys, as in any
/// PHP array. No metadata is `[]`.
#[derive(Debug, Clone, Default)]
pub struct MetadataArray(Option<Map<String, Value>>);

impl IntoZval for MetadataArray {
    const TYPE: DataType = DataType::Array;
    const NULLABLE: bool = false;

    fn set_zval(self, zv: &mut Zval, _persistent: bool) -> ext_php_rs::error::Result<()> {
        let table = match &self.0 {
            Some(object) => object_table(object)?,
            None => ZendHashTable::new(),
        };
        zv.set_hashtable(table);
        Ok(())
    }
}

impl FromZval<'_> for MetadataArray {
    const TYPE: DataType = DataType::Mixed;

    /// Any value: the conversion exists only so that a write reaches the
    /// setter, which refuses it as a write to a read-only property.
    fn from_zval(_zval: &Zval) -> Option<Self> {
        Some(MetadataArray(None))
    }
}

/// A JSON object as a PHP associative array.
fn object_table(
    object: &Map<String, Value>,
) -> ext_php_rs::error::Result<ext_php_rs::boxed::ZBox<ZendHashTable>> {
    let mut table = ZendHashTable::with_capacity(u32::try_from(object.len()).unwrap_or(u32::MAX));
    for (key, value) in object {
        // A `&str` key that is a canonical decimal integer becomes an
        // integer key, like PHP's own array literals and json_decode.
        table.insert(key.as_str(), json_zval(value)?)?;
    }
    Ok(table)
}

/// One JSON value as a PHP value.
fn json_zval(value: &Value) -> ext_php_rs::error::Result<Zval> {
    let mut z = Zval::new();
    match value {
        Value::Null => z.set_null(),
        Value::Bool(b) => z.set_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => z.set_long(i),
            // u64 above i64::MAX and fractions: float, as json_decode.
            None => z.set_double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => z.set_string(s, false)?,
        Value::Array(items) => {
            let mut list =
                ZendHashTable::with_capacity(u32::try_from(items.len()).unwrap_or(u32::MAX));
            for item in items {
                list.push(json_zval(item)?)?;
            }
            z.set_hashtable(list);
        }
        Value::Object(object) => z.set_hashtable(object_table(object)?),
    }
    Ok(z)
}

fn read_only(property: &str) -> PhpException {
    PhpException::new(
        format!("Cannot modify readonly property Heratio\\Keys\\Result::${property}"),
        0,
        ce::error(),
    )
}

impl From<Validation> for KeyResult {
    fn from(validation: Validation) -> Self {
        KeyResult { validation }
    }
}

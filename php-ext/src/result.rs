//! `Heratio\\Keys\\Result`: the read-only answer PHP receives, a thin
//! wrapper over the core's [`ValidationView`].

use ext_php_rs::exception::PhpException;
use ext_php_rs::flags::ClassFlags;
use ext_php_rs::prelude::*;
use ext_php_rs::zend::ce;
use heratio_keys_core::{Validation, ValidationView};

/// The outcome of a validation, read-only.
///
/// `valid`, `status` (`valid`, `malformed`, `wrong_kind`, `not_found`,
/// `revoked`, `expired`, `client_inactive`, `forbidden`, `unavailable`),
/// `httpStatus` (200, 401, 403 or 503) and `message` (safe to send to the
/// HTTP client) are always set; `clientId`, `keyId`, `name` and `scopes`
/// describe the matched credential when one was found.
#[php_class]
#[php(name = "Heratio\\Keys\\Result")]
#[php(flags = ClassFlags::Final.union(ClassFlags::NoDynamicProperties))]
#[derive(Debug, Clone)]
pub struct KeyResult {
    view: ValidationView,
}

#[php_impl]
impl KeyResult {
    /// Whether the credential was accepted.
    #[php(getter)]
    pub fn get_valid(&self) -> bool {
        self.view.valid
    }

    /// The status name.
    #[php(getter)]
    pub fn get_status(&self) -> String {
        self.view.status.to_owned()
    }

    /// The HTTP status to answer with.
    #[php(getter)]
    pub fn get_http_status(&self) -> i64 {
        i64::from(self.view.http_status)
    }

    /// A message for the HTTP client; never contains the key.
    #[php(getter)]
    pub fn get_message(&self) -> String {
        self.view.message.clone()
    }

    /// The owning client, when a credential was matched.
    #[php(getter)]
    pub fn get_client_id(&self) -> Option<i64> {
        self.view.client_id
    }

    /// The credential's id, when one was matched.
    #[php(getter)]
    pub fn get_key_id(&self) -> Option<i64> {
        self.view.key_id
    }

    /// The credential's label (`production`, …), when one was matched.
    #[php(getter)]
    pub fn get_name(&self) -> Option<String> {
        self.view.name.clone()
    }

    /// The scopes the credential holds (empty when none was matched).
    #[php(getter)]
    pub fn get_scopes(&self) -> Vec<String> {
        self.view.scopes.clone()
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
}

fn read_only(property: &str) -> PhpException {
    PhpException::new(
        format!("Cannot modify readonly property Heratio\\Keys\\Result::${property}"),
        0,
        ce::error(),
    )
}

impl From<&Validation> for KeyResult {
    fn from(v: &Validation) -> Self {
        KeyResult {
            view: ValidationView::from(v),
        }
    }
}

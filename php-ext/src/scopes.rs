//! The `$scopes` argument, read where PHP keeps it: every request passes
//! one, and converting it to a `Vec<String>` allocated the vector and each
//! scope, then freed them, on every call.

use ext_php_rs::convert::{FromZval, StubLiteral};
use ext_php_rs::exception::{PhpException, PhpResult};
use ext_php_rs::flags::DataType;
use ext_php_rs::types::{ZendHashTable, Zval};
use ext_php_rs::zend::ce;
use heratio_keys_core::model::check_required;

use crate::misuse;

/// `array $scopes = []`, borrowed from the caller's array.
#[derive(Clone, Copy)]
pub struct ScopeList<'a>(Option<&'a ZendHashTable>);

impl ScopeList<'static> {
    /// The default: no scope required.
    pub const NONE: Self = ScopeList(None);
}

impl<'a> FromZval<'a> for ScopeList<'a> {
    const TYPE: DataType = DataType::Array;

    fn from_zval(zval: &'a Zval) -> Option<Self> {
        zval.array().map(|table| ScopeList(Some(table)))
    }
}

impl StubLiteral for ScopeList<'_> {
    fn stub_literal(&self) -> String {
        "[]".to_owned()
    }
}

/// Scopes a call requires without allocating; more go to the heap.
const INLINE_SCOPES: usize = 8;

/// The required scopes as the core takes them.
pub enum Required<'a> {
    Inline([&'a str; INLINE_SCOPES], usize),
    Heap(Vec<&'a str>),
}

impl<'a> Required<'a> {
    pub fn as_slice(&self) -> &[&'a str] {
        match self {
            Required::Inline(names, len) => &names[..*len],
            Required::Heap(names) => names,
        }
    }
}

/// A scope that is not a (UTF-8) string is a `TypeError`, as PHP reports
/// for a typed parameter; an invalid scope name is a `Heratio\Keys\Exception`
/// by the core's rule (a typo such as `"read "` is a programming error, not
/// a silent 403).
pub fn required(scopes: ScopeList<'_>) -> PhpResult<Required<'_>> {
    let required = match scopes.0 {
        None => Required::Inline([""; INLINE_SCOPES], 0),
        Some(table) if table.len() <= INLINE_SCOPES => {
            let mut names = [""; INLINE_SCOPES];
            let mut len = 0;
            for (slot, value) in names.iter_mut().zip(table.values()) {
                *slot = name(value)?;
                len += 1;
            }
            Required::Inline(names, len)
        }
        Some(table) => Required::Heap(table.values().map(name).collect::<PhpResult<_>>()?),
    };
    check_required(required.as_slice()).map_err(|e| misuse(&e))?;
    Ok(required)
}

fn name(value: &Zval) -> PhpResult<&str> {
    value.str().ok_or_else(|| {
        PhpException::new(
            "Argument `$scopes` must be a list of strings".to_owned(),
            0,
            ce::type_error(),
        )
    })
}

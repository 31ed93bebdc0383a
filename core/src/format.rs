//! The credential format: generation, checksum, digest and the offline check.
//!
//! ```text
//! hk_api_ + 40 base62 body chars + 6 base62 CRC32 chars   (53 chars)
//! hk_ai_  + 40 base62 body chars + 6 base62 CRC32 chars   (52 chars)
//! ```
//!
//! The checksum is error detection, not security: it lets every binding reject
//! typos and garbage before hashing or touching the store.

use std::fmt;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::status::Status;

/// Base62 in the order fixed by the format: digits, upper case, lower case.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Random characters after the prefix.
pub const BODY_LEN: usize = 40;
/// Base62 digits of the CRC32.
pub const CHECKSUM_LEN: usize = 6;
/// Characters kept in clear for identification in lists.
pub const DISPLAY_PREFIX_LEN: usize = 12;

/// A SHA-256 digest of a whole credential string.
pub type Digest = [u8; 32];

/// Which family a credential belongs to. The numbers are the C ABI's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `hk_api_…`: REST API clients.
    ApiKey = 1,
    /// `hk_ai_…`: AI servers.
    AiToken = 2,
}

impl Kind {
    /// Both kinds, API keys first.
    pub const ALL: [Kind; 2] = [Kind::ApiKey, Kind::AiToken];

    /// The literal prefix, underscore included.
    #[must_use]
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::ApiKey => "hk_api_",
            Kind::AiToken => "hk_ai_",
        }
    }

    /// Total length of a well-formed credential of this kind.
    #[must_use]
    pub fn key_len(self) -> usize {
        self.prefix().len() + BODY_LEN + CHECKSUM_LEN
    }

    /// The other kind.
    #[must_use]
    pub fn other(self) -> Kind {
        match self {
            Kind::ApiKey => Kind::AiToken,
            Kind::AiToken => Kind::ApiKey,
        }
    }

    /// The stable numeric code (C ABI, `usage_log.credential_kind`).
    #[must_use]
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The kind with that numeric code.
    #[must_use]
    pub fn from_code(code: i64) -> Option<Kind> {
        match code {
            1 => Some(Kind::ApiKey),
            2 => Some(Kind::AiToken),
            _ => None,
        }
    }

    /// Short name used by the CLI and JSON: `api` or `ai`.
    #[must_use]
    pub fn short_name(self) -> &'static str {
        match self {
            Kind::ApiKey => "api",
            Kind::AiToken => "ai",
        }
    }

    /// Human name: `API key` or `AI token` (capitalised: it also starts
    /// sentences).
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Kind::ApiKey => "API key",
            Kind::AiToken => "AI token",
        }
    }

    /// `an API key` / `an AI token`.
    #[must_use]
    pub fn article_label(self) -> &'static str {
        match self {
            Kind::ApiKey => "an API key",
            Kind::AiToken => "an AI token",
        }
    }

    /// `An API key` / `An AI token`.
    #[must_use]
    pub fn article_label_capitalised(self) -> &'static str {
        match self {
            Kind::ApiKey => "An API key",
            Kind::AiToken => "An AI token",
        }
    }

    /// The table holding credentials of this kind.
    pub(crate) fn table(self) -> &'static str {
        match self {
            Kind::ApiKey => "api_key",
            Kind::AiToken => "ai_token",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

impl std::str::FromStr for Kind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "api" | "api_key" => Ok(Kind::ApiKey),
            "ai" | "ai_token" => Ok(Kind::AiToken),
            // PHP passes `$kind` through as given: quoted cut.
            _ => Err(Error::invalid_input(format!(
                "invalid kind {}: expected \"api\" or \"ai\"",
                crate::model::records::quoted(s, 16)
            ))),
        }
    }
}

/// The shape of a stored API key's plaintext: ours, or one of the two
/// shapes AtoM Heratio issued before heratio-keys (imported by digest). The
/// numbers are stored (`key_shape`); never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyShape {
    /// `hk_api_…` / `hk_ai_…`, with a checksum.
    Native = 0,
    /// Heratio's `Str::random(48)`: 48 characters of `[A-Za-z0-9]`.
    HeratioRandom = 1,
    /// Heratio's research keys: `rk_` and 64 lowercase hex digits.
    HeratioResearch = 2,
}

impl KeyShape {
    /// Every shape, by number.
    pub const ALL: [KeyShape; 3] = [
        KeyShape::Native,
        KeyShape::HeratioRandom,
        KeyShape::HeratioResearch,
    ];

    /// The stored number.
    #[must_use]
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The shape with that number.
    #[must_use]
    pub fn from_code(code: i64) -> Option<KeyShape> {
        KeyShape::ALL
            .into_iter()
            .find(|s| i64::from(s.code()) == code)
    }

    /// A short name for lists and JSON (`native`, `heratio`, `research`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            KeyShape::Native => "native",
            KeyShape::HeratioRandom => "heratio",
            KeyShape::HeratioResearch => "research",
        }
    }
}

/// The legacy shape of a presented API key, if it has one: Heratio's 48
/// alphanumerics or `rk_` + 64 lowercase hex. Anything else (ours included)
/// is `None`. Cheap: length first, then one pass over the bytes.
#[must_use]
pub fn legacy_shape(key: &[u8]) -> Option<KeyShape> {
    match key.len() {
        48 if key.iter().all(u8::is_ascii_alphanumeric) => Some(KeyShape::HeratioRandom),
        67 if key.starts_with(b"rk_")
            && key[3..]
                .iter()
                .all(|&c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) =>
        {
            Some(KeyShape::HeratioResearch)
        }
        _ => None,
    }
}

/// A freshly generated credential. The plaintext lives only here, is wiped
/// from memory on drop and is redacted from `Debug`.
pub struct SecretKey(Zeroizing<String>);

impl SecretKey {
    /// The plaintext, to be shown to its owner exactly once.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the plaintext.
    #[must_use]
    pub fn digest(&self) -> Digest {
        digest(self.0.as_bytes())
    }

    /// The display prefix stored for identification.
    #[must_use]
    pub fn display_prefix(&self) -> &str {
        &self.0[..DISPLAY_PREFIX_LEN]
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({}…)", self.display_prefix())
    }
}

/// Generates a credential of `kind` from the operating system's CSPRNG.
///
/// # Errors
///
/// [`ErrorKind::Internal`](crate::ErrorKind::Internal) if the operating system
/// cannot provide random bytes.
pub fn generate(kind: Kind) -> Result<SecretKey> {
    let mut key = Zeroizing::new(String::with_capacity(kind.key_len()));
    key.push_str(kind.prefix());
    let mut pool = Zeroizing::new([0u8; 64]);
    let mut drawn = 0;
    while drawn < BODY_LEN {
        getrandom::fill(&mut pool[..])
            .map_err(|e| Error::internal(format!("operating system RNG failed: {e}")))?;
        // 248 = 4 × 62: accepting only bytes below it keeps every symbol
        // equally likely (no modulo bias).
        for &byte in pool.iter().filter(|&&b| b < 248) {
            if drawn == BODY_LEN {
                break;
            }
            key.push(char::from(ALPHABET[usize::from(byte % 62)]));
            drawn += 1;
        }
    }
    let checksum = checksum(key.as_bytes());
    key.push_str(
        std::str::from_utf8(&checksum).map_err(|_| Error::internal("checksum not ASCII"))?,
    );
    Ok(SecretKey(key))
}

/// The 6 base62 checksum characters of `prefix + body`: zlib's CRC32, most
/// significant digit first, left-padded with `0`.
#[must_use]
pub fn checksum(prefix_and_body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut crc = crc32fast::hash(prefix_and_body);
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(crc % 62) as usize];
        crc /= 62;
    }
    out
}

/// SHA-256 of the whole credential string, prefix included.
#[must_use]
pub fn digest(key: &[u8]) -> Digest {
    Sha256::digest(key).into()
}

/// Whether two digests are equal, in constant time. `subtle` compares a
/// word at a time: its byte-slice comparison pays an optimisation barrier
/// per byte, 32 of them on every validation.
#[must_use]
pub fn digests_equal(a: &Digest, b: &Digest) -> bool {
    bool::from(digest_words(a).ct_eq(&digest_words(b)))
}

/// A digest as four little-endian words: how the host table stores it,
/// and how [`digests_equal`] compares it.
pub(crate) fn digest_words(d: &Digest) -> [u64; 4] {
    std::array::from_fn(|i| u64::from_le_bytes(d[i * 8..i * 8 + 8].try_into().unwrap_or_default()))
}

/// Lowercase hex of a digest: byte for byte PHP's `hash('sha256', $key)`.
#[must_use]
pub fn digest_hex(digest: &Digest) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// Parses 64 lowercase or uppercase hex characters into a digest.
#[must_use]
pub fn parse_digest_hex(hex: &str) -> Option<Digest> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *slot = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// Marks bytes outside the alphabet in [`DIGIT_VALUE`].
const NOT_BASE62: u8 = 0xff;

/// Value of each byte as a base62 digit, or [`NOT_BASE62`].
static DIGIT_VALUE: [u8; 256] = {
    let mut table = [NOT_BASE62; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Whether `key` is a well-formed credential of exactly `kind`.
///
/// The presented checksum is decoded to a number and compared with the
/// CRC32, rather than encoding the CRC32 and comparing text: six table
/// look-ups and multiply-adds instead of six divisions on every request.
fn is_well_formed(kind: Kind, key: &[u8]) -> bool {
    let prefix = kind.prefix().as_bytes();
    if key.len() != kind.key_len() || !key.starts_with(prefix) {
        return false;
    }
    let (signed, check) = key.split_at(key.len() - CHECKSUM_LEN);
    // Without early exit or table lookups, so the compiler checks 16 or
    // 32 characters per instruction: this runs on every validation.
    if !signed[prefix.len()..]
        .iter()
        .fold(true, |ok, c| ok & c.is_ascii_alphanumeric())
    {
        return false;
    }
    let mut presented: u64 = 0;
    for &c in check {
        let digit = DIGIT_VALUE[usize::from(c)];
        if digit == NOT_BASE62 {
            return false;
        }
        presented = presented * 62 + u64::from(digit);
    }
    // 6 base62 digits have a unique value below 62^6, so equal values mean
    // an identical, canonically padded checksum.
    presented == u64::from(crc32fast::hash(signed))
}

/// The offline check: length, prefix, alphabet and checksum, no store.
///
/// Returns [`Status::Valid`] for a well-formed credential of `kind`,
/// [`Status::WrongKind`] for a well-formed credential of the other kind and
/// [`Status::Malformed`] for anything else (including non-UTF-8 and NUL bytes,
/// which fall outside the alphabet).
#[must_use]
pub fn check_format(kind: Kind, key: &[u8]) -> Status {
    if is_well_formed(kind, key) {
        Status::Valid
    } else if is_well_formed(kind.other(), key) {
        Status::WrongKind
    } else {
        Status::Malformed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_differing_in_any_byte_are_unequal() {
        let a = digest(b"hk_api_a");
        assert!(digests_equal(&a, &a.clone()));
        for i in 0..32 {
            let mut b = a;
            b[i] ^= 0x80;
            assert!(!digests_equal(&a, &b), "byte {i}");
        }
    }

    #[test]
    fn checksum_and_digest_vectors() {
        let zeros = format!("hk_api_{}", "0".repeat(40));
        let key = format!(
            "{zeros}{}",
            std::str::from_utf8(&checksum(zeros.as_bytes())).unwrap()
        );
        assert_eq!(key, "hk_api_00000000000000000000000000000000000000001Wtgbr");
        assert_eq!(
            digest_hex(&digest(key.as_bytes())),
            "82f3edac85516411e583836763b04f46cadc865f35df42bf45bd478254db40d4"
        );

        let alpha = "hk_api_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN";
        assert_eq!(&checksum(alpha.as_bytes()), b"1KSdTn");
        assert_eq!(
            digest_hex(&digest(format!("{alpha}1KSdTn").as_bytes())),
            "e78561c293753fd5b6f79788164bd8a9a56ca170e5f41b236ebb82ef8dcc0a2c"
        );

        assert_eq!(
            &checksum(format!("hk_ai_{}", "Z".repeat(40)).as_bytes()),
            b"1nboBr"
        );
        assert_eq!(
            &checksum(b"hk_ai_0123456789012345678901234567890123456789"),
            b"2TDjZ0"
        );
    }

    #[test]
    fn vectors_pass_the_format_check_for_their_kind_only() {
        let api = b"hk_api_00000000000000000000000000000000000000001Wtgbr";
        assert_eq!(check_format(Kind::ApiKey, api), Status::Valid);
        assert_eq!(check_format(Kind::AiToken, api), Status::WrongKind);
        let ai = b"hk_ai_01234567890123456789012345678901234567892TDjZ0";
        assert_eq!(check_format(Kind::AiToken, ai), Status::Valid);
        assert_eq!(check_format(Kind::ApiKey, ai), Status::WrongKind);
    }

    #[test]
    fn garbage_is_malformed() {
        for input in [
            &b""[..],
            b"hk_api_",
            b"hk_api_00000000000000000000000000000000000000001Wtgbs",
            b"hk_api_0000000000000000000000000000000000000000\x001Wtgbr",
            b"hk_api_0000000000000000000000000000000000000000\xff1Wtgb",
            b"HK_API_00000000000000000000000000000000000000001Wtgbr",
            b"hk_api_00000000000000000000000000000000000000001Wtgbr ",
        ] {
            assert_eq!(
                check_format(Kind::ApiKey, input),
                Status::Malformed,
                "{input:?}"
            );
        }
    }

    #[test]
    fn legacy_shapes_are_exact() {
        let random = "aB3".repeat(16);
        assert_eq!(
            legacy_shape(random.as_bytes()),
            Some(KeyShape::HeratioRandom)
        );
        assert_eq!(legacy_shape(&random.as_bytes()[..47]), None);
        assert_eq!(legacy_shape(format!("{random}x").as_bytes()), None);
        assert_eq!(legacy_shape("aB3-".repeat(12).as_bytes()), None);
        let research = format!("rk_{}", "0a".repeat(32));
        assert_eq!(
            legacy_shape(research.as_bytes()),
            Some(KeyShape::HeratioResearch)
        );
        assert_eq!(legacy_shape(research.to_uppercase().as_bytes()), None);
        assert_eq!(
            legacy_shape(format!("rk_{}", "0g".repeat(32)).as_bytes()),
            None
        );
        let ours = generate(Kind::ApiKey).unwrap();
        assert_eq!(legacy_shape(ours.expose().as_bytes()), None);
        for shape in KeyShape::ALL {
            assert_eq!(KeyShape::from_code(i64::from(shape.code())), Some(shape));
        }
    }

    #[test]
    fn hex_round_trip() {
        let d = digest(b"x");
        assert_eq!(parse_digest_hex(&digest_hex(&d)), Some(d));
        assert_eq!(parse_digest_hex("zz"), None);
    }

    #[test]
    fn secret_debug_is_redacted() {
        let key = generate(Kind::ApiKey).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains(key.expose()));
        assert!(shown.contains(key.display_prefix()));
    }
}

//! Optional bearer authentication for `/user`. The secret variable `api_token`
//! turns it on: empty (the default) keeps the service open; set, every
//! request must carry `Authorization: Bearer <token>`. Answers follow Django
//! REST Framework's TokenAuthentication, with `WWW-Authenticate: Bearer`.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The component variable holding the token.
const API_TOKEN_VARIABLE: &str = "api_token";

/// Why a request is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer …` header at all.
    Missing,
    /// A header with another scheme, or the wrong token.
    Invalid,
}

impl Refusal {
    pub fn detail(&self) -> &'static str {
        match self {
            Refusal::Missing => "Authentication credentials were not provided.",
            Refusal::Invalid => "Invalid token.",
        }
    }
}

/// The configured token; `None` when authentication is off. A variable the
/// component does not declare counts as empty.
pub fn configured_token() -> Result<Option<String>, String> {
    use spin_sdk::variables::Error;
    match spin_sdk::variables::get(API_TOKEN_VARIABLE) {
        Ok(token) if token.is_empty() => Ok(None),
        Ok(token) => Ok(Some(token)),
        Err(Error::Undefined(_)) => Ok(None),
        // Failing open here would serve everyone: refuse instead.
        Err(e) => Err(format!("variable {API_TOKEN_VARIABLE}: {e}")),
    }
}

/// Checks an `Authorization` header value against the token. Nothing about
/// the token leaks through response times: not where the first differing byte
/// is, and not its length (see [`tokens_match`]).
pub fn check(header: Option<&str>, token: &str) -> Result<(), Refusal> {
    let header = header.map(str::trim).filter(|h| !h.is_empty()).ok_or(Refusal::Missing)?;
    let (scheme, credentials) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::Missing);
    }
    let credentials = credentials.trim();
    if credentials.is_empty() {
        return Err(Refusal::Invalid);
    }
    if tokens_match(credentials, token) {
        Ok(())
    } else {
        Err(Refusal::Invalid)
    }
}

/// What is compared: a fixed-size digest of each side, so the comparison is
/// the same 32-byte constant-time loop whatever the two lengths are (a
/// compare of the raw bytes returns at once on a length mismatch).
fn comparable(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn tokens_match(presented: &str, token: &str) -> bool {
    bool::from(comparable(presented).ct_eq(&comparable(token)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "s3cr3t-token-for-tests";

    #[test]
    fn the_compared_value_is_the_token_s_sha_256_digest() {
        // FIPS 180-2's known answer for "abc": the fixed size comes from a
        // digest, not from padding or cutting the token to 32 bytes.
        let hex: String = comparable("abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn tokens_that_padding_or_cutting_to_a_fixed_size_would_confuse_are_refused() {
        // Zero-padding to 32 bytes would take these for the token...
        for presented in [format!("{TOKEN}\0"), format!("{TOKEN}\0\0"), TOKEN[..TOKEN.len() - 1].to_owned()] {
            assert!(!tokens_match(&presented, TOKEN), "{presented:?}");
        }
        // ...and cutting to 32 bytes would take a long token for any other
        // with the same first 32 bytes.
        let long = format!("{}-one", "x".repeat(40));
        for presented in [format!("{}-two", "x".repeat(40)), "x".repeat(40), "x".repeat(1 << 20)] {
            assert!(!tokens_match(&presented, &long), "{:.50}", presented);
        }
        assert!(tokens_match(&long, &long));
    }

    #[test]
    fn only_the_exact_token_passes() {
        assert_eq!(check(Some(&format!("Bearer {TOKEN}")), TOKEN), Ok(()));
        assert_eq!(check(Some(&format!("bearer   {TOKEN} ")), TOKEN), Ok(()));
        for wrong in ["Bearer s3cr3t", "Bearer s3cr3t-token-for-tests2", "Bearer S3CR3T-TOKEN-FOR-TESTS", "Bearer"] {
            assert_eq!(check(Some(wrong), TOKEN), Err(Refusal::Invalid), "{wrong}");
        }
        assert_eq!(check(None, TOKEN), Err(Refusal::Missing));
        assert_eq!(check(Some(&format!("Basic {TOKEN}")), TOKEN), Err(Refusal::Missing));
    }
}

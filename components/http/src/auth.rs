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
    fn every_length_is_compared_as_the_same_fixed_size_digest() {
        // The compared values have one size, whatever was presented: empty,
        // a prefix of the token, the token, the token and more, megabytes.
        let long = "x".repeat(1 << 20);
        for presented in ["", "s", &TOKEN[..TOKEN.len() - 1], TOKEN, &format!("{TOKEN}x"), &long] {
            let (a, b) = (comparable(presented), comparable(TOKEN));
            assert_eq!((a.len(), b.len()), (32, 32));
            assert_eq!(tokens_match(presented, TOKEN), presented == TOKEN, "{:.40}", presented);
        }
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

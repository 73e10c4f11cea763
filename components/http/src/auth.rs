//! Optional bearer authentication for `/user`. The secret variable `api_token`
//! turns it on: empty (the default) keeps the service open; set, every
//! request must carry `Authorization: Bearer <token>`. Answers follow Django
//! REST Framework's TokenAuthentication, with `WWW-Authenticate: Bearer`.

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

/// Checks an `Authorization` header value against the token. The comparison
/// takes the same time wherever the first differing byte is, so response
/// times do not reveal the token a byte at a time.
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
    if bool::from(credentials.as_bytes().ct_eq(token.as_bytes())) {
        Ok(())
    } else {
        Err(Refusal::Invalid)
    }
}

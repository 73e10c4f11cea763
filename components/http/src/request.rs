//! Reading what the component needs from a request: one query parameter, the
//! content type, the conditional headers, and a body that is never buffered
//! beyond the size limit.

use futures::StreamExt;
use spin_sdk::http::IncomingRequest;
use user_info::{Preconditions, Tags};

/// The first value of a query parameter, percent-decoded.
pub fn query_param(req: &IncomingRequest, name: &str) -> Option<String> {
    let path = req.path_with_query()?;
    let query = path.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// A request header's value (the first, when repeated).
pub fn header(req: &IncomingRequest, name: &str) -> Option<String> {
    req.headers()
        .entries()
        .into_iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| String::from_utf8_lossy(&value).into_owned())
}

/// Every value of a list-valued header, joined as one field value (RFC 9110
/// §5.3: repeated lines of a list are one comma-separated list).
fn header_list(req: &IncomingRequest, name: &str) -> Option<String> {
    let values: Vec<String> = req
        .headers()
        .entries()
        .into_iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| String::from_utf8_lossy(&value).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// The request's `If-Match` and `If-None-Match` (the domain reads them).
pub fn preconditions(req: &IncomingRequest) -> Preconditions {
    Preconditions {
        if_match: header_list(req, "if-match").map(|v| Tags::parse_if_match(&v)),
        if_none_match: header_list(req, "if-none-match").map(|v| Tags::parse_if_none_match(&v)),
    }
}

/// Accepts `application/json` and `application/<x>+json`, with any parameters;
/// otherwise returns the offending media type (empty when absent).
pub fn require_json(req: &IncomingRequest) -> Result<(), String> {
    let content_type = header(req, "content-type").unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let is_json = media_type == "application/json"
        || (media_type.starts_with("application/") && media_type.ends_with("+json"));
    if is_json {
        Ok(())
    } else {
        Err(content_type)
    }
}

/// The whole `detail` of a 400 for a body the host could not deliver (the
/// client went away mid-body, a chunk was malformed): fixed text, as the
/// cause names nothing the client can act on.
pub const BODY_UNREADABLE: &str = "Could not read the request body.";

pub enum BodyError {
    TooLarge,
    Stream(String),
}

/// Reads the body, refusing it as soon as it exceeds `limit` bytes (by its
/// declared Content-Length or by what actually arrives).
pub async fn read_body(req: IncomingRequest, limit: usize) -> Result<Vec<u8>, BodyError> {
    let declared = header(&req, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Stream(format!("{e:?}")))?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

//! JSON responses: every answer of the component with a body is
//! `application/json`, errors in Django REST Framework's shapes; 204 and 304
//! have no body (RFC 9110 §15.3.5, §15.4.5).

use serde_json::json;
use spin_sdk::http::{Fields, OutgoingResponse, ResponseOutparam};
use user_info::{DbError, DbErrorKind, InputError};

/// What a client waits before retrying after a 503: a database restart
/// typically takes about that long.
const RETRY_AFTER_SECONDS: &str = "1";

pub struct JsonResponse {
    status: u16,
    /// `None`: no body and no Content-Type.
    body: Option<Vec<u8>>,
    /// The user's ETag, on every response that carries or describes one.
    etag: Option<String>,
    allow: Option<&'static str>,
    www_authenticate: bool,
    retry_after: Option<&'static str>,
}

impl JsonResponse {
    pub fn new(status: u16, body: &impl serde::Serialize) -> Self {
        let body = serde_json::to_vec(body).expect("serializable response body");
        JsonResponse { status, body: Some(body), etag: None, allow: None, www_authenticate: false, retry_after: None }
    }

    /// A response without a body: 204 after a delete, 304 for a current copy.
    pub fn empty(status: u16) -> Self {
        JsonResponse { body: None, ..Self::new(status, &()) }
    }

    /// The same response with the ETag of the user at `revision`.
    pub fn with_etag(self, revision: i64) -> Self {
        JsonResponse { etag: Some(user_info::etag(revision)), ..self }
    }

    /// 412, with the current user's ETag when there is one.
    pub fn precondition_failed(current: Option<i64>) -> Self {
        let response = Self::detail(412, "Precondition failed.");
        match current {
            Some(revision) => response.with_etag(revision),
            None => response,
        }
    }

    pub fn detail(status: u16, detail: &str) -> Self {
        Self::new(status, &json!({ "detail": detail }))
    }

    pub fn input_error(e: &InputError) -> Self {
        let status = match e {
            InputError::TooLarge => 413,
            _ => 400,
        };
        Self::new(status, &e.to_json())
    }

    pub fn method_not_allowed(method: &str) -> Self {
        JsonResponse {
            allow: Some("GET, POST, DELETE"),
            ..Self::detail(405, &format!("Method \"{method}\" not allowed."))
        }
    }

    /// 401 with the challenge RFC 6750 asks for.
    pub fn unauthorized(detail: &str) -> Self {
        JsonResponse { www_authenticate: true, ..Self::detail(401, detail) }
    }

    /// Logs the cause (stderr reaches the host's logs) and answers without internals.
    pub fn server_error(e: &dyn std::fmt::Display) -> Self {
        eprintln!("user-http: {e}");
        Self::detail(500, "A server error occurred.")
    }

    /// The store failed: logs the cause (never shown to the client). An
    /// outage or a lock passes, so 503 with `Retry-After`, which a client
    /// retries; any other kind (a label or address not granted, a broken
    /// constraint) fails again as configured: a server error.
    pub fn database_error(e: &DbError) -> Self {
        match e.kind() {
            DbErrorKind::Unavailable | DbErrorKind::Busy => {
                eprintln!("user-http: database unavailable: {e}");
                JsonResponse { retry_after: Some(RETRY_AFTER_SECONDS), ..Self::detail(503, "Service temporarily unavailable.") }
            }
            DbErrorKind::MissingSchema | DbErrorKind::Constraint | DbErrorKind::Other => {
                Self::server_error(&format!("database error: {e}"))
            }
        }
    }

    /// The status and the `Retry-After` value, for the tests.
    #[cfg(test)]
    pub fn status_and_retry_after(&self) -> (u16, Option<&'static str>) {
        (self.status, self.retry_after)
    }

    pub async fn send(self, out: ResponseOutparam) {
        let body = self.body.unwrap_or_default();
        let mut headers = Vec::new();
        if self.status != 204 && self.status != 304 {
            headers.push(("content-type".to_owned(), b"application/json".to_vec()));
            headers.push(("content-length".to_owned(), body.len().to_string().into_bytes()));
        }
        if let Some(etag) = self.etag {
            headers.push(("etag".to_owned(), etag.into_bytes()));
        }
        if let Some(allow) = self.allow {
            headers.push(("allow".to_owned(), allow.as_bytes().to_vec()));
        }
        if let Some(seconds) = self.retry_after {
            headers.push(("retry-after".to_owned(), seconds.as_bytes().to_vec()));
        }
        if self.www_authenticate {
            headers.push(("www-authenticate".to_owned(), b"Bearer".to_vec()));
        }
        let response = OutgoingResponse::new(Fields::from_list(&headers).expect("valid headers"));
        response.set_status_code(self.status).expect("valid status");
        if let Err(e) = out.set_with_body(response, body).await {
            eprintln!("user-http: failed to write the response body: {e:?}");
        }
    }
}

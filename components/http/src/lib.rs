//! Spin HTTP component serving `/user`: a thin adapter that turns requests
//! into domain calls and domain results into JSON responses. All rules live in
//! the `user-info` crate; this file only speaks HTTP. The store (SQLite or
//! PostgreSQL) is the domain's choice from the `database_url` variable.

mod auth;
mod request;
mod response;
#[cfg(all(test, feature = "sqlite"))]
#[path = "../../store_errors.rs"]
mod store_errors;
#[cfg(all(test, feature = "sqlite"))]
mod store_failures;

use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;
use user_info::spin::Store;
use user_info::{Deleted, InputError, ReadVerdict, UpsertOutcome, Written};

use response::JsonResponse;

#[http_component]
async fn handle_user(req: IncomingRequest, out: ResponseOutparam) {
    let response = match authenticate(&req) {
        Err(refusal) => refusal,
        Ok(()) => match req.method() {
            Method::Get => get_user(&req),
            Method::Post => post_user(req).await,
            Method::Delete => delete_user(&req),
            other => JsonResponse::method_not_allowed(&other.to_string()),
        },
    };
    response.send(out).await;
}

/// Every `/user` request, whatever its method, passes here first.
fn authenticate(req: &IncomingRequest) -> Result<(), JsonResponse> {
    let token = match auth::configured_token() {
        Ok(None) => return Ok(()),
        Ok(Some(token)) => token,
        Err(e) => return Err(JsonResponse::server_error(&e)),
    };
    let header = request::header(req, "authorization");
    auth::check(header.as_deref(), &token).map_err(|refusal| JsonResponse::unauthorized(refusal.detail()))
}

fn get_user(req: &IncomingRequest) -> JsonResponse {
    let user_id = match user_info::parse_user_id(request::query_param(req, "user_id").as_deref()) {
        Ok(id) => id,
        Err(errors) => return JsonResponse::new(400, &errors),
    };
    match Store::open().and_then(|db| user_info::read_stored(&db, user_id)) {
        Ok(Some(stored)) => match request::preconditions(req).evaluate_read(stored.revision) {
            ReadVerdict::Proceed => JsonResponse::new(200, &stored.user).with_etag(stored.revision),
            ReadVerdict::NotModified => JsonResponse::empty(304).with_etag(stored.revision),
            ReadVerdict::Failed => JsonResponse::precondition_failed(Some(stored.revision)),
        },
        Ok(None) => JsonResponse::detail(404, "Not found."),
        Err(e) => JsonResponse::database_error(&e),
    }
}

/// 204 when the user existed and is now erased; 404 when there was none.
fn delete_user(req: &IncomingRequest) -> JsonResponse {
    let user_id = match user_info::parse_user_id(request::query_param(req, "user_id").as_deref()) {
        Ok(id) => id,
        Err(errors) => return JsonResponse::new(400, &errors),
    };
    let preconditions = request::preconditions(req);
    match Store::open().and_then(|db| user_info::delete_user(&db, user_id, &preconditions)) {
        Ok(Deleted::Deleted) => JsonResponse::empty(204),
        Ok(Deleted::NotFound) => JsonResponse::detail(404, "Not found."),
        Ok(Deleted::PreconditionFailed { current }) => JsonResponse::precondition_failed(Some(current)),
        Err(e) => JsonResponse::database_error(&e),
    }
}

async fn post_user(req: IncomingRequest) -> JsonResponse {
    let preconditions = request::preconditions(&req);
    if let Err(content_type) = request::require_json(&req) {
        return JsonResponse::detail(
            415,
            &format!("Unsupported media type \"{content_type}\" in request."),
        );
    }
    let body = match request::read_body(req, user_info::MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(request::BodyError::TooLarge) => {
            return JsonResponse::input_error(&InputError::TooLarge)
        }
        Err(request::BodyError::Stream(e)) => {
            // The cause is the host's text (its error codes, its internals):
            // logged, never sent to the client.
            eprintln!("user-http: reading the request body failed: {e}");
            return JsonResponse::detail(400, request::BODY_UNREADABLE);
        }
    };
    // Validate before opening the store: a rejected request costs no connection.
    let patch = match user_info::parse_patch(&body) {
        Ok(patch) => patch,
        Err(e) => return JsonResponse::input_error(&e),
    };
    match Store::open().and_then(|db| user_info::write_user_if(&db, &patch, &preconditions)) {
        Ok(Written::Saved(saved)) => {
            let status = match saved.outcome {
                UpsertOutcome::Created => 201,
                UpsertOutcome::Updated => 200,
            };
            JsonResponse::new(status, &saved.user).with_etag(saved.revision)
        }
        Ok(Written::PreconditionFailed { current }) => JsonResponse::precondition_failed(current),
        Err(e) => JsonResponse::database_error(&e),
    }
}

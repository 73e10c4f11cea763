//! Spin HTTP component serving `/user`: a thin adapter that turns requests
//! into domain calls and domain results into JSON responses. All rules live in
//! the `user-info` crate; this file only speaks HTTP. The store (SQLite or
//! PostgreSQL) is the domain's choice from the `database_url` variable.

mod auth;
mod request;
mod response;

use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;
use user_info::spin::Store;
use user_info::{InputError, UpsertOutcome};

use response::JsonResponse;

#[http_component]
async fn handle_user(req: IncomingRequest, out: ResponseOutparam) {
    let response = match authenticate(&req) {
        Err(refusal) => refusal,
        Ok(()) => match req.method() {
            Method::Get => get_user(&req),
            Method::Post => post_user(req).await,
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
    match Store::open().and_then(|db| user_info::read_user(&db, user_id)) {
        Ok(Some(user)) => JsonResponse::new(200, &user),
        Ok(None) => JsonResponse::detail(404, "Not found."),
        Err(e) => JsonResponse::database_error(&e),
    }
}

async fn post_user(req: IncomingRequest) -> JsonResponse {
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
    match Store::open().and_then(|db| user_info::write_user(&db, &patch)) {
        Ok(saved) => {
            let status = match saved.outcome {
                UpsertOutcome::Created => 201,
                UpsertOutcome::Updated => 200,
            };
            JsonResponse::new(status, &saved.user)
        }
        Err(e) => JsonResponse::database_error(&e),
    }
}

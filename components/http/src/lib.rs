//! Spin HTTP component serving `/user`: a thin adapter that turns requests
//! into domain calls and domain results into JSON responses. All rules live in
//! the `user-info` crate; this file only speaks HTTP.

mod request;
mod response;

use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;
use user_info::spin_sqlite::SpinSqlite;
use user_info::{ApplyError, Database, InputError, UpsertOutcome};

use response::JsonResponse;

/// The database label this component is granted in spin.toml.
const DATABASE: &str = "default";

#[http_component]
async fn handle_user(req: IncomingRequest, out: ResponseOutparam) {
    let response = match req.method() {
        Method::Get => get_user(&req),
        Method::Post => post_user(req).await,
        other => JsonResponse::method_not_allowed(&other.to_string()),
    };
    response.send(out).await;
}

fn get_user(req: &IncomingRequest) -> JsonResponse {
    let user_id = match user_info::parse_user_id(request::query_param(req, "user_id").as_deref()) {
        Ok(id) => id,
        Err(errors) => return JsonResponse::new(400, &errors),
    };
    let found = open_db().and_then(|db| {
        user_info::prepare(&db)?;
        user_info::find_user(&db, user_id)
    });
    match found {
        Ok(Some(user)) => JsonResponse::new(200, &user),
        Ok(None) => JsonResponse::detail(404, "Not found."),
        Err(e) => JsonResponse::server_error(&e),
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
            return JsonResponse::input_error(&InputError::TooLarge { size: usize::MAX })
        }
        Err(request::BodyError::Stream(e)) => {
            return JsonResponse::detail(400, &format!("Could not read the request body: {e}"))
        }
    };
    let saved = open_db()
        .map_err(ApplyError::Database)
        .and_then(|db| user_info::apply_update(&db, &body));
    match saved {
        Ok(saved) => {
            let status = match saved.outcome {
                UpsertOutcome::Created => 201,
                UpsertOutcome::Updated => 200,
            };
            JsonResponse::new(status, &saved.user)
        }
        Err(ApplyError::Invalid(e)) => JsonResponse::input_error(&e),
        Err(ApplyError::Database(e)) => JsonResponse::server_error(&e),
    }
}

fn open_db() -> Result<impl Database, user_info::DbError> {
    SpinSqlite::open(DATABASE)
}

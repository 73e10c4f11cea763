//! Conditional requests (RFC 9110) end to end on both stores: the ETag of
//! every response that carries a user, 304 for a current copy, 412 with the
//! current ETag for a failed `If-Match` / `If-None-Match`, `*` in both, and
//! no ETag reused across a delete and a re-create (no ABA).

use serde_json::json;

use super::start;
use crate::support::{delete_with, get, get_with, post_json, post_json_with, AppSpec, Reply, Store};

on_both_stores!(
    every_response_with_a_user_carries_its_etag,
    if_none_match_on_get_answers_304,
    if_match_writes_only_the_revision_it_names,
    if_match_star_requires_a_user_and_if_none_match_star_creates_only,
    an_etag_of_an_erased_user_never_matches_its_successor,
);

fn path(id: &str) -> String {
    format!("/user?user_id={id}")
}

fn assert_precondition_failed(reply: &Reply, current: Option<&str>) {
    assert_eq!(reply.status, 412, "{reply:?}");
    assert_eq!(reply.json(), json!({"detail": "Precondition failed."}));
    assert_eq!(reply.content_type, "application/json");
    assert_eq!(reply.etag.as_deref(), current, "the current ETag, when there is a user");
}

fn every_response_with_a_user_carries_its_etag(store: Store) {
    let app = start(AppSpec::default(), store);
    let base = &app.host.base_url;
    let id = uuid::Uuid::new_v4().to_string();
    let created = post_json(base, &json!({"user_id": id, "first_name": "Ann"}));
    assert_eq!((created.status, created.etag.as_deref()), (201, Some("\"1\"")));
    let fetched = get(base, &path(&id));
    assert_eq!((fetched.status, fetched.etag.as_deref()), (200, Some("\"1\"")));
    let updated = post_json(base, &json!({"user_id": id, "email": "ann@example.com"}));
    assert_eq!((updated.status, updated.etag.as_deref()), (200, Some("\"2\"")));
    assert_eq!(get(base, &path(&id)).etag.as_deref(), Some("\"2\""));
    // Answers without a user carry none.
    assert_eq!(get(base, &path(&uuid::Uuid::new_v4().to_string())).etag, None);
    assert_eq!(post_json(base, &json!({"user_id": id, "email": "bad"})).etag, None);
}

fn if_none_match_on_get_answers_304(store: Store) {
    let app = start(AppSpec::default(), store);
    let base = &app.host.base_url;
    let id = uuid::Uuid::new_v4().to_string();
    let etag = post_json(base, &json!({"user_id": id, "first_name": "Ann"})).etag.unwrap();
    for matching in [etag.clone(), format!("W/{etag}"), format!("\"7\", {etag}"), "*".to_owned()] {
        let reply = get_with(base, &path(&id), &[("if-none-match", &matching)]);
        assert_eq!((reply.status, reply.body.as_str()), (304, ""), "{matching}: {reply:?}");
        assert_eq!(reply.etag.as_deref(), Some(etag.as_str()), "{matching}");
    }
    let other = get_with(base, &path(&id), &[("if-none-match", "\"7\"")]);
    assert_eq!((other.status, other.etag.as_deref()), (200, Some(etag.as_str())));
    assert_eq!(other.json()["first_name"], "Ann");
    // A changed user is sent again.
    let changed = post_json(base, &json!({"user_id": id, "first_name": "Bo"}));
    let reply = get_with(base, &path(&id), &[("if-none-match", &etag)]);
    assert_eq!((reply.status, reply.etag.as_deref()), (200, changed.etag.as_deref()));
    // No user: 404 whatever the condition (RFC 9110 §13.2.1).
    let missing = get_with(base, &path(&uuid::Uuid::new_v4().to_string()), &[("if-none-match", "*")]);
    assert_eq!(missing.status, 404);
    // If-Match on GET: 412 when it names another revision.
    let stale = get_with(base, &path(&id), &[("if-match", &etag)]);
    assert_precondition_failed(&stale, changed.etag.as_deref());
}

fn if_match_writes_only_the_revision_it_names(store: Store) {
    let app = start(AppSpec::default(), store);
    let base = &app.host.base_url;
    let id = uuid::Uuid::new_v4().to_string();
    let v1 = post_json(base, &json!({"user_id": id, "first_name": "Ann"})).etag.unwrap();
    let v2 = post_json(base, &json!({"user_id": id, "last_name": "Lee"})).etag.unwrap();
    // A stale revision: 412 with the current ETag, nothing written.
    let stale = post_json_with(base, &json!({"user_id": id, "first_name": "Stale"}), &[("if-match", &v1)]);
    assert_precondition_failed(&stale, Some(&v2));
    // A weak tag never matches If-Match (strong comparison).
    let weak = post_json_with(base, &json!({"user_id": id, "first_name": "Weak"}), &[("if-match", &format!("W/{v2}"))]);
    assert_precondition_failed(&weak, Some(&v2));
    assert_eq!(get(base, &path(&id)).json()["first_name"], "Ann");
    // The current one: applied, the next ETag.
    let applied = post_json_with(base, &json!({"user_id": id, "first_name": "Bo"}), &[("if-match", &format!("\"9\", {v2}"))]);
    assert_eq!((applied.status, applied.etag.as_deref()), (200, Some("\"3\"")), "{applied:?}");
    assert_eq!(applied.json()["last_name"], "Lee", "a conditional POST is a partial update too");
    // DELETE: a stale revision is refused, the current one deletes.
    let refused = delete_with(base, &path(&id), &[("if-match", &v2)]);
    assert_precondition_failed(&refused, Some("\"3\""));
    assert_eq!(get(base, &path(&id)).status, 200);
    let deleted = delete_with(base, &path(&id), &[("if-match", "\"3\"")]);
    assert_eq!(deleted.status, 204, "{deleted:?}");
    // A user that is gone stays 404 for DELETE, whatever the condition.
    let gone = delete_with(base, &path(&id), &[("if-match", "\"3\"")]);
    assert_eq!((gone.status, gone.json()), (404, json!({"detail": "Not found."})));
}

fn if_match_star_requires_a_user_and_if_none_match_star_creates_only(store: Store) {
    let app = start(AppSpec::default(), store);
    let base = &app.host.base_url;
    let id = uuid::Uuid::new_v4().to_string();
    let body = json!({"user_id": id, "first_name": "Ann"});
    // If-Match: * with no user: 412 without an ETag, and nothing created.
    assert_precondition_failed(&post_json_with(base, &body, &[("if-match", "*")]), None);
    assert_eq!(get(base, &path(&id)).status, 404);
    // If-None-Match: * creates once, then refuses.
    let created = post_json_with(base, &body, &[("if-none-match", "*")]);
    assert_eq!((created.status, created.etag.as_deref()), (201, Some("\"1\"")), "{created:?}");
    let again = post_json_with(base, &json!({"user_id": id, "first_name": "Twice"}), &[("if-none-match", "*")]);
    assert_precondition_failed(&again, Some("\"1\""));
    assert_eq!(get(base, &path(&id)).json()["first_name"], "Ann");
    // If-Match: * updates an existing user.
    let updated = post_json_with(base, &json!({"user_id": id, "first_name": "Bo"}), &[("if-match", "*")]);
    assert_eq!((updated.status, updated.etag.as_deref()), (200, Some("\"2\"")));
    // DELETE with If-None-Match: * on a user that exists: 412.
    assert_precondition_failed(&delete_with(base, &path(&id), &[("if-none-match", "*")]), Some("\"2\""));
    assert_eq!(delete_with(base, &path(&id), &[("if-match", "*")]).status, 204);
    assert_eq!(delete_with(base, &path(&id), &[("if-match", "*")]).status, 404);
    // After the delete, If-Match: * finds no user; If-None-Match: * creates.
    assert_precondition_failed(&post_json_with(base, &body, &[("if-match", "*")]), None);
    let reborn = post_json_with(base, &body, &[("if-none-match", "*")]);
    assert_eq!((reborn.status, reborn.etag.as_deref()), (201, Some("\"4\"")), "{reborn:?}");
}

fn an_etag_of_an_erased_user_never_matches_its_successor(store: Store) {
    let app = start(AppSpec::default(), store);
    let base = &app.host.base_url;
    let id = uuid::Uuid::new_v4().to_string();
    let old = post_json(base, &json!({"user_id": id, "first_name": "Erased"})).etag.unwrap();
    assert_eq!(delete_with(base, &path(&id), &[]).status, 204);
    let new = post_json(base, &json!({"user_id": id, "first_name": "New"}));
    assert_eq!(new.status, 201);
    assert_ne!(new.etag.as_deref(), Some(old.as_str()), "a new ETag for the new user");
    // A client holding the erased user's ETag gets 412, not the new user.
    let write = post_json_with(base, &json!({"user_id": id, "first_name": "Lost update"}), &[("if-match", &old)]);
    assert_precondition_failed(&write, new.etag.as_deref());
    assert_precondition_failed(&delete_with(base, &path(&id), &[("if-match", &old)]), new.etag.as_deref());
    let cached = get_with(base, &path(&id), &[("if-none-match", &old)]);
    assert_eq!((cached.status, cached.json()["first_name"].as_str()), (200, Some("New")), "no 304 for the old copy");
}

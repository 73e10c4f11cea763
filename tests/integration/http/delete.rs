//! `DELETE /user`, end to end on both stores: 204 then 404, 400 for a bad
//! id, the personal data gone from the database (the row stays as a
//! tombstone, whose revision keeps counting), and a re-created user.

use serde_json::json;

use super::{start, App};
use crate::support::{delete_with, get, post_json, AppSpec, Store};

on_both_stores!(
    delete_answers_204_then_404_and_erases_the_fields,
    delete_with_a_missing_or_malformed_id_is_400,
    a_deleted_user_can_be_created_again,
);

fn user(id: &str) -> serde_json::Value {
    json!({"user_id": id, "first_name": "Ann", "last_name": "Lee", "email": "ann@example.com", "phone_number": "555 0100"})
}

fn delete_answers_204_then_404_and_erases_the_fields(store: Store) {
    let app: App = start(AppSpec::default(), store);
    let base = &app.host.base_url;
    let id = uuid::Uuid::new_v4().to_string();
    assert_eq!(post_json(base, &user(&id)).status, 201);
    let deleted = delete_with(base, &format!("/user?user_id={id}"), &[]);
    assert_eq!((deleted.status, deleted.body.as_str(), deleted.content_type.as_str()), (204, "", ""), "{deleted:?}");
    assert_eq!(deleted.etag, None, "a deleted user has no representation");
    let gone = get(base, &format!("/user?user_id={id}"));
    assert_eq!((gone.status, gone.json()), (404, json!({"detail": "Not found."})));
    // What stays in the database is the tombstone: no personal data.
    let blank = json!({"user_id": id, "first_name": "", "last_name": "", "email": "", "phone_number": ""});
    assert_eq!(app.stored(&id), Some(blank));
    let again = delete_with(base, &format!("/user?user_id={}", id.to_uppercase()), &[]);
    assert_eq!((again.status, again.json()), (404, json!({"detail": "Not found."})));
    assert_eq!(again.content_type, "application/json");
    let never = delete_with(base, &format!("/user?user_id={}", uuid::Uuid::new_v4()), &[]);
    assert_eq!((never.status, never.json()), (404, json!({"detail": "Not found."})));
}

fn delete_with_a_missing_or_malformed_id_is_400(store: Store) {
    let app = start(AppSpec::default(), store);
    let base = &app.host.base_url;
    let id = uuid::Uuid::new_v4().to_string();
    assert_eq!(post_json(base, &user(&id)).status, 201);
    let no_id = delete_with(base, "/user", &[]);
    assert_eq!((no_id.status, no_id.json()), (400, json!({"user_id": ["This field is required."]})));
    let bad_id = delete_with(base, "/user?user_id=not-a-uuid", &[]);
    assert_eq!((bad_id.status, bad_id.json()), (400, json!({"user_id": ["Must be a valid UUID."]})));
    assert_eq!(get(base, &format!("/user?user_id={id}")).status, 200, "a refused DELETE deletes nothing");
}

fn a_deleted_user_can_be_created_again(store: Store) {
    let app = start(AppSpec::default(), store);
    let base = &app.host.base_url;
    let id = uuid::Uuid::new_v4().to_string();
    assert_eq!(post_json(base, &user(&id)).status, 201);
    assert_eq!(delete_with(base, &format!("/user?user_id={id}"), &[]).status, 204);
    // A new user: 201, and nothing of the erased one comes back.
    let created = post_json(base, &json!({"user_id": id, "last_name": "New"}));
    assert_eq!(created.status, 201, "{}", created.body);
    let expected = json!({"user_id": id, "first_name": "", "last_name": "New", "email": "", "phone_number": ""});
    assert_eq!(created.json(), expected);
    assert_eq!(get(base, &format!("/user?user_id={id}")).json(), expected);
    assert_eq!(post_json(base, &json!({"user_id": id, "first_name": "Bo"})).status, 200);
}

//! Payloads: the same JSON shape the HTTP `POST /user` body and the Kafka
//! record value carry. Built with `format!` rather than serde because the load
//! generator shares the CPUs with the server: every client cycle is one the
//! server does not get. All values are plain ASCII, so no escaping is needed.

use rand::Rng;
use uuid::Uuid;

/// A full user record for `id`; `variant` changes every field so an upsert
/// really updates the row.
pub fn user_json(id: &Uuid, variant: u32) -> String {
    format!(
        r#"{{"user_id":"{id}","first_name":"First{variant}","last_name":"Last{variant}","email":"user{variant}@example.com","phone_number":"+1 555 {variant:07}"}}"#
    )
}

/// A user update with random field values.
pub fn random_update(id: &Uuid, rng: &mut impl Rng) -> String {
    user_json(id, rng.random_range(0..10_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_passes_the_domain_validation() {
        let id = Uuid::new_v4();
        let json = user_json(&id, 42);
        let patch = user_info::parse_patch(json.as_bytes()).expect("valid for the service");
        assert_eq!(patch.user_id, id);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["user_id"], id.to_string());
        assert_eq!(value["email"], "user42@example.com");
        assert_eq!(value["phone_number"], "+1 555 0000042");
    }
}

//! The real test PostgreSQL (the `test-support` crate's launcher: the server
//! `TEST_DATABASE_URL` names, else one started through scripts/postgres),
//! and what the integration tests read from it.

pub use test_support::postgres::{authority, client, new_database, server_url, with_database};

/// Reads a user from the database (what any replica would see).
pub fn user_in_db(url: &str, user_id: &str) -> Option<serde_json::Value> {
    let mut client = client(url);
    let row = client
        .query_opt(
            "SELECT user_id::text, first_name, last_name, email, phone_number FROM user_info WHERE user_id::text = $1",
            &[&user_id],
        )
        .ok()??;
    Some(serde_json::json!({
        "user_id": row.get::<_, String>(0), "first_name": row.get::<_, String>(1),
        "last_name": row.get::<_, String>(2), "email": row.get::<_, String>(3),
        "phone_number": row.get::<_, String>(4),
    }))
}

/// An app of the pg-query test guest (tests/guests/pg-query), routed at
/// `/...`, whose `database_url` is `url`; returns its manifest's path.
pub fn pg_query_app(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let manifest = dir.join("spin.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"spin_manifest_version = 2
[application]
name = "pg-query"
[[trigger.http]]
route = "/..."
component = "pg-query"
[component.pg-query]
source = "{}"
allowed_outbound_hosts = ["postgres://{}"]
variables = {{ database_url = "{url}" }}
"#,
            super::wasm("pg_query_guest").display(),
            authority(url),
        ),
    )
    .unwrap();
    manifest
}

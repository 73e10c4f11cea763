//! The real test PostgreSQL: the server named by `TEST_DATABASE_URL` (what
//! scripts/test starts), else one this test binary starts on a free port
//! through scripts/postgres (Debian's binaries, run as the `postgres` user,
//! stopped when this process exits). Every test gets a database of its own.

use std::process::Command;
use std::sync::OnceLock;

/// The server's URL (its `postgres` database).
pub fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
            return url;
        }
        let port = super::free_port().to_string();
        let out = Command::new(super::root().join("scripts/postgres"))
            .args(["start", &port, "--owner", &std::process::id().to_string()])
            .output()
            .expect("run scripts/postgres");
        assert!(out.status.success(), "could not start PostgreSQL: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    })
}

/// A fresh, empty database; returns its URL.
pub fn new_database() -> String {
    let name = super::unique("test").replace('-', "_");
    client(server_url()).batch_execute(&format!("CREATE DATABASE {name}")).expect("CREATE DATABASE");
    with_database(server_url(), &name)
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let mut url = url::Url::parse(url).expect("a postgres:// URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// The host:port of a URL, as `allowed_outbound_hosts` would name it.
pub fn authority(url: &str) -> String {
    let url = url::Url::parse(url).expect("a postgres:// URL");
    format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432))
}

pub fn client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

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

//! The real test PostgreSQL: the server `TEST_DATABASE_URL` names (what
//! scripts/test starts), else one started on a free port through
//! `scripts/postgres` (Debian's binaries, run as the `postgres` user, stopped
//! by the script's watchdog once this test process has exited). There is one
//! launcher, the script's: a test never runs initdb itself. Every test gets
//! a database of its own.

use std::process::Command;
use std::sync::OnceLock;

use postgres::types::{IsNull, ToSql, Type};

/// The server's URL (its `postgres` database). Without `TEST_DATABASE_URL`
/// it starts one; a server that cannot start fails the test.
pub fn server_url() -> &'static str {
    started(Some("set TEST_DATABASE_URL; the domain's tests can be skipped explicitly, built with SKIP_POSTGRES=1"))
}

fn started(hint: Option<&str>) -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
            return url;
        }
        let port = crate::free_port().to_string();
        let out = Command::new(crate::script("postgres"))
            .args(["start", &port, "--owner", &std::process::id().to_string()])
            .output()
            .expect("run scripts/postgres");
        assert!(
            out.status.success(),
            "could not start PostgreSQL through scripts/postgres{}: {}",
            hint.map(|h| format!(" ({h})")).unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    })
}

/// A fresh, empty database on the test server; returns its URL.
pub fn new_database() -> String {
    new_database_on(server_url())
}

/// A fresh, empty database on the server of `server_url`; returns its URL.
pub fn new_database_on(server_url: &str) -> String {
    let name = crate::unique("test").replace('-', "_");
    client(server_url).batch_execute(&format!("CREATE DATABASE {name}")).expect("CREATE DATABASE");
    with_database(server_url, &name)
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

/// NULL of whatever type the statement expects, as Spin's host binds it.
/// (The host has its own: production code does not depend on a test crate.)
#[derive(Debug)]
pub struct Null;

impl ToSql for Null {
    fn to_sql(&self, _: &Type, _: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(IsNull::Yes)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    postgres::types::to_sql_checked!();
}

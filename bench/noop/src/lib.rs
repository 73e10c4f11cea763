//! A component that does nothing but answer 200 "ok". Benchmarked on the same
//! host as `user-http`, it gives the platform ceiling: what routing, a fresh
//! instance per request and wasi-http cost before any domain code or SQLite.

#[spin_sdk::http_component]
fn handle(_req: spin_sdk::http::Request) -> anyhow::Result<spin_sdk::http::Response> {
    Ok(spin_sdk::http::Response::new(200, "ok"))
}

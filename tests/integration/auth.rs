//! Optional bearer authentication of `/user`, end to end: the real `user-http`
//! component in the real host, with the secret variable `api_token` set the
//! way an operator sets it (`SPIN_VARIABLE_API_TOKEN`), or left empty.


use serde_json::json;
use crate::support::{AppSpec, Host};

const TOKEN: &str = "s3cr3t-token-for-tests";

struct App {
    _dir: tempfile::TempDir,
    host: Host,
}

/// The test manifest, which declares `api_token` as spin.toml declares it.
fn start(token: Option<&str>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let manifest = AppSpec::default().write_manifest(dir.path());
    let env: Vec<(&str, &str)> = token.map(|t| ("SPIN_VARIABLE_API_TOKEN", t)).into_iter().collect();
    let host = Host::start(&manifest, &dir.path().join(".spin"), &["http"], &env);
    App { _dir: dir, host }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    www_authenticate: Option<String>,
    body: serde_json::Value,
}

fn send(base: &str, method: &str, authorization: Option<&str>) -> Answer {
    let id = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    let agent = crate::support::http();
    let response = match method {
        "GET" => {
            let mut req = agent.get(format!("{base}/user?user_id={id}"));
            if let Some(a) = authorization {
                req = req.header("authorization", a);
            }
            req.call()
        }
        "POST" => {
            let mut req = agent.post(format!("{base}/user")).header("content-type", "application/json");
            if let Some(a) = authorization {
                req = req.header("authorization", a);
            }
            req.send(json!({"user_id": id, "first_name": "Ann"}).to_string())
        }
        "DELETE" => {
            let mut req = agent.delete(format!("{base}/user?user_id={id}"));
            if let Some(a) = authorization {
                req = req.header("authorization", a);
            }
            req.call()
        }
        _ => {
            let mut req = agent.put(format!("{base}/user")).header("content-type", "application/json");
            if let Some(a) = authorization {
                req = req.header("authorization", a);
            }
            req.send("{}")
        }
    };
    let mut response = response.expect("HTTP request");
    let www_authenticate = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    let body = response.body_mut().read_to_string().unwrap();
    Answer {
        status: response.status().as_u16(),
        www_authenticate,
        // 204 has no body.
        body: if body.is_empty() { serde_json::Value::Null } else { serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}")) },
    }
}

#[test]
fn without_a_token_configured_the_service_stays_open() {
    let app = start(None);
    let created = send(&app.host.base_url, "POST", None);
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.www_authenticate, None);
    assert_eq!(send(&app.host.base_url, "GET", None).status, 200);
    // A header is not required, and not checked either.
    assert_eq!(send(&app.host.base_url, "GET", Some("Bearer anything")).status, 200);
}

#[test]
fn with_a_token_every_request_needs_it() {
    let app = start(Some(TOKEN));
    let base = &app.host.base_url;
    let missing = json!({"detail": "Authentication credentials were not provided."});
    let invalid = json!({"detail": "Invalid token."});
    for method in ["GET", "POST", "PUT", "DELETE"] {
        for (authorization, detail) in [
            (None, &missing),
            (Some("Basic dXNlcjpwYXNz".to_owned()), &missing),
            (Some("Bearer".to_owned()), &invalid),
            (Some("Bearer wrong".to_owned()), &invalid),
            (Some(format!("Bearer {TOKEN}x")), &invalid),
            (Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])), &invalid),
        ] {
            let answer = send(base, method, authorization.as_deref());
            assert_eq!(answer.status, 401, "{method} {authorization:?}: {answer:?}");
            assert_eq!(&answer.body, detail, "{method} {authorization:?}");
            assert_eq!(answer.www_authenticate.as_deref(), Some("Bearer"), "{method} {authorization:?}");
        }
    }
    // Nothing was written by the refused POSTs.
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(send(base, "GET", Some(&bearer)).status, 404);
    let created = send(base, "POST", Some(&bearer));
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.www_authenticate, None);
    let fetched = send(base, "GET", Some(&format!("bearer {TOKEN}")));
    assert_eq!(fetched.status, 200, "the scheme is case-insensitive: {fetched:?}");
    assert_eq!(fetched.body["first_name"], "Ann");
    assert_eq!(send(base, "PUT", Some(&bearer)).status, 405, "authenticated, then the method is checked");
    // A DELETE without the token erases nothing; with it, the user.
    assert_eq!(send(base, "DELETE", None).status, 401);
    assert_eq!(send(base, "DELETE", Some("Bearer wrong")).status, 401);
    assert_eq!(send(base, "GET", Some(&bearer)).status, 200, "still there");
    let deleted = send(base, "DELETE", Some(&bearer));
    assert_eq!((deleted.status, deleted.body), (204, serde_json::Value::Null));
    assert_eq!(send(base, "GET", Some(&bearer)).status, 404);
}

//! The HTTP trigger for running an app without Spin: serves the app's
//! `[[trigger.http]]` routes with Spin's matching rules (exact routes, and
//! `/prefix/...` wildcards; the longest match wins), one fresh component
//! instance per request through wasi-http, as Spin does.

mod executor;

pub use executor::HttpExecutor;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tracing::Instrument;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::WasiHttpView;

use crate::runtime::engine::PreparedComponent;
use crate::runtime::instance::InstanceState;
use crate::serve::ServeLimits;

/// One served route.
pub struct Route {
    /// As written: `/user`, or `/api/...` for a wildcard.
    pub pattern: String,
    pub component: PreparedComponent,
}

struct Served {
    pattern: String,
    prefix: String,
    wildcard: bool,
    component_id: String,
    pre: ProxyPre<InstanceState>,
    component: PreparedComponent,
}

pub struct HttpTrigger {
    routes: Vec<Served>,
    limits: HttpLimits,
}

/// The body type wasi-http produces; plain host answers use it too.
type ResponseBody = wasmtime_wasi_http::p2::body::HyperOutgoingBody;

impl HttpTrigger {
    pub fn new(routes: Vec<Route>, limits: HttpLimits) -> Result<Self> {
        let mut served = Vec::new();
        for route in routes {
            let id = route.component.context.id.clone();
            let pre = ProxyPre::new(route.component.pre.clone()).map_err(anyhow::Error::from).with_context(|| {
                format!("component {id:?} does not export wasi:http/incoming-handler@0.2")
            })?;
            let (prefix, wildcard) = match route.pattern.strip_suffix("/...") {
                Some(prefix) => (prefix.to_owned(), true),
                None if route.pattern == "/..." => (String::new(), true),
                None => (route.pattern.trim_end_matches('/').to_owned(), false),
            };
            if served.iter().any(|s: &Served| s.prefix == prefix && s.wildcard == wildcard) {
                bail!("route {:?} is declared twice", route.pattern);
            }
            served.push(Served { pattern: route.pattern, prefix, wildcard, component_id: id, pre, component: route.component });
        }
        Ok(HttpTrigger { routes: served, limits })
    }

    /// Spin's rule: an exact route beats a wildcard; among wildcards the
    /// longest prefix wins.
    fn route(&self, path: &str) -> Option<&Served> {
        let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
        let exact = self.routes.iter().find(|r| !r.wildcard && (r.prefix == path || (r.prefix.is_empty() && path == "/")));
        exact.or_else(|| {
            self.routes
                .iter()
                .filter(|r| r.wildcard && (path == r.prefix || path.starts_with(&format!("{}/", r.prefix)) || r.prefix.is_empty()))
                .max_by_key(|r| r.prefix.len())
        })
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        let addr = listener.local_addr()?;
        println!("Serving http://{addr}");
        println!("Available Routes:");
        for r in &self.routes {
            println!("  {}: http://{addr}{}", r.component_id, r.pattern);
        }
        let limits = self.limits.serve.clone();
        crate::serve::serve(
            "HTTP trigger",
            listener,
            limits,
            |client| {
                let trigger = self.clone();
                hyper::service::service_fn(move |req| {
                    let trigger = trigger.clone();
                    async move {
                        let route = trigger.route(req.uri().path()).map(|r| r.pattern.as_str());
                        let span = crate::telemetry::http::server_span(&req, route);
                        let response = trigger.handle(req, addr, client).instrument(span.clone()).await;
                        crate::telemetry::http::record_status(&span, response.status());
                        Ok::<_, std::convert::Infallible>(response)
                    }
                })
            },
            shutdown,
        )
        .await;
        Ok(())
    }

    async fn handle(&self, req: hyper::Request<Incoming>, local: SocketAddr, client: SocketAddr) -> hyper::Response<ResponseBody> {
        let path = req.uri().path().to_owned();
        if path == "/.well-known/spin/health" {
            // Spin's health check answers a plain "OK"; probes expect it.
            return plain(200, "OK");
        }
        let Some(route) = self.route(&path) else {
            return json(404, NOT_FOUND);
        };
        match self.call(route, req, local, client).await {
            Ok(response) => response,
            Err(CallError::TimedOut) => {
                tracing::error!(
                    "component {} did not answer {path} within the request timeout ({:?}); instance dropped",
                    route.component_id,
                    self.limits.request_timeout
                );
                json(504, TIMED_OUT)
            }
            Err(CallError::Failed(e)) => {
                // The cause (a trap, an instantiation failure) is logged,
                // never sent: it is the host's business, not the client's.
                tracing::error!("component {} failed: {e:?}", route.component_id);
                json(500, INTERNAL_ERROR)
            }
        }
    }

    async fn call(&self, route: &Served, mut req: hyper::Request<Incoming>, local: SocketAddr, client: SocketAddr) -> Result<hyper::Response<ResponseBody>, CallError> {
        add_spin_headers(&mut req, route, local, client);
        // The deadline covers the whole call: waiting for an instance slot
        // (all busy: the request waits rather than fails), and the body the
        // guest may keep streaming after setting the response. Past it, the
        // task's future, and with it the instance, is dropped (a looping
        // guest yields at every epoch tick, so the drop lands).
        let deadline = tokio::time::Instant::now() + self.limits.request_timeout;
        let mut store = tokio::time::timeout_at(deadline, route.component.store()).await.map_err(|_| CallError::TimedOut)?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let incoming = store.data_mut().http().new_incoming_request(Scheme::Http, req).map_err(failed)?;
        let out = store.data_mut().http().new_response_outparam(sender).map_err(failed)?;
        let pre = route.pre.clone();
        let task = tokio::spawn(tokio::time::timeout_at(deadline, async move {
            let proxy = pre.instantiate_async(&mut *store).await?;
            proxy.wasi_http_incoming_handler().call_handle(&mut *store, incoming, out).await
        }));
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(failed(anyhow::anyhow!("component answered with error code {code:?}"))),
            Err(_) => match task.await {
                Ok(Ok(Ok(()))) => Err(failed(anyhow::anyhow!("component never set a response"))),
                Ok(Ok(Err(e))) => Err(CallError::Failed(e.into())),
                Ok(Err(_elapsed)) => Err(CallError::TimedOut),
                Err(e) => Err(failed(e)),
            },
        }
    }
}

/// Why a request got no answer from its component.
enum CallError {
    TimedOut,
    Failed(anyhow::Error),
}

fn failed(e: impl Into<anyhow::Error>) -> CallError {
    CallError::Failed(e.into())
}

/// The HTTP trigger's limits (`--http-*` flags).
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub serve: ServeLimits,
    /// Longest a request's component call may run, response body included.
    pub request_timeout: Duration,
}

impl HttpLimits {
    /// The default, here only (the CLI's flag shows and uses it).
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits { serve: ServeLimits::default(), request_timeout: Self::DEFAULT_REQUEST_TIMEOUT }
    }
}

// What the host itself answers, JSON as every response of the app (the
// shapes of the app's own errors: `{"detail": ...}`).
const NOT_FOUND: &str = r#"{"detail": "Not found."}"#;
const TIMED_OUT: &str = r#"{"detail": "The request timed out."}"#;
const INTERNAL_ERROR: &str = r#"{"detail": "Internal server error."}"#;

fn json(status: u16, text: &'static str) -> hyper::Response<ResponseBody> {
    let mut response = plain(status, text);
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

fn plain(status: u16, text: &'static str) -> hyper::Response<ResponseBody> {
    let body = Full::new(Bytes::from_static(text.as_bytes())).map_err(|never| match never {}).boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = hyper::StatusCode::from_u16(status).expect("valid status");
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain"));
    response
}

/// The request headers Spin adds, for components that read them.
fn add_spin_headers(req: &mut hyper::Request<Incoming>, route: &Served, local: SocketAddr, client: SocketAddr) {
    let path = req.uri().path().to_owned();
    let full_url = format!("http://{local}{}", req.uri().path_and_query().map_or("/", |p| p.as_str()));
    let path_info = if route.wildcard { path.strip_prefix(&route.prefix).unwrap_or("").to_owned() } else { String::new() };
    let headers = req.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = hyper::header::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("spin-full-url", full_url);
    set("spin-path-info", path_info);
    set("spin-matched-route", route.pattern.clone());
    set("spin-component-route", route.pattern.clone());
    set("spin-raw-component-route", route.pattern.clone());
    set("spin-base-path", "/".to_owned());
    set("spin-client-addr", client.to_string());
}

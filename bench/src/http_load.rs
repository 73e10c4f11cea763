//! `bench http`: seeds users through `POST /user`, then drives closed-loop load:
//! C keep-alive HTTP/1.1 connections, each sending its next request as soon as
//! the previous answer is read, for a fixed time. Closed loop means the rate is
//! what the server sustains at concurrency C, and latency includes any queueing
//! in the server (not in the client: it never has more than C requests out).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::procstat::CpuMeter;
use crate::stats::{emit, latency_json, round, Latencies};
use crate::users;

/// What each request of a load phase does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// `GET /user?user_id=<random seeded id>`.
    Get,
    /// `POST /user` upserting a random seeded id with changed fields.
    Post,
    /// `GET /noop`: the no-op component (bench/noop/spin.toml), the platform ceiling.
    NoopPath,
    /// `GET /.well-known/spin/health`: answered by the host itself, no wasm:
    /// the HTTP stack alone, to split host cost from instance cost.
    Health,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Get => "get",
            Mode::Post => "post",
            Mode::NoopPath => "noop-path",
            Mode::Health => "health",
        }
    }

    fn needs_users(self) -> bool {
        matches!(self, Mode::Get | Mode::Post)
    }
}

pub struct HttpOptions {
    pub target: Target,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub users: usize,
    pub modes: Vec<Mode>,
    /// The server's pid, to report its CPU use next to the client's.
    pub server_pid: Option<u32>,
}

/// Where to connect and what to put in `Host:`.
#[derive(Clone)]
pub struct Target {
    addr: SocketAddr,
    authority: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self> {
        let uri: hyper::Uri = url
            .parse()
            .with_context(|| format!("invalid --url {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("--url must be http://HOST:PORT (plain HTTP/1.1)");
        }
        let authority = uri.authority().context("--url has no host")?.to_string();
        let host = uri.host().context("--url has no host")?;
        let port = uri.port_u16().unwrap_or(80);
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))?
            .next()
            .with_context(|| format!("cannot resolve {host}"))?;
        Ok(Target { addr, authority })
    }
}

/// One keep-alive connection. A transport error drops it; the next request
/// reconnects, so a server hiccup costs an error count, not the whole run.
struct Connection {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    fn new(target: Target) -> Self {
        Connection {
            target,
            sender: None,
        }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.target.addr).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("just connected");
        sender.ready().await?;
        Ok(sender)
    }

    /// Sends one request and reads the whole answer; returns its status.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<StatusCode> {
        let authority = self.target.authority.clone();
        let result = async {
            let sender = self.sender().await?;
            let mut request = Request::builder()
                .method(method)
                .uri(path)
                .header(hyper::header::HOST, authority);
            if body.is_some() {
                request = request.header(hyper::header::CONTENT_TYPE, "application/json");
            }
            let body = body.map(Bytes::from).unwrap_or_default();
            let response = sender.send_request(request.body(Full::new(body))?).await?;
            let status = response.status();
            // Read to the end: the connection is reusable only after the body.
            response.into_body().collect().await?;
            anyhow::Ok(status)
        }
        .await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }
}

/// Counts of one connection's phase.
#[derive(Default)]
struct Tally {
    ok: u64,
    /// Answered with a non-2xx status.
    status_errors: u64,
    /// No answer: connect, write or read failed.
    io_errors: u64,
}

pub async fn run(options: HttpOptions) -> Result<()> {
    let ids = if options.modes.iter().any(|m| m.needs_users()) {
        seed(&options).await?
    } else {
        Vec::new()
    };
    let ids = Arc::new(ids);
    for &mode in &options.modes {
        load(&options, mode, ids.clone()).await?;
    }
    Ok(())
}

/// Creates `users` users through the API, C at a time, and returns their ids.
async fn seed(options: &HttpOptions) -> Result<Vec<Uuid>> {
    let ids: Arc<Vec<Uuid>> = Arc::new((0..options.users).map(|_| Uuid::new_v4()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..options.connections.min(options.users.max(1)) {
        let (ids, next, target) = (ids.clone(), next.clone(), options.target.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::new(target);
            let mut latencies = Latencies::new();
            let mut tally = Tally::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                let sent = Instant::now();
                match conn
                    .send(Method::POST, "/user", Some(users::user_json(id, i as u32)))
                    .await
                {
                    Ok(status) if status.is_success() => tally.ok += 1,
                    Ok(_) => tally.status_errors += 1,
                    Err(_) => tally.io_errors += 1,
                }
                latencies.record(sent.elapsed());
            }
            (latencies, tally)
        }));
    }
    let (latencies, tally) = gather(tasks).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let rate = options.users as f64 / elapsed;
    emit(
        &json!({
            "bench": "http", "mode": "seed", "connections": options.connections,
            "requests": options.users, "seconds": round(elapsed, 3), "rps": round(rate, 1),
            "errors": tally.status_errors, "io_errors": tally.io_errors,
            "latency": latency_json(&latencies),
        }),
        &format!(
            "seed: {} users in {elapsed:.2} s = {rate:.0} creates/s, p50 {:.2} ms, p99 {:.2} ms, {} errors, {} io errors",
            options.users,
            latencies.quantile_ms(0.5),
            latencies.quantile_ms(0.99),
            tally.status_errors,
            tally.io_errors
        ),
    );
    if tally.ok == 0 && options.users > 0 {
        bail!(
            "seeding failed: no POST /user succeeded (is the service at {}?)",
            options.target.authority
        );
    }
    Ok(Arc::try_unwrap(ids).unwrap_or_else(|ids| (*ids).clone()))
}

/// One closed-loop phase: warm-up (not recorded: lets pools, caches and the
/// CPU frequency settle), then `duration` recorded.
async fn load(options: &HttpOptions, mode: Mode, ids: Arc<Vec<Uuid>>) -> Result<()> {
    let started = Instant::now();
    let measure_from = started + options.warmup;
    let deadline = measure_from + options.duration;
    let mut tasks = Vec::new();
    for worker in 0..options.connections {
        let (ids, target) = (ids.clone(), options.target.clone());
        tasks.push(tokio::spawn(async move {
            // Seeded per worker: reproducible, and no shared RNG to contend on.
            let mut rng = SmallRng::seed_from_u64(worker as u64);
            let mut conn = Connection::new(target);
            let mut latencies = Latencies::new();
            let mut tally = Tally::default();
            loop {
                let sent = Instant::now();
                if sent >= deadline {
                    break;
                }
                let (method, path, body) = match mode {
                    Mode::Get => (
                        Method::GET,
                        format!("/user?user_id={}", ids[rng.random_range(0..ids.len())]),
                        None,
                    ),
                    Mode::Post => {
                        let id = &ids[rng.random_range(0..ids.len())];
                        (
                            Method::POST,
                            "/user".to_owned(),
                            Some(users::random_update(id, &mut rng)),
                        )
                    }
                    Mode::NoopPath => (Method::GET, "/noop".to_owned(), None),
                    Mode::Health => (Method::GET, "/.well-known/spin/health".to_owned(), None),
                };
                let outcome = conn.send(method, &path, body).await;
                if sent < measure_from {
                    continue;
                }
                latencies.record(sent.elapsed());
                match outcome {
                    Ok(status) if status.is_success() => tally.ok += 1,
                    Ok(_) => tally.status_errors += 1,
                    Err(_) => {
                        tally.io_errors += 1;
                        // Do not spin on a dead server.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (latencies, tally)
        }));
    }
    // CPU is metered over the recorded span only.
    tokio::time::sleep_until(measure_from.into()).await;
    let meter = CpuMeter::start(options.server_pid);
    let (latencies, tally) = gather(tasks).await?;
    let cpu = meter.stop();
    // The last requests may finish a little after the deadline; count the real span.
    let seconds = measure_from.elapsed().as_secs_f64();
    let answered = tally.ok + tally.status_errors;
    let rps = answered as f64 / seconds;
    emit(
        &json!({
            "bench": "http", "mode": mode.name(), "connections": options.connections,
            "seconds": round(seconds, 3), "requests": answered, "rps": round(rps, 1),
            "ok": tally.ok, "errors": tally.status_errors, "io_errors": tally.io_errors,
            "latency": latency_json(&latencies),
            "client_cores": cpu.client_cores.map(|c| round(c, 2)),
            "server_cores": cpu.server_cores.map(|c| round(c, 2)),
            // CPU per request is steadier than req/s when other work shares the cores.
            "server_cpu_us_per_req": cpu.server_cores.filter(|_| rps > 0.0).map(|c| round(c / rps * 1e6, 1)),
            "client_cpu_us_per_req": cpu.client_cores.filter(|_| rps > 0.0).map(|c| round(c / rps * 1e6, 1)),
        }),
        &format!(
            "{}: {rps:.0} req/s over {seconds:.1} s at {} connections; p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; {} non-2xx, {} io errors; CPU cores: client {}, server {} ({} µs server CPU per request)",
            mode.name(),
            options.connections,
            latencies.quantile_ms(0.5),
            latencies.quantile_ms(0.99),
            latencies.quantile_ms(0.999),
            latencies.max_ms(),
            tally.status_errors,
            tally.io_errors,
            cores(cpu.client_cores),
            cores(cpu.server_cores),
            cpu.server_cores.filter(|_| rps > 0.0).map_or("n/a".to_owned(), |c| format!("{:.0}", c / rps * 1e6)),
        ),
    );
    Ok(())
}

fn cores(c: Option<f64>) -> String {
    c.map_or("n/a".to_owned(), |c| format!("{c:.2}"))
}

async fn gather(
    tasks: Vec<tokio::task::JoinHandle<(Latencies, Tally)>>,
) -> Result<(Latencies, Tally)> {
    let mut all = Latencies::new();
    let mut total = Tally::default();
    for task in tasks {
        let (latencies, tally) = task.await.context("load worker panicked")?;
        all.merge(&latencies);
        total.ok += tally.ok;
        total.status_errors += tally.status_errors;
        total.io_errors += tally.io_errors;
    }
    Ok((all, total))
}

//! Command-line flags. `SpinTriggerFlags` are Spin's common trigger flags,
//! which `spin up` forwards to a trigger plugin; the local mode adds the few a
//! user needs to run an app without Spin. Which flags are acted on, and which
//! are accepted for compatibility only, is documented on each.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::serve::ServeLimits;
use crate::triggers::http::HttpLimits;
use clap::{Args, Parser};

/// Spin's common trigger flags.
#[derive(Args, Debug, Clone, Default)]
pub struct SpinTriggerFlags {
    /// Log directory for the stdout and stderr of components. Empty disables log files.
    #[arg(short = 'L', long = "log-dir", env = "SPIN_LOG_DIR", value_name = "LOG_DIR")]
    pub log_dir: Option<String>,

    /// Truncate existing log files instead of appending to them.
    #[arg(long = "truncate-logs")]
    pub truncate_logs: bool,

    /// Disable the on-disk cache of compiled components.
    #[arg(long = "disable-cache", env = "DISABLE_WASMTIME_CACHE", conflicts_with = "cache")]
    pub disable_cache: bool,

    /// Wasmtime cache configuration file.
    #[arg(long = "cache", env = "WASMTIME_CACHE_FILE", value_name = "WASMTIME_CACHE_FILE")]
    pub cache: Option<PathBuf>,

    /// Allocate instances on demand instead of from a pre-reserved pool.
    #[arg(long = "disable-pooling")]
    pub disable_pooling: bool,

    /// Accepted for compatibility; has no effect (debug info is always kept).
    #[arg(long = "debug-info")]
    pub debug_info: bool,

    /// Print output to the terminal only for these components (repeatable). Default: all.
    #[arg(long = "follow", value_name = "ID")]
    pub follow: Vec<String>,

    /// Silence all component output on the terminal (log files are still written).
    #[arg(short = 'q', long = "quiet", visible_aliases = ["sh", "shush"])]
    pub quiet: bool,

    /// Runtime configuration file (state_dir, log_dir, [sqlite_database.<label>]).
    #[arg(long = "runtime-config-file", env = "RUNTIME_CONFIG_FILE", value_name = "RUNTIME_CONFIG_FILE")]
    pub runtime_config_file: Option<PathBuf>,

    /// Directory for the default SQLite database and logs. Empty: none (in-memory databases).
    #[arg(long = "state-dir", value_name = "STATE_DIR")]
    pub state_dir: Option<String>,

    /// Accepted for compatibility; has no effect (components get no preopened files).
    #[arg(long = "allow-transient-write")]
    pub allow_transient_write: bool,

    /// Accepted for compatibility; has no effect (no OpenTelemetry export).
    #[arg(long = "experimental-wasi-otel")]
    pub experimental_wasi_otel: bool,

    /// Accepted for compatibility and ignored with a warning (no key-value stores are provided).
    #[arg(long = "key-value", value_name = "KEY=VALUE")]
    pub key_values: Vec<String>,

    /// SQL to run against the default database at startup: a statement, `@file`,
    /// or `@file:label` for another database (repeatable).
    #[arg(long = "sqlite", value_name = "SQL_STATEMENT")]
    pub sqlite_statements: Vec<String>,

    /// Maximum linear memory of one component instance, in bytes.
    #[arg(long = "max-instance-memory", env = "SPIN_MAX_INSTANCE_MEMORY", value_name = "BYTES")]
    pub max_instance_memory: Option<usize>,

    /// Set an application variable: KEY=VALUE, KEY=@FILE, @FILE.json or @FILE.toml (repeatable).
    #[arg(long = "variable", value_name = "VARIABLE")]
    pub variables: Vec<String>,

    // `--help-args-only` and `--launch-metadata-only` (the plugin protocol's
    // probes) are answered in main.rs before these flags are parsed.
}

/// This trigger's own flags, in both modes (`spin up` routes them here too).
#[derive(Args, Debug, Clone, Default)]
pub struct MonitoringFlags {
    /// Serve /healthz, /readyz and Prometheus /metrics of the Kafka triggers on this address.
    // A string, resolved when binding: a bad address is then a startup error
    // like any other (and `host:port` names work).
    #[arg(long = "metrics-listen", env = "TRIGGER_KAFKA_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
}

/// As started by `spin up` (a Spin trigger plugin): Spin's flags and ours.
#[derive(Parser, Debug)]
#[command(name = "trigger-kafka", version, about = "Kafka trigger for Spin applications")]
pub struct PluginCli {
    #[command(flatten)]
    pub spin: SpinTriggerFlags,

    #[command(flatten)]
    pub monitoring: MonitoringFlags,

    #[command(flatten)]
    pub http_trigger: HttpTriggerFlags,
}

/// The flags of Spin's own HTTP trigger (Spin 3.6 and 4.0), which `spin up`
/// may hand this plugin too. It routes a flag to the triggers whose launch
/// metadata names it, but when it cannot read some trigger's metadata it
/// gives every flag to every trigger ("allowing all"): Spin's own log lines
/// under a bare `RUST_LOG=info` land in the stderr it parses as metadata
/// (docs/spin-plugin.md, "Logging"). Refusing `--listen` then would stop the
/// whole app; so they are accepted, hidden from help and from our launch
/// metadata (`crate::plugin`), and ignored with a warning
/// (`Launch::plugin`). Values are kept as text: they are Spin's to check.
#[derive(Args, Debug, Clone, Default)]
pub struct HttpTriggerFlags {
    #[arg(long = "listen", hide = true)]
    listen: Option<String>,
    #[arg(long = "tls-cert", hide = true)]
    tls_cert: Option<String>,
    #[arg(long = "tls-key", hide = true)]
    tls_key: Option<String>,
    #[arg(long = "http1-max-buf-size", hide = true)]
    http1_max_buf_size: Option<String>,
    #[arg(long = "find-free-port", hide = true)]
    find_free_port: bool,
    #[arg(long = "format", hide = true)]
    format: Option<String>,
    #[arg(long = "max-instance-reuse-count", hide = true)]
    max_instance_reuse_count: Option<String>,
    #[arg(long = "max-instance-concurrent-reuse-count", hide = true)]
    max_instance_concurrent_reuse_count: Option<String>,
    #[arg(long = "request-timeout", hide = true)]
    request_timeout: Option<String>,
    #[arg(long = "idle-instance-timeout", hide = true)]
    idle_instance_timeout: Option<String>,
}

impl HttpTriggerFlags {
    /// The flags given, as typed (`--listen`), for the warning.
    pub fn given(&self) -> Vec<&'static str> {
        let options = [
            ("--listen", self.listen.is_some()),
            ("--tls-cert", self.tls_cert.is_some()),
            ("--tls-key", self.tls_key.is_some()),
            ("--http1-max-buf-size", self.http1_max_buf_size.is_some()),
            ("--find-free-port", self.find_free_port),
            ("--format", self.format.is_some()),
            ("--max-instance-reuse-count", self.max_instance_reuse_count.is_some()),
            ("--max-instance-concurrent-reuse-count", self.max_instance_concurrent_reuse_count.is_some()),
            ("--request-timeout", self.request_timeout.is_some()),
            ("--idle-instance-timeout", self.idle_instance_timeout.is_some()),
        ];
        options.into_iter().filter_map(|(flag, given)| given.then_some(flag)).collect()
    }
}

/// Run on its own, from a spin.toml: the Kafka trigger and, for local use,
/// the app's HTTP routes.
#[derive(Parser, Debug)]
#[command(
    name = "trigger-kafka",
    version,
    about = "Runs a Spin app's Kafka (and HTTP) triggers without Spin, from its spin.toml",
    after_help = "Started by `spin up` (SPIN_LOCKED_URL set), it runs as a Spin trigger plugin instead."
)]
pub struct LocalCli {
    /// The application manifest, or a directory holding spin.toml.
    #[arg(short = 'f', long = "from", default_value = "spin.toml", value_name = "MANIFEST")]
    pub from: PathBuf,

    /// Address the HTTP trigger listens on.
    #[arg(long = "listen", env = "SPIN_HTTP_LISTEN_ADDR", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Trigger types to run (repeatable: http, kafka). Default: every type in the app.
    #[arg(long = "trigger", value_name = "TYPE")]
    pub triggers: Vec<String>,

    #[command(flatten)]
    pub http: HttpFlags,

    #[command(flatten)]
    pub spin: SpinTriggerFlags,

    #[command(flatten)]
    pub monitoring: MonitoringFlags,
}

/// The local HTTP trigger's limits.
#[derive(Args, Debug, Clone)]
pub struct HttpFlags {
    /// Longest a request's component call may run (seconds); past it the
    /// instance is dropped and the client gets 504.
    #[arg(long = "http-request-timeout", env = "TRIGGER_HTTP_REQUEST_TIMEOUT", default_value_t = Seconds(HttpLimits::DEFAULT_REQUEST_TIMEOUT), value_parser = seconds, value_name = "SECONDS")]
    pub request_timeout: Seconds,

    /// Time a client has to send a request's head (seconds); also the longest
    /// a keep-alive connection may stay idle.
    #[arg(long = "http-header-timeout", env = "TRIGGER_HTTP_HEADER_TIMEOUT", default_value_t = Seconds(ServeLimits::DEFAULT_HEADER_READ_TIMEOUT), value_parser = seconds, value_name = "SECONDS")]
    pub header_timeout: Seconds,

    /// Most connections open at once; further clients wait in the listen backlog.
    #[arg(long = "http-max-connections", env = "TRIGGER_HTTP_MAX_CONNECTIONS", default_value_t = ServeLimits::DEFAULT_MAX_CONNECTIONS as u32, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub max_connections: u32,
}

impl HttpFlags {
    pub fn limits(&self) -> HttpLimits {
        HttpLimits {
            serve: ServeLimits {
                max_connections: self.max_connections as usize,
                header_read_timeout: self.header_timeout.0,
                ..Default::default()
            },
            request_timeout: self.request_timeout.0,
        }
    }
}

/// A flag's duration in seconds; shown as seconds in `--help`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds(pub Duration);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

/// A positive number of seconds (fractions allowed).
fn seconds(text: &str) -> Result<Seconds, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() && s < 1e9 => Ok(Seconds(Duration::from_secs_f64(s))),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}

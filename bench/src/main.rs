//! Load and ingest benchmarks against the `trigger-kafka` host. `scripts/bench`
//! runs the whole suite; each subcommand prints one JSON line per result on
//! stdout (for the script) and a human-readable line on stderr.

mod http_load;
mod ingest;
mod procstat;
mod stats;
mod users;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use stats::parse_duration;

#[derive(Parser)]
#[command(
    name = "bench",
    about = "HTTP load and Kafka ingest benchmarks for the User Information Service host"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Seed users via POST /user, then closed-loop HTTP load for each --mode in turn.
    Http(HttpArgs),
    /// Kafka ingest steps: produce, consume-only, wait-applied.
    Ingest(IngestArgs),
}

#[derive(Args)]
struct HttpArgs {
    /// Base URL of the host's HTTP trigger.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Recorded time of each load phase (30s, 500ms, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Unrecorded load before each phase.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Users created before the get/post phases (their ids are what they request).
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Load phases, run in order after one seeding (repeat or comma-separate).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "get")]
    mode: Vec<http_load::Mode>,
    /// Client runtime threads. 1 by default: the client shares the machine with
    /// the server, and one thread keeps its share bounded and predictable.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The server's pid: each phase then reports the server's CPU use too.
    #[arg(long)]
    server_pid: Option<u32>,
}

#[derive(Args)]
struct IngestArgs {
    /// Kafka bootstrap servers.
    #[arg(long, global = true, default_value = "127.0.0.1:29092")]
    brokers: String,
    #[arg(long, global = true, default_value = "user_service")]
    topic: String,
    /// Messages produced, consumed, or expected as distinct users.
    #[arg(long, global = true, default_value_t = 100_000)]
    messages: u64,
    /// Partitions the topic is expected to have (checked, warned about).
    #[arg(long, global = true, default_value_t = 3)]
    partitions: i32,
    #[command(subcommand)]
    step: IngestStep,
}

#[derive(Subcommand)]
enum IngestStep {
    /// Preload --messages user records (distinct new ids, keyed by id).
    Produce {
        #[arg(long, value_enum, default_value = "lz4")]
        compression: ingest::Compression,
    },
    /// Read --messages records in a fresh group, applying nothing: the broker ceiling.
    ConsumeOnly {
        #[arg(long, default_value = "300s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Poll the service's store until it holds --expect users.
    WaitApplied {
        /// The SQLite file (<state-dir>/sqlite_db.db).
        #[arg(long, required_unless_present = "database_url", conflicts_with = "database_url")]
        db: Option<PathBuf>,
        /// Or the PostgreSQL database (postgres://...).
        #[arg(long)]
        database_url: Option<String>,
        /// Distinct users to wait for (default: --messages).
        #[arg(long)]
        expect: Option<u64>,
        #[arg(long, default_value = "600s", value_parser = parse_duration)]
        timeout: Duration,
        /// The host's pid, to report its peak RSS (VmHWM) when done.
        #[arg(long)]
        pid: Option<u32>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Http(args) => {
            let runtime = if args.threads <= 1 {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(args.threads)
                    .enable_all()
                    .build()?
            };
            let options = http_load::HttpOptions {
                target: http_load::Target::parse(&args.url)?,
                connections: args.connections.max(1),
                duration: args.duration,
                warmup: args.warmup,
                users: args.users,
                modes: args.mode,
                server_pid: args.server_pid,
            };
            runtime.block_on(http_load::run(options))
        }
        Command::Ingest(args) => {
            let options = ingest::KafkaOptions {
                brokers: args.brokers,
                topic: args.topic,
                messages: args.messages,
                partitions: args.partitions,
            };
            match args.step {
                IngestStep::Produce { compression } => ingest::produce(&options, compression),
                IngestStep::ConsumeOnly { timeout } => ingest::consume_only(&options, timeout),
                IngestStep::WaitApplied {
                    db,
                    database_url,
                    expect,
                    timeout,
                    pid,
                } => ingest::wait_applied(&ingest::WaitOptions {
                    store: match (db, database_url) {
                        (Some(db), _) => ingest::Store::Sqlite(db),
                        (None, Some(url)) => ingest::Store::Postgres(url),
                        (None, None) => unreachable!("clap requires one"),
                    },
                    expect: expect.unwrap_or(options.messages),
                    timeout,
                    pid,
                }),
            }
        }
    }
}

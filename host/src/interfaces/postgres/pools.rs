//! The connection pools of this process, one per connection string (bounded),
//! and Spin's allow-list check on every host a connection string names.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use parking_lot::Mutex;
use tokio_postgres::config::{Host, SslMode};

use super::{Connection, Error, ZeroRowCheck, ZeroRowQueries};
use crate::interfaces::outbound_networking::AllowedHosts;

/// Connections kept per connection string (Spin keeps 64); overridable with
/// `TRIGGER_KAFKA_PG_POOL_SIZE`. A component waits for a free one beyond it.
const DEFAULT_POOL_SIZE: usize = 32;
pub const POOL_SIZE_VARIABLE: &str = "TRIGGER_KAFKA_PG_POOL_SIZE";

/// `TRIGGER_KAFKA_PG_POOL_SIZE`, read once at startup: malformed is a
/// startup error, not a silent default.
pub fn pool_size_from_env() -> anyhow::Result<usize> {
    crate::env_choice::number_from_env(POOL_SIZE_VARIABLE, DEFAULT_POOL_SIZE, 1)
}

/// Most distinct connection strings with a pool at once. A component can
/// open any address its `allowed_outbound_hosts` permits (with a wildcard,
/// many): beyond this, the pool used least recently is dropped (its
/// connections close once their users give them back).
const MAX_POOLS: usize = 64;

/// How long `open` waits for a pooled connection (all in use), for a new one
/// to be established, or for a returned one to be checked. Past it, `open`
/// fails with `connection-failed` instead of hanging the instance.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// Every pool of this process, by connection string.
pub struct Pools {
    by_address: Mutex<HashMap<String, (Pool, Instant)>>,
    zero_rows: Arc<ZeroRowCheck>,
    /// Connections per pool.
    size: usize,
}

impl Pools {
    pub fn new(zero_row_queries: ZeroRowQueries, size: usize) -> Self {
        Pools {
            by_address: Mutex::default(),
            zero_rows: Arc::new(ZeroRowCheck::new(zero_row_queries)),
            size,
        }
    }

    /// `open` of the interface, for a component allowed `allowed`.
    pub async fn open(&self, address: &str, allowed: &AllowedHosts) -> Result<Connection, Error> {
        ensure_allowed(address, allowed)?;
        let pool = self.pool(address)?;
        let client = pool.get().await.map_err(|e| Error::ConnectionFailed(format!("{e:?}")))?;
        Ok(Connection { client: Some(client), used: false, broken: false, zero_rows: self.zero_rows.clone() })
    }

    /// Each connection string in use, and each of `configured` (the stores
    /// the components are configured with, in use yet or not), answering
    /// `SELECT 1` (for `/readyz`).
    pub async fn probe(&self, configured: &[String]) -> Result<(), String> {
        let mut pools: Vec<(String, Pool)> =
            self.by_address.lock().iter().map(|(address, (pool, _))| (address.clone(), pool.clone())).collect();
        for address in configured {
            if !pools.iter().any(|(a, _)| a == address) {
                let pool = self.pool(address).map_err(|e| format!("PostgreSQL {}: {e:?}", redact(address)))?;
                pools.push((address.clone(), pool));
            }
        }
        for (address, pool) in pools {
            let host = redact(&address);
            let client = pool.get().await.map_err(|e| format!("PostgreSQL {host}: no connection: {e}"))?;
            if let Err(e) = client.simple_query("SELECT 1").await {
                if e.is_closed() {
                    drop(Object::take(client));
                }
                return Err(format!("PostgreSQL {host} does not answer: {e}"));
            }
        }
        Ok(())
    }

    fn pool(&self, address: &str) -> Result<Pool, Error> {
        let mut pools = self.by_address.lock();
        if let Some((pool, used)) = pools.get_mut(address) {
            *used = Instant::now();
            return Ok(pool.clone());
        }
        let pool = new_pool(address, self.size).map_err(|e| Error::ConnectionFailed(format!("{e:?}")))?;
        if pools.len() >= MAX_POOLS {
            if let Some(oldest) = pools.iter().min_by_key(|(_, (_, used))| *used).map(|(a, _)| a.clone()) {
                pools.remove(&oldest);
            }
        }
        pools.insert(address.to_owned(), (pool.clone(), Instant::now()));
        Ok(pool)
    }
}

/// A connection string without its password, for messages.
fn redact(address: &str) -> String {
    match address.parse::<tokio_postgres::Config>() {
        Ok(config) => {
            let hosts: Vec<String> = config
                .get_hosts()
                .iter()
                .map(|h| match h {
                    Host::Tcp(name) => name.clone(),
                    Host::Unix(path) => path.display().to_string(),
                })
                .collect();
            format!("{}/{}", hosts.join(","), config.get_dbname().unwrap_or(""))
        }
        Err(_) => "(unparsable address)".into(),
    }
}

fn new_pool(address: &str, size: usize) -> anyhow::Result<Pool> {
    let config: tokio_postgres::Config = address.parse().context("parsing Postgres connection string")?;
    // Liveness is checked without a round trip (a connection the server
    // closed, as on a restart, is seen closed and discarded); what matters
    // between two users of a connection (an open transaction) is handled on
    // give-back.
    let manager_config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
    let manager = if config.get_ssl_mode() == SslMode::Disable {
        Manager::from_config(config, tokio_postgres::NoTls, manager_config)
    } else {
        let connector = native_tls::TlsConnector::builder().build().context("TLS setup")?;
        Manager::from_config(config, postgres_native_tls::MakeTlsConnector::new(connector), manager_config)
    };
    Ok(Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(POOL_TIMEOUT))
        .create_timeout(Some(POOL_TIMEOUT))
        .recycle_timeout(Some(POOL_TIMEOUT))
        .build()?)
}

/// Spin's check: every TCP host of the connection string, with the port at
/// the same index (or the only port), must be allowed for `postgres`.
fn ensure_allowed(address: &str, allowed: &AllowedHosts) -> Result<(), Error> {
    let config: tokio_postgres::Config = address.parse().map_err(|e: tokio_postgres::Error| Error::ConnectionFailed(e.to_string()))?;
    let ports = config.get_ports();
    for (i, host) in config.get_hosts().iter().enumerate() {
        match host {
            Host::Tcp(name) => {
                let port = ports.get(i).or(if ports.len() == 1 { ports.first() } else { None }).copied();
                if !allowed.allows("postgres", name, port) {
                    let authority = match port {
                        Some(p) => format!("{name}:{p}"),
                        None => name.clone(),
                    };
                    report_disallowed(&format!("postgres://{authority}"));
                    return Err(Error::ConnectionFailed(format!("address postgres://{authority} is not permitted")));
                }
            }
            Host::Unix(_) => return Err(Error::ConnectionFailed("Unix sockets are not supported on WebAssembly".into())),
        }
    }
    Ok(())
}

/// What Spin prints when a component is refused a destination.
fn report_disallowed(destination: &str) {
    tracing::error!("Outbound network destination not allowed: {destination}");
    eprintln!("A component tried to make an outbound network connection to disallowed destination '{destination}'.");
    eprintln!("To allow this request, add 'allowed_outbound_hosts = [\"{destination}\"]' to the manifest component section.");
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_hosts_are_opened() {
        let allowed = AllowedHosts::parse(&["postgres://db.internal:5433".to_owned()]).unwrap();
        assert_eq!(ensure_allowed("postgres://u@db.internal:5433/app", &allowed), Ok(()));
        assert_eq!(
            ensure_allowed("postgres://u@db.internal/app", &allowed),
            Err(Error::ConnectionFailed("address postgres://db.internal:5432 is not permitted".into())),
        );
        assert_eq!(
            ensure_allowed("host=db.internal,other port=5433 user=u", &allowed),
            Err(Error::ConnectionFailed("address postgres://other:5433 is not permitted".into())),
        );
        assert!(matches!(ensure_allowed("not a url at all = =", &allowed), Err(Error::ConnectionFailed(_))));
    }
}

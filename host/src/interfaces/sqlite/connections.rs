//! Whether `open` reuses connections. Spin opens a new SQLite connection on
//! every `open` (and closes it with the guest's handle), so a connection's
//! page cache, prepared statements and per-connection settings (`PRAGMA
//! busy_timeout`, `synchronous`, `TEMP` tables) never outlive a request
//! there. This host pools connections by default, for speed: the Kafka
//! trigger runs on this host in production (SpinKube's shim has no Kafka
//! trigger). That kindness could hide a component that relies on what an
//! earlier request left on its connection, so the test harness runs every
//! host process as Spin does (`per-open`).

/// The environment variable choosing how `open` gets its connection.
pub const SQLITE_CONNECTIONS_VARIABLE: &str = "TRIGGER_KAFKA_SQLITE_CONNECTIONS";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connections {
    /// Reuse idle connections (their caches and settings with them); the
    /// default.
    Pooled,
    /// A new connection per `open`, closed when the guest drops it: Spin's
    /// behaviour.
    PerOpen,
}

impl Connections {
    /// From `TRIGGER_KAFKA_SQLITE_CONNECTIONS` (`pooled`, `per-open`); unset or empty: pooled.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::parse(std::env::var(SQLITE_CONNECTIONS_VARIABLE).ok().as_deref())
    }

    fn parse(value: Option<&str>) -> anyhow::Result<Self> {
        match value.map(str::trim) {
            None | Some("") | Some("pooled") => Ok(Connections::Pooled),
            Some("per-open") => Ok(Connections::PerOpen),
            Some(other) => anyhow::bail!("{SQLITE_CONNECTIONS_VARIABLE}={other:?}: expected pooled or per-open"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked() {
        assert_eq!(Connections::parse(None).unwrap(), Connections::Pooled);
        assert_eq!(Connections::parse(Some("per-open")).unwrap(), Connections::PerOpen);
        let e = Connections::parse(Some("fresh")).unwrap_err().to_string();
        assert!(e.contains(SQLITE_CONNECTIONS_VARIABLE) && e.contains("per-open"), "{e}");
    }
}

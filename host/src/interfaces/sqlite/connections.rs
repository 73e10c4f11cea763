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
    /// `pooled` (the default), `per-open`.
    const CHOICES: [(&'static str, Self); 2] = [("pooled", Connections::Pooled), ("per-open", Connections::PerOpen)];

    /// From `TRIGGER_KAFKA_SQLITE_CONNECTIONS`; unset or empty: pooled.
    pub fn from_env() -> anyhow::Result<Self> {
        crate::env_choice::from_env(SQLITE_CONNECTIONS_VARIABLE, &Self::CHOICES)
    }

    #[cfg(test)]
    fn parse(value: Option<&str>) -> anyhow::Result<Self> {
        crate::env_choice::parse(SQLITE_CONNECTIONS_VARIABLE, value, &Self::CHOICES)
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

//! What this host does when a `query` yields no rows: Spin 4.0.0-4.0.2 never
//! answer one (spin#3671), so a component relying on it is flagged here.

use std::collections::HashSet;

use parking_lot::Mutex;

use super::Error;

/// The environment variable choosing what a zero-row `query` does.
pub const ZERO_ROW_QUERY_VARIABLE: &str = "TRIGGER_KAFKA_ZERO_ROW_QUERY";

/// What this host does when a `query` yields no rows, which Spin 4.0.0-4.0.2
/// never answer (spin#3671; SpinKube's shims from v0.25 embed Spin 4.0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroRowQueries {
    /// Answer it, as Spin 3.x and 4.0.3+ do.
    Allow,
    /// Answer it, and warn once per statement text (the default: a running
    /// deployment keeps working, its operator learns what will hang).
    Warn,
    /// Fail the call with an error naming spin#3671, and say so on stderr
    /// (tests: the request fails, and the harness fails the test).
    Error,
}

impl ZeroRowQueries {
    /// `warn` (the default), `allow`, `error`.
    const CHOICES: [(&'static str, Self); 3] =
        [("warn", ZeroRowQueries::Warn), ("allow", ZeroRowQueries::Allow), ("error", ZeroRowQueries::Error)];

    /// From `TRIGGER_KAFKA_ZERO_ROW_QUERY`; unset or empty: warn.
    pub fn from_env() -> anyhow::Result<Self> {
        crate::env_choice::from_env(ZERO_ROW_QUERY_VARIABLE, &Self::CHOICES)
    }

    #[cfg(test)]
    fn parse(value: Option<&str>) -> anyhow::Result<Self> {
        crate::env_choice::parse(ZERO_ROW_QUERY_VARIABLE, value, &Self::CHOICES)
    }
}

/// The statements already warned about, so a hot one warns once (bounded:
/// past the limit, warnings stop rather than memory growing).
const WARNED_LIMIT: usize = 1024;

pub(super) struct ZeroRowCheck {
    mode: ZeroRowQueries,
    warned: Mutex<HashSet<String>>,
}

impl ZeroRowCheck {
    pub(super) fn new(mode: ZeroRowQueries) -> Self {
        ZeroRowCheck { mode, warned: Mutex::default() }
    }

    /// Called for a `query` that yielded no rows; an error fails the call.
    pub(super) fn report(&self, statement: &str) -> Result<(), Error> {
        let message = || {
            format!(
                "spin#3671: a spin:postgres `query` returned zero rows; Spin 4.0.0-4.0.2 never answer such a call \
                 (the component hangs). Run statements without rows through `execute`, and write lookups that \
                 may match nothing to return one row. Statement: {}",
                statement.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        };
        match self.mode {
            ZeroRowQueries::Allow => Ok(()),
            ZeroRowQueries::Warn => {
                let mut warned = self.warned.lock();
                if warned.len() < WARNED_LIMIT && warned.insert(statement.to_owned()) {
                    tracing::warn!("{}", message());
                }
                Ok(())
            }
            ZeroRowQueries::Error => {
                let message = message();
                // On stderr whatever RUST_LOG says: the test harness looks for it.
                eprintln!("trigger-kafka: error: {message}");
                Err(Error::QueryFailed(message))
            }
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_row_query_modes() {
        assert_eq!(ZeroRowQueries::parse(None).unwrap(), ZeroRowQueries::Warn, "a user's run keeps working");
        assert_eq!(ZeroRowQueries::parse(Some("error")).unwrap(), ZeroRowQueries::Error);
        assert_eq!(ZeroRowQueries::parse(Some("allow")).unwrap(), ZeroRowQueries::Allow);
        assert!(ZeroRowQueries::parse(Some("strict")).unwrap_err().to_string().contains("TRIGGER_KAFKA_ZERO_ROW_QUERY"));
        let check = |mode| ZeroRowCheck { mode, warned: Mutex::default() };
        let Err(Error::QueryFailed(message)) = check(ZeroRowQueries::Error).report("SELECT 1\n  WHERE false") else {
            panic!("error mode fails the call")
        };
        assert!(message.contains("spin#3671") && message.ends_with("Statement: SELECT 1 WHERE false"), "{message}");
        let warn = check(ZeroRowQueries::Warn);
        assert_eq!(warn.report("BEGIN"), Ok(()));
        assert_eq!(warn.report("BEGIN"), Ok(()));
        assert_eq!(warn.warned.lock().len(), 1, "one warning per statement");
    }

}

//! Which dead-lettered records a replay sends, and where.

use anyhow::{Context, Result};
use rdkafka::message::{BorrowedMessage, Headers, Message};

use super::{ReplayArgs, HEADER_REPLAYED};

pub enum Decision {
    /// Outside the time window or of another error kind.
    Skip,
    /// Replayed this many times already: the loop limit.
    Refuse(u32),
    /// Send to `to`, as replay number `replayed`.
    Replay { to: String, replayed: u32 },
}

pub struct Filter {
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    error_kind: Option<String>,
    to: Option<String>,
    max_replays: u32,
}

/// RFC 3339 or milliseconds since the epoch.
fn parse_time(flag: &str, text: &str) -> Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let t = chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("{flag} {text:?}: expected RFC 3339 (2026-01-31T12:00:00Z) or epoch milliseconds"))?;
    Ok(t.timestamp_millis())
}

fn header<'a>(m: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a str> {
    let headers = m.headers()?;
    headers.iter().filter(|h| h.key == name).last().and_then(|h| std::str::from_utf8(h.value?).ok())
}

impl Filter {
    pub fn new(args: &ReplayArgs) -> Result<Filter> {
        Ok(Filter {
            since_ms: args.since.as_deref().map(|t| parse_time("--since", t)).transpose()?,
            until_ms: args.until.as_deref().map(|t| parse_time("--until", t)).transpose()?,
            error_kind: args.error_kind.clone(),
            to: args.to.clone(),
            max_replays: args.max_replays,
        })
    }

    pub fn decide(&self, m: &BorrowedMessage<'_>) -> Decision {
        let at = m.timestamp().to_millis();
        if self.since_ms.is_some_and(|since| at.is_none_or(|t| t < since))
            || self.until_ms.is_some_and(|until| at.is_none_or(|t| t >= until))
        {
            return Decision::Skip;
        }
        if let Some(kind) = &self.error_kind {
            if header(m, kafka_consumer::HEADER_ERROR_KIND) != Some(kind.as_str()) {
                return Decision::Skip;
            }
        }
        let times: u32 = header(m, HEADER_REPLAYED).and_then(|v| v.parse().ok()).unwrap_or(0);
        if times >= self.max_replays {
            return Decision::Refuse(times);
        }
        let to = match &self.to {
            Some(to) => to.clone(),
            None => match header(m, kafka_consumer::HEADER_ORIGINAL_TOPIC) {
                Some(t) => t.to_owned(),
                // Not written by the trigger: nowhere to send it back to.
                None => return Decision::Skip,
            },
        };
        Decision::Replay { to, replayed: times + 1 }
    }
}

//! A Kafka record as the trigger hands it to the component.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Error;

/// One Kafka record: where it came from, its key, headers, timestamp and value.
///
/// ```
/// use trigger_kafka_sdk::Record;
///
/// let record = Record::new("orders", 3, 42, br#"{"id": 7}"#.to_vec())
///     .with_key("customer-9")
///     .with_header("traceparent", Some("00-abc-def-01"))
///     .with_timestamp_millis(1_700_000_000_000);
/// assert_eq!((record.topic(), record.partition(), record.offset()), ("orders", 3, 42));
/// assert_eq!(record.key_str(), Some(Ok("customer-9")));
/// assert_eq!(record.header_str("traceparent"), Some("00-abc-def-01"));
/// assert_eq!(record.timestamp_millis(), Some(1_700_000_000_000));
/// let value: serde_json::Value = record.value_json().unwrap();
/// assert_eq!(value["id"], 7);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    topic: String,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<Vec<u8>>,
    /// `None`: a tombstone (Kafka's null value).
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Record {
    /// A record with no key, headers or timestamp (for tests of a handler).
    pub fn new(topic: impl Into<String>, partition: i32, offset: i64, value: impl Into<Vec<u8>>) -> Self {
        Record {
            topic: topic.into(),
            partition,
            offset,
            timestamp: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
        }
    }

    /// A tombstone: a record with a null value (for tests of a handler;
    /// give it the key of the entity it deletes with [`Record::with_key`]).
    ///
    /// ```
    /// # use trigger_kafka_sdk::Record;
    /// let gone = Record::tombstone("users", 0, 7).with_key("u1");
    /// assert!(gone.is_tombstone());
    /// assert_eq!(gone.payload(), None);
    /// assert!(!Record::new("users", 0, 8, vec![]).is_tombstone(), "an empty value is a value");
    /// ```
    pub fn tombstone(topic: impl Into<String>, partition: i32, offset: i64) -> Self {
        Record { value: None, ..Record::new(topic, partition, offset, Vec::new()) }
    }

    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Appends a header (Kafka allows repeated names and null values).
    pub fn with_header(mut self, name: impl Into<String>, value: Option<impl Into<Vec<u8>>>) -> Self {
        self.headers.push((name.into(), value.map(Into::into)));
        self
    }

    pub fn with_timestamp_millis(mut self, millis: i64) -> Self {
        self.timestamp = Some(millis);
        self
    }

    #[doc(hidden)]
    pub fn from_wit_parts(p: crate::__private::WitParts) -> Self {
        Record {
            topic: p.topic,
            partition: p.partition,
            offset: p.offset,
            timestamp: p.timestamp,
            key: p.key,
            value: p.value,
            headers: p.headers,
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Milliseconds since the Unix epoch (create or log-append time), when the broker gave one.
    pub fn timestamp_millis(&self) -> Option<i64> {
        self.timestamp
    }

    /// The timestamp as a [`SystemTime`].
    ///
    /// ```
    /// # use trigger_kafka_sdk::Record;
    /// let r = Record::new("t", 0, 0, vec![]).with_timestamp_millis(1_500);
    /// let since = r.timestamp().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap();
    /// assert_eq!(since.as_millis(), 1_500);
    /// assert_eq!(Record::new("t", 0, 0, vec![]).timestamp(), None);
    /// ```
    pub fn timestamp(&self) -> Option<SystemTime> {
        let millis = self.timestamp?;
        let magnitude = Duration::from_millis(millis.unsigned_abs());
        if millis >= 0 {
            UNIX_EPOCH.checked_add(magnitude)
        } else {
            UNIX_EPOCH.checked_sub(magnitude)
        }
    }

    pub fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }

    /// The key as text; `Some(Err(_))` when it is not UTF-8.
    pub fn key_str(&self) -> Option<Result<&str, Error>> {
        self.key().map(|k| std::str::from_utf8(k).map_err(Error::from))
    }

    /// The payload; empty for a tombstone (tell the two apart with
    /// [`Record::is_tombstone`] or [`Record::payload`]).
    pub fn value(&self) -> &[u8] {
        self.value.as_deref().unwrap_or_default()
    }

    /// The payload, `None` for a tombstone (a null value): on a keyed topic,
    /// "the entity of this key is gone". `Some` of an empty slice is an empty
    /// value, not a tombstone. Components built against the contract's
    /// 0.1.0 could not tell; this SDK builds 0.2.0 components, which can.
    pub fn payload(&self) -> Option<&[u8]> {
        self.value.as_deref()
    }

    /// Whether the record is a tombstone (its value is null).
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// The payload as text; not UTF-8 is a permanent error.
    ///
    /// ```
    /// # use trigger_kafka_sdk::{Error, Record};
    /// assert_eq!(Record::new("t", 0, 0, "hé").value_str(), Ok("hé"));
    /// assert!(matches!(Record::new("t", 0, 0, vec![0xff]).value_str(), Err(Error::Permanent(_))));
    /// ```
    pub fn value_str(&self) -> Result<&str, Error> {
        Ok(std::str::from_utf8(self.value())?)
    }

    /// The payload parsed as JSON into `T`; a mismatch is a permanent error.
    ///
    /// ```
    /// # use trigger_kafka_sdk::{Error, Record};
    /// #[derive(serde::Deserialize, Debug, PartialEq)]
    /// struct User { user_id: String }
    /// let ok = Record::new("t", 0, 0, r#"{"user_id": "u1"}"#);
    /// assert_eq!(ok.value_json::<User>().unwrap(), User { user_id: "u1".into() });
    /// let bad = Record::new("t", 0, 0, "[1]");
    /// assert!(matches!(bad.value_json::<User>(), Err(Error::Permanent(_))));
    /// ```
    pub fn value_json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(serde_json::from_slice(self.value())?)
    }

    /// Every header, in the order the producer wrote them.
    pub fn headers(&self) -> Headers<'_> {
        Headers { inner: self.headers.iter() }
    }

    /// The value of the last header called `name` (Kafka lets names repeat; the
    /// last one written wins, as in Kafka's own `Headers.lastHeader`). `None`
    /// when absent; `Some(None)` for a null value.
    ///
    /// ```
    /// # use trigger_kafka_sdk::Record;
    /// let r = Record::new("t", 0, 0, vec![])
    ///     .with_header("retry", Some("1"))
    ///     .with_header("retry", Some("2"))
    ///     .with_header("tombstone", None::<Vec<u8>>);
    /// assert_eq!(r.header("retry"), Some(Some(&b"2"[..])));
    /// assert_eq!(r.header("tombstone"), Some(None));
    /// assert_eq!(r.header("absent"), None);
    /// assert_eq!(r.headers().filter(|(name, _)| *name == "retry").count(), 2);
    /// ```
    pub fn header(&self, name: &str) -> Option<Option<&[u8]>> {
        self.headers().filter(|(n, _)| *n == name).last().map(|(_, v)| v)
    }

    /// The last header called `name` as text, when present, non-null and UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).flatten().and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// The headers of a [`Record`]: `(name, value)` pairs, `None` for a null value.
pub struct Headers<'a> {
    inner: std::slice::Iter<'a, (String, Option<Vec<u8>>)>,
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a str, Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(k, v)| (k.as_str(), v.as_deref()))
    }
}

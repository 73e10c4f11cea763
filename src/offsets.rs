//! Effectively-once application of Kafka records. Kafka redelivers records
//! after a crash or a rebalance (its offsets are committed after the records
//! were applied), and a redelivered update could overwrite a newer write from
//! HTTP. So the last offset applied per (topic, partition) is recorded in
//! `kafka_offsets` in the same transaction as the records' upserts; a record
//! at or below it is skipped and counted in the row's `skipped` column.
//!
//! The record carries no epoch, so the bookkeeping cannot tell a redelivery
//! from a deliberate replay (consumer offsets reset to earliest, a topic
//! deleted and recreated with offsets from 0). Reprocessing on purpose is
//! therefore explicit: delete the topic's rows (`DELETE FROM kafka_offsets
//! WHERE topic = '...'`), as the README documents.

use crate::db::{Database, DbError, DbErrorKind, Dialect, SqlValue};
use crate::dialect::{in_transaction, prepare_write, query};
use crate::input::{parse_patch, parse_tombstone_key, InputError};
use crate::model::UserPatch;
use crate::store::with_schema;
use crate::tombstone::delete_all;
use crate::upsert::upsert_all;

/// Why a batch was not applied. Either way nothing of it was written.
#[derive(Debug)]
pub enum BatchError {
    /// The record at `index` is invalid; retrying it can never succeed.
    Invalid { index: usize, error: InputError },
    /// The database failed; the same batch may succeed later.
    Database(DbError),
}

impl From<DbError> for BatchError {
    fn from(e: DbError) -> Self {
        BatchError::Database(e)
    }
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Invalid { index, error } => write!(f, "record {index} is invalid: {error}"),
            BatchError::Database(e) => write!(f, "database error: {e}"),
        }
    }
}

impl std::error::Error for BatchError {}

/// One record as the trigger delivers it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    /// `None` is a tombstone (Kafka's null value): delete the user its key
    /// names. An empty value is not a tombstone, and not a valid update.
    pub value: Option<&'a [u8]>,
}

/// What a record asks for.
enum Change {
    Upsert(UserPatch),
    Delete(uuid::Uuid),
}

impl Record<'_> {
    fn change(&self) -> Result<Change, InputError> {
        match self.value {
            Some(json) => parse_patch(json).map(Change::Upsert),
            None => parse_tombstone_key(self.key).map(Change::Delete),
        }
    }
}

/// What a call did with its records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub applied: usize,
    /// Records at or below the partition's recorded offset: already applied.
    pub skipped: usize,
}

// Always exactly one row (a zero-row `query` hangs Spin 4.0.0-4.0.2, see
// `crate::db`): NULL when the partition has no offset yet. (topic,
// partition_id) is the primary key, so the join matches at most one row.
const SELECT_OFFSET: &str = "SELECT k.last_offset \
     FROM (VALUES (1)) AS one LEFT JOIN kafka_offsets k \
         ON k.topic = CAST($1 AS TEXT) AND k.partition_id = CAST($2 AS BIGINT)";

// Moves the partition's offset from the value this transaction read ($5; -1
// for no row) to $3 and adds $4 skipped records. When another transaction
// moved it in between, the WHERE fails (PostgreSQL re-checks it against the
// committed row after waiting for that row's lock) and nothing is written.
macro_rules! claim_offset {
    ($returning:literal) => {
        concat!(
            "INSERT INTO kafka_offsets (topic, partition_id, last_offset, skipped) \
             VALUES (CAST($1 AS TEXT), CAST($2 AS BIGINT), CAST($3 AS BIGINT), CAST($4 AS BIGINT)) \
             ON CONFLICT (topic, partition_id) DO UPDATE SET \
                 last_offset = excluded.last_offset, \
                 skipped = kafka_offsets.skipped + excluded.skipped \
             WHERE kafka_offsets.last_offset = CAST($5 AS BIGINT) ",
            $returning
        )
    };
}

// PostgreSQL: the claim in a data-modifying CTE, counted, so the `query`
// yields one row (0 or 1) even when the WHERE fails.
const CLAIM_OFFSET_POSTGRES: &str =
    concat!("WITH claimed AS (", claim_offset!("RETURNING 1"), ") SELECT count(*) FROM claimed");

// SQLite allows no INSERT in a CTE, and needs none: its `query` may yield no
// rows, so a lost claim is a missing RETURNING row. (The WHERE cannot fail
// there anyway: BEGIN IMMEDIATE holds the write lock since the offset read.)
const CLAIM_OFFSET_SQLITE: &str = claim_offset!("RETURNING 1");

/// The bookkeeping of one partition within a call.
struct Partition<'a> {
    topic: &'a str,
    partition: i32,
    read: i64,
    last: i64,
    skipped: i64,
}

/// Validates every record, then applies those not yet applied, in order, in
/// one transaction together with the offset bookkeeping: all or nothing. On
/// an invalid record nothing is written and its index is given. The upserts
/// go in multi-row statements (`crate::upsert`) and consecutive tombstones in
/// one delete (`crate::tombstone`), so a batch costs a handful of
/// statements, not one per record.
pub fn apply_records(db: &impl Database, records: &[Record<'_>]) -> Result<Applied, BatchError> {
    let changes = records
        .iter()
        .enumerate()
        .map(|(index, r)| r.change().map_err(|error| BatchError::Invalid { index, error }))
        .collect::<Result<Vec<_>, _>>()?;
    prepare_write(db)?;
    with_schema(db, || {
        in_transaction(db, || {
            let mut partitions: Vec<Partition<'_>> = Vec::new();
            let mut apply = Vec::with_capacity(records.len());
            for record in records {
                let index = match partitions.iter().position(|p| p.topic == record.topic && p.partition == record.partition) {
                    Some(index) => index,
                    None => {
                        let read = last_offset(db, record.topic, record.partition)?.unwrap_or(-1);
                        partitions.push(Partition { topic: record.topic, partition: record.partition, read, last: read, skipped: 0 });
                        partitions.len() - 1
                    }
                };
                let p = &mut partitions[index];
                let fresh = record.offset > p.last;
                if fresh {
                    p.last = record.offset;
                } else {
                    p.skipped += 1;
                }
                apply.push(fresh);
            }
            for p in &partitions {
                claim(db, p)?;
            }
            let fresh: Vec<&Change> =
                changes.iter().zip(&apply).filter_map(|(change, fresh)| fresh.then_some(change)).collect();
            apply_in_order(db, &fresh)?;
            let applied = fresh.len();
            Ok(Applied { applied, skipped: records.len() - applied })
        })
    })
    .map_err(BatchError::Database)
}

/// Applies the changes in order: each run of consecutive upserts, then each
/// run of consecutive deletes, as they come, so an id updated, deleted and
/// re-created in one batch ends as those records one by one would leave it.
fn apply_in_order(db: &impl Database, changes: &[&Change]) -> Result<(), DbError> {
    let mut rest = changes;
    while let Some(first) = rest.first() {
        let deleting = matches!(first, Change::Delete(_));
        let len = rest.iter().take_while(|c| matches!(c, Change::Delete(_)) == deleting).count();
        let (run, next) = rest.split_at(len);
        if deleting {
            let ids: Vec<uuid::Uuid> = run.iter().filter_map(|c| match c { Change::Delete(id) => Some(*id), _ => None }).collect();
            delete_all(db, &ids)?;
        } else {
            let patches: Vec<&UserPatch> = run.iter().filter_map(|c| match c { Change::Upsert(p) => Some(p), _ => None }).collect();
            upsert_all(db, &patches)?;
        }
        rest = next;
    }
    Ok(())
}

fn last_offset(db: &impl Database, topic: &str, partition: i32) -> Result<Option<i64>, DbError> {
    let rows = query(db, SELECT_OFFSET, &[SqlValue::Text(topic.to_owned()), SqlValue::Integer(partition.into())])?;
    match rows.first().and_then(|r| r.first()) {
        None => Err(DbError::other("the offset lookup returned no row")),
        Some(SqlValue::Null) => Ok(None),
        Some(SqlValue::Integer(offset)) => Ok(Some(*offset)),
        Some(other) => Err(DbError::other(format!("kafka_offsets.last_offset: expected integer, got {other:?}"))),
    }
}

fn claim(db: &impl Database, p: &Partition<'_>) -> Result<(), DbError> {
    let params = [
        SqlValue::Text(p.topic.to_owned()),
        SqlValue::Integer(p.partition.into()),
        SqlValue::Integer(p.last),
        SqlValue::Integer(p.skipped),
        SqlValue::Integer(p.read),
    ];
    let claimed = match db.dialect() {
        Dialect::Postgres => match query(db, CLAIM_OFFSET_POSTGRES, &params)?.first().and_then(|r| r.first()) {
            Some(SqlValue::Integer(n)) => *n,
            other => return Err(DbError::other(format!("claimed count: expected an integer, got {other:?}"))),
        },
        Dialect::Sqlite => query(db, CLAIM_OFFSET_SQLITE, &params)?.len() as i64,
    };
    if claimed == 0 {
        // Only two consumers of one partition at once can get here; retrying
        // re-reads the offset and skips what the other one applied.
        return Err(DbError::new(DbErrorKind::Busy, format!(
            "the applied offset of {}/{} moved concurrently; retry",
            p.topic, p.partition
        )));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    pub fn read_offset(db: &impl Database) -> Option<i64> {
        last_offset(db, "users", 0).unwrap()
    }

    pub fn claim_from(db: &impl Database, read: i64, last: i64) -> Result<(), DbError> {
        claim(db, &Partition { topic: "users", partition: 0, read, last, skipped: 0 })
    }
}

//! Deleting users, the one place that says what a delete writes. A deleted
//! user's row stays as a tombstone: its personal fields are cleared to '',
//! `deleted` is 1, and its revision counts the delete like any write, so the
//! revision (and the ETag built from it, `crate::conditions`) never repeats
//! for an id, also when the user is created again (migration 0003). Reads
//! and conditions treat a tombstone as no user; the upsert revives it
//! (`crate::upsert`).
//!
//! A delete is one statement: a concurrent upsert of the same id either
//! precedes it (and is erased) or follows it (and re-creates the user).

use uuid::Uuid;

use crate::db::{Database, DbError, SqlValue};
use crate::dialect::execute;
use crate::model::FIELDS;
use crate::upsert::MAX_ROWS;

/// `UPDATE … WHERE user_id IN (…)` for `count` ids bound from `$1`, live
/// rows only (deleting a tombstone again changes nothing, not even its
/// revision). Callers may add conditions (` AND …`) and RETURNING.
pub(crate) fn statement(count: usize) -> String {
    let cleared: String = FIELDS.iter().map(|c| format!("{c} = '', ")).collect();
    let ids: Vec<String> = (1..=count).map(|n| format!("CAST(${n} AS TEXT)")).collect();
    format!(
        "UPDATE user_info SET {cleared}deleted = 1, revision = user_info.revision + 1 \
         WHERE user_id IN ({}) AND user_info.deleted = 0",
        ids.join(", ")
    )
}

/// Deletes every user of `ids` that exists, in statements of at most
/// [`MAX_ROWS`] ids, without RETURNING (PostgreSQL's `execute`, spin#3671).
/// For the Kafka path, inside its transaction; no migration: callers go
/// through `store::with_schema`.
pub(crate) fn delete_all(db: &impl Database, ids: &[Uuid]) -> Result<(), DbError> {
    for chunk in ids.chunks(MAX_ROWS) {
        let params: Vec<SqlValue> = chunk.iter().map(|id| SqlValue::Text(id.to_string())).collect();
        execute(db, &statement(chunk.len()), &params)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_delete_clears_every_field_and_counts_a_revision() {
        assert_eq!(
            super::statement(2),
            "UPDATE user_info SET first_name = '', last_name = '', email = '', phone_number = '', \
             deleted = 1, revision = user_info.revision + 1 \
             WHERE user_id IN (CAST($1 AS TEXT), CAST($2 AS TEXT)) AND user_info.deleted = 0"
        );
    }
}

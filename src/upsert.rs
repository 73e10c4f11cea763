//! The upsert statement, the one place that says how a patch becomes a row:
//! absent fields keep the stored value on update and are '' on insert (the
//! columns' default), an empty string clears a field, and every applied patch
//! adds 1 to `revision`. `POST /user` runs it for one patch with a RETURNING
//! clause (`store::upsert_user`); the Kafka path runs it for a batch's
//! patches in few statements ([`upsert_all`]), because a statement is a host
//! call: on Spin every SQLite statement is a hop to a blocking thread and
//! every PostgreSQL statement a round trip.
//!
//! The patches are cut, in order, into runs that one statement can apply:
//! - **one shape**: the same fields present, because the update names only
//!   the columns the patches carry (`excluded` holds '' for an absent field,
//!   not "absent");
//! - **distinct ids**: one INSERT may not update a row twice (PostgreSQL
//!   refuses, "ON CONFLICT DO UPDATE command cannot affect row a second
//!   time"), so a repeated id starts the next run and later patches still
//!   land after earlier ones;
//! - at most [`MAX_ROWS`] rows, so the statement texts stay few (both hosts
//!   cache prepared statements by text) and far below either database's
//!   parameter limit.
//!
//! The batch statements have no RETURNING: the Kafka path needs no saved row,
//! and on PostgreSQL a statement without rows must go through `execute`
//! (spin#3671, `crate::db`).

use std::collections::HashSet;

use crate::db::{Database, DbError, SqlValue};
use crate::dialect::execute;
use crate::model::{UserPatch, FIELDS};

/// Rows per statement at most: 5 parameters each, so 500 parameters.
pub(crate) const MAX_ROWS: usize = 100;

/// Which of [`FIELDS`] a patch carries, in their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape([bool; 4]);

impl Shape {
    fn of(patch: &UserPatch) -> Self {
        Shape(patch.fields().map(|v| v.is_some()))
    }

    fn present(self) -> impl Iterator<Item = &'static str> {
        FIELDS.into_iter().zip(self.0).filter_map(|(name, present)| present.then_some(name))
    }
}

/// Upserts every patch, in order, as if one at a time. No migration: callers
/// go through `store::with_schema`, inside their transaction.
pub(crate) fn upsert_all(db: &impl Database, patches: &[&UserPatch]) -> Result<(), DbError> {
    for run in runs(patches) {
        let (sql, params) = statement(run);
        execute(db, &sql, &params)?;
    }
    Ok(())
}

/// Cuts `patches` into the longest runs of one shape and distinct ids, each
/// at most [`MAX_ROWS`] long, in order.
fn runs<'p, 'u>(patches: &'p [&'u UserPatch]) -> Vec<&'p [&'u UserPatch]> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut ids = HashSet::new();
    for (i, patch) in patches.iter().enumerate() {
        let fits = i - start < MAX_ROWS && Shape::of(patch) == Shape::of(patches[start]) && !ids.contains(&patch.user_id);
        if !fits {
            runs.push(&patches[start..i]);
            start = i;
            ids.clear();
        }
        ids.insert(patch.user_id);
    }
    if start < patches.len() {
        runs.push(&patches[start..]);
    }
    runs
}

/// The upsert of a run (one shape, distinct ids; one patch for `POST /user`),
/// in `$n` style, without RETURNING.
pub(crate) fn statement(run: &[&UserPatch]) -> (String, Vec<SqlValue>) {
    let shape = Shape::of(run[0]);
    let columns: Vec<&str> = shape.present().collect();
    let per_row = 1 + columns.len();
    let mut params = Vec::with_capacity(run.len() * per_row);
    let mut rows = Vec::with_capacity(run.len());
    for patch in run {
        let first = params.len() + 1;
        params.push(SqlValue::Text(patch.user_id.to_string()));
        params.extend(patch.fields().into_iter().flatten().map(|v| SqlValue::Text(v.clone())));
        let cells: Vec<String> = (first..first + per_row).map(|n| format!("CAST(${n} AS TEXT)")).collect();
        rows.push(format!("({}, 1)", cells.join(", ")));
    }
    let insert_columns: String = columns.iter().map(|c| format!(", {c}")).collect();
    let updates: String = columns.iter().map(|c| format!("{c} = excluded.{c}, ")).collect();
    // Columns the shape lacks take their '' default on insert and are not
    // touched on update. A tombstone (`crate::tombstone`) holds '' in every
    // field, so a patch that re-creates its user starts from blank fields
    // too; its revision keeps counting and its new life begins there.
    let sql = format!(
        "INSERT INTO user_info (user_id{insert_columns}, revision) VALUES {} \
         ON CONFLICT (user_id) DO UPDATE SET {updates}{REVISE}",
        rows.join(", ")
    );
    (sql, params)
}

/// What every write of a patch does to the bookkeeping columns of an
/// existing row (in SET, every right-hand side reads the row as it was).
const REVISE: &str = "revision = user_info.revision + 1, \
     created_revision = CASE WHEN user_info.deleted = 1 THEN user_info.revision + 1 ELSE user_info.created_revision END, \
     deleted = 0";

/// The update of an existing row by one patch, for a write that must not
/// create (`If-Match`): `UPDATE … WHERE user_id = $1`, to be followed by the
/// caller's conditions (` AND …`) and RETURNING. Parameters from `$1`.
pub(crate) fn update_statement(patch: &UserPatch) -> (String, Vec<SqlValue>) {
    let mut params = vec![SqlValue::Text(patch.user_id.to_string())];
    let mut sets = String::new();
    for (column, value) in FIELDS.into_iter().zip(patch.fields()) {
        if let Some(value) = value {
            params.push(SqlValue::Text(value.clone()));
            sets.push_str(&format!("{column} = CAST(${} AS TEXT), ", params.len()));
        }
    }
    (format!("UPDATE user_info SET {sets}{REVISE} WHERE user_id = CAST($1 AS TEXT)"), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(id: u128, first_name: Option<&str>, email: Option<&str>) -> UserPatch {
        UserPatch {
            user_id: uuid::Uuid::from_u128(id),
            first_name: first_name.map(str::to_owned),
            email: email.map(str::to_owned),
            ..UserPatch::default()
        }
    }

    fn lengths(patches: &[UserPatch]) -> Vec<usize> {
        let refs: Vec<&UserPatch> = patches.iter().collect();
        runs(&refs).iter().map(|r| r.len()).collect()
    }

    #[test]
    fn a_run_ends_at_a_repeated_id_a_new_shape_or_the_row_limit() {
        let a = Some("a");
        assert_eq!(lengths(&[patch(1, a, None), patch(2, a, None), patch(1, a, None)]), [2, 1]);
        assert_eq!(lengths(&[patch(1, a, None), patch(2, None, a), patch(3, None, a)]), [1, 2]);
        let many: Vec<UserPatch> = (0..2 * MAX_ROWS as u128 + 1).map(|n| patch(n, a, None)).collect();
        assert_eq!(lengths(&many), [MAX_ROWS, MAX_ROWS, 1]);
        assert_eq!(lengths(&[]), Vec::<usize>::new());
    }

    #[test]
    fn the_statement_names_only_the_fields_its_shape_carries() {
        let (a, b) = (patch(1, Some("Ann"), Some("a@x")), patch(2, Some(""), Some("b@x")));
        let (sql, params) = statement(&[&a, &b]);
        assert_eq!(
            sql,
            "INSERT INTO user_info (user_id, first_name, email, revision) VALUES \
             (CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), 1), \
             (CAST($4 AS TEXT), CAST($5 AS TEXT), CAST($6 AS TEXT), 1) \
             ON CONFLICT (user_id) DO UPDATE SET first_name = excluded.first_name, \
             email = excluded.email, revision = user_info.revision + 1, \
             created_revision = CASE WHEN user_info.deleted = 1 THEN user_info.revision + 1 ELSE user_info.created_revision END, \
             deleted = 0"
        );
        assert_eq!(params.len(), 6);
        assert_eq!(params[4], SqlValue::Text(String::new()), "an empty string clears, it is not absent");
    }
}

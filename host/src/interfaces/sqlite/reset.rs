//! What a pooled connection must not carry from one instance to the next.
//! Spin opens a fresh connection per `open`, so nothing an instance sets on
//! its connection (PRAGMAs, TEMP tables, views, triggers, attached
//! databases) outlives it; a pooled connection would hand all of it to the
//! next instance, of any component sharing the label. So every statement's
//! effect on the connection is watched (SQLite's authorizer, at prepare):
//! - a few PRAGMAs that components set as a matter of course before writing
//!   (`busy_timeout`, `synchronous`, ...) are put back to the connection's
//!   opening values when it is given back, so writers keep their pooled
//!   connections;
//! - anything else that changes the connection (any other PRAGMA with a
//!   value, a TEMP object, ATTACH/DETACH) marks it for closing: it is not
//!   pooled; so does a temp schema found non-empty at give-back, whatever
//!   made it so.
//!
//! A statement served from the prepared-statement cache is not authorized
//! again. That is safe: a statement that marked its connection closed it
//! (its cache with it), and a restorable PRAGMA, once seen, is restored at
//! every give-back of that connection from then on.

use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// PRAGMAs restored at give-back rather than closing the connection.
const RESTORABLE: [&str; 4] = ["busy_timeout", "synchronous", "cache_size", "foreign_keys"];

/// What statements on one connection did to it.
#[derive(Default)]
struct Touched {
    /// Restorable PRAGMAs ever set on this connection (never cleared, see
    /// the module's note on the statement cache).
    set: Vec<&'static str>,
    /// Something was changed that is not restored.
    discard: bool,
}

/// Watches one connection; see the module documentation.
pub(super) struct ConnectionState {
    touched: Arc<Mutex<Touched>>,
    /// The restorable PRAGMAs' values when the connection was opened.
    opening: Vec<(&'static str, i64)>,
}

impl ConnectionState {
    /// Records `conn`'s opening values and starts watching it. `deny` refuses
    /// an action outright (the caller's own rules, such as Spin's ATTACH rule).
    pub(super) fn watch(
        conn: &rusqlite::Connection,
        deny: fn(&AuthAction<'_>) -> bool,
    ) -> rusqlite::Result<Self> {
        let mut opening = Vec::with_capacity(RESTORABLE.len());
        for name in RESTORABLE {
            opening.push((name, conn.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))?));
        }
        let touched = Arc::new(Mutex::new(Touched::default()));
        let seen = touched.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            if deny(&ctx.action) {
                return Authorization::Deny;
            }
            note(&mut seen.lock(), &ctx);
            Authorization::Allow
        }));
        Ok(ConnectionState { touched, opening })
    }

    /// Puts the connection back as it was opened, for the next instance;
    /// false when it cannot be (it must be closed, not pooled).
    pub(super) fn reset(&self, conn: &rusqlite::Connection) -> bool {
        let set = {
            let touched = self.touched.lock();
            if touched.discard {
                return false;
            }
            touched.set.clone()
        };
        // Belt and braces for TEMP objects: the temp schema must be empty.
        let temp_objects = conn.prepare_cached("SELECT count(*) FROM temp.sqlite_schema").and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, i64>(0)));
        if temp_objects != Ok(0) {
            return false;
        }
        for name in set {
            let value = self.opening.iter().find(|(n, _)| *n == name).map_or(0, |(_, v)| *v);
            if conn.execute_batch(&format!("PRAGMA {name} = {value}")).is_err() {
                return false;
            }
        }
        // `last_insert_rowid` is the connection's too; a fresh one says 0.
        // SAFETY: the handle is this open connection's, used on this thread.
        unsafe { rusqlite::ffi::sqlite3_set_last_insert_rowid(conn.handle(), 0) };
        true
    }
}

fn note(touched: &mut Touched, ctx: &AuthContext<'_>) {
    // `CREATE TABLE temp.t` is authorized as a plain CREATE TABLE, in the
    // database `temp`: anything but a read there counts as a TEMP object.
    if ctx.database_name == Some("temp")
        && !matches!(ctx.action, AuthAction::Read { .. } | AuthAction::Select | AuthAction::Function { .. })
    {
        touched.discard = true;
    }
    match &ctx.action {
        AuthAction::Pragma { pragma_name, pragma_value: Some(_) } => {
            let name = pragma_name.to_ascii_lowercase();
            match RESTORABLE.iter().find(|r| **r == name) {
                Some(r) if !touched.set.contains(r) => touched.set.push(r),
                Some(_) => {}
                None => touched.discard = true,
            }
        }
        AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. }
        | AuthAction::Attach { .. }
        | AuthAction::Detach { .. } => touched.discard = true,
        _ => {}
    }
}

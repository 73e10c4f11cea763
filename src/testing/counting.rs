//! A `Database` that counts the statements it passes on: the measure of what
//! a request costs on Spin, which runs each statement on a blocking thread
//! over a connection it opened for this request alone.

use std::cell::RefCell;

use crate::db::{Database, DbError, Dialect, SqlValue};

pub struct Counting<D> {
    inner: D,
    pub statements: RefCell<Vec<String>>,
}

impl<D: Database> Counting<D> {
    pub fn new(inner: D) -> Self {
        Counting { inner, statements: RefCell::new(Vec::new()) }
    }

    /// The statements issued since the last call, first words only.
    pub fn take(&self) -> Vec<String> {
        self.statements
            .borrow_mut()
            .drain(..)
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .collect()
    }
}

impl<D: Database> Database for Counting<D> {
    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }

    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<(), DbError> {
        self.statements.borrow_mut().push(sql.to_owned());
        self.inner.execute(sql, params)
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
        self.statements.borrow_mut().push(sql.to_owned());
        self.inner.query(sql, params)
    }
}

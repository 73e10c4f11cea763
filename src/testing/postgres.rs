//! The domain's `Database` port over the `postgres` crate, and the shared
//! rules run on a real PostgreSQL server: the one the tests' launcher gives
//! (`test_support::postgres`: the server `TEST_DATABASE_URL` names, what
//! scripts/test starts, else one started through scripts/postgres), one fresh
//! database per test. Without a server they fail, unless they were built with
//! `SKIP_POSTGRES=1`, which the runner then reports as ignored (build.rs).

use std::cell::RefCell;
use std::time::{Duration, Instant};

use postgres::types::{ToSql, Type};
use test_support::postgres::Null;

use crate::db::{Database, DbError, DbErrorKind, Dialect, SqlValue};

pub struct Pg(RefCell<postgres::Client>);

impl Database for Pg {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<(), DbError> {
        let params = parameters(params);
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
        self.0.borrow_mut().execute(sql, &refs).map(drop).map_err(debug)
    }

    /// Fails a statement that yields no rows, as Spin 4.0.0-4.0.2 would hang
    /// on it (spin#3671): the domain's rules run through here, so every one
    /// of them checks that no `query` of the domain can yield none.
    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
        let params = parameters(params);
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
        let rows = self.0.borrow_mut().query(sql, &refs).map_err(debug)?;
        assert!(!rows.is_empty(), "zero-row query (hangs on Spin 4.0.0-4.0.2, spin#3671): {sql}");
        Ok(rows
            .iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| match *row.columns()[i].type_() {
                        Type::INT8 => row.get::<_, Option<i64>>(i).map_or(SqlValue::Null, SqlValue::Integer),
                        Type::INT4 => row.get::<_, Option<i32>>(i).map_or(SqlValue::Null, |v| SqlValue::Integer(v.into())),
                        Type::TEXT | Type::VARCHAR => row.get::<_, Option<String>>(i).map_or(SqlValue::Null, SqlValue::Text),
                        _ => SqlValue::Null,
                    })
                    .collect()
            })
            .collect())
    }
}

fn parameters(params: &[SqlValue]) -> Vec<Box<dyn ToSql + Sync>> {
    params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync> {
            match p {
                SqlValue::Null => Box::new(Null),
                SqlValue::Integer(i) => Box::new(*i),
                SqlValue::Text(s) => Box::new(s.clone()),
            }
        })
        .collect()
}

/// The error as Spin's host and this project's host hand it to a component
/// (`QueryFailed` with the driver error's `{:?}` text), classified by the
/// function the Spin adapter runs on it: every rule of the domain run here
/// runs the production classification on the server's real errors.
fn debug(e: postgres::Error) -> DbError {
    let text = format!("{e:?}");
    DbError::new(crate::error_codes::query_failed_kind(&text), text)
}

/// A fresh, empty database on the test server.
fn fresh_database() -> String {
    test_support::postgres::new_database()
}

fn connect(url: &str) -> Pg {
    Pg(RefCell::new(postgres::Client::connect(url, postgres::NoTls).unwrap()))
}

macro_rules! shared_rules {
    ($($name:ident),* $(,)?) => {
        $(#[test]
        #[cfg_attr(skip_postgres, ignore = "SKIP_POSTGRES=1: no PostgreSQL to run on")]
        fn $name() {
            let url = fresh_database();
            super::rules::$name(&|| connect(&url));
        })*
    };
}

super::rules::for_each_shared_rule!(shared_rules);

#[test]
#[cfg_attr(skip_postgres, ignore = "SKIP_POSTGRES=1: no PostgreSQL to run on")]
fn two_consumers_of_one_partition_never_apply_a_record_twice() {
    // The PostgreSQL-only race: two transactions read the same offset and
    // both try to move it. The one that loses must write nothing.
    let url = fresh_database();
    let (a, b) = (connect(&url), connect(&url));
    let value = serde_json::json!({"user_id": uuid::Uuid::from_u128(1), "first_name": "x"}).to_string();
    let record = |offset| crate::Record { topic: "users", partition: 0, offset, key: None, value: Some(value.as_bytes()) };
    crate::apply_records(&a, &[record(0)]).unwrap();
    b.execute("BEGIN", &[]).unwrap();
    assert_eq!(crate::offsets::tests_support::read_offset(&b), Some(0));
    crate::apply_records(&a, &[record(1)]).unwrap();
    let err = crate::offsets::tests_support::claim_from(&b, 0, 1).unwrap_err();
    assert_eq!(err.kind(), DbErrorKind::Busy, "{err}");
    assert!(err.to_string().contains("moved concurrently"), "{err}");
    b.execute("ROLLBACK", &[]).unwrap();
    let revision = a.query("SELECT revision FROM user_info", &[]).unwrap();
    assert_eq!(revision, vec![vec![SqlValue::Integer(2)]]);
}

/// A connection that stops before one statement until the test lets it go:
/// a replica caught mid-migration, holding the migration lock.
struct PausedBefore<'a> {
    inner: Pg,
    statement: &'a str,
    paused: std::sync::mpsc::Sender<()>,
    resume: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Database for PausedBefore<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<(), DbError> {
        if sql.contains(self.statement) {
            self.paused.send(()).unwrap();
            self.resume.lock().unwrap().recv().unwrap();
        }
        self.inner.execute(sql, params)
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
        self.inner.query(sql, params)
    }
}

#[test]
#[cfg_attr(skip_postgres, ignore = "SKIP_POSTGRES=1: no PostgreSQL to run on")]
fn first_requests_that_lose_the_migration_race_still_succeed() {
    // A fresh database; replica A's first request is migrating and holds the
    // lock, its tables not yet created. Meanwhile three other first requests
    // (a GET, a POST, a Kafka record) find no table, go to migrate, and wait
    // for the lock. When A commits, each finds the migrations applied and
    // runs its statement again; all succeed, each migration is recorded once,
    // and no step of any of them is a zero-row `query` (the adapter checks).
    let url = fresh_database();
    let body = |n: u128| serde_json::json!({"user_id": uuid::Uuid::from_u128(n), "first_name": format!("u{n}")}).to_string();
    let (paused_tx, paused) = std::sync::mpsc::channel();
    let (resume, resume_rx) = std::sync::mpsc::channel();
    let a = PausedBefore {
        inner: connect(&url),
        statement: "CREATE TABLE IF NOT EXISTS user_info",
        paused: paused_tx,
        resume: std::sync::Mutex::new(resume_rx),
    };
    let (a_body, post_body, kafka_body) = (body(1), body(3), body(4));
    std::thread::scope(|s| {
        let a_body = &a_body;
        let winner = s.spawn(move || crate::testing::post(&a, a_body.as_bytes()).map(drop));
        paused.recv_timeout(Duration::from_secs(30)).expect("A reaches its migration");
        let losers = [
            s.spawn(|| crate::read_user(&connect(&url), uuid::Uuid::from_u128(2)).map(|u| assert_eq!(u, None))),
            s.spawn(|| crate::testing::post(&connect(&url), post_body.as_bytes()).map(drop)),
            s.spawn(|| {
                let record = crate::Record { topic: "users", partition: 0, offset: 0, key: None, value: Some(kafka_body.as_bytes()) };
                crate::apply_records(&connect(&url), &[record]).map(drop).map_err(|e| DbError::other(e.to_string()))
            }),
        ];
        // Let A go only once all three wait for its lock.
        let monitor = connect(&url);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let rows = monitor
                .query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", &[])
                .unwrap();
            if rows == vec![vec![SqlValue::Integer(3)]] {
                break;
            }
            assert!(Instant::now() < deadline, "the three requests never waited for the migration lock: {rows:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        resume.send(()).unwrap();
        winner.join().unwrap().unwrap();
        for loser in losers {
            loser.join().unwrap().unwrap();
        }
    });
    let db = connect(&url);
    let count = |sql: &str| db.query(sql, &[]).unwrap();
    assert_eq!(count("SELECT count(*) FROM user_info"), vec![vec![SqlValue::Integer(3)]]);
    assert_eq!(count("SELECT count(*) FROM schema_migrations"), vec![vec![SqlValue::Integer(crate::POSTGRES_MIGRATIONS.len() as i64)]]);
    assert_eq!(count("SELECT last_offset FROM kafka_offsets"), vec![vec![SqlValue::Integer(0)]]);
}

//! Binds Spin's SQLite interfaces, `fermyon:spin/sqlite@2.0.0` and
//! `spin:sqlite/sqlite@3.0.0`, to [`super`]. The two versions share one
//! implementation; only their generated types differ, so one macro maps both.
//! Bound async: statements run on the blocking pool.

use wasmtime::component::{HasSelf, Linker, Resource};

use crate::interfaces::sqlite;
use crate::runtime::instance::InstanceState;

wasmtime::component::bindgen!({
    path: "wit",
    world: "spin-sqlite-host",
    imports: { default: async },
    with: {
        "fermyon:spin/sqlite.connection": crate::interfaces::sqlite::Connection,
        "spin:sqlite/sqlite.connection": crate::interfaces::sqlite::Connection,
    },
});

pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> anyhow::Result<()> {
    SpinSqliteHost::add_to_linker::<_, HasSelf<InstanceState>>(linker, |state| state)?;
    Ok(())
}

macro_rules! sqlite_interface {
    ($iface:path, { $($extra:tt)* }) => {
        const _: () = {
            use $iface as wit;

            fn to_host(v: wit::Value) -> sqlite::Value {
                match v {
                    wit::Value::Integer(i) => sqlite::Value::Integer(i),
                    wit::Value::Real(f) => sqlite::Value::Real(f),
                    wit::Value::Text(s) => sqlite::Value::Text(s),
                    wit::Value::Blob(b) => sqlite::Value::Blob(b),
                    wit::Value::Null => sqlite::Value::Null,
                }
            }

            fn to_wit(v: sqlite::Value) -> wit::Value {
                match v {
                    sqlite::Value::Integer(i) => wit::Value::Integer(i),
                    sqlite::Value::Real(f) => wit::Value::Real(f),
                    sqlite::Value::Text(s) => wit::Value::Text(s),
                    sqlite::Value::Blob(b) => wit::Value::Blob(b),
                    sqlite::Value::Null => wit::Value::Null,
                }
            }

            fn error(e: sqlite::Error) -> wit::Error {
                match e {
                    sqlite::Error::NoSuchDatabase => wit::Error::NoSuchDatabase,
                    sqlite::Error::AccessDenied => wit::Error::AccessDenied,
                    sqlite::Error::InvalidConnection => wit::Error::InvalidConnection,
                    sqlite::Error::Io(msg) => wit::Error::Io(msg),
                }
            }

            impl wit::Host for InstanceState {}

            impl wit::HostConnection for InstanceState {
                async fn open(&mut self, database: String) -> Result<Resource<sqlite::Connection>, wit::Error> {
                    if self.sqlite_connections >= crate::runtime::instance::MAX_CONNECTIONS {
                        return Err(wit::Error::Io(format!(
                            "too many open connections: {} per instance",
                            crate::runtime::instance::MAX_CONNECTIONS
                        )));
                    }
                    let conn = self.open_database(&database).map_err(error)?;
                    let conn = self.table.push(conn).map_err(|e| wit::Error::Io(e.to_string()))?;
                    self.sqlite_connections += 1;
                    Ok(conn)
                }

                async fn execute(
                    &mut self,
                    conn: Resource<sqlite::Connection>,
                    statement: String,
                    parameters: Vec<wit::Value>,
                ) -> Result<wit::QueryResult, wit::Error> {
                    let conn = self.table.get_mut(&conn).map_err(|_| wit::Error::InvalidConnection)?;
                    let result = conn
                        .execute(statement, parameters.into_iter().map(to_host).collect())
                        .await
                        .map_err(error)?;
                    Ok(wit::QueryResult {
                        columns: result.columns,
                        rows: result
                            .rows
                            .into_iter()
                            .map(|values| wit::RowResult { values: values.into_iter().map(to_wit).collect() })
                            .collect(),
                    })
                }

                async fn drop(&mut self, conn: Resource<sqlite::Connection>) -> wasmtime::Result<()> {
                    self.table.delete(conn)?;
                    self.sqlite_connections -= 1;
                    Ok(())
                }

                $($extra)*
            }
        };
    };
}

sqlite_interface!(fermyon::spin::sqlite, {});
sqlite_interface!(spin::sqlite::sqlite, {
    async fn last_insert_rowid(&mut self, conn: Resource<sqlite::Connection>) -> i64 {
        self.table.get(&conn).map_or(0, |c| c.last_insert_rowid())
    }

    async fn changes(&mut self, conn: Resource<sqlite::Connection>) -> u64 {
        self.table.get(&conn).map_or(0, |c| c.changes())
    }
});

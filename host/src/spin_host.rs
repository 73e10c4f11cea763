//! Binds Spin's host interfaces (`fermyon:spin/sqlite@2.0.0`,
//! `spin:sqlite/sqlite@3.0.0`, `fermyon:spin/variables@2.0.0`) to this host's
//! implementations. The two SQLite versions share one implementation; only
//! their generated types differ, so one macro maps both.

use wasmtime::component::{HasSelf, Linker, Resource};

use crate::instance::InstanceState;
use crate::sqlite;

wasmtime::component::bindgen!({
    path: "wit",
    world: "spin-host",
    with: {
        "fermyon:spin/sqlite.connection": crate::sqlite::Connection,
        "spin:sqlite/sqlite.connection": crate::sqlite::Connection,
    },
});

pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> anyhow::Result<()> {
    SpinHost::add_to_linker::<_, HasSelf<InstanceState>>(linker, |state| state)?;
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
                fn open(&mut self, database: String) -> Result<Resource<sqlite::Connection>, wit::Error> {
                    let conn = self.open_database(&database).map_err(error)?;
                    self.table.push(conn).map_err(|e| wit::Error::Io(e.to_string()))
                }

                fn execute(
                    &mut self,
                    conn: Resource<sqlite::Connection>,
                    statement: String,
                    parameters: Vec<wit::Value>,
                ) -> Result<wit::QueryResult, wit::Error> {
                    let conn = self.table.get_mut(&conn).map_err(|_| wit::Error::InvalidConnection)?;
                    let result = conn
                        .execute(&statement, parameters.into_iter().map(to_host).collect())
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

                fn drop(&mut self, conn: Resource<sqlite::Connection>) -> wasmtime::Result<()> {
                    self.table.delete(conn)?;
                    Ok(())
                }

                $($extra)*
            }
        };
    };
}

sqlite_interface!(fermyon::spin::sqlite, {});
sqlite_interface!(spin::sqlite::sqlite, {
    fn last_insert_rowid(&mut self, conn: Resource<sqlite::Connection>) -> i64 {
        self.table.get(&conn).map_or(0, |c| c.last_insert_rowid())
    }

    fn changes(&mut self, conn: Resource<sqlite::Connection>) -> u64 {
        self.table.get(&conn).map_or(0, |c| c.changes())
    }
});

impl fermyon::spin::variables::Host for InstanceState {
    fn get(&mut self, name: String) -> Result<String, fermyon::spin::variables::Error> {
        use fermyon::spin::variables::Error;
        crate::variables::validate_name(&name).map_err(|e| Error::InvalidName(e.to_string()))?;
        let template = self
            .component
            .config
            .get(&name)
            .ok_or_else(|| Error::Undefined(format!("no variable for {name:?}")))?;
        self.component.variables.render(template).map_err(|e| Error::Other(e.to_string()))
    }
}

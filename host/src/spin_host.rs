//! Binds Spin's host interfaces (`fermyon:spin/sqlite@2.0.0`,
//! `spin:sqlite/sqlite@3.0.0`, `fermyon:spin/variables@2.0.0`,
//! `spin:postgres/postgres@3.0.0`) to this host's implementations. The two
//! SQLite versions share one implementation; only their generated types
//! differ, so one macro maps both. All are bound async: PostgreSQL calls wait
//! on the network, SQLite statements on the blocking pool.

use wasmtime::component::{HasSelf, Linker, Resource};

use crate::instance::InstanceState;
use crate::sqlite;

wasmtime::component::bindgen!({
    path: "wit",
    world: "spin-host",
    // Async: SQLite statements run on the blocking pool (see sqlite.rs).
    imports: { default: async },
    with: {
        "fermyon:spin/sqlite.connection": crate::sqlite::Connection,
        "spin:sqlite/sqlite.connection": crate::sqlite::Connection,
    },
});

mod pg {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "spin-postgres-host",
        imports: { default: async },
        with: {
            "spin:postgres/postgres.connection": crate::postgres::Connection,
        },
    });
}

pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> anyhow::Result<()> {
    SpinHost::add_to_linker::<_, HasSelf<InstanceState>>(linker, |state| state)?;
    pg::SpinPostgresHost::add_to_linker::<_, HasSelf<InstanceState>>(linker, |state| state)?;
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
                    if self.sqlite_connections >= crate::instance::MAX_CONNECTIONS {
                        return Err(wit::Error::Io(format!(
                            "too many open connections: {} per instance",
                            crate::instance::MAX_CONNECTIONS
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

impl fermyon::spin::variables::Host for InstanceState {
    async fn get(&mut self, name: String) -> Result<String, fermyon::spin::variables::Error> {
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

const _: () = {
    use crate::postgres::{self, DataType, Value};
    use pg::spin::postgres::postgres as wit;

    fn error(e: postgres::Error) -> wit::Error {
        match e {
            postgres::Error::ConnectionFailed(m) => wit::Error::ConnectionFailed(m),
            postgres::Error::BadParameter(m) => wit::Error::BadParameter(m),
            postgres::Error::QueryFailed(m) => wit::Error::QueryFailed(m),
            postgres::Error::ValueConversionFailed(m) => wit::Error::ValueConversionFailed(m),
        }
    }

    fn to_host(v: wit::ParameterValue) -> Value {
        use wit::ParameterValue as P;
        match v {
            P::Boolean(v) => Value::Boolean(v),
            P::Int8(v) => Value::Int8(v),
            P::Int16(v) => Value::Int16(v),
            P::Int32(v) => Value::Int32(v),
            P::Int64(v) => Value::Int64(v),
            P::Floating32(v) => Value::Floating32(v),
            P::Floating64(v) => Value::Floating64(v),
            P::Str(v) => Value::Str(v),
            P::Binary(v) => Value::Binary(v),
            P::Date(v) => Value::Date(v),
            P::Time(v) => Value::Time(v),
            P::Datetime(v) => Value::Datetime(v),
            P::Timestamp(v) => Value::Timestamp(v),
            P::DbNull => Value::Null,
        }
    }

    fn to_wit(v: Value) -> wit::DbValue {
        use wit::DbValue as D;
        match v {
            Value::Boolean(v) => D::Boolean(v),
            Value::Int8(v) => D::Int8(v),
            Value::Int16(v) => D::Int16(v),
            Value::Int32(v) => D::Int32(v),
            Value::Int64(v) => D::Int64(v),
            Value::Floating32(v) => D::Floating32(v),
            Value::Floating64(v) => D::Floating64(v),
            Value::Str(v) => D::Str(v),
            Value::Binary(v) => D::Binary(v),
            Value::Date(v) => D::Date(v),
            Value::Time(v) => D::Time(v),
            Value::Datetime(v) => D::Datetime(v),
            Value::Timestamp(v) => D::Timestamp(v),
            Value::Null => D::DbNull,
            Value::Unsupported => D::Unsupported,
        }
    }

    fn data_type(t: DataType) -> wit::DbDataType {
        use wit::DbDataType as T;
        match t {
            DataType::Boolean => T::Boolean,
            DataType::Int16 => T::Int16,
            DataType::Int32 => T::Int32,
            DataType::Int64 => T::Int64,
            DataType::Floating32 => T::Floating32,
            DataType::Floating64 => T::Floating64,
            DataType::Str => T::Str,
            DataType::Binary => T::Binary,
            DataType::Date => T::Date,
            DataType::Time => T::Time,
            DataType::Datetime => T::Datetime,
            DataType::Other => T::Other,
        }
    }

    impl wit::Host for InstanceState {}

    impl wit::HostConnection for InstanceState {
        async fn open(&mut self, address: String) -> Result<Resource<postgres::Connection>, wit::Error> {
            if self.postgres_connections >= crate::instance::MAX_CONNECTIONS {
                return Err(wit::Error::Other(format!(
                    "too many open connections: {} per instance",
                    crate::instance::MAX_CONNECTIONS
                )));
            }
            let component = self.component.clone();
            let conn = component.postgres.open(&address, &component.allowed_hosts).await.map_err(error)?;
            let conn = self.table.push(conn).map_err(|e| wit::Error::Other(e.to_string()))?;
            self.postgres_connections += 1;
            Ok(conn)
        }

        async fn query(
            &mut self,
            conn: Resource<postgres::Connection>,
            statement: String,
            params: Vec<wit::ParameterValue>,
        ) -> Result<wit::RowSet, wit::Error> {
            let conn = self.table.get_mut(&conn).map_err(|_| wit::Error::ConnectionFailed("no connection found".into()))?;
            let result = conn.query(&statement, params.into_iter().map(to_host).collect()).await.map_err(error)?;
            Ok(wit::RowSet {
                columns: result
                    .columns
                    .into_iter()
                    .map(|(name, t)| wit::Column { name, data_type: data_type(t) })
                    .collect(),
                rows: result.rows.into_iter().map(|row| row.into_iter().map(to_wit).collect()).collect(),
            })
        }

        async fn execute(
            &mut self,
            conn: Resource<postgres::Connection>,
            statement: String,
            params: Vec<wit::ParameterValue>,
        ) -> Result<u64, wit::Error> {
            let conn = self.table.get_mut(&conn).map_err(|_| wit::Error::ConnectionFailed("no connection found".into()))?;
            conn.execute(&statement, params.into_iter().map(to_host).collect()).await.map_err(error)
        }

        async fn drop(&mut self, conn: Resource<postgres::Connection>) -> wasmtime::Result<()> {
            self.table.delete(conn)?;
            self.postgres_connections -= 1;
            Ok(())
        }
    }
};

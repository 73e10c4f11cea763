//! Binds Spin's `spin:postgres/postgres@3.0.0` to [`super`], mapping the
//! generated WIT types to the host's own. Bound async: every call waits on the
//! network.

use wasmtime::component::{HasSelf, Linker, Resource};

use crate::runtime::instance::InstanceState;

wasmtime::component::bindgen!({
    path: "wit",
    world: "spin-postgres-host",
    imports: { default: async },
    with: {
        "spin:postgres/postgres.connection": crate::interfaces::postgres::Connection,
    },
});

pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> anyhow::Result<()> {
    SpinPostgresHost::add_to_linker::<_, HasSelf<InstanceState>>(linker, |state| state)?;
    Ok(())
}

const _: () = {
    use crate::interfaces::postgres::{self, DataType, Value};
    use spin::postgres::postgres as wit;

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
        async fn open(
            &mut self,
            address: String,
        ) -> Result<Resource<postgres::Connection>, wit::Error> {
            if self.postgres_connections >= crate::runtime::instance::MAX_CONNECTIONS {
                return Err(wit::Error::Other(format!(
                    "too many open connections: {} per instance",
                    crate::runtime::instance::MAX_CONNECTIONS
                )));
            }
            let component = self.component.clone();
            let conn = component
                .postgres
                .open(&address, &component.allowed_hosts)
                .await
                .map_err(error)?;
            let conn = self
                .table
                .push(conn)
                .map_err(|e| wit::Error::Other(e.to_string()))?;
            self.postgres_connections += 1;
            Ok(conn)
        }

        async fn query(
            &mut self,
            conn: Resource<postgres::Connection>,
            statement: String,
            params: Vec<wit::ParameterValue>,
        ) -> Result<wit::RowSet, wit::Error> {
            let conn = self
                .table
                .get_mut(&conn)
                .map_err(|_| wit::Error::ConnectionFailed("no connection found".into()))?;
            let result = conn
                .query(&statement, params.into_iter().map(to_host).collect())
                .await
                .map_err(error)?;
            Ok(wit::RowSet {
                columns: result
                    .columns
                    .into_iter()
                    .map(|(name, t)| wit::Column {
                        name,
                        data_type: data_type(t),
                    })
                    .collect(),
                rows: result
                    .rows
                    .into_iter()
                    .map(|row| row.into_iter().map(to_wit).collect())
                    .collect(),
            })
        }

        async fn execute(
            &mut self,
            conn: Resource<postgres::Connection>,
            statement: String,
            params: Vec<wit::ParameterValue>,
        ) -> Result<u64, wit::Error> {
            let conn = self
                .table
                .get_mut(&conn)
                .map_err(|_| wit::Error::ConnectionFailed("no connection found".into()))?;
            conn.execute(&statement, params.into_iter().map(to_host).collect())
                .await
                .map_err(error)
        }

        async fn drop(&mut self, conn: Resource<postgres::Connection>) -> wasmtime::Result<()> {
            self.table.delete(conn)?;
            self.postgres_connections -= 1;
            Ok(())
        }
    }
};

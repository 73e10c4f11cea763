//! Values across the interface: parameters to tokio-postgres types, and
//! result columns back to the interface's values, as Spin maps them.

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;

use super::{DataType, Value};

/// A NULL that fits any parameter type (tokio-postgres otherwise checks the
/// Rust type of a `None` against the column's).
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(&self, _: &Type, _: &mut bytes::BytesMut) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(tokio_postgres::types::IsNull::Yes)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    tokio_postgres::types::to_sql_checked!();
}

pub(super) fn to_sql(params: Vec<Value>) -> Result<Vec<Box<dyn ToSql + Send + Sync>>, String> {
    use chrono::{NaiveDate, NaiveTime};
    let date = |(y, m, d): (i32, u8, u8)| {
        NaiveDate::from_ymd_opt(y, m.into(), d.into()).ok_or_else(|| format!("invalid date {y}-{m}-{d}"))
    };
    let time = |(h, m, s, ns): (u8, u8, u8, u32)| {
        NaiveTime::from_hms_nano_opt(h.into(), m.into(), s.into(), ns).ok_or_else(|| format!("invalid time {h}:{m}:{s}.{ns}"))
    };
    params
        .into_iter()
        .map(|v| -> Result<Box<dyn ToSql + Send + Sync>, String> {
            Ok(match v {
                Value::Boolean(v) => Box::new(v),
                Value::Int8(v) => Box::new(v),
                Value::Int16(v) => Box::new(v),
                Value::Int32(v) => Box::new(v),
                Value::Int64(v) => Box::new(v),
                Value::Floating32(v) => Box::new(v),
                Value::Floating64(v) => Box::new(v),
                Value::Str(v) => Box::new(v),
                Value::Binary(v) => Box::new(v),
                Value::Date(d) => Box::new(date(d)?),
                Value::Time(t) => Box::new(time(t)?),
                Value::Datetime((y, mo, d, h, mi, s, ns)) => Box::new(date((y, mo, d))?.and_time(time((h, mi, s, ns))?)),
                Value::Timestamp(secs) => Box::new(
                    chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0).ok_or_else(|| format!("invalid epoch timestamp {secs}"))?,
                ),
                Value::Null => Box::new(Null),
                Value::Unsupported => return Err("unsupported parameter value".into()),
            })
        })
        .collect()
}

pub(super) fn data_type(ty: &Type) -> DataType {
    match *ty {
        Type::BOOL => DataType::Boolean,
        Type::BYTEA => DataType::Binary,
        Type::FLOAT4 => DataType::Floating32,
        Type::FLOAT8 => DataType::Floating64,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR => DataType::Str,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => DataType::Datetime,
        Type::DATE => DataType::Date,
        Type::TIME => DataType::Time,
        _ => DataType::Other,
    }
}

pub(super) fn convert_row(row: &Row) -> Result<Vec<Value>, String> {
    use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
    fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize, f: impl Fn(T) -> Value) -> Result<Value, String> {
        row.try_get::<_, Option<T>>(i).map(|v| v.map_or(Value::Null, f)).map_err(|e| format!("{e:?}"))
    }
    let time = |t: NaiveTime| (t.hour() as u8, t.minute() as u8, t.second() as u8, t.nanosecond());
    let datetime = move |d: NaiveDateTime| {
        let (h, mi, s, ns) = time(d.time());
        Value::Datetime((d.year(), d.month() as u8, d.day() as u8, h, mi, s, ns))
    };
    (0..row.len())
        .map(|i| match *row.columns()[i].type_() {
            Type::BOOL => get(row, i, Value::Boolean),
            Type::BYTEA => get(row, i, Value::Binary),
            Type::FLOAT4 => get(row, i, Value::Floating32),
            Type::FLOAT8 => get(row, i, Value::Floating64),
            Type::INT2 => get(row, i, Value::Int16),
            Type::INT4 => get(row, i, Value::Int32),
            Type::INT8 => get(row, i, Value::Int64),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR => get(row, i, Value::Str),
            Type::TIMESTAMP => get(row, i, datetime),
            Type::TIMESTAMPTZ => get(row, i, |d: chrono::DateTime<chrono::Utc>| datetime(d.naive_utc())),
            Type::DATE => get(row, i, |d: NaiveDate| Value::Date((d.year(), d.month() as u8, d.day() as u8))),
            Type::TIME => get(row, i, |t: NaiveTime| Value::Time(time(t))),
            _ => Ok(Value::Unsupported),
        })
        .collect()
}

/// What one converted value costs the host, counted against
/// [`MAX_HOST_BUFFERED_BYTES`](crate::runtime::instance::MAX_HOST_BUFFERED_BYTES) (as SQLite counts it).
pub(super) fn buffered_size(value: &Value) -> usize {
    std::mem::size_of::<Value>()
        + match value {
            Value::Str(s) => s.len(),
            Value::Binary(b) => b.len(),
            _ => 0,
        }
}

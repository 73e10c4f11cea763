//! A guest that misbehaves on request, so the host's defences are tested
//! against a real component rather than a mock:
//! - `/loop`: spins forever without ever calling the host;
//! - `/alloc?mib=N`: allocates and touches N MiB of linear memory;
//! - `/sqlite-open?n=N`: opens N SQLite connections and holds them all;
//! - `/sqlite-big?mib=N`: a query whose result is N MiB of blobs;
//! - `/trap`: panics (a trap);
//! - `/sleep?ms=N`: sleeps N ms, then answers 200 "slept";
//! - `/sqlite-leak`: reports what an earlier instance may have left on its
//!   SQLite connection (TEMP tables, `cache_size`), then leaves both;
//! - anything else: 200 "ok".

use spin_sdk::http::{Request, Response};

#[spin_sdk::http_component]
fn handle(req: Request) -> anyhow::Result<Response> {
    let path = req.path();
    if path.ends_with("/loop") {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
    if path.ends_with("/trap") {
        panic!("the /trap route traps");
    }
    if path.ends_with("/sleep") {
        std::thread::sleep(std::time::Duration::from_millis(number(&req, "ms") as u64));
        return Ok(Response::new(200, "slept"));
    }
    if path.ends_with("/sqlite-leak") {
        use spin_sdk::sqlite::Value;
        let db = spin_sdk::sqlite::Connection::open_default()?;
        let integer = |sql: &str| -> anyhow::Result<i64> {
            match db.execute(sql, &[])?.rows.first().and_then(|row| row.values.first()) {
                Some(Value::Integer(n)) => Ok(*n),
                other => anyhow::bail!("{sql}: {other:?}"),
            }
        };
        let temp = integer("SELECT count(*) FROM temp.sqlite_schema")?;
        let cache = integer("PRAGMA cache_size")?;
        db.execute("CREATE TEMP TABLE IF NOT EXISTS leak (x)", &[])?;
        db.execute("PRAGMA cache_size = 12345", &[])?;
        return Ok(Response::new(200, format!("temp={temp} cache={cache}")));
    }
    if path.ends_with("/alloc") {
        let mib: usize = req
            .query()
            .split('&')
            .find_map(|kv| kv.strip_prefix("mib="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let mut block = vec![0u8; mib << 20];
        for i in (0..block.len()).step_by(4096) {
            block[i] = 1;
        }
        let touched = std::hint::black_box(&block).iter().step_by(4096).filter(|b| **b == 1).count();
        return Ok(Response::new(200, format!("allocated {mib} MiB ({touched} pages)")));
    }
    if path.ends_with("/sqlite-open") {
        let mut held = Vec::new();
        for _ in 0..number(&req, "n") {
            match spin_sdk::sqlite::Connection::open_default() {
                Ok(conn) => held.push(conn),
                Err(e) => return Ok(Response::new(500, format!("open {} failed: {e:?}", held.len() + 1))),
            }
        }
        return Ok(Response::new(200, format!("opened {}", held.len())));
    }
    if path.ends_with("/sqlite-big") {
        let db = spin_sdk::sqlite::Connection::open_default()?;
        let sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT randomblob(1048576) FROM n LIMIT ?";
        return Ok(match db.execute(sql, &[spin_sdk::sqlite::Value::Integer(number(&req, "mib") as i64)]) {
            Ok(result) => Response::new(200, format!("{} rows", result.rows.len())),
            Err(e) => Response::new(500, format!("{e:?}")),
        });
    }
    Ok(Response::new(200, "ok"))
}

fn number(req: &Request, name: &str) -> usize {
    req.query()
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

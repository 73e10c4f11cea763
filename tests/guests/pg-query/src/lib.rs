//! A test guest for the host's `spin:postgres/postgres@3.0.0`: `POST
//! /query` or `POST /execute` with one SQL statement as the body runs it on
//! the database named by the `database_url` variable and answers 200 with the
//! row count, or 500 with the interface's error. `POST /script` runs several
//! on one connection, a line each (`query <sql>` or `execute <sql>`), and
//! answers a line each: a query's first row, an execute's count. Only the
//! tests build it.

use spin_sdk::http::{Request, Response};
use spin_sdk::pg3::Connection;

#[spin_sdk::http_component]
fn handle(req: Request) -> anyhow::Result<Response> {
    let statement = String::from_utf8(req.body().to_vec())?;
    let url = spin_sdk::variables::get("database_url")?;
    let db = match Connection::open(&url) {
        Ok(db) => db,
        Err(e) => return Ok(Response::new(500, format!("open: {e:?}"))),
    };
    if req.path().ends_with("/script") {
        let mut answers = Vec::new();
        for line in statement.lines() {
            let outcome = match line.split_once(' ') {
                Some(("query", sql)) => db.query(sql, &[]).map(|rows| format!("{:?}", rows.rows.first())),
                Some(("execute", sql)) => db.execute(sql, &[]).map(|n| n.to_string()),
                _ => return Ok(Response::new(400, format!("not `query <sql>` or `execute <sql>`: {line}"))),
            };
            match outcome {
                Ok(answer) => answers.push(answer),
                Err(e) => return Ok(Response::new(500, format!("{line}: {e:?}"))),
            }
        }
        return Ok(Response::new(200, answers.join("\n")));
    }
    let outcome = if req.path().ends_with("/execute") {
        db.execute(&statement, &[]).map(|n| format!("{n} rows affected"))
    } else {
        db.query(&statement, &[]).map(|rows| format!("{} rows", rows.rows.len()))
    };
    Ok(match outcome {
        Ok(text) => Response::new(200, text),
        Err(e) => Response::new(500, format!("{e:?}")),
    })
}

//! Component stdout/stderr: each line goes to this process's stderr prefixed
//! with the component id (when the component is followed), and to
//! `<log_dir>/<component>_stdout.txt` / `_stderr.txt` when a log dir is set,
//! the files Spin writes.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

#[derive(Clone)]
pub struct ComponentLogs {
    stdout: Sink,
    stderr: Sink,
}

#[derive(Clone)]
struct Sink {
    prefix: Arc<str>,
    follow: bool,
    file: Option<Arc<Mutex<File>>>,
}

impl ComponentLogs {
    pub fn new(component: &str, follow: bool, log_dir: Option<&Path>, truncate: bool) -> anyhow::Result<Self> {
        let open = |stream: &str| -> anyhow::Result<Option<Arc<Mutex<File>>>> {
            let Some(dir) = log_dir else { return Ok(None) };
            std::fs::create_dir_all(dir)?;
            let path = dir.join(format!("{component}_{stream}.txt"));
            let file = OpenOptions::new().create(true).append(!truncate).write(true).truncate(truncate).open(&path)?;
            Ok(Some(Arc::new(Mutex::new(file))))
        };
        let prefix: Arc<str> = Arc::from(format!("[{component}] "));
        Ok(ComponentLogs {
            stdout: Sink { prefix: prefix.clone(), follow, file: open("stdout")? },
            stderr: Sink { prefix, follow, file: open("stderr")? },
        })
    }

    pub fn stdout(&self) -> impl StdoutStream + 'static {
        self.stdout.clone()
    }

    pub fn stderr(&self) -> impl StdoutStream + 'static {
        self.stderr.clone()
    }
}

impl Sink {
    fn write(&self, buf: &[u8]) {
        if let Some(file) = &self.file {
            let _ = file.lock().write_all(buf);
        }
        if self.follow {
            let mut out = Vec::with_capacity(buf.len() + 32);
            for line in buf.split_inclusive(|b| *b == b'\n') {
                out.extend_from_slice(self.prefix.as_bytes());
                out.extend_from_slice(line);
            }
            if !out.ends_with(b"\n") {
                out.push(b'\n');
            }
            let _ = std::io::stderr().lock().write_all(&out);
        }
    }
}

impl IsTerminal for Sink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Sink {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for Sink {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        // Small synchronous writes: a log line is cheaper written than scheduled.
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

//! Component stdout/stderr: each line goes to this process's stderr prefixed
//! with the component id (when the component is followed), and to
//! `<log_dir>/<component>_stdout.txt` / `_stderr.txt` when a log dir is set,
//! the files Spin writes.
//!
//! A guest's `eprintln!` reaches the host in several writes, so followed output
//! is assembled into whole lines per instance before it is prefixed: a line of
//! one instance is never split or mixed with another's.

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
    follow: bool,
    file: Option<Arc<Mutex<File>>>,
    /// The instance's unfinished line, shared by every stream it opens (in
    /// ComponentLogs, the template each instance's buffer copies its prefix from).
    line: Arc<LineBuffer>,
}

/// A partial line longer than this is written out unfinished.
const MAX_LINE: usize = 64 * 1024;

struct LineBuffer {
    prefix: Arc<str>,
    bytes: Mutex<Vec<u8>>,
}

impl LineBuffer {
    fn new(prefix: Arc<str>) -> Arc<LineBuffer> {
        Arc::new(LineBuffer { prefix, bytes: Mutex::new(Vec::new()) })
    }

    /// Appends `buf` and writes out every line it completes.
    fn push(&self, buf: &[u8]) {
        let mut bytes = self.bytes.lock();
        bytes.extend_from_slice(buf);
        let complete = match bytes.iter().rposition(|b| *b == b'\n') {
            Some(end) => end + 1,
            None if bytes.len() > MAX_LINE => bytes.len(),
            None => return,
        };
        let done: Vec<u8> = bytes.drain(..complete).collect();
        drop(bytes);
        self.emit(&done);
    }

    fn emit(&self, text: &[u8]) {
        let mut out = Vec::with_capacity(text.len() + 32);
        for line in text.split_inclusive(|b| *b == b'\n') {
            out.extend_from_slice(self.prefix.as_bytes());
            out.extend_from_slice(line);
        }
        if !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        let _ = std::io::stderr().lock().write_all(&out);
    }
}

impl Drop for LineBuffer {
    /// The instance is gone: its last line is written even without a newline.
    fn drop(&mut self) {
        let rest = std::mem::take(self.bytes.get_mut());
        if !rest.is_empty() {
            self.emit(&rest);
        }
    }
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
            stdout: Sink { follow, file: open("stdout")?, line: LineBuffer::new(prefix.clone()) },
            stderr: Sink { follow, file: open("stderr")?, line: LineBuffer::new(prefix) },
        })
    }

    /// The stdout of one new instance.
    pub fn stdout(&self) -> impl StdoutStream + 'static {
        self.stdout.for_instance()
    }

    /// The stderr of one new instance.
    pub fn stderr(&self) -> impl StdoutStream + 'static {
        self.stderr.for_instance()
    }
}

impl Sink {
    fn for_instance(&self) -> Sink {
        Sink { line: LineBuffer::new(self.line.prefix.clone()), ..self.clone() }
    }

    fn write(&self, buf: &[u8]) {
        if let Some(file) = &self.file {
            let _ = file.lock().write_all(buf);
        }
        if self.follow {
            self.line.push(buf);
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

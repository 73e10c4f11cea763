//! A real `trigger-kafka` (or any) child process with its output collected
//! line by line, for every integration test: waiting for a line, signalling
//! it as Spin or Kubernetes would, and killing it when the test ends. Once the
//! process has exited, its output is read to the end by joining the threads
//! that read it, never by sleeping and hoping they are done.
//!
//! Every process runs with `TRIGGER_KAFKA_ZERO_ROW_QUERY=error`, so the host
//! fails a PostgreSQL `query` that yields no rows (Spin 4.0.0-4.0.2 would hang
//! on it, spin#3671) and says so; a process whose output names spin#3671
//! fails the test when it is dropped, however the component handled the error.
//! And with `TRIGGER_KAFKA_SQLITE_CONNECTIONS=per-open`, so the host opens a
//! new SQLite connection per `open`, as Spin does, instead of pooling them:
//! a component that relies on what an earlier request left on its connection
//! fails here as it would on Spin.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Which output a wait looks at.
#[derive(Clone, Copy, PartialEq)]
pub enum Stream {
    Stdout,
    Either,
}

/// What the host prints (and errs with) for a zero-row `query`.
pub const ZERO_ROW_QUERY_MARK: &str = "spin#3671";

/// How long the output of an exited process may take to reach its end: its
/// pipes close when the last process holding them does, and a grandchild
/// that outlives it (one `spin up` started) could hold them open for ever.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

pub struct Process {
    child: Child,
    stdout: Reader,
    stderr: Reader,
    /// Whether a zero-row query report is what the test wants to see.
    zero_row_reports_expected: bool,
}

impl Process {
    /// Spawns `cmd` with stdout and stderr piped and collected; stdin is
    /// closed. It leads a process group of its own, so that a kill reaches
    /// what it started (`spin up` runs each trigger as a child process).
    pub fn spawn(cmd: &mut Command) -> Process {
        use std::os::unix::process::CommandExt;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        if !cmd.get_envs().any(|(k, _)| k == std::ffi::OsStr::new("TRIGGER_KAFKA_ZERO_ROW_QUERY")) {
            cmd.env("TRIGGER_KAFKA_ZERO_ROW_QUERY", "error");
        }
        if !cmd.get_envs().any(|(k, _)| k == std::ffi::OsStr::new("TRIGGER_KAFKA_SQLITE_CONNECTIONS")) {
            cmd.env("TRIGGER_KAFKA_SQLITE_CONNECTIONS", "per-open");
        }
        cmd.process_group(0);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stdout = Reader::start(child.stdout.take().unwrap(), tee(child.id(), "stdout"));
        let stderr = Reader::start(child.stderr.take().unwrap(), tee(child.id(), "stderr"));
        Process { child, stdout, stderr, zero_row_reports_expected: false }
    }

    /// For a test that provokes zero-row query reports on purpose.
    pub fn expect_zero_row_query_reports(&mut self) {
        self.zero_row_reports_expected = true;
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Both streams, labelled (for assertion messages).
    pub fn output(&self) -> String {
        format!("--- stdout:\n{}--- stderr:\n{}", self.stdout(), self.stderr())
    }

    /// Waits until a line of `stream` contains `needle` and returns that line;
    /// panics (with the output) on timeout or if the process exits first.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration, stream: Stream) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let exited = self.child.try_wait().unwrap();
            if exited.is_some() {
                self.finish_reading();
            }
            let mut text = self.stdout();
            if stream == Stream::Either {
                text.push_str(&self.stderr());
            }
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            if let Some(status) = exited {
                panic!("process exited ({status}) before printing {needle:?}\n{}", self.output());
            }
            assert!(Instant::now() < deadline, "no {needle:?} within {timeout:?}\n{}", self.output());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process has exited (its output then fully collected).
    pub fn exited(&mut self) -> bool {
        let done = self.child.try_wait().unwrap().is_some();
        if done {
            self.finish_reading();
        }
        done
    }

    /// Waits for the process to exit on its own (its output then fully collected).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.finish_reading();
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {timeout:?}\n{}", self.output());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM (what `spin up` and Kubernetes send), then waits for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.child.id();
        let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
        assert!(status.success(), "kill -TERM {pid}");
        self.wait_exit(timeout)
    }

    /// SIGKILL to the whole process group: a crash of everything it runs.
    pub fn kill(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // The group's id is the leader's pid (`process_group(0)`).
            unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Joins both reader threads: they end at the end of their stream, once
    /// every process that could write to it is gone.
    fn finish_reading(&mut self) {
        let deadline = Instant::now() + DRAIN_LIMIT;
        self.stdout.join(deadline);
        self.stderr.join(deadline);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.kill();
        }
        if self.zero_row_reports_expected {
            return;
        }
        self.finish_reading();
        let output = self.output();
        let reports: Vec<&str> = output.lines().filter(|l| l.contains(ZERO_ROW_QUERY_MARK)).collect();
        if reports.is_empty() {
            return;
        }
        let message = format!(
            "the process reported {} zero-row PostgreSQL `query` call(s), which hang on Spin 4.0.0-4.0.2:\n{}",
            reports.len(),
            reports.join("\n")
        );
        if std::thread::panicking() {
            eprintln!("{message}"); // the test fails already; say why too
        } else {
            panic!("{message}");
        }
    }
}

/// One stream's reader thread and what it has read so far.
struct Reader {
    text: Arc<Mutex<String>>,
    /// Disconnected when the thread ends: a join that can give up.
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    fn start(stream: impl Read + Send + 'static, mut tee: Option<std::fs::File>) -> Reader {
        let text = Arc::new(Mutex::new(String::new()));
        let sink = text.clone();
        let (alive, done) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let _alive = alive;
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if let Some(file) = tee.as_mut() {
                    let _ = writeln!(file, "{line}");
                }
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Reader { text, done, thread: Some(thread) }
    }

    fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Joins the thread once its stream has ended, waiting until `deadline`
    /// at most. Past it the thread is let go (it keeps collecting), said
    /// once, and the output is what was read by then.
    fn join(&mut self, deadline: Instant) {
        let Some(thread) = self.thread.take() else { return };
        let left = deadline.saturating_duration_since(Instant::now());
        match self.done.recv_timeout(left) {
            Err(RecvTimeoutError::Disconnected) => thread.join().expect("output reader panicked"),
            Ok(()) | Err(RecvTimeoutError::Timeout) => {
                eprintln!("an output pipe stayed open {DRAIN_LIMIT:?} after the process exited: a child of it still holds it")
            }
        }
    }
}

/// With `TEST_PROCESS_LOG_DIR` set, a file there receiving the stream as it is
/// read (`<pid>.<stream>.log`): the way to watch a long test's processes live.
fn tee(pid: u32, stream: &str) -> Option<std::fs::File> {
    let dir = std::env::var_os("TEST_PROCESS_LOG_DIR")?;
    std::fs::create_dir_all(&dir).ok()?;
    std::fs::File::create(std::path::Path::new(&dir).join(format!("{pid}.{stream}.log"))).ok()
}

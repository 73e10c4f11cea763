//! A real `trigger-kafka` (or any) child process with its output collected
//! line by line, for every integration test: waiting for a line, signalling
//! it as Spin or Kubernetes would, and killing it when the test ends.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which output a wait looks at.
#[derive(Clone, Copy, PartialEq)]
pub enum Stream {
    Stdout,
    Either,
}

pub struct Process {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Process {
    /// Spawns `cmd` with stdout and stderr piped and collected; stdin is closed.
    pub fn spawn(cmd: &mut Command) -> Process {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stdout = collect(child.stdout.take().unwrap(), tee(child.id(), "stdout"));
        let stderr = collect(child.stderr.take().unwrap(), tee(child.id(), "stderr"));
        Process { child, stdout, stderr }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
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
            let mut text = self.stdout();
            if stream == Stream::Either {
                text.push_str(&self.stderr());
            }
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100)); // let the readers drain
                if !self.stdout().contains(needle) && !(stream == Stream::Either && self.stderr().contains(needle)) {
                    panic!("process exited ({status}) before printing {needle:?}\n{}", self.output());
                }
                continue;
            }
            assert!(Instant::now() < deadline, "no {needle:?} within {timeout:?}\n{}", self.output());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process has exited (its output then fully collected).
    pub fn exited(&mut self) -> bool {
        let done = self.child.try_wait().unwrap().is_some();
        if done {
            std::thread::sleep(Duration::from_millis(100)); // let the readers drain
        }
        done
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100)); // let the readers drain
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

    /// SIGKILL: a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.kill();
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

fn collect(stream: impl Read + Send + 'static, mut tee: Option<std::fs::File>) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let sink = buf.clone();
    std::thread::spawn(move || {
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
    buf
}

//! Clients that misbehave cannot take the HTTP trigger down: the real host
//! serving the real `user-http` component over real sockets.
//! - Thousands of clients that send a request head one byte at a time
//!   (slowloris) are cut off at the header timeout, while a well-behaved
//!   client calling `GET /user` keeps getting answers.
//! - Running out of file descriptors does not make the accept loop spin or
//!   flood the log, and service resumes once descriptors are free again.
//! - A keep-alive connection left idle after a complete exchange is closed
//!   by the server once the header timeout passes (it is kept alive before).


use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{post_json, AppSpec, Host};

const JOHN: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";

/// Raises this process's soft descriptor limit to its hard limit (inherited
/// by the host it starts); returns the new limit.
fn raise_nofile() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    limit.rlim_cur = limit.rlim_max;
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    limit.rlim_cur
}

/// The host's CPU time so far (user + system), from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

fn addr(host: &Host) -> SocketAddr {
    host.base_url.trim_start_matches("http://").parse().unwrap()
}

/// One `GET /user` on a fresh connection: the status, or None without an answer in `timeout`.
fn get_user(addr: SocketAddr, timeout: Duration) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    let request = format!("GET /user?user_id={JOHN} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let head = String::from_utf8_lossy(&answer);
    head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn start_app(env: &[(&str, &str)], configure: impl FnOnce(&mut std::process::Command)) -> (tempfile::TempDir, Host) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = AppSpec::default().write_manifest(dir.path());
    let host = Host::start_with(&manifest, &dir.path().join(".spin"), &["http"], env, configure);
    let created = post_json(
        &host.base_url,
        &serde_json::json!({"user_id": JOHN, "first_name": "John", "email": "john.doe@example.com"}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    (dir, host)
}

/// A slow client: its request head, sent one byte per round, never ends.
struct Slow {
    stream: TcpStream,
    opened: Instant,
    sent: usize,
}

const SLOW_HEAD: &[u8] = b"GET /user HTTP/1.1\r\nHost: test\r\nX-Slow: ";

impl Slow {
    fn open(addr: SocketAddr) -> Option<Slow> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
        stream.set_nonblocking(true).ok()?;
        Some(Slow { stream, opened: Instant::now(), sent: 0 })
    }

    /// Sends the next byte; false once the server has closed the connection.
    fn drip(&mut self) -> bool {
        let mut buf = [0u8; 512];
        match self.stream.read(&mut buf) {
            Ok(_) => return false, // an answer (408) or EOF: closed by the server
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
        let byte = SLOW_HEAD.get(self.sent).copied().unwrap_or(b'a');
        match self.stream.write(&[byte]) {
            Ok(_) => {
                self.sent += 1;
                true
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => true,
            Err(_) => false,
        }
    }
}

#[test]
fn slow_clients_are_cut_off_while_a_good_client_is_served() {
    let nofile = raise_nofile();
    // Both ends of every connection live on this machine, in two processes.
    let clients = 2000.min(nofile.saturating_sub(300) as usize);
    assert!(clients >= 500, "RLIMIT_NOFILE hard limit {nofile} is too low for this test");
    let header_timeout = Duration::from_secs(2);
    let (_dir, host) = start_app(
        &[("TRIGGER_HTTP_HEADER_TIMEOUT", "2"), ("TRIGGER_HTTP_MAX_CONNECTIONS", "8192")],
        |_| {},
    );
    let addr = addr(&host);

    let attack_for = Duration::from_secs(15);
    let stop = Arc::new(AtomicBool::new(false));
    let good = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let mut latencies = Vec::new();
            let mut unanswered = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                match get_user(addr, Duration::from_secs(5)) {
                    Some(200) => latencies.push(started.elapsed()),
                    _ => unanswered += 1,
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (latencies, unanswered)
        }
    });

    let cpu_before = cpu_time(host.pid());
    let started = Instant::now();
    let mut slow: Vec<Slow> = (0..clients).filter_map(|_| Slow::open(addr)).collect();
    assert_eq!(slow.len(), clients, "could not open every slow connection");
    let opened_in = started.elapsed();
    // Lifetimes count from the first byte, which every slow client sends now
    // (opening thousands of connections takes seconds, during which closes
    // could not be noticed).
    for s in &mut slow {
        s.opened = Instant::now();
    }
    // The attack lasts `attack_for` from the first bytes, not from the first
    // connect: on a loaded machine opening them can take most of that time,
    // and every slow client must have had a full header timeout to be cut off.
    let dripping = Instant::now();
    let mut lifetimes = Vec::new();
    while dripping.elapsed() < attack_for {
        std::thread::sleep(Duration::from_millis(250));
        let mut i = 0;
        while i < slow.len() {
            if slow[i].drip() {
                i += 1;
                continue;
            }
            let closed = slow.swap_remove(i);
            lifetimes.push(closed.opened.elapsed());
        }
        // Keep up the pressure: new slow clients for those cut off, a few per
        // round (connecting is slow enough to delay noticing closes).
        for _ in 0..100.min(clients - slow.len()) {
            if let Some(mut fresh) = Slow::open(addr) {
                if fresh.drip() {
                    slow.push(fresh);
                }
            }
        }
    }
    let attack = started.elapsed();
    let cpu = cpu_time(host.pid()) - cpu_before;
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, unanswered) = good.join().unwrap();
    // Slow clients still open at the end were all opened within the last header timeout (and slack).
    let oldest_open = slow.iter().map(|s| s.opened.elapsed()).max().unwrap_or_default();
    drop(slow);

    latencies.sort();
    let answered = latencies.len();
    let ratio = answered as f64 / (answered + unanswered) as f64;
    let p50 = latencies.get(answered / 2).copied().unwrap_or_default();
    let p99 = latencies.get(answered * 99 / 100).copied().unwrap_or_default();
    let longest = lifetimes.iter().max().copied().unwrap_or_default();
    println!(
        "slowloris: {clients} slow clients (opened in {opened_in:?}), {attack:?}: good client {answered}/{} answered ({:.2} %), p50 {p50:?}, p99 {p99:?}; {} slow connections cut off, longest lived {longest:?} (header timeout {header_timeout:?}); host CPU {cpu:?} = {:.0} % of a core",
        answered + unanswered,
        ratio * 100.0,
        lifetimes.len(),
        cpu.as_secs_f64() / attack.as_secs_f64() * 100.0,
    );
    assert!(ratio >= 0.99, "the good client got {answered} of {} answers", answered + unanswered);
    assert!(lifetimes.len() >= clients, "only {} slow connections were cut off", lifetimes.len());
    // Polled every 250 ms on a loaded machine: a second and a half of slack.
    let bound = header_timeout + Duration::from_millis(1500);
    assert!(longest <= bound, "a slow connection lived {longest:?}, past the header timeout {header_timeout:?}");
    assert!(oldest_open <= bound, "a slow connection was still open after {oldest_open:?}");
}

#[test]
fn descriptor_exhaustion_neither_spins_nor_floods_the_log_and_service_resumes() {
    raise_nofile();
    let limit = 256;
    let (_dir, mut host) = start_app(&[("TRIGGER_HTTP_HEADER_TIMEOUT", "30")], |cmd| unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    });
    let addr = addr(&host);
    // More idle connections than the host has descriptors: it accepts until
    // EMFILE, and the rest wait in the backlog.
    let idle: Vec<TcpStream> = (0..limit as usize + 100)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok())
        .collect();
    let cpu_before = cpu_time(host.pid());
    let exhausted_for = Duration::from_secs(5);
    std::thread::sleep(exhausted_for);
    let cpu = cpu_time(host.pid()) - cpu_before;
    let out = host.drain_output();
    let failures = out.lines().filter(|l| l.contains("accept failed")).count();
    println!(
        "descriptor exhaustion ({} idle connections, RLIMIT_NOFILE {limit}): {failures} accept-failure log line(s) and {cpu:?} of host CPU in {exhausted_for:?}",
        idle.len()
    );
    assert!(failures >= 1, "the host never ran out of descriptors; the test proves nothing\n{out}");
    assert!(failures <= 3, "accept failures flood the log: {failures} lines in {exhausted_for:?}");

    drop(idle);
    let started = Instant::now();
    let status = get_user(addr, Duration::from_secs(10));
    println!("service resumed {:?} after the descriptors were freed", started.elapsed());
    assert_eq!(status, Some(200), "no answer once descriptors were free again");
    let out = host.drain_output();
    assert!(out.contains("accepting connections again"), "{out}");
}

/// Reads one HTTP/1.1 response with a Content-Length body; its status.
fn read_response(stream: &mut TcpStream) -> u16 {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).expect("reading a response");
        assert!(n > 0, "connection closed before a whole response: {}", String::from_utf8_lossy(&data));
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("a Content-Length");
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).expect("reading a body");
        assert!(n > 0, "connection closed mid-body");
        data.extend_from_slice(&buf[..n]);
    }
    assert_eq!(data.len(), head_end + length, "nothing beyond the response");
    head[9..12].parse().unwrap()
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let header_timeout = Duration::from_secs(2);
    let (_dir, host) = start_app(&[("TRIGGER_HTTP_HEADER_TIMEOUT", "2")], |_| {});
    let mut stream = TcpStream::connect(addr(&host)).unwrap();
    let request = format!("GET /user?user_id={JOHN} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    assert_eq!(read_response(&mut stream), 200);
    // Idle for less than the timeout: the connection is kept alive and
    // serves a second request (so the close below is the idle timeout, not
    // a server that closes after every response).
    std::thread::sleep(header_timeout / 2);
    stream.write_all(request.as_bytes()).unwrap();
    assert_eq!(read_response(&mut stream), 200);

    // Now idle for good: the server closes it (possibly after a 408).
    let idle_since = Instant::now();
    stream.set_read_timeout(Some(header_timeout + Duration::from_secs(10))).unwrap();
    let mut rest = Vec::new();
    let closed = stream.read_to_end(&mut rest);
    let idle = idle_since.elapsed();
    println!("idle keep-alive connection closed by the server after {idle:?} (header timeout {header_timeout:?})");
    assert!(closed.is_ok(), "the server kept an idle keep-alive connection open for {idle:?}: {closed:?}");
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.is_empty() || rest.starts_with("HTTP/1.1 408"), "{rest}");
    assert!(idle >= header_timeout - Duration::from_millis(100), "closed after {idle:?}, before the header timeout");
    host.terminate();
}

#[test]
fn a_body_cut_off_mid_way_gets_a_fixed_json_400_naming_no_internals() {
    let (_dir, mut host) = start_app(&[], |_| {});
    let mut stream = TcpStream::connect(addr(&host)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // Announces 100 bytes, sends 12, then stops sending: the host's body
    // stream fails, and the component hears of it mid-read.
    let head = "POST /user HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(br#"{"user_id": "#).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no answer: {answer:?}"));
    assert!(head.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{answer}");
    let body: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert_eq!(body, serde_json::json!({"detail": "Could not read the request body."}));
    // The cause is the component's log line, not the client's business. The
    // line reaches the host's output after the answer may have: wait for it.
    host.wait_for_output("user-http: reading the request body failed", Duration::from_secs(10));
}

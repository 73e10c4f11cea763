//! Linux /proc readings: CPU time and peak RSS of a process. The client shares
//! the machine's cores with the server, so each HTTP phase reports how many
//! cores each side burned: that tells a server limit from a client one.

use std::time::Instant;

/// USER_HZ: the unit of utime/stime in /proc/PID/stat. 100 on every mainstream
/// Linux build (the kernel ABI fixes it independently of CONFIG_HZ).
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds of `pid` ("self" for this process).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after ')' are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 overall: 11 and 12 after ')'.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// VmHWM (peak resident set) of `pid`, in KiB.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU use of this process and, if known, the server, over a span.
pub struct CpuMeter {
    started: Instant,
    server_pid: Option<u32>,
    client_start: Option<f64>,
    server_start: Option<f64>,
}

/// Average cores used over the span (1.0 = one core fully busy).
pub struct CpuUse {
    pub client_cores: Option<f64>,
    pub server_cores: Option<f64>,
}

impl CpuMeter {
    pub fn start(server_pid: Option<u32>) -> Self {
        CpuMeter {
            started: Instant::now(),
            server_pid,
            client_start: cpu_seconds("self"),
            server_start: server_pid.and_then(|p| cpu_seconds(&p.to_string())),
        }
    }

    pub fn stop(&self) -> CpuUse {
        let wall = self.started.elapsed().as_secs_f64();
        let cores = |start: Option<f64>, now: Option<f64>| Some((now? - start?) / wall);
        CpuUse {
            client_cores: cores(self.client_start, cpu_seconds("self")),
            server_cores: cores(
                self.server_start,
                self.server_pid.and_then(|p| cpu_seconds(&p.to_string())),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        assert!(cpu_seconds("self").is_some());
        assert!(peak_rss_kb(std::process::id()).unwrap() > 0);
    }
}

//! Shared pieces of looptrace's end-to-end benchmarks: how a child process is
//! measured (CPU from the kernel's own accounting), and medians with their spread.
//!
//! The benchmarks themselves are in `benches/`; `src/bin/kv-server.rs` and
//! `src/bin/kv-client.rs` are the server under test and its load.

use std::process::Child;
use std::time::Duration;

/// CPU time a finished child process used (user + system, all its threads), and
/// its exit status. Reaps the child: do not `wait` on it otherwise.
pub fn reap(child: Child) -> (Duration, i32) {
    let pid = child.id() as libc::pid_t;
    // `Child` never waits on drop; the kernel's rusage of the reaped child is exact.
    std::mem::forget(child);
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter; `pid` is our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r != pid {
        return (Duration::ZERO, -1);
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    (tv(usage.ru_utime) + tv(usage.ru_stime), code)
}

/// Sends SIGTERM to a child.
pub fn terminate(child: &Child) {
    // SAFETY: signalling our own child by pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
}

/// Median and spread of a sample.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(values: &[f64]) -> Summary {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Summary {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Summary {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }

    /// `median [min..max]` with `digits` decimals.
    pub fn show(&self, digits: usize) -> String {
        format!(
            "{:.d$} [{:.d$}..{:.d$}]",
            self.median,
            self.min,
            self.max,
            d = digits
        )
    }
}

/// An environment variable as a number, or `default`.
pub fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A GET of a JSON document from a collector's REST API at `addr` (`HOST:PORT`);
/// `Null` if it cannot be had.
pub fn get_json(addr: &str, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return serde_json::Value::Null;
    };
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(serde_json::Value::Null)
}

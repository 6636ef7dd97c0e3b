//! Shared pieces of looptrace's end-to-end benchmarks: how a child process is
//! measured (CPU from the kernel's own accounting), and medians with their spread.
//!
//! The benchmarks themselves are in `benches/`; `src/bin/kv-server.rs` and
//! `src/bin/kv-client.rs` are the server under test and its load.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command};
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

/// Reads `out`'s lines until one starts with `prefix`; the rest of that line.
pub fn read_until(out: &mut BufReader<ChildStdout>, prefix: &str) -> Option<String> {
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(rest) = line.trim().strip_prefix(prefix) {
            return Some(rest.to_string());
        }
    }
}

/// Reads `out` to its end (a child must not block on a full pipe).
pub fn drain(mut out: BufReader<ChildStdout>) {
    let mut sink = Vec::new();
    let _ = out.read_to_end(&mut sink);
}

/// The `looptrace` command of this checkout, built in release mode if needed.
pub fn looptrace_cli() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "-p",
            "looptrace-cli",
            "--bin",
            "looptrace",
        ])
        .status()
        .expect("cargo build of the looptrace command");
    assert!(status.success(), "building the looptrace command failed");
    // This benchmark runs from target/release/deps.
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("looptrace"))
        .expect("target directory")
}

//! A long-running collector fed by an app that leaks tasks: memory stays within
//! `--memory` plus a fixed allowance, and the API answers throughout.
//!
//! `cargo test -p looptrace-cli --release --test soak -- --ignored` runs the
//! long one (100M events, 300 000 leaked tasks); the short one runs in CI.

use looptrace_test_support::*;
use looptrace_wire::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BUDGET_MIB: u64 = 64;
/// What the collector process needs besides its budget: the program, its
/// runtimes and buffers, a frame in flight (up to 16 MiB, decoded a chunk at a
/// time) and the allocator's slack.
const ALLOWANCE_MIB: u64 = 96;

fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Frames of a busy app that never lets go of some of its tasks: each frame
/// leaks a few (spawned, polled once, idle forever) and runs a pool of others
/// through poll and wake.
struct App {
    ts: u64,
    next_task: u64,
    leaked: u64,
    leak: u64,
    pool: Vec<u64>,
}

impl App {
    fn frame(&mut self, events: usize, leak_now: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = EventsWriter::new(&mut out);
        let mut n = 0;
        let push = |w: &mut EventsWriter<'_>, kind: EventKind, ts: u64, n: &mut usize| {
            w.push(&Event {
                ts_ns: ts,
                thread: (*n % 2) as u32,
                kind,
            });
            *n += 1;
        };
        for _ in 0..leak_now.min(self.leak - self.leaked) {
            let task = self.next_task;
            self.next_task += 1;
            self.leaked += 1;
            self.ts += 100;
            let location = format!("app/src/conn.rs:{}:5", 10 + task % 7);
            push(
                &mut w,
                EventKind::Spawn(Box::new(looptrace_wire::Spawn {
                    task,
                    kind: TaskKind::Task,
                    name: None,
                    location,
                    parent: None,
                    size_bytes: Some(512),
                })),
                self.ts,
                &mut n,
            );
            push(&mut w, EventKind::PollStart { task }, self.ts + 10, &mut n);
            push(
                &mut w,
                EventKind::PollEnd {
                    task,
                    ready: false,
                    clones: 1,
                    drops: 0,
                    context: None,
                },
                self.ts + 50,
                &mut n,
            );
        }
        while n < events {
            let task = self.pool[n % self.pool.len()];
            self.ts += 1_000;
            push(
                &mut w,
                EventKind::Waker {
                    task,
                    op: WakeOp::Wake,
                    by: WakeSource::Io,
                },
                self.ts,
                &mut n,
            );
            push(&mut w, EventKind::PollStart { task }, self.ts + 200, &mut n);
            push(
                &mut w,
                EventKind::PollEnd {
                    task,
                    ready: false,
                    clones: 1,
                    drops: 1,
                    context: None,
                },
                self.ts + 700,
                &mut n,
            );
        }
        w.finish();
        out
    }
}

fn soak(total_events: u64, leak: u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_looptrace"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--memory",
            &format!("{BUDGET_MIB}MiB"),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .rsplit("http://")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));

    // RSS and the API, watched throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let slowest = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (stop, peak, slowest) = (stop.clone(), peak.clone(), slowest.clone());
        std::thread::spawn(move || {
            let mut answers = 0;
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(pid), Ordering::Relaxed);
                let t = Instant::now();
                let (status, _) = get(addr, "/api/health");
                assert_eq!(status, 200, "the API answers");
                slowest.fetch_max(t.elapsed().as_millis() as u64, Ordering::Relaxed);
                answers += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            answers
        })
    };

    let rt = tokio::runtime::Runtime::new().unwrap();
    let sent = rt.block_on(async {
        let mut ws = connect(addr, "/ingest").await;
        send_bin(&mut ws, header_frame("leaky")).await;
        let mut app = App {
            ts: 0,
            next_task: 1,
            leaked: 0,
            leak,
            pool: (1_000_000_000..1_000_000_064).collect(),
        };
        // The pool's tasks, spawned once.
        let mut spawns = Vec::new();
        for &t in &app.pool {
            spawns.push(spawn_ev(0, t, "worker"));
        }
        send_bin(&mut ws, events_frame(&spawns)).await;
        let frame_events = 16_000usize;
        let frames = total_events.div_ceil(frame_events as u64);
        let leak_per_frame = leak.div_ceil(frames).max(1);
        let mut sent = spawns.len() as u64;
        while sent < total_events {
            let f = app.frame(frame_events, leak_per_frame);
            sent += EventsReader::new(&f).unwrap().len();
            send_bin(&mut ws, f).await;
        }
        finish(ws).await;
        sent
    });
    // Until the collector has taken it all.
    let deadline = Instant::now() + Duration::from_secs(600);
    let summary = loop {
        let (_, v) = get(addr, "/api/sessions");
        if v["sessions"][0]["events"].as_u64() == Some(sent) {
            break v["sessions"][0].clone();
        }
        assert!(Instant::now() < deadline, "ingested in time: {v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    stop.store(true, Ordering::Relaxed);
    let answers = watcher.join().unwrap();
    let peak = peak.load(Ordering::Relaxed).max(rss_bytes(pid));
    let (_, stats) = get(addr, &format!("/api/sessions/{}/stats", summary["id"]));
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!(
        "soak: {sent} events, {leak} leaked tasks; peak RSS {:.1} MiB (budget {BUDGET_MIB} MiB); \
         {answers} health answers, slowest {} ms; model {}, store {}; given up {}",
        peak as f64 / (1 << 20) as f64,
        slowest.load(Ordering::Relaxed),
        stats["model"]["memory_bytes"],
        stats["store"]["memory_bytes"],
        summary["given_up"],
    );
    assert_eq!(
        summary["live_tasks"].as_u64(),
        Some(leak + 64),
        "every leaked task is still counted live"
    );
    assert!(
        summary["folded_tasks"].as_u64().unwrap() > 0,
        "the leak was folded: {summary}"
    );
    assert!(
        summary["evicted_events"].as_u64().unwrap() > 0,
        "history was evicted"
    );
    let held = stats["model"]["memory_bytes"].as_u64().unwrap()
        + stats["store"]["memory_bytes"].as_u64().unwrap();
    assert!(
        held <= BUDGET_MIB << 20,
        "the collector's own account: {held} bytes"
    );
    assert!(
        peak <= (BUDGET_MIB + ALLOWANCE_MIB) << 20,
        "peak RSS {peak} bytes over {BUDGET_MIB} MiB + {ALLOWANCE_MIB} MiB"
    );
    assert!(answers > 0);
}

#[test]
fn a_leaking_app_keeps_the_collector_within_its_budget() {
    soak(5_000_000, 100_000);
}

#[test]
#[ignore = "long: 100M events (run with --release)"]
fn a_long_soak_keeps_the_collector_within_its_budget() {
    soak(100_000_000, 300_000);
}

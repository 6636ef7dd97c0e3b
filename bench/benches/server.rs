//! The whole pipeline on a real server, against plain tokio and tokio-console.
//!
//! `cargo bench -p looptrace-bench --bench server` runs mini-redis (tokio's example
//! Redis server, unmodified; `src/bin/kv-server.rs`) on 2 workers, loaded by its own
//! client in another process (`kv-client`: 50 connections, each a run of SET/GET
//! round trips), in every mode, interleaved round by round (the order rotates each
//! round):
//!
//! * `plain`: tokio alone;
//! * `record`: looptrace writing a recording (`LOOPTRACE_RECORD`);
//! * `embedded`: looptrace with no destination, the default: the collector runs in
//!   the app;
//! * `watched`: the same, with a viewer subscribed to every session's live updates
//!   all along (a WebSocket client that reads and drops them: what watching costs
//!   the app, not what drawing costs the viewer);
//! * `stream`: looptrace streaming to a `looptrace serve` child process;
//! * `console`: console-subscriber instead of looptrace;
//! * `floor`: tokio alone, its `tracing` instrumentation (task spans, waker
//!   events, the app's spans) dispatched to a subscriber that takes the callsites
//!   looptrace takes and does nothing: the part of looptrace's cost that any
//!   tracer of tokio's wakes pays, the rest is looptrace's own.
//!
//! Every cost the user pays is counted: the server's CPU is its whole life's (from
//! the kernel when it is reaped, after its runtime shut down and shipped its last
//! events), and the collector's (`stream`) likewise, after it ingested every event.
//! Throughput is requests per second of the client. Each round's losses are taken
//! against that round's `plain` run; the table shows the median and the spread
//! (min..max) over the rounds. A second table splits the added CPU by thread: the
//! runtime's workers (capture on the app's own threads), looptrace's shipping
//! thread (which also samples the queues and, embedded, ingests) and embedded
//! collector's server, console's threads, and the collector process.
//!
//! Knobs: `LOOPTRACE_BENCH_ROUNDS` (default 5), `LOOPTRACE_BENCH_REQUESTS` (per
//! connection, default 4000), `LOOPTRACE_BENCH_CONNECTIONS` (default 50),
//! `LOOPTRACE_BENCH_MODES` (comma-separated subset).

use looptrace_bench::{
    drain, env_num, get_json, looptrace_cli, read_until, reap, terminate, Summary,
};
use serde_json::Value;
use std::io::{BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MODES: [&str; 7] = [
    "plain", "floor", "record", "embedded", "watched", "stream", "console",
];

#[derive(Debug, Default, Clone)]
struct Run {
    throughput: f64,
    requests: f64,
    seconds: f64,
    server_cpu: f64,
    collector_cpu: f64,
    events: f64,
    wire_bytes: f64,
    store_bytes: f64,
    store_events: f64,
    dropped: f64,
    /// What the viewer of `watched` received: messages and bytes.
    viewer: (u64, u64),
    /// CPU seconds by thread name when the load ended (see `kv-server`).
    threads: Vec<(String, f64)>,
}

impl Run {
    /// CPU seconds of the threads named `name` (or starting so, with `*`).
    fn thread_cpu(&self, name: &str) -> f64 {
        let (prefix, exact) = match name.strip_suffix('*') {
            Some(p) => (p, false),
            None => (name, true),
        };
        self.threads
            .iter()
            .filter(|(n, _)| {
                if exact {
                    n == prefix
                } else {
                    n.starts_with(prefix)
                }
            })
            .map(|(_, s)| s)
            .sum()
    }
}

/// The server's threads, by what they do: (column, thread name or prefix*).
/// Names are as the kernel keeps them (15 bytes).
const THREADS: [(&str, &str); 4] = [
    ("workers", "tokio-rt-worker"),
    ("shipping", "looptrace-ship"),
    ("embedded collector", "looptrace-colle*"),
    ("console", "console*"),
];

fn main() {
    let rounds: usize = env_num("LOOPTRACE_BENCH_ROUNDS", 5);
    let requests: usize = env_num("LOOPTRACE_BENCH_REQUESTS", 4000);
    let connections: usize = env_num("LOOPTRACE_BENCH_CONNECTIONS", 50);
    let modes: Vec<&str> = match std::env::var("LOOPTRACE_BENCH_MODES") {
        Ok(m) => MODES
            .iter()
            .copied()
            .filter(|x| m.split(',').any(|y| y == *x))
            .collect(),
        Err(_) => MODES.to_vec(),
    };
    let cli = looptrace_cli();
    let tmp = std::env::temp_dir().join(format!("looptrace-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    println!(
        "server benchmark: mini-redis, 2 workers, {connections} connections x {requests} requests, {rounds} rounds"
    );
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); modes.len()];
    for round in 0..rounds {
        // Rotate the order so no mode always runs first (or after the same one).
        let order: Vec<usize> = (0..modes.len())
            .map(|i| (i + round) % modes.len())
            .collect();
        for &m in &order {
            let r = run(modes[m], &cli, &tmp, connections, requests);
            let viewer = match r.viewer {
                (0, 0) => String::new(),
                (n, b) => format!(", viewer got {n} messages, {:.1} MB", b as f64 / 1e6),
            };
            eprintln!(
                "round {} {:>8}: {:>9.0} req/s, server {:.2} s CPU, collector {:.2} s, {:.0} events{viewer}",
                round + 1,
                modes[m],
                r.throughput,
                r.server_cpu,
                r.collector_cpu,
                r.events
            );
            runs[m].push(r);
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    report(&modes, &runs);
}

fn report(modes: &[&str], runs: &[Vec<Run>]) {
    let plain = modes.iter().position(|m| *m == "plain");
    let console = modes.iter().position(|m| *m == "console");
    // Throughput a run lost against its round's plain run, in percent.
    let lost = |k: usize, r: &Run| -> f64 {
        plain.map_or(f64::NAN, |p| {
            100.0 * (1.0 - r.throughput / runs[p][k].throughput)
        })
    };
    println!();
    println!("| mode | throughput (req/s) | lost vs plain | CPU added (s) | CPU per request (µs) | events per request | events/s | wire B/event | store B/event | cost / console's |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (i, mode) in modes.iter().enumerate() {
        let rs = &runs[i];
        let col = |f: &dyn Fn(usize, &Run) -> f64| over_rounds(rs, f);
        let thr = col(&|_, r| r.throughput);
        let cpu = |k: usize, r: &Run| -> f64 {
            plain.map_or(f64::NAN, |p| {
                r.server_cpu + r.collector_cpu - runs[p][k].server_cpu
            })
        };
        let ratio = col(&|k, r| {
            let c = console.map_or(f64::NAN, |c| lost(k, &runs[c][k]));
            c / lost(k, r)
        });
        let total_cpu = col(&|_, r| 1e6 * (r.server_cpu + r.collector_cpu) / r.requests);
        let evs = col(&|_, r| r.events / r.requests);
        let eps = col(&|_, r| r.events / r.seconds);
        let wire = col(&|_, r| r.wire_bytes / r.events);
        let store = col(&|_, r| r.store_bytes / r.store_events);
        println!(
            "| {mode} | {} | {}% | {} | {} | {} | {} | {} | {} | {} |",
            thr.show(0),
            na(col(&lost), 1),
            na(col(&cpu), 2),
            total_cpu.show(2),
            na(evs, 1),
            na(eps, 0),
            na(wire, 2),
            na(store, 2),
            if matches!(*mode, "plain" | "console" | "floor") {
                "-".into()
            } else {
                na(ratio, 1)
            },
        );
        let dropped: f64 = rs.iter().map(|r| r.dropped).sum();
        if dropped > 0.0 {
            println!("|   ({mode} dropped {dropped} events over the rounds) |");
        }
    }
    println!();
    println!("Where the added CPU goes, ns per request (threads' CPU when the load ended, from the kernel's");
    println!("scheduler statistics; workers against the same round's plain run):");
    println!();
    let names: Vec<&str> = THREADS.iter().map(|t| t.0).collect();
    println!("| mode | {} | collector process |", names.join(" | "));
    println!("|---|{}---|", "---|".repeat(THREADS.len()));
    for (i, mode) in modes.iter().enumerate() {
        if *mode == "plain" {
            continue;
        }
        let rs = &runs[i];
        let per_request = |f: &dyn Fn(usize, &Run) -> f64| -> String {
            let s = over_rounds(rs, &|k, r| 1e9 * f(k, r) / r.requests);
            // A thread this mode does not have reads 0 in every round.
            if s.median == 0.0 && s.max == 0.0 {
                "-".to_string()
            } else {
                na(s, 0)
            }
        };
        let mut cells = Vec::new();
        for (k, (_, name)) in THREADS.iter().enumerate() {
            cells.push(if k == 0 {
                per_request(&|j, r| {
                    plain.map_or(f64::NAN, |p| {
                        r.thread_cpu(name) - runs[p][j].thread_cpu(name)
                    })
                })
            } else {
                per_request(&|_, r| r.thread_cpu(name))
            });
        }
        cells.push(per_request(&|_, r| r.collector_cpu));
        println!("| {mode} | {} |", cells.join(" | "));
    }
    if let Some(f) = modes.iter().position(|m| *m == "floor") {
        println!();
        println!("Beyond the floor (tokio's tracing instrumentation alone), per round against that round's floor run:");
        println!();
        println!(
            "| mode | throughput lost beyond floor | workers' CPU beyond floor (ns/request) |"
        );
        println!("|---|---|---|");
        let workers = THREADS[0].1;
        for (i, mode) in modes.iter().enumerate() {
            if matches!(*mode, "plain" | "floor" | "console") {
                continue;
            }
            let rs = &runs[i];
            let beyond = over_rounds(rs, &|k, r| lost(k, r) - lost(k, &runs[f][k]));
            let cpu = over_rounds(rs, &|k, r| {
                1e9 * (r.thread_cpu(workers) - runs[f][k].thread_cpu(workers)) / r.requests
            });
            println!("| {mode} | {}% | {} |", na(beyond, 1), na(cpu, 0));
        }
    }
    println!();
    println!("lost: throughput lost against the same round's plain run; CPU added: server (and collector) CPU over plain's;");
    println!("cost / console's: console's throughput loss divided by this mode's (higher is cheaper). Spread: [min..max] over rounds.");
}

/// `f` of each round's run (given its round), summarised over the rounds.
fn over_rounds(rs: &[Run], f: &dyn Fn(usize, &Run) -> f64) -> Summary {
    Summary::of(
        &rs.iter()
            .enumerate()
            .map(|(k, r)| f(k, r))
            .collect::<Vec<_>>(),
    )
}

/// `s` with `d` decimals, or `-` where it does not apply (NaN).
fn na(s: Summary, d: usize) -> String {
    if s.median.is_nan() {
        "-".to_string()
    } else {
        s.show(d)
    }
}

fn run(mode: &str, cli: &Path, tmp: &Path, connections: usize, requests: usize) -> Run {
    let mut r = Run::default();
    let mut collector = None;
    let mut args: Vec<String> = vec![mode.to_string()];
    let record = tmp.join("server.ltrace");
    match mode {
        "record" => args.push(record.display().to_string()),
        "stream" => {
            let mut c = Command::new(cli)
                .args(["serve", "--addr", "127.0.0.1:0"])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("looptrace serve");
            let mut out = BufReader::new(c.stdout.take().expect("stdout"));
            let addr = read_until(&mut out, "looptrace collector listening on http://")
                .expect("collector address");
            std::thread::spawn(move || drain(out));
            args.push(addr.clone());
            collector = Some((c, addr));
        }
        _ => {}
    }
    let mut server = Command::new(env!("CARGO_BIN_EXE_kv-server"))
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("kv-server");
    let mut out = BufReader::new(server.stdout.take().expect("stdout"));
    let viewer = (mode == "watched").then(|| {
        let addr = read_until(&mut out, "viewer ").expect("viewer address");
        watch(&addr)
    });
    let addr = read_until(&mut out, "listening ").expect("server address");
    let client = Command::new(env!("CARGO_BIN_EXE_kv-client"))
        .args([addr, connections.to_string(), requests.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("kv-client");
    let client_out = last_json(client);
    r.requests = client_out["requests"].as_f64().unwrap_or(f64::NAN);
    r.seconds = client_out["seconds"].as_f64().unwrap_or(f64::NAN);
    r.throughput = r.requests / r.seconds;
    // Stop the server: it shuts its runtime down, ships the rest and reports.
    drop(server.stdin.take());
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    let (cpu, code) = reap(server);
    assert_eq!(code, 0, "kv-server {mode} failed");
    r.server_cpu = cpu.as_secs_f64();
    let report: Value = rest
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    r.events = report["events"].as_f64().unwrap_or(f64::NAN);
    if let Some(t) = report["threads"].as_object() {
        r.threads = t
            .iter()
            .map(|(n, s)| (n.clone(), s.as_f64().unwrap_or(0.0)))
            .collect();
    }
    r.dropped = report["dropped"].as_f64().unwrap_or(0.0);
    if let Some(v) = viewer {
        r.viewer = v.join().expect("viewer");
    }
    match mode {
        "record" => {
            r.wire_bytes = std::fs::metadata(&record).map_or(f64::NAN, |m| m.len() as f64);
            let _ = std::fs::remove_file(&record);
        }
        "embedded" | "watched" => collector_figures(&report["collector"], &mut r),
        "stream" => {
            let (c, addr) = collector.take().expect("collector");
            // Wait until the collector has ingested everything the app shipped.
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut doc = Value::Null;
            while Instant::now() < deadline {
                doc = get_json(&addr, "/api/sessions");
                let got = doc["counters"]["events"].as_f64().unwrap_or(0.0);
                if got >= r.events - r.dropped {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            collector_figures(&doc, &mut r);
            terminate(&c);
            r.collector_cpu = reap(c).0.as_secs_f64();
        }
        _ => {}
    }
    r
}

/// A viewer of every session of the collector at `addr`, subscribed before this
/// returns (the collector said so); it reads and drops what it gets until the
/// collector goes, then says how many messages and bytes that was.
fn watch(addr: &str) -> std::thread::JoinHandle<(u64, u64)> {
    use tungstenite::Message;
    let (mut ws, _) =
        tungstenite::connect(format!("ws://{addr}/ws/view")).expect("viewer connects");
    ws.send(Message::text(r#"{"op":"subscribe"}"#))
        .expect("viewer subscribes");
    loop {
        match ws.read().expect("the collector answers the viewer") {
            Message::Text(t) if t.contains(r#""type":"subscribed""#) => break,
            _ => continue,
        }
    }
    std::thread::spawn(move || {
        let (mut n, mut bytes) = (0, 0);
        while let Ok(m) = ws.read() {
            n += 1;
            bytes += m.len() as u64;
        }
        (n, bytes)
    })
}

/// Wire and store figures from a collector's `/api/sessions`.
fn collector_figures(doc: &Value, r: &mut Run) {
    r.wire_bytes = doc["counters"]["bytes"].as_f64().unwrap_or(f64::NAN);
    if let Some(s) = doc["sessions"].as_array().and_then(|s| s.first()) {
        r.store_events = s["retained_events"].as_f64().unwrap_or(f64::NAN);
        r.store_bytes = s["store_bytes"].as_f64().unwrap_or(f64::NAN);
    }
}

/// The last JSON line a child prints, once it exits (successfully).
fn last_json(mut child: Child) -> Value {
    let mut s = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut s);
    }
    let (_, code) = reap(child);
    assert_eq!(code, 0, "kv-client failed");
    s.lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null)
}

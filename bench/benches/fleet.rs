//! Sizing a fleet: K traced apps stream into one `looptrace serve`.
//!
//! `cargo bench -p looptrace-bench --bench fleet` starts one collector, then K
//! mini-redis servers (`kv-server stream`, 2 workers each, as in the server
//! benchmark) streaming to it, loaded at a steady rate each by one client process
//! (`kv-client`, 2 connections per app), for a fixed time; K = 1, 10 and 50 by
//! default, each K in several rounds (a fresh collector and fresh apps a round).
//! It reports, over the loaded window, the collector's CPU (from `/proc`, all
//! its threads), its memory (resident at the end, and its peak), the events it
//! ingested per second, and whether it kept up: every event the apps shipped
//! ingested once they stopped, and none dropped.
//!
//! Knobs: `LOOPTRACE_BENCH_FLEET` (the Ks, comma-separated), `LOOPTRACE_BENCH_ROUNDS`
//! (default 3), `LOOPTRACE_BENCH_RATE` (requests per second per app, default 200),
//! `LOOPTRACE_BENCH_SECONDS` (the loaded window, default 10).

use looptrace_bench::{
    drain, env_num, get_json, looptrace_cli, read_until, reap, terminate, Summary,
};
use std::io::{BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone)]
struct Run {
    /// Requests per second the clients did, all apps.
    requests_per_s: f64,
    events_per_s: f64,
    /// Collector CPU over the window, as a share of one core.
    cpu_share: f64,
    /// Collector CPU per million events ingested (s).
    cpu_per_m_events: f64,
    rss_mb: f64,
    peak_mb: f64,
    /// Events the apps reported shipped, and the collector ingested.
    shipped: f64,
    ingested: f64,
    dropped: f64,
}

fn main() {
    let ks: Vec<usize> = std::env::var("LOOPTRACE_BENCH_FLEET")
        .unwrap_or_else(|_| "1,10,50".into())
        .split(',')
        .filter_map(|k| k.trim().parse().ok())
        .collect();
    let rounds: usize = env_num("LOOPTRACE_BENCH_ROUNDS", 3);
    let rate: f64 = env_num("LOOPTRACE_BENCH_RATE", 200.0);
    let seconds: f64 = env_num("LOOPTRACE_BENCH_SECONDS", 10.0);
    let cli = looptrace_cli();
    println!(
        "fleet benchmark: K mini-redis apps (2 workers each) streaming to one collector, {rate} req/s per app, {seconds} s loaded, {rounds} rounds"
    );
    let mut by_k: Vec<Vec<Run>> = vec![Vec::new(); ks.len()];
    for round in 0..rounds {
        for (i, &k) in ks.iter().enumerate() {
            let r = run(&cli, k, rate, seconds);
            eprintln!(
                "round {} K={k:>3}: {:>7.0} req/s, {:>8.0} events/s, collector {:>5.1}% of a core, {:.0} MB ({:.0} peak), shipped {} ingested {} dropped {}",
                round + 1,
                r.requests_per_s,
                r.events_per_s,
                100.0 * r.cpu_share,
                r.rss_mb,
                r.peak_mb,
                r.shipped,
                r.ingested,
                r.dropped
            );
            by_k[i].push(r);
        }
    }
    println!();
    println!("| apps | requests/s (all) | events/s ingested | collector CPU (% of one core) | CPU s per 1M events | collector RSS MB (end) | peak RSS MB | kept up |");
    println!("|---|---|---|---|---|---|---|---|");
    for (i, &k) in ks.iter().enumerate() {
        let rs = &by_k[i];
        let col = |f: fn(&Run) -> f64| Summary::of(&rs.iter().map(f).collect::<Vec<_>>());
        let kept = rs
            .iter()
            .all(|r| r.dropped == 0.0 && r.ingested >= r.shipped);
        println!(
            "| {k} | {} | {} | {} | {} | {} | {} | {} |",
            col(|r| r.requests_per_s).show(0),
            col(|r| r.events_per_s).show(0),
            col(|r| 100.0 * r.cpu_share).show(1),
            col(|r| r.cpu_per_m_events).show(2),
            col(|r| r.rss_mb).show(0),
            col(|r| r.peak_mb).show(0),
            if kept {
                "yes".to_string()
            } else {
                format!("no ({} dropped)", rs.iter().map(|r| r.dropped).sum::<f64>())
            },
        );
    }
    println!();
    println!("Spread: [min..max] over rounds. CPU and events/s over the loaded window; memory from /proc (VmRSS, VmHWM).");
}

/// CPU seconds process `pid` used so far (all threads).
fn cpu_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces), from its ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

/// VmRSS and VmHWM of `pid`, in MB.
fn memory_of(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
}

fn ingested(addr: &str) -> f64 {
    get_json(addr, "/api/sessions")["counters"]["events"]
        .as_f64()
        .unwrap_or(0.0)
}

fn run(cli: &std::path::Path, k: usize, rate: f64, seconds: f64) -> Run {
    let mut collector = Command::new(cli)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("looptrace serve");
    let mut out = BufReader::new(collector.stdout.take().expect("stdout"));
    let addr = read_until(&mut out, "looptrace collector listening on http://")
        .expect("collector address");
    std::thread::spawn(move || drain(out));

    let mut apps: Vec<(Child, BufReader<ChildStdout>)> = Vec::new();
    let mut app_addrs = Vec::new();
    for _ in 0..k {
        let mut app = Command::new(env!("CARGO_BIN_EXE_kv-server"))
            .args(["stream", &addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kv-server");
        let mut out = BufReader::new(app.stdout.take().expect("stdout"));
        app_addrs.push(read_until(&mut out, "listening ").expect("app address"));
        apps.push((app, out));
    }
    let requests = (rate * seconds / 2.0).round() as usize;
    let client = Command::new(env!("CARGO_BIN_EXE_kv-client"))
        .args([
            app_addrs.join(","),
            "2".into(),
            requests.to_string(),
            rate.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("kv-client");
    // The window: from the load's start to its end.
    let (cpu0, events0, t0) = (cpu_of(collector.id()), ingested(&addr), Instant::now());
    let mut client_out = String::new();
    let mut client = client;
    if let Some(mut o) = client.stdout.take() {
        let _ = o.read_to_string(&mut client_out);
    }
    let (_, code) = reap(client);
    assert_eq!(code, 0, "kv-client failed");
    let window = t0.elapsed().as_secs_f64();
    let (cpu1, events1) = (cpu_of(collector.id()), ingested(&addr));
    let (rss, peak) = memory_of(collector.id());
    let done: serde_json::Value = client_out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(serde_json::Value::Null);
    let mut r = Run {
        requests_per_s: done["requests"].as_f64().unwrap_or(f64::NAN) / window,
        events_per_s: (events1 - events0) / window,
        cpu_share: (cpu1 - cpu0) / window,
        cpu_per_m_events: (cpu1 - cpu0) / ((events1 - events0) / 1e6),
        rss_mb: rss,
        peak_mb: peak,
        ..Run::default()
    };
    // Stop the apps: each ships the rest and says what it shipped.
    for (app, _) in &mut apps {
        drop(app.stdin.take());
    }
    for (app, mut out) in apps {
        let mut rest = String::new();
        let _ = out.read_to_string(&mut rest);
        let (_, code) = reap(app);
        assert_eq!(code, 0, "kv-server failed");
        let report: serde_json::Value = rest
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or(serde_json::Value::Null);
        r.shipped += report["events"].as_f64().unwrap_or(0.0);
        r.dropped += report["dropped"].as_f64().unwrap_or(0.0);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        r.ingested = ingested(&addr);
        if r.ingested >= r.shipped - r.dropped || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    terminate(&collector);
    let _ = reap(collector);
    r
}

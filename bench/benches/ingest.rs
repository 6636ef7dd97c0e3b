//! The collector's ingest, alone: a real server's recorded frames fed through
//! decode, store and model in one thread, with and without a viewer watching.
//!
//! `cargo bench -p looptrace-bench --bench ingest` first records mini-redis under
//! load (as the server benchmark runs it), then, interleaved round by round:
//!
//! * `decode`: the frames decoded into a buffer, as the hub reads them, and
//!   nothing else (what any consumer pays);
//! * `ingest`: [`Hub::ingest_frame`] on every frame: decode, store, model;
//! * `ingest + viewer`: the same with a viewer subscribed to the session (live
//!   tracker, batch JSON; the viewer's channel drained on another thread).
//!
//! Each configuration starts with a fresh hub. Events per second per core are
//! events over the ingesting thread's CPU time; bytes per event retained are the
//! store's (blocks, open block and checkpoints) over the events it holds.
//!
//! Then, as a user meets them:
//!
//! * `looptrace replay FILE --speed 100` of that recording: from start until the
//!   session is served whole (every event ingested, the API answering);
//! * the page opening that session in headless Chromium (when Node.js and the
//!   browser tests' packages are installed): until its tasks and first timeline
//!   window are drawn;
//! * one frame as large as the wire allows (16 MiB) sent to a collector while `/api/health` is asked every 2 ms: the
//!   ingest time and the health answers' latency.
//!
//! Knobs: `LOOPTRACE_BENCH_ROUNDS` (default 7), `LOOPTRACE_BENCH_REQUESTS` (per
//! connection for the recorded load, default 13000: some 2M events),
//! `LOOPTRACE_BENCH_PATHS` (a comma-separated subset of `decode`, `ingest`,
//! `viewer` and `user`, what a user meets; to profile one of them).

use looptrace_bench::{env_num, looptrace_cli, Summary};
use looptrace_collector::hub::{Hub, HubConfig, Source};
use looptrace_wire::{frame_type, EventsReader, FrameType, RecordingReader};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn thread_cpu() -> Duration {
    // SAFETY: a zeroed timespec is a valid out-parameter.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn temp_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("looptrace-ingest-{}", std::process::id()))
}

/// Records mini-redis under load; returns its frames (header first) and the file.
fn record(requests: usize) -> (Vec<Vec<u8>>, std::path::PathBuf) {
    let dir = temp_dir();
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("server.ltrace");
    let mut server = Command::new(env!("CARGO_BIN_EXE_kv-server"))
        .args(["record", &path.display().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("kv-server");
    let mut out = BufReader::new(server.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("server address");
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .expect("listening line");
    let status = Command::new(env!("CARGO_BIN_EXE_kv-client"))
        .args([addr, "50", &requests.to_string()])
        .stdout(Stdio::null())
        .status()
        .expect("kv-client");
    assert!(status.success());
    drop(server.stdin.take());
    server.wait().expect("kv-server exits");
    let mut reader =
        RecordingReader::new(std::fs::File::open(&path).expect("recording")).expect("readable");
    let mut frames = Vec::new();
    while let Some((_, f)) = reader.next_raw().expect("undamaged") {
        frames.push(f);
    }
    (frames, path)
}

struct Run {
    events: u64,
    cpu: Duration,
    bytes_per_event: f64,
}

fn decode(frames: &[Vec<u8>]) -> Run {
    let t = thread_cpu();
    let mut events = 0;
    // Into a buffer a chunk at a time, as the hub reads them.
    let mut chunk = Vec::new();
    for f in frames {
        if frame_type(f) == Ok(FrameType::Events) {
            let mut r = EventsReader::new(f).expect("events frame");
            while !r.is_empty() {
                chunk.clear();
                r.read_into(&mut chunk, looptrace_collector::hub::CHUNK_EVENTS)
                    .expect("decodes");
                events += chunk.len() as u64;
                std::hint::black_box(&chunk);
            }
        }
    }
    Run {
        events,
        cpu: thread_cpu() - t,
        bytes_per_event: f64::NAN,
    }
}

fn ingest(frames: &[Vec<u8>], viewer: bool) -> Run {
    let hub = Hub::new(HubConfig::default());
    let header = match looptrace_wire::decode_frame(&frames[0]) {
        Ok(looptrace_wire::Frame::Header(h)) => h,
        other => panic!("first frame: {other:?}"),
    };
    let id = hub.open(header, &frames[0], Source::Live);
    let _watch = viewer.then(|| hub.watch(Some(id)));
    let drain = viewer.then(|| {
        let mut rx = hub.subscribe();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(async move {
                use tokio::sync::broadcast::error::RecvError;
                while !matches!(rx.recv().await, Err(RecvError::Closed)) {}
            })
        })
    });
    let t = thread_cpu();
    let mut events = 0;
    for f in &frames[1..] {
        events += hub.ingest_frame(id, f).expect("ingests") as u64;
    }
    let cpu = thread_cpu() - t;
    let (retained, memory) = hub
        .with_session(id, |s| (s.store.retained(), s.store.memory()))
        .expect("session");
    drop(_watch);
    drop(hub);
    if let Some(d) = drain {
        let _ = d.join();
    }
    Run {
        events,
        cpu,
        bytes_per_event: memory as f64 / retained as f64,
    }
}

/// The timed paths as `LOOPTRACE_BENCH_PATHS` names them (besides `user`), in
/// the order of their table's rows.
const PATHS: [&str; 3] = ["decode", "ingest", "viewer"];

fn main() {
    let rounds: usize = env_num("LOOPTRACE_BENCH_ROUNDS", 7);
    let requests: usize = env_num("LOOPTRACE_BENCH_REQUESTS", 13000);
    let (frames, recording) = record(requests);
    let bytes: usize = frames.iter().map(Vec::len).sum();
    println!(
        "ingest benchmark: a recording of mini-redis under load, {} frames, {:.1} MB, {rounds} rounds",
        frames.len(),
        bytes as f64 / 1e6
    );
    let names = ["decode", "ingest", "ingest + viewer"];
    let wanted = std::env::var("LOOPTRACE_BENCH_PATHS").ok();
    if let Some(w) = &wanted {
        for p in w.split(',') {
            assert!(
                PATHS.contains(&p) || p == "user",
                "LOOPTRACE_BENCH_PATHS: no path {p:?} (decode, ingest, viewer, user)"
            );
        }
    }
    let wants = |p: &str| wanted.as_ref().is_none_or(|w| w.split(',').any(|x| x == p));
    let paths: Vec<usize> = PATHS
        .iter()
        .enumerate()
        .filter(|(_, p)| wants(p))
        .map(|(i, _)| i)
        .collect();
    let mut runs: Vec<Vec<Run>> = (0..names.len()).map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for k in 0..paths.len() {
            let i = paths[(k + round) % paths.len()];
            let r = match i {
                0 => decode(&frames),
                1 => ingest(&frames, false),
                _ => ingest(&frames, true),
            };
            runs[i].push(r);
        }
    }
    if !paths.is_empty() {
        println!();
        println!(
            "| path | events | M events/s per core | ns per event | bytes per event retained |"
        );
        println!("|---|---|---|---|---|");
    }
    for (i, name) in names.iter().enumerate() {
        let rs = &runs[i];
        if rs.is_empty() {
            continue;
        }
        let rate = Summary::of(
            &rs.iter()
                .map(|r| r.events as f64 / r.cpu.as_secs_f64() / 1e6)
                .collect::<Vec<_>>(),
        );
        let ns = Summary::of(
            &rs.iter()
                .map(|r| r.cpu.as_nanos() as f64 / r.events as f64)
                .collect::<Vec<_>>(),
        );
        let bpe = Summary::of(&rs.iter().map(|r| r.bytes_per_event).collect::<Vec<_>>());
        println!(
            "| {name} | {} | {} | {} | {} |",
            rs[0].events,
            rate.show(2),
            ns.show(1),
            if bpe.median.is_nan() {
                "-".into()
            } else {
                bpe.show(2)
            }
        );
    }
    if !paths.is_empty() {
        println!();
        println!("Spread: [min..max] over rounds; CPU of the ingesting thread only (a viewer's own thread drains the channel).");
    }

    if wants("user") {
        let events = decode(&frames).events;
        replay_and_open(&recording, events, rounds.min(5));
        big_frame(rounds.min(5));
    }
    let _ = std::fs::remove_dir_all(temp_dir());
}

/// `looptrace replay` at the fastest speed: until the session is served whole;
/// and the page opening it.
fn replay_and_open(recording: &std::path::Path, events: u64, rounds: usize) {
    let cli = looptrace_cli();
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let browser = web.join("node_modules/playwright-core").exists()
        && std::path::Path::new("/usr/bin/chromium").exists();
    let mut served = Vec::new();
    let mut opened = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let mut child = Command::new(&cli)
            .args(["replay", &recording.display().to_string(), "--speed", "100"])
            .args(["--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("looptrace replay");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let addr = loop {
            line.clear();
            assert!(out.read_line(&mut line).expect("reads") > 0, "no address");
            if let Some(a) = line
                .trim()
                .strip_prefix("looptrace collector listening on http://")
            {
                break a.to_string();
            }
        };
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let doc = looptrace_bench::get_json(&addr, "/api/sessions");
            let s = &doc["sessions"][0];
            if s["events"].as_u64() == Some(events) && s["live"] == false {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replay not served whole in 120 s: {s}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        served.push(t.elapsed().as_secs_f64());
        if browser {
            let out = Command::new("node")
                .arg(web.join("bench/open.mjs"))
                .env("LOOPTRACE_BENCH_URL", format!("http://{addr}/"))
                .env("LOOPTRACE_BENCH_OPENS", "1")
                .output()
                .expect("node runs");
            let doc: serde_json::Value = String::from_utf8_lossy(&out.stdout)
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str(l).ok())
                .unwrap_or_default();
            if let Some(ms) = doc["open_ms"][0].as_f64() {
                opened.push(ms / 1000.0);
            } else {
                eprintln!(
                    "page bench failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        looptrace_bench::terminate(&child);
        let _ = looptrace_bench::reap(child);
    }
    println!();
    println!("| as a user meets it | seconds |");
    println!("|---|---|");
    println!(
        "| `looptrace replay --speed 100` of {events} events, start to served whole | {} |",
        Summary::of(&served).show(2)
    );
    if browser {
        println!(
            "| the page opening that session (1280x720), to its tasks and timeline drawn | {} |",
            Summary::of(&opened).show(2)
        );
    } else {
        println!("| the page opening it | not measured: no Node.js packages or Chromium (run scripts/test once) |");
    }
}

/// A 16 MiB frame (as large as the wire allows), while `/api/health` is asked
/// every 2 ms.
fn big_frame(rounds: usize) {
    use looptrace_collector::server::{serve, AppState, ServerConfig};
    use looptrace_wire::{Event, EventKind, EventsWriter, MAX_FRAME_EVENTS};
    let max_bytes = ServerConfig::default().max_frame_bytes;
    // Polls of many tasks, far apart: large varints, some 9 bytes an event, as many
    // as 16 MiB holds.
    let mut frame = Vec::new();
    let mut w = EventsWriter::new(&mut frame);
    let mut ts = 0u64;
    for i in 0..MAX_FRAME_EVENTS {
        if w.len().is_multiple_of(1024) && w.bytes() > max_bytes - 16 * 1024 {
            break;
        }
        ts += 1_000_003;
        let task = 1_000_000 + i % 100_000;
        w.push(&Event {
            ts_ns: ts,
            thread: (i % 2) as u32,
            kind: if i % 2 == 0 {
                EventKind::PollStart { task }
            } else {
                EventKind::PollEnd {
                    task,
                    ready: false,
                    clones: 1,
                    drops: 1,
                    context: None,
                }
            },
        });
    }
    let events = w.finish();
    assert!(frame.len() <= max_bytes, "{} bytes", frame.len());
    let mut ingest = Vec::new();
    let mut health = Vec::new();
    let mut worst = Vec::new();
    for _ in 0..rounds {
        let hub = Hub::new(HubConfig::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr").to_string();
        let state = AppState {
            hub: hub.clone(),
            config: Arc::new(ServerConfig::default()),
            replay: None,
        };
        // As `looptrace serve` runs it: two workers.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(listener).expect("listener");
                let _ = serve(l, state).await;
            })
        });
        let url = format!("ws://{addr}/ingest");
        let payload = frame.clone();
        let sender = std::thread::spawn(move || {
            let (mut ws, _) = tungstenite::connect(url).expect("ingest connects");
            let mut h = Vec::new();
            looptrace_wire::encode_header(
                &looptrace_wire::Header {
                    process_name: "big".into(),
                    pid: 1,
                    flavor: looptrace_wire::Flavor::MultiThread,
                    workers: 2,
                    clock_origin_unix_ns: 0,
                },
                &mut h,
            );
            ws.send(tungstenite::Message::Binary(h.into()))
                .expect("header");
            ws.send(tungstenite::Message::Binary(payload.into()))
                .expect("frame");
            ws
        });
        let t = Instant::now();
        let mut latencies = Vec::new();
        loop {
            let a = std::time::Instant::now();
            let doc = looptrace_bench::get_json(&addr, "/api/health");
            assert_eq!(doc["ok"], true);
            latencies.push(a.elapsed().as_secs_f64() * 1000.0);
            if hub
                .session_ids()
                .first()
                .and_then(|id| hub.with_session(*id, |s| s.store.events))
                == Some(events)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        ingest.push(t.elapsed().as_secs_f64());
        let s = Summary::of(&latencies);
        health.push(s.median);
        worst.push(s.max);
        if let Ok(mut ws) = sender.join() {
            let _ = ws.close(None);
            let _ = ws.flush();
        }
    }
    println!(
        "| one {:.1} MiB frame of {events} events, sent to ingested | {} |",
        frame.len() as f64 / (1 << 20) as f64,
        Summary::of(&ingest).show(2)
    );
    println!();
    println!(
        "`/api/health` meanwhile, ms: median {} , worst {} (median and [min..max] over rounds).",
        Summary::of(&health).show(2),
        Summary::of(&worst).show(2)
    );
}

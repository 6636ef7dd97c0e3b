//! The collector's ingest, alone: a real server's recorded frames fed through
//! decode, store and model in one thread, with and without a viewer watching.
//!
//! `cargo bench -p looptrace-bench --bench ingest` first records mini-redis under
//! load (as the server benchmark runs it), then, interleaved round by round:
//!
//! * `decode`: the frames decoded and nothing else (what any consumer pays);
//! * `ingest`: [`Hub::ingest_frame`] on every frame: decode, store, model;
//! * `ingest + viewer`: the same with a viewer subscribed to the session (live
//!   tracker, batch JSON; the viewer's channel drained on another thread).
//!
//! Each configuration starts with a fresh hub. Events per second per core are
//! events over the ingesting thread's CPU time; bytes per event retained are the
//! store's (blocks, open block and checkpoints) over the events it holds.
//!
//! Knobs: `LOOPTRACE_BENCH_ROUNDS` (default 7), `LOOPTRACE_BENCH_REQUESTS` (per
//! connection for the recorded load, default 8000).

use looptrace_bench::{env_num, Summary};
use looptrace_collector::hub::{Hub, HubConfig, Source};
use looptrace_wire::{frame_type, EventsReader, FrameType, RecordingReader};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn thread_cpu() -> Duration {
    // SAFETY: a zeroed timespec is a valid out-parameter.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Records mini-redis under load; returns its frames (header first).
fn record(requests: usize) -> Vec<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!("looptrace-ingest-{}", std::process::id()));
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
    let _ = std::fs::remove_dir_all(&dir);
    frames
}

struct Run {
    events: u64,
    cpu: Duration,
    bytes_per_event: f64,
}

fn decode(frames: &[Vec<u8>]) -> Run {
    let t = thread_cpu();
    let mut events = 0;
    for f in frames {
        if frame_type(f) == Ok(FrameType::Events) {
            for e in EventsReader::new(f).expect("events frame") {
                std::hint::black_box(e.expect("decodes"));
                events += 1;
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

fn main() {
    let rounds: usize = env_num("LOOPTRACE_BENCH_ROUNDS", 7);
    let requests: usize = env_num("LOOPTRACE_BENCH_REQUESTS", 8000);
    let frames = record(requests);
    let bytes: usize = frames.iter().map(Vec::len).sum();
    println!(
        "ingest benchmark: a recording of mini-redis under load, {} frames, {:.1} MB, {rounds} rounds",
        frames.len(),
        bytes as f64 / 1e6
    );
    let names = ["decode", "ingest", "ingest + viewer"];
    let mut runs: Vec<Vec<Run>> = (0..names.len()).map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for k in 0..names.len() {
            let i = (k + round) % names.len();
            let r = match i {
                0 => decode(&frames),
                1 => ingest(&frames, false),
                _ => ingest(&frames, true),
            };
            runs[i].push(r);
        }
    }
    println!();
    println!("| path | events | M events/s per core | ns per event | bytes per event retained |");
    println!("|---|---|---|---|---|");
    for (i, name) in names.iter().enumerate() {
        let rs = &runs[i];
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
    println!();
    println!("Spread: [min..max] over rounds; CPU of the ingesting thread only (a viewer's own thread drains the channel).");
}

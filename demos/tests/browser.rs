//! Drives the browser timeline in real headless Chromium (Playwright, `web/tests`):
//! a replay of the hello demo's recording, a live session, and the teaching
//! demos' recordings (screenshots of each for docs/teaching.md).
//!
//! Needs Node.js and Debian's `chromium` (`.ci/run` installs it); the npm packages
//! are installed into `web/` when missing.

use looptrace_collector::embedded::Embedded;
use looptrace_collector::hub::{Hub, HubConfig};
use looptrace_collector::replay::ReplayControl;
use looptrace_collector::server::{AppState, ServerConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn ensure_npm_packages(web: &Path) {
    if web.join("node_modules/playwright-core").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(web)
        .status()
        .expect("npm runs (Node.js is needed for the browser tests)");
    assert!(status.success(), "npm ci in web/ failed");
}

/// Serves `hub`'s viewer API on a thread and runtime of its own.
fn serve_hub(hub: Arc<Hub>) -> SocketAddr {
    looptrace_test_support::serve(AppState {
        hub,
        config: Arc::new(ServerConfig::default()),
        replay: None,
    })
}

/// Serves a replay of `file` at 10x.
fn serve_replay(file: &Path) -> SocketAddr {
    let rec = looptrace_wire::RawRecording::open(file).unwrap();
    looptrace_test_support::serve_replay(
        Hub::new(HubConfig::default()),
        rec,
        ReplayControl::new(10.0, false),
    )
}

/// Demos shown in the browser test and screenshotted for the lesson plan.
const SCREENSHOT_DEMOS: [&str; 6] = [
    "sequential-vs-concurrent",
    "blocking",
    "cpu-yield",
    "producer-consumer",
    "work-stealing",
    "lost-waker",
];

/// Records each demo at its real speed (all at once), loads every recording into
/// one hub as a session of its own, and serves it: the page picks one with
/// `?session=N`. Returns the address and each demo's session.
fn serve_demos(dir: &Path) -> (SocketAddr, std::collections::BTreeMap<String, u64>) {
    use looptrace_collector::hub::Source;
    let start = |name: &str| {
        let path = dir.join(format!("{name}.ltrace"));
        let child = Command::new(env!("CARGO_BIN_EXE_demos"))
            .args([
                name,
                "--exit",
                "--quiet",
                "--no-tui",
                "--serve",
                "127.0.0.1:0",
                "--record",
            ])
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        (name.to_string(), path, child)
    };
    // The demos that mostly wait run together; the two that keep the CPUs busy run
    // one at a time meanwhile, so their polls are not stretched by each other.
    let (busy, waiting): (Vec<&str>, Vec<&str>) = SCREENSHOT_DEMOS
        .iter()
        .partition(|n| matches!(**n, "cpu-yield" | "work-stealing"));
    let mut runs: Vec<_> = waiting.into_iter().map(start).collect();
    for name in busy {
        let (name, path, mut child) = start(name);
        assert!(child.wait().unwrap().success(), "{name} ran");
        runs.push((name, path, child));
    }
    let hub = Hub::new(HubConfig::default());
    let mut ids = std::collections::BTreeMap::new();
    for (name, path, mut child) in runs {
        assert!(child.wait().unwrap().success(), "{name} ran");
        let rec = looptrace_wire::Recording::open(&path).unwrap();
        let mut frame = Vec::new();
        looptrace_wire::encode_header(&rec.header, &mut frame);
        let id = hub.open(rec.header.clone(), &frame, Source::Replay);
        // The demo's lesson, as a finished replay shows it.
        if let Some(note) = rec.notes.last() {
            hub.set_note(id, note.clone());
        }
        hub.ingest(id, &rec.events);
        hub.close(id);
        ids.insert(name, id);
    }
    (serve_hub(hub), ids)
}

/// A collector whose memory budget (256 KiB) a session of 20 000 idle tasks and
/// 100 000 polls has passed: history evicted, tasks folded.
fn serve_over_budget() -> SocketAddr {
    use looptrace_collector::hub::Source;
    use looptrace_wire::{encode_header, Event, EventKind, Flavor, Header, TaskKind};
    let hub = Hub::new(HubConfig {
        memory_budget: 256 << 10,
        ..HubConfig::default()
    });
    let header = Header {
        process_name: "leaky".into(),
        pid: 7,
        flavor: Flavor::CurrentThread,
        workers: 1,
        clock_origin_unix_ns: 0,
    };
    let mut frame = Vec::new();
    encode_header(&header, &mut frame);
    let id = hub.open(header, &frame, Source::Live);
    let ev = |ts: u64, kind: EventKind| Event {
        ts_ns: ts,
        thread: 0,
        kind,
    };
    let mut events = Vec::new();
    for t in 1..=20_000u64 {
        events.push(ev(
            t * 1_000,
            EventKind::Spawn(Box::new(looptrace_wire::Spawn {
                task: t,
                kind: TaskKind::Task,
                name: None,
                location: "app/src/conn.rs:12:5".into(),
                parent: None,
                size_bytes: None,
            })),
        ));
    }
    for i in 0..100_000u64 {
        let (task, ts) = (1 + i % 20_000, 20_000_000 + i * 1_000);
        events.push(ev(ts, EventKind::PollStart { task }));
        events.push(ev(
            ts + 500,
            EventKind::PollEnd {
                task,
                ready: false,
                clones: 1,
                drops: 0,
                context: None,
            },
        ));
    }
    for chunk in events.chunks(4096) {
        hub.ingest(id, chunk);
    }
    serve_hub(hub)
}

/// A live program: a new task every 250 ms, and one that blocks its worker.
fn live_program(stop: Arc<AtomicBool>) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let (sink, handle) =
        Embedded::serve("127.0.0.1:0".parse().unwrap(), HubConfig::default()).unwrap();
    let addr = handle.addr();
    // A note set before the session opens, then replaced every 2 s.
    handle.set_note(
        "about this program",
        "It spawns a task every 250 ms.\nOne in eight blocks its worker.",
    );
    let t = std::thread::spawn(move || {
        let rt = looptrace::Builder::new_multi_thread()
            .worker_threads(2)
            .from_env(false)
            .process_name("live test")
            .sink(sink)
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                if n % 8 == 0 {
                    handle.set_note(
                        "so far",
                        format!("{n} tasks spawned.\nEach is a `tokio::spawn`."),
                    );
                    looptrace::mark(format!("{n} tasks"));
                }
                tokio::task::Builder::new()
                    .name(&format!("tick-{n}"))
                    .spawn(async {
                        for _ in 0..4 {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    })
                    .unwrap();
                if n % 8 == 4 {
                    tokio::task::Builder::new()
                        .name("blocker")
                        .spawn(async { std::thread::sleep(Duration::from_millis(40)) })
                        .unwrap();
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        rt.shutdown();
    });
    (addr, t)
}

#[test]
fn the_timeline_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "the browser tests need Chromium at {chromium} (apt-get install -y chromium, as .ci/run does)");
    let web = repo().join("web");
    ensure_npm_packages(&web);

    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("hello.ltrace");
    let out = Command::new(env!("CARGO_BIN_EXE_demos"))
        .args(["hello", "--exit", "--quiet", "--record"])
        .arg(&rec)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replay_addr = serve_replay(&rec);
    let (demos_addr, demo_sessions) = serve_demos(dir.path());
    let demo_sessions = serde_json::to_string(&demo_sessions).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (live_addr, live) = live_program(stop.clone());
    let budget_addr = serve_over_budget();

    let artifacts = repo().join("artifacts");
    let status = Command::new("node")
        .args(["--test", "--test-concurrency=1", "tests/"])
        .current_dir(&web)
        .env("LOOPTRACE_REPLAY_URL", format!("http://{replay_addr}/"))
        .env("LOOPTRACE_LIVE_URL", format!("http://{live_addr}/"))
        .env("LOOPTRACE_BUDGET_URL", format!("http://{budget_addr}/"))
        .env("LOOPTRACE_DEMOS_URL", format!("http://{demos_addr}/"))
        .env("LOOPTRACE_DEMO_SESSIONS", demo_sessions)
        .env("LOOPTRACE_DEMOS_BIN", env!("CARGO_BIN_EXE_demos"))
        .env("LOOPTRACE_SERVICE_BIN", env!("CARGO_BIN_EXE_http-service"))
        .env("LOOPTRACE_ARTIFACTS", &artifacts)
        .env("CHROMIUM", &chromium)
        .status()
        .expect("node runs");
    stop.store(true, Ordering::Relaxed);
    live.join().unwrap();
    assert!(
        status.success(),
        "browser tests failed (their output is above)"
    );
    assert!(
        artifacts.join("hello-timeline.png").exists(),
        "the screenshot artifact is written"
    );
    for name in SCREENSHOT_DEMOS {
        assert!(
            artifacts.join(format!("demo-{name}.png")).exists(),
            "the {name} screenshot is written"
        );
    }
}

/// The timeline benchmark (not part of the suite: run it with
/// `cargo test -p demos --release --test browser -- --ignored timeline_benchmark --nocapture`).
#[test]
#[ignore]
fn timeline_benchmark() {
    use looptrace_collector::hub::Source;
    use looptrace_wire::{
        encode_header, Event, EventKind, Flavor, Header, TaskKind, ThreadRole, WakeOp, WakeSource,
    };
    let web = repo().join("web");
    ensure_npm_packages(&web);
    let hub = Hub::new(HubConfig {
        memory_budget: 2 << 30,
        ..HubConfig::default()
    });
    let header = Header {
        process_name: "synthetic".into(),
        pid: 1,
        flavor: Flavor::MultiThread,
        workers: 2,
        clock_origin_unix_ns: 0,
    };
    let mut frame = Vec::new();
    encode_header(&header, &mut frame);
    let id = hub.open(header, &frame, Source::Live);
    // 200 tasks polled 5000 times each over 10 s on two workers: 1M poll slices.
    let ev = |ts: u64, thread: u32, kind: EventKind| Event {
        ts_ns: ts,
        thread,
        kind,
    };
    let mut batch = vec![
        ev(
            0,
            0,
            EventKind::Thread {
                role: ThreadRole::Worker(0),
                name: "w0".into(),
            },
        ),
        ev(
            0,
            1,
            EventKind::Thread {
                role: ThreadRole::Worker(1),
                name: "w1".into(),
            },
        ),
    ];
    for t in 1..=200u64 {
        batch.push(ev(
            t,
            0,
            EventKind::Spawn(Box::new(looptrace_wire::Spawn {
                task: t,
                kind: TaskKind::Task,
                name: Some(format!("worker-task-{t}")),
                location: "bench.rs:1:1".into(),
                parent: None,
                size_bytes: None,
            })),
        ));
    }
    let polls = 1_000_000u64;
    let step = 10_000_000_000 / (polls / 2); // two workers
    let mut total = 0;
    for i in 0..polls {
        let thread = (i % 2) as u32;
        let task = 1 + (i % 200);
        let ts = 1_000 + (i / 2) * step;
        batch.push(ev(ts, thread, EventKind::PollStart { task }));
        batch.push(ev(
            ts + step / 2,
            thread,
            EventKind::Waker {
                task: 1 + (task % 200),
                op: WakeOp::WakeByRef,
                by: WakeSource::Task(task),
            },
        ));
        batch.push(ev(
            ts + step * 3 / 4,
            thread,
            EventKind::PollEnd {
                task,
                ready: false,
                clones: 0,
                drops: 0,
                context: None,
            },
        ));
        if batch.len() >= 30_000 {
            total += batch.len();
            hub.ingest(id, &std::mem::take(&mut batch));
        }
    }
    total += batch.len();
    hub.ingest(id, &batch);
    println!("synthetic session: {total} events, 1M poll slices");
    let addr = serve_hub(hub.clone());
    // Live probes: a task named after the wall time it reaches the collector.
    let stop = Arc::new(AtomicBool::new(false));
    let probe_stop = stop.clone();
    let probes = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let mut n = 0u64;
        while !probe_stop.load(Ordering::Relaxed) {
            n += 1;
            let ts = 10_100_000_000 + started.elapsed().as_nanos() as u64;
            let task = 100_000 + n;
            let sent = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis();
            hub.ingest(
                id,
                &[
                    ev(
                        ts,
                        0,
                        EventKind::Spawn(Box::new(looptrace_wire::Spawn {
                            task,
                            kind: TaskKind::Task,
                            name: Some(format!("probe-{sent}")),
                            location: "probe.rs:1:1".into(),
                            parent: None,
                            size_bytes: None,
                        })),
                    ),
                    ev(ts + 1000, 0, EventKind::PollStart { task }),
                    ev(
                        ts + 50_000,
                        0,
                        EventKind::PollEnd {
                            task,
                            ready: true,
                            clones: 0,
                            drops: 0,
                            context: None,
                        },
                    ),
                ],
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let status = Command::new("node")
        .arg("bench/timeline.mjs")
        .current_dir(&web)
        .env("LOOPTRACE_BENCH_URL", format!("http://{addr}/"))
        .status()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    probes.join().unwrap();
    assert!(status.success());
}

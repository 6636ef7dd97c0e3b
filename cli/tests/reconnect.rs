//! A collector killed (SIGKILL) under load and started again: the app reconnects,
//! sends again what the dead one had not acknowledged, and opens the new session
//! with its threads and live tasks. Every event the app produced is in one of the
//! two recordings, or counted as not delivered.

use looptrace_wire::{EventKind, Recording, TaskState, ThreadRole};
use std::collections::HashSet;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn collector(port: u16, dir: &std::path::Path) -> Child {
    looptrace_test_support::looptrace_serve(
        std::path::Path::new(env!("CARGO_BIN_EXE_looptrace")),
        ([127, 0, 0, 1], port).into(),
        [std::ffi::OsStr::new("--record"), dir.as_os_str()],
    )
}

fn recording_in(dir: &std::path::Path) -> Recording {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    Recording::open(&files[0]).unwrap()
}

#[test]
fn a_collector_killed_and_restarted_loses_nothing_silently() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    std::fs::create_dir_all(&first).unwrap();
    std::fs::create_dir_all(&second).unwrap();
    let truth = dir.path().join("truth.ltrace");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c1 = collector(port, &first);
    let rt = looptrace::Builder::new_multi_thread()
        .worker_threads(2)
        .from_env(false)
        .collector(format!("127.0.0.1:{port}"))
        // What the app produced, to check against.
        .record(&truth)
        .buffer_capacity(1 << 20)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = rt.handle().clone();
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            handle.block_on(async move {
                // Tasks that live across the restart.
                let keepers: Vec<_> = (0..4)
                    .map(|i| {
                        let stop = stop.clone();
                        tokio::task::Builder::new()
                            .name(&format!("keeper {i}"))
                            .spawn(async move {
                                while !stop.load(Ordering::Relaxed) {
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                }
                            })
                            .unwrap()
                    })
                    .collect();
                // Requests coming and going.
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let hs: Vec<_> = (0..20)
                        .map(|_| {
                            tokio::spawn(async {
                                tokio::task::yield_now().await;
                                tokio::time::sleep(Duration::from_millis(1)).await;
                            })
                        })
                        .collect();
                    for h in hs {
                        h.await.unwrap();
                    }
                    n += 20;
                }
                for k in keepers {
                    k.await.unwrap();
                }
                n
            })
        })
    };
    std::thread::sleep(Duration::from_millis(600));
    c1.kill().unwrap(); // SIGKILL
    c1.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut c2 = collector(port, &second);
    std::thread::sleep(Duration::from_millis(900));
    stop.store(true, Ordering::Relaxed);
    let requests = load.join().unwrap();
    let report = rt.shutdown();
    c2.kill().unwrap();
    c2.wait().unwrap();
    assert!(requests > 100, "{requests} requests");

    let truth = Recording::open(&truth).unwrap();
    let (r1, r2) = (recording_in(&first), recording_in(&second));
    assert!(r1.events.len() > 100 && r2.events.len() > 100);
    // The same process, and the second session knows it continues the first.
    assert_eq!(
        (r1.header.pid, r1.header.clock_origin_unix_ns),
        (r2.header.pid, r2.header.clock_origin_unix_ns)
    );
    let key = |e: &looptrace_wire::Event| format!("{e:?}");
    let received: HashSet<String> = r1.events.iter().chain(&r2.events).map(key).collect();
    let missing = truth
        .events
        .iter()
        .filter(|e| !received.contains(&key(e)))
        .count() as u64;
    assert!(
        missing <= report.dropped_unsent,
        "{missing} events of {} in neither recording, {} counted as not delivered",
        truth.events.len(),
        report.dropped_unsent
    );
    assert_eq!(
        report.dropped_unsent, 0,
        "a short outage loses nothing: {report:?}"
    );
    // The second session stands on its own: its workers, and the tasks that lived
    // across the restart with their names and where they stood.
    let workers: HashSet<u32> = r2
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Thread {
                role: ThreadRole::Worker(i),
                ..
            } => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(workers, HashSet::from([0, 1]));
    let keepers: Vec<u64> = r2
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Spawn(s) if s.name.as_ref().is_some_and(|n| n.starts_with("keeper")) => {
                Some(s.task)
            }
            _ => None,
        })
        .collect();
    assert_eq!(keepers.len(), 4, "the live tasks restated");
    for k in keepers {
        assert!(
            r2.events.iter().any(|e| matches!(
                e.kind,
                EventKind::TaskState { task, state: TaskState::Idle | TaskState::Scheduled | TaskState::Running } if task == k
            )),
            "where keeper {k} stood"
        );
    }
}

#[test]
fn a_session_says_which_one_of_the_same_process_it_continues() {
    use looptrace_collector::hub::{Hub, HubConfig, Source};
    let hub = Hub::new(HubConfig::default());
    let h = looptrace_test_support::header("app");
    let frame = looptrace_test_support::header_frame("app");
    let a = hub.open(h.clone(), &frame, Source::Live);
    let other = looptrace_wire::Header {
        pid: 43,
        ..h.clone()
    };
    let b = hub.open(other, &frame, Source::Live);
    let c = hub.open(h, &frame, Source::Live);
    let continues = |id| hub.with_session(id, |s| s.continues).unwrap();
    assert_eq!(
        (continues(a), continues(b), continues(c)),
        (None, None, Some(a))
    );
    let listed = hub.sessions();
    assert_eq!(listed[2].continues, Some(a));
}

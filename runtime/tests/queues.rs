//! The scheduler's queues, sampled: tasks spawned on one worker wait in its
//! local run queue while it is busy, and the other worker steals them.

use looptrace_wire::{EventKind, Recording};
use std::sync::Mutex;
use std::time::Duration;

/// One capture session per process at a time.
static TURN: Mutex<()> = Mutex::new(());

#[test]
fn a_busy_workers_queue_fills_and_the_other_worker_steals_from_it() {
    busy_worker(Some(Duration::from_millis(1)), 16);
}

/// As sampled by default: at each round of the shipping thread (here every
/// 10 ms, as the demos ship: the other worker steals the queue empty within
/// some 25 ms, which the default 50 ms rounds may miss whole).
#[test]
fn queues_are_sampled_by_default_at_each_shipping_round() {
    busy_worker(None, 1);
}

/// A worker busy for 100 ms with 64 tasks in its queue, sampled `every` (or as
/// by default): the queue, at least `deepest_seen` deep, and the other
/// worker's steals show.
fn busy_worker(every: Option<Duration>, deepest_seen: u32) {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queues.ltrace");
    let mut b = looptrace::Builder::new_multi_thread()
        .worker_threads(2)
        .from_env(false);
    if every.is_some() {
        b = b.sample_queues(every);
    } else {
        b = b.flush_interval(Duration::from_millis(10));
    }
    let rt = b.record(&path).build().unwrap();
    rt.block_on(async {
        tokio::spawn(async {
            // 64 tasks into this worker's queue, then it blocks for 100 ms.
            for _ in 0..64 {
                tokio::spawn(async { std::thread::sleep(Duration::from_micros(300)) });
            }
            std::thread::sleep(Duration::from_millis(100));
        })
        .await
        .unwrap();
        // Sampled by the shipping thread: no thread of its own (each sample
        // would cost that thread's wake-up).
        #[cfg(target_os = "linux")]
        {
            let names: Vec<String> = std::fs::read_dir("/proc/self/task")
                .unwrap()
                .flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .map(|n| n.trim().to_string())
                .collect();
            assert!(names.iter().any(|n| n == "looptrace-ship"), "{names:?}");
            assert_eq!(
                names.iter().filter(|n| n.starts_with("looptrace")).count(),
                1,
                "{names:?}"
            );
        }
    });
    rt.shutdown();
    let rec = Recording::open(&path).unwrap();
    let samples: Vec<(Vec<u32>, Vec<u64>, u32)> = rec
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Queues(q) => Some((q.local.clone(), q.steals.clone(), q.injection)),
            _ => None,
        })
        .collect();
    assert!(!samples.is_empty(), "queues sampled");
    assert!(samples.iter().all(|(l, s, _)| l.len() == 2 && s.len() == 2));
    // The deepest queue seen, and on which worker.
    let (busy, deepest) = samples
        .iter()
        .flat_map(|(l, _, _)| l.iter().copied().enumerate())
        .max_by_key(|(_, d)| *d)
        .unwrap();
    assert!(
        deepest >= deepest_seen,
        "tasks waited in worker {busy}'s queue: {samples:?}"
    );
    let (_, last_steals, _) = samples.last().unwrap();
    assert!(
        last_steals[1 - busy] > 0,
        "the other worker stole from it: {samples:?}"
    );
    // Only changes are sent: no two samples in a row are the same (the
    // injection queue counts: a change there alone is a change).
    assert!(samples.windows(2).all(|w| w[0] != w[1]));
}

#[test]
fn no_samples_when_asked_for_none() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.ltrace");
    let rt = looptrace::Builder::new_multi_thread()
        .worker_threads(2)
        .from_env(false)
        .sample_queues(None)
        .record(&path)
        .build()
        .unwrap();
    rt.block_on(async {
        for _ in 0..8 {
            tokio::spawn(async {}).await.unwrap();
        }
    });
    rt.shutdown();
    let rec = Recording::open(&path).unwrap();
    assert!(!rec
        .events
        .iter()
        .any(|e| matches!(e.kind, EventKind::Queues(_))));
}

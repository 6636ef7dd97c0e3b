//! The hello demo's recording, on both schedulers, says exactly what the demo does.

use looptrace_wire::{EventKind, Recording, WakeOp, WakeSource};
use std::process::Command;
use std::time::{Duration, Instant};

fn record(flavor: &str) -> (Recording, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hello.ltrace");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_demos"))
        .args(["hello", "--exit", "--flavor", flavor, "--record"])
        .arg(&path)
        .output()
        .expect("demos runs");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("wake     Bob woken by the timer"),
        "live log:\n{stdout}"
    );
    let rec = Recording::open(&path).unwrap();
    assert!(rec.damage.is_empty(), "{:?}", rec.damage);
    (rec, took)
}

fn check(flavor: &str) {
    let (rec, took) = record(flavor);
    assert!(
        took < Duration::from_millis(4500),
        "the sleeps overlap: {took:?}, not 6 s"
    );
    let mut done = Vec::new();
    for name in ["Alice", "Bob", "Charlie"] {
        let ids: Vec<u64> = rec
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Spawn(s) if s.name.as_deref() == Some(name) => Some(s.task),
                _ => None,
            })
            .collect();
        assert_eq!(ids.len(), 1, "exactly one task named {name}");
        let id = ids[0];
        let mine: Vec<_> = rec
            .events
            .iter()
            .filter(|e| e.kind.task() == Some(id))
            .collect();
        let polls: Vec<_> = mine
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::PollEnd { ready, .. } => Some(ready),
                _ => None,
            })
            .collect();
        assert_eq!(
            polls,
            [false, true],
            "{name}: first poll Pending, second Ready"
        );
        let wakes: Vec<_> = mine
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::Waker {
                    op: WakeOp::Wake | WakeOp::WakeByRef,
                    by,
                    ..
                } => Some((e.ts_ns, by)),
                _ => None,
            })
            .collect();
        assert_eq!(wakes.len(), 1, "{name} woken once: {wakes:?}");
        assert_eq!(wakes[0].1, WakeSource::Timer, "{name}");
        // The wake comes between the two polls.
        let starts: Vec<u64> = mine
            .iter()
            .filter(|e| matches!(e.kind, EventKind::PollStart { .. }))
            .map(|e| e.ts_ns)
            .collect();
        assert!(
            starts[0] < wakes[0].0 && wakes[0].0 <= starts[1],
            "{name}: {starts:?} {wakes:?}"
        );
        let end = mine
            .iter()
            .find(|e| matches!(e.kind, EventKind::Terminate { .. }))
            .expect("terminated")
            .ts_ns;
        done.push((end, name));
    }
    done.sort();
    let order: Vec<_> = done.iter().map(|d| d.1).collect();
    assert_eq!(order, ["Bob", "Alice", "Charlie"]);
    let first_spawn = rec
        .events
        .iter()
        .find(|e| matches!(e.kind, EventKind::Spawn(_)))
        .unwrap()
        .ts_ns;
    for ((end, name), secs) in done.iter().zip([1u64, 2, 3]) {
        let at = end - first_spawn;
        let want = secs * 1_000_000_000;
        assert!(
            at >= want && at < want + 200_000_000,
            "{name} finished at {at} ns, expected about {secs} s"
        );
    }
    let total = done[2].0 - first_spawn;
    assert!(
        total < 3_300_000_000,
        "whole run {total} ns: about 3 s, not 6"
    );
}

#[test]
fn hello_on_current_thread() {
    check("current-thread");
}

#[test]
fn hello_on_multi_thread() {
    check("multi-thread");
}

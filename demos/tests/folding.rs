//! A task's own waker clones and drops during its poll are folded into the poll's
//! end. On every demo, the model must read exactly the same from the folded stream
//! as from every waker operation as its own event: lost-waker warnings, live wakers,
//! wakes by source.

use demos::trace::model_of;
use looptrace_collector::model::Model;
use looptrace_wire::{Event, EventKind, Recording, WakeOp, WakeSource};
use std::collections::{BTreeMap, HashMap};
use std::process::Command;

/// What the hot path does, applied to a recording with every waker operation: a
/// task's clones and drops of its own waker inside its poll (on the polling thread)
/// become counts on that poll's end.
fn fold(events: &[Event]) -> Vec<Event> {
    let mut polling: HashMap<u32, (u64, u32, u32)> = HashMap::new();
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        match &e.kind {
            EventKind::PollStart { task } => {
                polling.insert(e.thread, (*task, 0, 0));
            }
            EventKind::Waker {
                task,
                op: op @ (WakeOp::Clone | WakeOp::Drop),
                by: WakeSource::Task(by),
            } if by == task => {
                if let Some(p) = polling.get_mut(&e.thread).filter(|p| p.0 == *task) {
                    match op {
                        WakeOp::Clone => p.1 += 1,
                        _ => p.2 += 1,
                    }
                    continue;
                }
            }
            EventKind::PollEnd {
                task,
                ready,
                clones: 0,
                drops: 0,
            } => {
                let (clones, drops) = match polling.remove(&e.thread) {
                    Some((t, c, d)) if t == *task => (c, d),
                    _ => (0, 0),
                };
                out.push(Event {
                    kind: EventKind::PollEnd {
                        task: *task,
                        ready: *ready,
                        clones,
                        drops,
                    },
                    ..e.clone()
                });
                continue;
            }
            _ => {}
        }
        out.push(e.clone());
    }
    out
}

/// What the model says about wakers and wakes, per task name and id.
fn reading(m: &Model) -> BTreeMap<u64, String> {
    let mut r = BTreeMap::new();
    for t in m.tasks.values() {
        r.insert(
            t.id,
            format!(
                "{}: live wakers {}, wakes {:?}, warnings {}",
                t.name, t.live_wakers, t.wakes, t.warnings
            ),
        );
    }
    for w in &m.warnings {
        r.insert(
            u64::MAX - w.id as u64,
            format!("{:?} on {:?} x{}", w.kind, w.task_name, w.count),
        );
    }
    r
}

#[test]
fn every_demo_reads_the_same_folded() {
    let dir = tempfile::tempdir().unwrap();
    let mut folded_any = 0;
    for demo in demos::catalog() {
        let path = dir.path().join(format!("{}.ltrace", demo.name));
        let out = Command::new(env!("CARGO_BIN_EXE_demos"))
            .args([demo.name, "--exit", "--quiet", "--no-tui", "--verbose"])
            .args(["--serve", "127.0.0.1:0", "--speed", "4", "--record"])
            .arg(&path)
            .output()
            .expect("demos runs");
        assert!(
            out.status.success(),
            "{}: {}",
            demo.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let rec = Recording::open(&path).unwrap();
        let folded = fold(&rec.events);
        folded_any += rec.events.len() - folded.len();
        let every = model_of(rec.header.clone(), &rec.events);
        let fewer = model_of(rec.header.clone(), &folded);
        assert_eq!(reading(&every), reading(&fewer), "{}", demo.name);
    }
    assert!(
        folded_any > 200,
        "only {folded_any} waker operations folded"
    );
}

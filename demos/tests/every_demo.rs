//! Every demo, recorded once with every waker operation, read two ways that must
//! agree:
//!
//! * A task's own waker clones and drops during its poll are folded into the
//!   poll's end: the model reads exactly the same from the folded stream as from
//!   every waker operation as its own event (lost-waker warnings, live wakers,
//!   wakes by source).
//! * The Chrome export and the timeline's windows come from one derivation of task
//!   states: they show the same intervals, and the same wakes.

mod support;

use demos::trace::model_of;
use looptrace_collector::hub::{Hub, HubConfig, Source, WindowReply};
use looptrace_collector::model::Model;
use looptrace_collector::Session;
use looptrace_wire::{encode_header, Event, EventKind, Recording, TaskState, WakeOp, WakeSource};
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

/// Each demo's recording (at four times its speed, every waker operation kept).
fn recordings() -> &'static [(&'static str, Recording)] {
    static RECORDINGS: OnceLock<Vec<(&'static str, Recording)>> = OnceLock::new();
    RECORDINGS.get_or_init(|| {
        demos::catalog()
            .iter()
            .map(|demo| {
                (
                    demo.name,
                    support::record_demo_with(demo.name, &["--verbose"]),
                )
            })
            .collect()
    })
}

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
                context,
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
                        context: context.clone(),
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
    let mut folded_any = 0;
    for (name, rec) in recordings() {
        let folded = fold(&rec.events);
        folded_any += rec.events.len() - folded.len();
        let every = model_of(rec.header.clone(), &rec.events);
        let fewer = model_of(rec.header.clone(), &folded);
        assert_eq!(reading(&every), reading(&fewer), "{name}");
    }
    assert!(
        folded_any > 200,
        "only {folded_any} waker operations folded"
    );
}

/// A stretch of a task's lane: task, state, start and end (ns).
type Stretch = (u64, TaskState, u64, u64);

/// The task lanes of a Chrome export, and its wake arrows (flows).
fn chrome_lanes(rec: &Recording) -> (Vec<Stretch>, usize) {
    let session = Session::from_events(rec.header.clone(), rec.events.clone());
    let mut out = Vec::new();
    looptrace_collector::export::write_chrome(&session, &mut out).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let ns = |us: &serde_json::Value| (us.as_f64().unwrap() * 1000.0).round() as u64;
    let mut lanes = Vec::new();
    let mut flows = 0;
    for e in doc["traceEvents"].as_array().unwrap() {
        if e["ph"] == "f" {
            flows += 1;
        }
        if e["ph"] != "X" || e["pid"] != 2 {
            continue;
        }
        let state = match e["cat"].as_str().unwrap() {
            "poll" | "blocking" => TaskState::Running,
            "scheduled" => TaskState::Scheduled,
            "idle" => TaskState::Idle,
            other => panic!("a task lane slice of category {other}"),
        };
        let start = ns(&e["ts"]);
        lanes.push((
            e["tid"].as_u64().unwrap(),
            state,
            start,
            start + ns(&e["dur"]),
        ));
    }
    lanes.sort_unstable_by_key(|s| (s.0, s.2, s.3));
    (lanes, flows)
}

/// The same, from a collector's window over the whole recording at full detail,
/// with each task's time in each state as the collector's model counts it.
fn window_lanes(rec: &Recording) -> (Vec<Stretch>, usize) {
    let hub = Hub::new(HubConfig::default());
    let mut frame = Vec::new();
    encode_header(&rec.header, &mut frame);
    let id = hub.open(rec.header.clone(), &frame, Source::Replay);
    hub.ingest(id, &rec.events);
    let Some(WindowReply::Full(w)) = hub.window(id, 0, u64::MAX, usize::MAX, 1) else {
        panic!("a full window")
    };
    let mut lanes: Vec<Stretch> = w
        .intervals
        .iter()
        .map(|i| (i.task, i.state, i.start_ns, i.end_ns))
        .collect();
    lanes.sort_unstable_by_key(|s| (s.0, s.2, s.3));
    let arrows = w.wakes.iter().filter(|a| a.polled_ns.is_some()).count();
    // The model's totals are the sums of the same intervals.
    let mut sums: BTreeMap<u64, (u64, u64, u64)> = BTreeMap::new();
    for &(task, state, start, end) in &lanes {
        let s = sums.entry(task).or_default();
        match state {
            TaskState::Running => s.0 += end - start,
            TaskState::Scheduled => s.1 += end - start,
            TaskState::Idle => s.2 += end - start,
            TaskState::Done => panic!("a done interval"),
        }
    }
    let model = model_of(rec.header.clone(), &rec.events);
    for t in model.tasks.values() {
        let totals = t.totals_at(w.until_ns);
        let drawn = sums.get(&t.id).copied().unwrap_or_default();
        assert_eq!(
            totals, drawn,
            "task {} ({}): busy, scheduled, idle",
            t.id, t.name
        );
    }
    (lanes, arrows)
}

#[test]
fn the_chrome_export_shows_the_timelines_intervals_for_every_demo() {
    for (name, rec) in recordings() {
        let (chrome, flows) = chrome_lanes(rec);
        let (window, arrows) = window_lanes(rec);
        assert!(window.len() >= 4, "{name}: {} intervals", window.len());
        assert!(
            window.iter().any(|s| s.1 == TaskState::Scheduled),
            "{name}: scheduled time shown"
        );
        if chrome != window {
            let first = chrome
                .iter()
                .zip(&window)
                .position(|(a, b)| a != b)
                .unwrap_or(chrome.len().min(window.len()));
            panic!(
                "{name}: the export and the timeline differ first at stretch {first} of {}/{}: \
                 export {:?}, timeline {:?}",
                chrome.len(),
                window.len(),
                chrome.get(first),
                window.get(first)
            );
        }
        assert_eq!(flows, arrows, "{name}: wake arrows");
    }
}

/// What each demo's lesson says it finds: (kind, task) for every warning that
/// holds, nothing else. Demos whose lesson is the problem (cpu-yield's greedy
/// tasks, mutex's std locks) raise what they show; the others none.
fn expected(demo: &str) -> Option<Vec<(&'static str, &'static str)>> {
    Some(match demo {
        "hello"
        | "sequential-vs-concurrent"
        | "producer-consumer"
        | "echo-server"
        | "timeout-cancel"
        | "join-gather"
        | "work-stealing" => vec![],
        // One blocking poll on the blocker; the heartbeat it kept waiting is the
        // same cause, not a second finding.
        "blocking" => vec![("blocking_poll", "std::thread::sleep")],
        "lost-waker" => vec![("lost_waker", "forgetful")],
        _ => return None,
    })
}

fn findings(rec: &Recording) -> Vec<(&'static str, String)> {
    let m = model_of(rec.header.clone(), &rec.events);
    let mut f: Vec<_> = m
        .findings()
        .map(|w| (w.kind.as_str(), w.task_name.clone().unwrap_or_default()))
        .collect();
    f.sort();
    f
}

#[test]
fn every_demo_warns_exactly_as_its_lesson_says() {
    for (name, rec) in recordings() {
        let Some(want) = expected(name) else { continue };
        let want: Vec<_> = want.iter().map(|(k, t)| (*k, t.to_string())).collect();
        assert_eq!(findings(rec), want, "{name}");
    }
}

#[test]
fn and_on_the_other_scheduler() {
    for demo in demos::catalog() {
        let Some(want) = expected(demo.name) else {
            continue;
        };
        let other = match demo.flavor {
            demos::Flavor::CurrentThread => "multi-thread",
            demos::Flavor::MultiThread => "current-thread",
        };
        // Work-stealing needs two workers; its lesson is about them.
        if demo.name == "work-stealing" {
            continue;
        }
        let rec = support::record_demo_with(demo.name, &["--flavor", other]);
        let want: Vec<_> = want.iter().map(|(k, t)| (*k, t.to_string())).collect();
        assert_eq!(findings(&rec), want, "{} on {other}", demo.name);
    }
}

//! Chrome Trace Event Format (the JSON Perfetto UI and `chrome://tracing` open).
//!
//! Two process groups: *threads* (a track per worker, blocking and other thread:
//! which task each polled, when it was parked) and *tasks* (a track per task:
//! each poll a slice named after the task, the time it waited scheduled or sat
//! idle, its timers). Every wake that led to a poll is a flow arrow from the
//! waker (the waking task's lane, or a short `wake` slice on the waking thread
//! when no task woke it) to that poll.
//!
//! The slices are the timeline's own intervals ([`Tracker`]), so Perfetto shows
//! exactly what the page and the terminal UI show.

use crate::model::timeline::{Interval, Marker, MarkerKind, Out, Tracker, WakeArrow, WorkerSpan};
use crate::session::Session;
use looptrace_wire::{EventKind, TaskKind, TaskState, ThreadRole, WakeSource};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{self, Write};

const THREADS_PID: u64 = 1;
const TASKS_PID: u64 = 2;

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// Turns what the tracker derives into trace events.
struct Chrome<'a> {
    session: &'a Session,
    kinds: HashMap<u64, TaskKind>,
    out: Vec<Value>,
    next_flow: u64,
}

impl Chrome<'_> {
    fn slice(
        &mut self,
        (pid, tid): (u64, u64),
        name: &str,
        cat: &str,
        start: u64,
        end: u64,
        args: Value,
    ) {
        self.out.push(json!({
            "ph": "X", "pid": pid, "tid": tid, "name": name, "cat": cat,
            "ts": us(start), "dur": us(end.saturating_sub(start)), "args": args,
        }));
    }

    fn instant(&mut self, (pid, tid): (u64, u64), name: &str, cat: &str, ts: u64, args: Value) {
        self.out.push(json!({
            "ph": "i", "s": "t", "pid": pid, "tid": tid, "name": name, "cat": cat, "ts": us(ts), "args": args,
        }));
    }

    /// A task's poll slice: its name, or `spawn_blocking <name>` for a closure.
    fn poll_name(&self, task: u64) -> (String, &'static str) {
        let name = self.session.task_name(task);
        match self.kinds.get(&task) {
            Some(TaskKind::Blocking) => (format!("spawn_blocking {name}"), "blocking"),
            _ => (name, "poll"),
        }
    }
}

impl Out for Chrome<'_> {
    fn interval(&mut self, i: Interval) {
        let track = (TASKS_PID, i.task);
        match i.state {
            TaskState::Running => {
                let (name, cat) = self.poll_name(i.task);
                // A poll still open where the data ends has no `ready`.
                let mut args = match i.ready {
                    Some(ready) => json!({"task": i.task, "ready": ready, "thread": i.thread}),
                    None => json!({"task": i.task, "thread": i.thread, "unfinished": true}),
                };
                if let Some(c) = i.context {
                    args["context"] = (*c).into();
                }
                self.slice(track, &name, cat, i.start_ns, i.end_ns, args);
            }
            TaskState::Scheduled => {
                let by = i.woken_by.map(|b| b.to_string());
                self.slice(
                    track,
                    "scheduled",
                    "scheduled",
                    i.start_ns,
                    i.end_ns,
                    json!({"woken_by": by}),
                );
            }
            TaskState::Idle => self.slice(track, "idle", "idle", i.start_ns, i.end_ns, json!({})),
            TaskState::Done => {}
        }
    }

    fn wake(&mut self, a: WakeArrow) {
        // Only wakes that led to a poll have both ends.
        let Some(polled_ns) = a.polled_ns else { return };
        let id = self.next_flow;
        self.next_flow += 1;
        // The arrow starts on the waking task's lane (inside its poll, or just
        // after it for a wake tokio defers to the poll's end), else on a short
        // slice of the waking thread.
        let from = match a.by {
            WakeSource::Task(w) => (TASKS_PID, w),
            by => {
                let label = format!("wake {}", self.session.task_name(a.task));
                let thread = (THREADS_PID, a.thread as u64);
                self.slice(
                    thread,
                    &label,
                    "wake",
                    a.at_ns,
                    a.at_ns + 1,
                    json!({"by": by.to_string(), "task": a.task}),
                );
                thread
            }
        };
        self.out.push(
            json!({"ph": "s", "pid": from.0, "tid": from.1, "name": "wake", "cat": "wake",
            "id": id, "ts": us(a.at_ns), "args": {"by": a.by.to_string()}}),
        );
        self.out.push(
            json!({"ph": "f", "bp": "e", "pid": TASKS_PID, "tid": a.task, "name": "wake",
            "cat": "wake", "id": id, "ts": us(polled_ns)}),
        );
    }

    fn worker(&mut self, s: WorkerSpan) {
        let track = (THREADS_PID, s.thread as u64);
        match s.task {
            Some(task) => {
                let (name, cat) = self.poll_name(task);
                self.slice(
                    track,
                    &name,
                    cat,
                    s.start_ns,
                    s.end_ns,
                    json!({"task": task}),
                );
            }
            None => self.slice(track, "parked", "park", s.start_ns, s.end_ns, json!({})),
        }
    }

    fn marker(&mut self, m: Marker) {
        // The other markers are written from their events, which say more.
        if m.kind == MarkerKind::IoReady {
            self.instant((TASKS_PID, m.task), "io ready", "io", m.at_ns, json!({}));
        }
    }
}

/// Writes `session` as Chrome Trace Event JSON.
pub fn write_chrome(session: &Session, out: &mut impl Write) -> io::Result<()> {
    let mut events: Vec<_> = session.events.iter().collect();
    events.sort_by_key(|e| e.ts_ns);
    let end_ts = events.last().map_or(0, |e| e.ts_ns);
    let mut c = Chrome {
        session,
        kinds: HashMap::new(),
        out: Vec::new(),
        next_flow: 1,
    };
    let h = &session.header;
    for (pid, what, sort) in [(THREADS_PID, "threads", 0), (TASKS_PID, "tasks", 1)] {
        c.out
            .push(json!({"ph": "M", "pid": pid, "name": "process_name",
            "args": {"name": format!("{} (pid {}) {what}", h.process_name, h.pid)}}));
        c.out.push(json!({"ph": "M", "pid": pid, "name": "process_sort_index", "args": {"sort_index": sort}}));
    }
    let mut named_threads = HashMap::new();
    let mut tracker = Tracker::new(0, u64::MAX);
    for e in events {
        let thread = (THREADS_PID, e.thread as u64);
        match &e.kind {
            EventKind::Thread { role, name } => {
                let label = match role {
                    ThreadRole::Worker(i) => format!("worker {i} ({name})"),
                    ThreadRole::Blocking => format!("blocking ({name})"),
                    ThreadRole::External => format!("thread {} ({name})", e.thread),
                };
                let sort = match role {
                    ThreadRole::Worker(i) => *i as u64,
                    _ => 1000 + e.thread as u64,
                };
                if named_threads.insert(e.thread, label.clone()).as_ref() != Some(&label) {
                    c.out.push(json!({"ph": "M", "pid": THREADS_PID, "tid": thread.1, "name": "thread_name", "args": {"name": label}}));
                    c.out.push(json!({"ph": "M", "pid": THREADS_PID, "tid": thread.1, "name": "thread_sort_index", "args": {"sort_index": sort}}));
                }
            }
            EventKind::Spawn(s) => {
                let task = s.task;
                c.kinds.insert(task, s.kind);
                let name = session.task_name(task);
                c.out.push(json!({"ph": "M", "pid": TASKS_PID, "tid": task, "name": "thread_name", "args": {"name": format!("{name} #{task}")}}));
                c.out.push(json!({"ph": "M", "pid": TASKS_PID, "tid": task, "name": "thread_sort_index", "args": {"sort_index": task}}));
                let args = json!({"location": s.location, "parent": s.parent, "kind": s.kind});
                c.instant((TASKS_PID, task), "spawned", "task", e.ts_ns, args);
            }
            EventKind::Terminate { task, outcome } => {
                c.instant(
                    (TASKS_PID, *task),
                    outcome.as_str(),
                    "task",
                    e.ts_ns,
                    json!({}),
                );
            }
            EventKind::TimerArmed { task, deadline_ns } => {
                let args = json!({"deadline_ns": deadline_ns});
                c.instant((TASKS_PID, *task), "timer armed", "timer", e.ts_ns, args);
            }
            EventKind::TimerFired { task } => {
                c.instant(
                    (TASKS_PID, *task),
                    "timer fired",
                    "timer",
                    e.ts_ns,
                    json!({}),
                );
            }
            EventKind::Dropped { count } => {
                let args = json!({"count": count});
                c.instant(thread, "events dropped", "looptrace", e.ts_ns, args);
            }
            EventKind::Mark { label } => {
                // Across the whole trace: Perfetto draws it over every track.
                c.out.push(
                    json!({"ph": "i", "s": "g", "pid": thread.0, "tid": thread.1, "name": label,
                    "cat": "mark", "ts": us(e.ts_ns), "args": {}}),
                );
            }
            _ => {}
        }
        tracker.push(e, &mut c);
    }
    // Close what the recording left open.
    tracker.finish(end_ts, &mut c);
    let doc = json!({
        "traceEvents": c.out,
        "displayTimeUnit": "ns",
        "otherData": {
            "process": h.process_name, "pid": h.pid, "flavor": h.flavor, "workers": h.workers,
            "clock_origin_unix_ns": h.clock_origin_unix_ns, "exporter": "looptrace",
        },
    });
    serde_json::to_writer(&mut *out, &doc).map_err(io::Error::from)?;
    writeln!(out)
}

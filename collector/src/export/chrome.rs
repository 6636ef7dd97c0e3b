//! Chrome Trace Event Format (the JSON Perfetto UI and `chrome://tracing` open).
//!
//! Two process groups: *threads* (a track per worker, blocking and other thread:
//! which task each worker polled, when it was parked) and *tasks* (a track per task:
//! each poll a slice named after the task, the time it waited scheduled, its
//! timers). Every wake is a flow arrow from the waker (the waking task's poll, or a
//! short `wake` slice on the waking thread) to the woken task's next poll.

use crate::session::Session;
use looptrace_wire::{Event, EventKind, ThreadRole, WakeOp, WakeSource};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{self, Write};

const THREADS_PID: u64 = 1;
const TASKS_PID: u64 = 2;
/// Marks a task woken while being polled, scheduled once that poll ends.
const WHEN_POLL_ENDS: u64 = u64::MAX;

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

struct Builder {
    out: Vec<Value>,
    next_flow: u64,
}

impl Builder {
    fn slice(
        &mut self,
        pid: u64,
        tid: u64,
        name: &str,
        cat: &str,
        span: std::ops::Range<u64>,
        args: Value,
    ) {
        self.out.push(json!({
            "ph": "X", "pid": pid, "tid": tid, "name": name, "cat": cat,
            "ts": us(span.start), "dur": us(span.end.saturating_sub(span.start)), "args": args,
        }));
    }

    fn instant(&mut self, pid: u64, tid: u64, name: &str, cat: &str, ts: u64, args: Value) {
        self.out.push(json!({
            "ph": "i", "s": "t", "pid": pid, "tid": tid, "name": name, "cat": cat, "ts": us(ts), "args": args,
        }));
    }

    /// An instant across the whole trace (Perfetto draws it over every track).
    fn global_instant(&mut self, pid: u64, tid: u64, name: &str, cat: &str, ts: u64) {
        self.out.push(json!({"ph": "i", "s": "g", "pid": pid, "tid": tid, "name": name, "cat": cat, "ts": us(ts), "args": {}}));
    }
}

/// Writes `session` as Chrome Trace Event JSON.
pub fn write_chrome(session: &Session, out: &mut impl Write) -> io::Result<()> {
    let mut events: Vec<&Event> = session.events.iter().collect();
    events.sort_by_key(|e| e.ts_ns);
    let end_ts = events.last().map_or(0, |e| e.ts_ns);
    let mut b = Builder {
        out: Vec::new(),
        next_flow: 1,
    };
    let h = &session.header;
    b.out.push(
        json!({"ph": "M", "pid": THREADS_PID, "name": "process_name",
        "args": {"name": format!("{} (pid {}) threads", h.process_name, h.pid)}}),
    );
    b.out
        .push(json!({"ph": "M", "pid": TASKS_PID, "name": "process_name",
        "args": {"name": format!("{} (pid {}) tasks", h.process_name, h.pid)}}));
    b.out.push(json!({"ph": "M", "pid": THREADS_PID, "name": "process_sort_index", "args": {"sort_index": 0}}));
    b.out.push(json!({"ph": "M", "pid": TASKS_PID, "name": "process_sort_index", "args": {"sort_index": 1}}));

    let mut polls: HashMap<u64, (u64, u32)> = HashMap::new();
    let mut parks: HashMap<u32, u64> = HashMap::new();
    let mut blocking: HashMap<u64, (u64, u32)> = HashMap::new();
    // Per task: flows waiting for its next poll, and when it became scheduled.
    let mut flows: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut scheduled: HashMap<u64, u64> = HashMap::new();
    let mut named_threads = HashMap::new();

    for e in events {
        let thread_tid = e.thread as u64;
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
                    b.out.push(json!({"ph": "M", "pid": THREADS_PID, "tid": thread_tid, "name": "thread_name", "args": {"name": label}}));
                    b.out.push(json!({"ph": "M", "pid": THREADS_PID, "tid": thread_tid, "name": "thread_sort_index", "args": {"sort_index": sort}}));
                }
            }
            EventKind::Spawn {
                task,
                location,
                parent,
                kind,
                ..
            } => {
                let name = session.task_name(*task);
                b.out.push(json!({"ph": "M", "pid": TASKS_PID, "tid": task, "name": "thread_name", "args": {"name": format!("{name} #{task}")}}));
                b.out.push(json!({"ph": "M", "pid": TASKS_PID, "tid": task, "name": "thread_sort_index", "args": {"sort_index": task}}));
                b.instant(
                    TASKS_PID,
                    *task,
                    "spawned",
                    "task",
                    e.ts_ns,
                    json!({"location": location, "parent": parent, "kind": format!("{kind:?}")}),
                );
            }
            EventKind::PollStart { task } => {
                polls.insert(*task, (e.ts_ns, e.thread));
                if let Some(since) = scheduled.remove(task).filter(|s| *s != WHEN_POLL_ENDS) {
                    b.slice(
                        TASKS_PID,
                        *task,
                        "scheduled",
                        "scheduled",
                        since..e.ts_ns,
                        json!({}),
                    );
                }
                for id in flows.remove(task).unwrap_or_default() {
                    b.out.push(
                        json!({"ph": "f", "bp": "e", "pid": TASKS_PID, "tid": task, "name": "wake",
                        "cat": "wake", "id": id, "ts": us(e.ts_ns)}),
                    );
                }
            }
            EventKind::PollEnd { task, ready, .. } => {
                if let Some((start, thread)) = polls.remove(task) {
                    let name = session.task_name(*task);
                    let args = json!({"task": task, "ready": ready, "thread": thread});
                    b.slice(
                        TASKS_PID,
                        *task,
                        &name,
                        "poll",
                        start..e.ts_ns,
                        args.clone(),
                    );
                    b.slice(
                        THREADS_PID,
                        thread as u64,
                        &name,
                        "poll",
                        start..e.ts_ns,
                        args,
                    );
                }
                if let Some(s) = scheduled.get_mut(task).filter(|s| **s == WHEN_POLL_ENDS) {
                    *s = e.ts_ns;
                }
            }
            EventKind::Waker {
                task,
                op: WakeOp::Wake | WakeOp::WakeByRef,
                by,
            } => {
                let id = b.next_flow;
                b.next_flow += 1;
                let label = format!("wake {}", session.task_name(*task));
                // Start the arrow inside the waker's poll, or on a short slice of the
                // waking thread.
                let (pid, tid) = match by {
                    WakeSource::Task(w) if polls.contains_key(w) => (TASKS_PID, *w),
                    _ => {
                        b.slice(
                            THREADS_PID,
                            thread_tid,
                            &label,
                            "wake",
                            e.ts_ns..e.ts_ns + 1,
                            json!({"by": by.label(), "task": task}),
                        );
                        (THREADS_PID, thread_tid)
                    }
                };
                b.out.push(
                    json!({"ph": "s", "pid": pid, "tid": tid, "name": "wake", "cat": "wake",
                    "id": id, "ts": us(e.ts_ns), "args": {"by": by.label()}}),
                );
                flows.entry(*task).or_default().push(id);
                // Woken during its own poll: scheduled from when that poll ends.
                let since = if polls.contains_key(task) {
                    WHEN_POLL_ENDS
                } else {
                    e.ts_ns
                };
                scheduled.entry(*task).or_insert(since);
            }
            EventKind::Waker { .. } => {}
            EventKind::Terminate { task, outcome } => {
                b.instant(
                    TASKS_PID,
                    *task,
                    outcome.as_str(),
                    "task",
                    e.ts_ns,
                    json!({}),
                );
            }
            EventKind::Park => {
                parks.insert(e.thread, e.ts_ns);
            }
            EventKind::Unpark => {
                if let Some(start) = parks.remove(&e.thread) {
                    b.slice(
                        THREADS_PID,
                        thread_tid,
                        "parked",
                        "park",
                        start..e.ts_ns,
                        json!({}),
                    );
                }
            }
            EventKind::BlockingStart { task } => {
                blocking.insert(*task, (e.ts_ns, e.thread));
            }
            EventKind::BlockingEnd { task } => {
                if let Some((start, thread)) = blocking.remove(task) {
                    let name = format!("spawn_blocking {}", session.task_name(*task));
                    b.slice(
                        THREADS_PID,
                        thread as u64,
                        &name,
                        "blocking",
                        start..e.ts_ns,
                        json!({"task": task}),
                    );
                    b.slice(
                        TASKS_PID,
                        *task,
                        &name,
                        "blocking",
                        start..e.ts_ns,
                        json!({"task": task}),
                    );
                }
            }
            EventKind::TimerArmed { task, deadline_ns } => {
                b.instant(
                    TASKS_PID,
                    *task,
                    "timer armed",
                    "timer",
                    e.ts_ns,
                    json!({"deadline_ns": deadline_ns}),
                );
            }
            EventKind::TimerFired { task } => {
                b.instant(TASKS_PID, *task, "timer fired", "timer", e.ts_ns, json!({}));
            }
            EventKind::Dropped { count } => {
                b.instant(
                    THREADS_PID,
                    thread_tid,
                    "events dropped",
                    "looptrace",
                    e.ts_ns,
                    json!({"count": count}),
                );
            }
            EventKind::Mark { label } => {
                b.global_instant(THREADS_PID, thread_tid, label, "mark", e.ts_ns)
            }
            // Where a task stood when a stream resumed: no slice of its own.
            EventKind::TaskState { .. } => {}
        }
    }
    // Close what the recording left open.
    for (task, (start, thread)) in polls {
        let name = session.task_name(task);
        b.slice(
            TASKS_PID,
            task,
            &name,
            "poll",
            start..end_ts,
            json!({"unfinished": true}),
        );
        b.slice(
            THREADS_PID,
            thread as u64,
            &name,
            "poll",
            start..end_ts,
            json!({"unfinished": true}),
        );
    }
    for (thread, start) in parks {
        b.slice(
            THREADS_PID,
            thread as u64,
            "parked",
            "park",
            start..end_ts,
            json!({"unfinished": true}),
        );
    }
    let doc = json!({
        "traceEvents": b.out,
        "displayTimeUnit": "ns",
        "otherData": {
            "process": h.process_name, "pid": h.pid, "flavor": h.flavor.as_str(), "workers": h.workers,
            "clock_origin_unix_ns": h.clock_origin_unix_ns, "exporter": "looptrace",
        },
    });
    serde_json::to_writer(&mut *out, &doc).map_err(io::Error::other)?;
    writeln!(out)
}

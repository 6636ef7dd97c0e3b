//! Time windows of a session for viewers: per task state intervals (running,
//! scheduled, idle), per worker which task ran and when it was parked, wake arrows
//! and markers; or, zoomed out, the same aggregated into time buckets.

use super::task::Phase;
use looptrace_wire::{Event, EventKind, TaskId, WakeOp, WakeSource};
use serde::Serialize;
use std::collections::HashMap;

/// A stretch of time a task spent in one phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    pub task: TaskId,
    pub start_ns: u64,
    pub end_ns: u64,
    pub phase: Phase,
    /// Running: the thread polling it, and whether the poll returned Ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// Scheduled: who woke it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub woken_by: Option<String>,
}

/// A wake: from its source, at `at_ns`, to the task's next poll.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WakeArrow {
    pub task: TaskId,
    pub at_ns: u64,
    pub by: String,
    pub thread: u32,
    /// When the woken task was next polled.
    pub polled_ns: Option<u64>,
}

/// What a worker did: polled `task`, or was parked (`task` is None).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerSpan {
    pub thread: u32,
    pub start_ns: u64,
    pub end_ns: u64,
    pub task: Option<TaskId>,
}

/// A point event on a task: `spawn`, `terminate`, `timer_armed`, `timer_fired`,
/// `io_ready`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Marker {
    pub task: TaskId,
    pub at_ns: u64,
    pub kind: &'static str,
}

/// Everything in a time window, at full detail.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Window {
    pub start_ns: u64,
    pub end_ns: u64,
    /// Events up to this time are in; phases still open then were closed here.
    pub until_ns: u64,
    pub intervals: Vec<Interval>,
    pub wakes: Vec<WakeArrow>,
    pub workers: Vec<WorkerSpan>,
    pub markers: Vec<Marker>,
}

#[derive(Debug, Default, Clone)]
struct TaskTrack {
    phase: Option<Phase>,
    since: u64,
    thread: Option<u32>,
    woken_by: Option<String>,
    woken_in_poll: Option<String>,
    /// Wakes waiting for the task's next poll.
    arrows: Vec<WakeArrow>,
}

/// Follows events and produces what they mean over time, clipped to a window:
/// closed intervals, worker spans, completed wake arrows and markers. Used over a
/// stored range for window queries, and incrementally on live data.
#[derive(Debug, Clone)]
pub struct Tracker {
    start_ns: u64,
    end_ns: u64,
    tasks: HashMap<TaskId, TaskTrack>,
    workers: HashMap<u32, (u64, Option<TaskId>)>,
    last_ns: u64,
}

impl Tracker {
    /// Keeps what overlaps `[start_ns, end_ns)`.
    pub fn new(start_ns: u64, end_ns: u64) -> Tracker {
        Tracker {
            start_ns,
            end_ns,
            tasks: HashMap::new(),
            workers: HashMap::new(),
            last_ns: 0,
        }
    }

    /// A copy of this tracker's state, keeping from now on what overlaps a new window.
    pub fn for_window(&self, start_ns: u64, end_ns: u64) -> Tracker {
        let mut t = Tracker {
            start_ns,
            end_ns,
            ..self.clone()
        };
        // Wakes from before the window are not drawn in it.
        for task in t.tasks.values_mut() {
            task.arrows
                .retain(|a| a.at_ns >= start_ns && a.at_ns < end_ns);
        }
        t
    }

    /// Time of the latest event followed.
    pub fn last_ns(&self) -> u64 {
        self.last_ns
    }

    fn overlaps(&self, a: u64, b: u64) -> bool {
        (b > a && b >= self.start_ns && a < self.end_ns)
            || (a == b && a >= self.start_ns && a < self.end_ns)
    }

    fn close(&self, out: &mut Window, task: TaskId, t: &TaskTrack, ts: u64, ready: Option<bool>) {
        let Some(phase) = t.phase else { return };
        if phase == Phase::Done || !self.overlaps(t.since, ts) {
            return;
        }
        out.intervals.push(Interval {
            task,
            start_ns: t.since.max(self.start_ns),
            end_ns: ts.min(self.end_ns),
            phase,
            thread: if phase == Phase::Running {
                t.thread
            } else {
                None
            },
            ready: if phase == Phase::Running { ready } else { None },
            woken_by: if phase == Phase::Scheduled {
                t.woken_by.clone()
            } else {
                None
            },
        });
    }

    fn worker_span(
        &self,
        out: &mut Window,
        thread: u32,
        since: u64,
        until: u64,
        task: Option<TaskId>,
    ) {
        if self.overlaps(since, until) {
            out.workers.push(WorkerSpan {
                thread,
                start_ns: since.max(self.start_ns),
                end_ns: until.min(self.end_ns),
                task,
            });
        }
    }

    /// Follows one event (in time order), adding what it closes to `out`.
    pub fn push(&mut self, e: &Event, out: &mut Window) {
        let ts = e.ts_ns;
        self.last_ns = self.last_ns.max(ts);
        let in_window = ts >= self.start_ns && ts < self.end_ns;
        match &e.kind {
            EventKind::Spawn { task, .. } => {
                let t = self.tasks.entry(*task).or_default();
                t.phase = Some(Phase::Scheduled);
                t.since = ts;
                if in_window {
                    out.markers.push(Marker {
                        task: *task,
                        at_ns: ts,
                        kind: "spawn",
                    });
                }
            }
            EventKind::PollStart { task } | EventKind::BlockingStart { task } => {
                let mut t = self.tasks.remove(task).unwrap_or_default();
                self.close(out, *task, &t, ts, None);
                for mut a in t.arrows.drain(..) {
                    a.polled_ns = Some(ts);
                    out.wakes.push(a);
                }
                t.phase = Some(Phase::Running);
                t.since = ts;
                t.thread = Some(e.thread);
                t.woken_by = None;
                self.tasks.insert(*task, t);
                if let Some((since, None)) = self.workers.get(&e.thread).copied() {
                    // A poll on a worker still marked parked: the park ended.
                    self.worker_span(out, e.thread, since, ts, None);
                }
                self.workers.insert(e.thread, (ts, Some(*task)));
            }
            EventKind::PollEnd { task, ready, .. } => {
                self.poll_end(out, *task, *ready, e.thread, ts)
            }
            EventKind::BlockingEnd { task } => self.poll_end(out, *task, true, e.thread, ts),
            EventKind::Waker {
                task,
                op: WakeOp::Wake | WakeOp::WakeByRef,
                by,
            } => {
                let mut t = self.tasks.remove(task).unwrap_or_default();
                let label = by.label();
                if in_window {
                    t.arrows.push(WakeArrow {
                        task: *task,
                        at_ns: ts,
                        by: label.clone(),
                        thread: e.thread,
                        polled_ns: None,
                    });
                    if *by == WakeSource::Io {
                        // tokio reports I/O readiness only as the wake it causes.
                        out.markers.push(Marker {
                            task: *task,
                            at_ns: ts,
                            kind: "io_ready",
                        });
                    }
                }
                match t.phase {
                    Some(Phase::Running) => {
                        t.woken_in_poll.get_or_insert(label);
                    }
                    Some(Phase::Idle) | None => {
                        self.close(out, *task, &t, ts, None);
                        t.phase = Some(Phase::Scheduled);
                        t.since = ts;
                        t.woken_by = Some(label);
                    }
                    Some(Phase::Scheduled) | Some(Phase::Done) => {}
                }
                self.tasks.insert(*task, t);
            }
            EventKind::Terminate { task, .. } => {
                if let Some(mut t) = self.tasks.remove(task) {
                    if t.phase != Some(Phase::Running) {
                        self.close(out, *task, &t, ts, None);
                        // Wakes that will never lead to a poll.
                        out.wakes.append(&mut t.arrows);
                    } else {
                        // Its last poll closes it.
                        self.tasks.insert(*task, t);
                    }
                }
                if in_window {
                    out.markers.push(Marker {
                        task: *task,
                        at_ns: ts,
                        kind: "terminate",
                    });
                }
            }
            EventKind::TimerArmed { task, .. } if in_window => out.markers.push(Marker {
                task: *task,
                at_ns: ts,
                kind: "timer_armed",
            }),
            EventKind::TimerFired { task } if in_window => out.markers.push(Marker {
                task: *task,
                at_ns: ts,
                kind: "timer_fired",
            }),
            EventKind::Park => {
                self.workers.insert(e.thread, (ts, None));
            }
            EventKind::Unpark => {
                if let Some((since, None)) = self.workers.get(&e.thread).copied() {
                    self.worker_span(out, e.thread, since, ts, None);
                    self.workers.remove(&e.thread);
                }
            }
            _ => {}
        }
    }

    fn poll_end(&mut self, out: &mut Window, task: TaskId, ready: bool, thread: u32, ts: u64) {
        let mut t = self.tasks.remove(&task).unwrap_or_default();
        if t.phase == Some(Phase::Running) {
            self.close(out, task, &t, ts, Some(ready));
        }
        t.since = ts;
        if ready {
            // Finished: wakes of it that never led to a poll end here.
            out.wakes.append(&mut t.arrows);
        } else {
            t.phase = Some(match t.woken_in_poll.take() {
                Some(by) => {
                    t.woken_by = Some(by);
                    Phase::Scheduled
                }
                None => Phase::Idle,
            });
            self.tasks.insert(task, t);
        }
        if let Some((since, Some(_))) = self.workers.get(&thread).copied() {
            self.worker_span(out, thread, since, ts, Some(task));
            self.workers.remove(&thread);
        }
    }

    /// Closes everything still open at `until` (the end of a window).
    pub fn finish(mut self, until: u64, out: &mut Window) {
        let mut ids: Vec<_> = self.tasks.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(mut t) = self.tasks.remove(&id) {
                self.close(out, id, &t, until, None);
                out.wakes.append(&mut t.arrows);
            }
        }
        let mut open: Vec<_> = self.workers.drain().collect();
        open.sort_unstable_by_key(|(th, _)| *th);
        for (thread, (since, task)) in open {
            self.worker_span(out, thread, since, until, task);
        }
        out.wakes.sort_by_key(|a| a.at_ns);
    }
}

/// Replays `events` (in time order) and keeps what overlaps `[start_ns, end_ns)`.
/// Phases open at the end are closed at `end_ns` (or at the last event, if the
/// data ends earlier).
pub fn window(events: &[Event], start_ns: u64, end_ns: u64) -> Window {
    window_from(Tracker::new(start_ns, end_ns), events, start_ns, end_ns)
}

/// Like [`window`], continuing from a tracker that followed the events before
/// `events` (a checkpoint).
pub fn window_from(mut tracker: Tracker, events: &[Event], start_ns: u64, end_ns: u64) -> Window {
    let mut w = Window {
        start_ns,
        end_ns,
        ..Window::default()
    };
    let mut more = false;
    for e in events {
        if e.ts_ns >= end_ns {
            more = true;
            break;
        }
        tracker.push(e, &mut w);
    }
    let until = if more {
        end_ns
    } else {
        end_ns.min(tracker.last_ns.max(start_ns))
    };
    w.until_ns = until;
    tracker.finish(until, &mut w);
    w
}

/// A window summarised into equal time buckets, for zoomed-out views.
#[derive(Debug, Clone, Serialize)]
pub struct Aggregate {
    pub start_ns: u64,
    pub end_ns: u64,
    pub until_ns: u64,
    pub bucket_ns: u64,
    pub tasks: Vec<TaskBuckets>,
    pub workers: Vec<WorkerBuckets>,
    /// Wakes per bucket, by any source.
    pub wakes: Vec<u32>,
}

/// Per bucket: the share of it a task spent running and scheduled, its polls and
/// the wakes it received.
#[derive(Debug, Clone, Serialize)]
pub struct TaskBuckets {
    pub task: TaskId,
    pub running: Vec<f32>,
    pub scheduled: Vec<f32>,
    pub polls: Vec<u32>,
    pub wakes: Vec<u32>,
}

/// Per bucket: the share of it a worker spent polling, and parked.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerBuckets {
    pub thread: u32,
    pub busy: Vec<f32>,
    pub parked: Vec<f32>,
}

fn spread(buckets: &mut [f32], start: u64, end: u64, w0: u64, bucket: u64) {
    if end <= start || buckets.is_empty() {
        return;
    }
    let n = buckets.len();
    let first = ((start - w0) / bucket) as usize;
    let last = (((end - w0).saturating_sub(1)) / bucket) as usize;
    for (i, b) in buckets
        .iter_mut()
        .enumerate()
        .take(last.min(n - 1) + 1)
        .skip(first.min(n - 1))
    {
        let b0 = w0 + i as u64 * bucket;
        let overlap = end.min(b0 + bucket).saturating_sub(start.max(b0));
        *b += overlap as f32 / bucket as f32;
    }
}

/// Summarises `w` into `buckets` equal buckets.
pub fn aggregate(w: &Window, buckets: usize) -> Aggregate {
    let buckets = buckets.clamp(1, 10_000);
    let span = w.end_ns.saturating_sub(w.start_ns).max(1);
    let bucket_ns = span.div_ceil(buckets as u64).max(1);
    let mut tasks: HashMap<TaskId, TaskBuckets> = HashMap::new();
    for i in &w.intervals {
        let t = tasks.entry(i.task).or_insert_with(|| TaskBuckets {
            task: i.task,
            running: vec![0.0; buckets],
            scheduled: vec![0.0; buckets],
            polls: vec![0; buckets],
            wakes: vec![0; buckets],
        });
        match i.phase {
            Phase::Running => {
                spread(&mut t.running, i.start_ns, i.end_ns, w.start_ns, bucket_ns);
                let b = (((i.start_ns - w.start_ns) / bucket_ns) as usize).min(buckets - 1);
                t.polls[b] += 1;
            }
            Phase::Scheduled => spread(
                &mut t.scheduled,
                i.start_ns,
                i.end_ns,
                w.start_ns,
                bucket_ns,
            ),
            _ => {}
        }
    }
    let mut workers: HashMap<u32, WorkerBuckets> = HashMap::new();
    for s in &w.workers {
        let wb = workers.entry(s.thread).or_insert_with(|| WorkerBuckets {
            thread: s.thread,
            busy: vec![0.0; buckets],
            parked: vec![0.0; buckets],
        });
        let target = if s.task.is_some() {
            &mut wb.busy
        } else {
            &mut wb.parked
        };
        spread(target, s.start_ns, s.end_ns, w.start_ns, bucket_ns);
    }
    let mut wakes = vec![0u32; buckets];
    for a in &w.wakes {
        let b = (((a.at_ns.saturating_sub(w.start_ns)) / bucket_ns) as usize).min(buckets - 1);
        wakes[b] += 1;
        if let Some(t) = tasks.get_mut(&a.task) {
            t.wakes[b] += 1;
        }
    }
    // Three decimals are plenty for a share of a bucket, and keep replies small; a
    // share too small for them still shows (a 10 µs poll in a 30 ms bucket is a poll).
    let round = |v: &mut Vec<f32>| {
        v.iter_mut().for_each(|x| {
            *x = if *x > 0.0 {
                ((*x * 1000.0).round() / 1000.0).max(0.001)
            } else {
                0.0
            }
        })
    };
    for t in tasks.values_mut() {
        round(&mut t.running);
        round(&mut t.scheduled);
    }
    for w in workers.values_mut() {
        round(&mut w.busy);
        round(&mut w.parked);
    }
    let mut tasks: Vec<_> = tasks.into_values().collect();
    tasks.sort_unstable_by_key(|t| t.task);
    let mut workers: Vec<_> = workers.into_values().collect();
    workers.sort_unstable_by_key(|w| w.thread);
    Aggregate {
        start_ns: w.start_ns,
        end_ns: w.end_ns,
        until_ns: w.until_ns,
        bucket_ns,
        tasks,
        workers,
        wakes,
    }
}

/// The label a viewer shows for a wake source.
pub fn source_label(by: WakeSource) -> String {
    by.label()
}

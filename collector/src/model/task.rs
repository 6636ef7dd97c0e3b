//! One task's derived state and statistics.

use hdrhistogram::Histogram;
use looptrace_wire::{Outcome, TaskId, TaskKind, WakeSource};
use serde::Serialize;
use std::sync::Arc;

/// What a task is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Being polled.
    Running,
    /// Woken (or just spawned), waiting for a worker to poll it.
    Scheduled,
    /// Returned Pending and not woken yet.
    Idle,
    /// Finished.
    Done,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::Scheduled => "scheduled",
            Phase::Idle => "idle",
            Phase::Done => "done",
        }
    }
}

/// Wakes of a task by where they came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WakeCounts {
    /// By another task.
    pub task: u64,
    /// By the task itself.
    #[serde(rename = "self")]
    pub own: u64,
    pub timer: u64,
    pub io: u64,
    pub blocking: u64,
    pub external: u64,
}

impl WakeCounts {
    pub fn total(&self) -> u64 {
        self.task + self.own + self.timer + self.io + self.blocking + self.external
    }

    pub(crate) fn add(&mut self, o: &WakeCounts) {
        self.task += o.task;
        self.own += o.own;
        self.timer += o.timer;
        self.io += o.io;
        self.blocking += o.blocking;
        self.external += o.external;
    }

    pub(crate) fn count(&mut self, woken: TaskId, by: WakeSource) {
        match by {
            WakeSource::Task(t) if t == woken => self.own += 1,
            WakeSource::Task(_) => self.task += 1,
            WakeSource::Timer => self.timer += 1,
            WakeSource::Io => self.io += 1,
            WakeSource::Blocking => self.blocking += 1,
            WakeSource::External => self.external += 1,
        }
    }
}

/// A task's poll-time and scheduling-latency histograms: most of what a task
/// costs the collector (some 4 KiB), so the first detail given up when memory
/// runs short.
#[derive(Debug, Clone)]
pub struct Histograms {
    /// Poll durations (ns).
    pub poll: Histogram<u32>,
    /// Wake-to-poll latencies (ns).
    pub sched: Histogram<u32>,
}

impl Histograms {
    fn new() -> Box<Histograms> {
        Box::new(Histograms {
            poll: histogram(),
            sched: histogram(),
        })
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Histograms>()
            + (self.poll.distinct_values() + self.sched.distinct_values()) * 4
    }
}

/// Everything the collector knows about one task.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: TaskId,
    /// Names and locations are shared between the tasks that have them.
    pub name: Arc<str>,
    pub given_name: Option<Arc<str>>,
    pub location: Arc<str>,
    pub kind: TaskKind,
    pub parent: Option<TaskId>,
    pub size_bytes: Option<u64>,
    pub spawned_ns: u64,
    pub ended_ns: Option<u64>,
    pub outcome: Option<Outcome>,
    pub phase: Phase,
    /// When the current phase began.
    pub since_ns: u64,
    pub polls: u64,
    pub busy_ns: u64,
    pub scheduled_ns: u64,
    pub idle_ns: u64,
    pub wakes: WakeCounts,
    pub longest_poll_ns: u64,
    pub last_poll_ns: Option<u64>,
    /// Worker thread of the last poll.
    pub last_thread: Option<u32>,
    /// Source of the wake that scheduled it, while scheduled.
    pub woken_by: Option<WakeSource>,
    /// Wakers alive (clones not yet dropped or consumed).
    pub live_wakers: i64,
    /// Warnings raised about this task (kept here: task lists show it for every task).
    pub warnings: u32,
    /// Woken while being polled: scheduled again once the poll ends.
    pub(crate) woken_in_poll: Option<WakeSource>,
    /// `None` once given up to stay within the memory budget (the counters stay).
    pub hist: Option<Box<Histograms>>,
}

/// Longest duration a histogram tells apart (longer ones count as this).
pub const HISTOGRAM_MAX_NS: u64 = 100_000_000_000;

fn histogram() -> Histogram<u32> {
    // 1 ns .. 100 s to about 10%: some 2 KiB per histogram, two per task.
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, 1).expect("static histogram bounds are valid")
}

impl Task {
    pub(crate) fn new(id: TaskId, ts: u64) -> Task {
        Task {
            id,
            name: format!("task {id}").into(),
            given_name: None,
            location: "".into(),
            kind: TaskKind::Task,
            parent: None,
            size_bytes: None,
            spawned_ns: ts,
            ended_ns: None,
            outcome: None,
            phase: Phase::Scheduled,
            since_ns: ts,
            polls: 0,
            busy_ns: 0,
            scheduled_ns: 0,
            idle_ns: 0,
            wakes: WakeCounts::default(),
            longest_poll_ns: 0,
            last_poll_ns: None,
            last_thread: None,
            woken_by: None,
            live_wakers: 0,
            warnings: 0,
            woken_in_poll: None,
            hist: Some(Histograms::new()),
        }
    }

    /// Records a poll's duration, if the histograms are kept.
    pub(crate) fn record_poll(&mut self, ns: u64) {
        if let Some(h) = &mut self.hist {
            h.poll.saturating_record(ns.clamp(1, HISTOGRAM_MAX_NS));
        }
    }

    /// Records a wake-to-poll latency, if the histograms are kept.
    pub(crate) fn record_scheduled(&mut self, ns: u64) {
        if let Some(h) = &mut self.hist {
            h.sched.saturating_record(ns.clamp(1, HISTOGRAM_MAX_NS));
        }
    }

    /// Ends the current phase at `ts`, adding its time to the right total.
    pub(crate) fn enter(&mut self, phase: Phase, ts: u64) -> u64 {
        let spent = ts.saturating_sub(self.since_ns);
        match self.phase {
            Phase::Running => self.busy_ns += spent,
            Phase::Scheduled => self.scheduled_ns += spent,
            Phase::Idle => self.idle_ns += spent,
            Phase::Done => {}
        }
        self.phase = phase;
        self.since_ns = ts;
        spent
    }

    /// Totals as of `now`, counting the current phase so far.
    pub fn totals_at(&self, now: u64) -> (u64, u64, u64) {
        let open = now.saturating_sub(self.since_ns);
        let (mut b, mut s, mut i) = (self.busy_ns, self.scheduled_ns, self.idle_ns);
        match self.phase {
            Phase::Running => b += open,
            Phase::Scheduled => s += open,
            Phase::Idle => i += open,
            Phase::Done => {}
        }
        (b, s, i)
    }
}

//! Warnings: patterns in a task's behaviour worth a look, each its own detector.
//!
//! Every warning names its task (if any) and the moment it was first seen, so a
//! viewer can jump there; repeats of the same warning on the same task are counted
//! on the first one.

use super::task::Task;
use looptrace_api::WarningKind;
use looptrace_wire::TaskKind;
use looptrace_wire::TaskState;
use serde::Serialize;

/// Thresholds of the detectors. Defaults in [`Thresholds::default`].
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize)]
pub struct Thresholds {
    /// A single poll at least this long blocks the loop (10 ms).
    pub blocking_poll_ns: u64,
    /// Woken but not polled for at least this long (50 ms).
    pub scheduling_latency_ns: u64,
    /// Running without returning Pending for at least this long (500 ms).
    pub never_yields_ns: u64,
    /// At least this many self-wakes ...
    pub self_wake_storm_count: u64,
    /// ... within this window (1 s).
    pub self_wake_storm_window_ns: u64,
    /// A spawned future at least this big, in bytes (16 KiB).
    pub large_future_bytes: u64,
    /// At least this many live tasks ...
    pub task_leak_live: u64,
    /// ... having grown at every check over this span (10 s).
    pub task_leak_window_ns: u64,
    /// A task idle with no live waker is reported once it stayed so this long
    /// (250 ms) without being woken or polled: a task the runtime cancels at
    /// shutdown, or its owner right away, is not a lost waker (its wakers go
    /// first, its end follows at once).
    pub lost_waker_grace_ns: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            blocking_poll_ns: 10_000_000,
            scheduling_latency_ns: 50_000_000,
            never_yields_ns: 500_000_000,
            self_wake_storm_count: 1000,
            self_wake_storm_window_ns: 1_000_000_000,
            large_future_bytes: 16 * 1024,
            task_leak_live: 1000,
            task_leak_window_ns: 10_000_000_000,
            lost_waker_grace_ns: 250_000_000,
        }
    }
}

/// Durations in messages are written as everywhere else (`50.3 ms`, `1.00 s`).
fn ms(ns: u64) -> String {
    looptrace_wire::units::fmt_duration(ns)
}

/// One lint, as tokio-console's `Warn<T>`: what it judges (`T`), its own
/// threshold, and what it says. `check` runs on every candidate and must be
/// cheap; `format` runs once, when the warning is first raised (repeats only
/// count).
pub trait Warn<T: ?Sized> {
    const KIND: WarningKind;
    /// The measured value (ns, bytes, tasks), if `subject` crosses the threshold.
    fn check(&self, subject: &T) -> Option<u64>;
    /// What the warning says about `name` (its task) given that value.
    fn format(&self, name: &str, value: u64) -> String;
}

/// The detectors, each with its threshold.
#[derive(Debug, Clone, Copy)]
pub struct Lints {
    pub blocking_poll: BlockingPoll,
    pub scheduling_latency: SchedulingLatency,
    pub lost_waker: LostWaker,
    pub never_yields: NeverYields,
    pub self_wake_storm: SelfWakeStorm,
    pub large_future: LargeFuture,
    pub task_leak: TaskLeak,
}

impl Lints {
    pub fn new(t: &Thresholds) -> Lints {
        Lints {
            blocking_poll: BlockingPoll(t.blocking_poll_ns),
            scheduling_latency: SchedulingLatency(t.scheduling_latency_ns),
            lost_waker: LostWaker,
            never_yields: NeverYields(t.never_yields_ns),
            self_wake_storm: SelfWakeStorm {
                count: t.self_wake_storm_count,
                window_ns: t.self_wake_storm_window_ns,
            },
            large_future: LargeFuture(t.large_future_bytes),
            task_leak: TaskLeak {
                live: t.task_leak_live,
                window_ns: t.task_leak_window_ns,
            },
        }
    }
}

/// A poll that blocked the loop: (task, the poll's duration). A `spawn_blocking`
/// closure runs on a thread meant for blocking: it blocks no loop however long
/// it takes.
#[derive(Debug, Clone, Copy)]
pub struct BlockingPoll(pub u64);

impl Warn<(&Task, u64)> for BlockingPoll {
    const KIND: WarningKind = WarningKind::BlockingPoll;
    fn check(&self, &(task, poll_ns): &(&Task, u64)) -> Option<u64> {
        (poll_ns >= self.0 && task.kind != TaskKind::Blocking).then_some(poll_ns)
    }
    fn format(&self, name: &str, value: u64) -> String {
        format!(
            "{name} blocked its worker for {} in one poll (threshold {})",
            ms(value),
            ms(self.0)
        )
    }
}

/// A task woken but left waiting for a worker: (task, the wait).
#[derive(Debug, Clone, Copy)]
pub struct SchedulingLatency(pub u64);

impl Warn<(&Task, u64)> for SchedulingLatency {
    const KIND: WarningKind = WarningKind::SchedulingLatency;
    fn check(&self, &(_, waited_ns): &(&Task, u64)) -> Option<u64> {
        (waited_ns >= self.0).then_some(waited_ns)
    }
    fn format(&self, name: &str, value: u64) -> String {
        format!("{name} waited {} between its wake and its poll", ms(value))
    }
}

/// A task idle with no live waker: nothing can ever wake it again.
#[derive(Debug, Clone, Copy)]
pub struct LostWaker;

impl Warn<Task> for LostWaker {
    const KIND: WarningKind = WarningKind::LostWaker;
    fn check(&self, task: &Task) -> Option<u64> {
        (task.state() == TaskState::Idle
            && task.live_wakers <= 0
            && task.life.woken_in_poll.is_none())
        .then_some(0)
    }
    fn format(&self, name: &str, _: u64) -> String {
        format!(
            "{name} returned Pending and no waker for it is alive: it will never be polled again"
        )
    }
}

/// A poll that has not returned for a long time: (task, how long so far).
/// `spawn_blocking` closures are expected to run to their end.
#[derive(Debug, Clone, Copy)]
pub struct NeverYields(pub u64);

impl Warn<(&Task, u64)> for NeverYields {
    const KIND: WarningKind = WarningKind::NeverYields;
    fn check(&self, &(task, running_ns): &(&Task, u64)) -> Option<u64> {
        (running_ns >= self.0 && task.kind != TaskKind::Blocking).then_some(running_ns)
    }
    fn format(&self, name: &str, value: u64) -> String {
        format!("{name} has run {} without returning Pending", ms(value))
    }
}

/// A task waking itself over and over: its self-wakes within the window.
#[derive(Debug, Clone, Copy)]
pub struct SelfWakeStorm {
    pub count: u64,
    pub window_ns: u64,
}

impl Warn<u64> for SelfWakeStorm {
    const KIND: WarningKind = WarningKind::SelfWakeStorm;
    fn check(&self, &in_window: &u64) -> Option<u64> {
        (in_window >= self.count).then_some(in_window)
    }
    fn format(&self, name: &str, value: u64) -> String {
        format!(
            "{name} woke itself {value} times within {}",
            ms(self.window_ns)
        )
    }
}

/// A large future, copied on spawn and on every move.
#[derive(Debug, Clone, Copy)]
pub struct LargeFuture(pub u64);

impl Warn<Task> for LargeFuture {
    const KIND: WarningKind = WarningKind::LargeFuture;
    fn check(&self, task: &Task) -> Option<u64> {
        task.size_bytes.filter(|size| *size >= self.0)
    }
    fn format(&self, name: &str, value: u64) -> String {
        format!("{name}'s future is {value} bytes (threshold {})", self.0)
    }
}

/// Live tasks growing without bound: (time, live tasks) samples, oldest first.
#[derive(Debug, Clone, Copy)]
pub struct TaskLeak {
    pub live: u64,
    pub window_ns: u64,
}

impl Warn<[(u64, u64)]> for TaskLeak {
    const KIND: WarningKind = WarningKind::TaskLeak;
    fn check(&self, history: &[(u64, u64)]) -> Option<u64> {
        let (last_ts, last) = *history.last()?;
        let boundary = last_ts.checked_sub(self.window_ns)?;
        // The samples covering the window: those inside it and the last one before.
        let from = history.iter().rposition(|(ts, _)| *ts <= boundary)?;
        let window = &history[from..];
        let growing = window.windows(2).all(|w| w[1].1 > w[0].1);
        (last >= self.live && growing && window.len() >= 3).then_some(last)
    }
    fn format(&self, _: &str, value: u64) -> String {
        format!(
            "{value} tasks alive and the number grew at every check for {}",
            ms(self.window_ns)
        )
    }
}

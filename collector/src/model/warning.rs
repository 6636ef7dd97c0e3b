//! Warnings: patterns in a task's behaviour worth a look, each its own detector.
//!
//! Every warning names its task (if any) and the moment it was first seen, so a
//! viewer can jump there; repeats of the same warning on the same task are counted
//! on the first one.

use super::task::{Phase, Task};
use looptrace_wire::TaskKind;
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
        }
    }
}

/// Which detector raised a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    BlockingPoll,
    SchedulingLatency,
    LostWaker,
    NeverYields,
    SelfWakeStorm,
    LargeFuture,
    TaskLeak,
}

/// One warning.
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    pub id: usize,
    pub kind: WarningKind,
    pub task: Option<u64>,
    pub task_name: Option<String>,
    /// When it was first seen.
    pub at_ns: u64,
    /// When it was last seen.
    pub last_ns: u64,
    /// Times seen.
    pub count: u64,
    /// The measured value that crossed the threshold (ns, bytes or tasks).
    pub value: u64,
    pub message: String,
}

fn ms(ns: u64) -> String {
    format!("{:.1} ms", ns as f64 / 1e6)
}

/// A poll that blocked the loop. (A `spawn_blocking` closure runs on a thread
/// meant for blocking: it blocks no loop however long it takes.)
pub struct BlockingPoll;
impl BlockingPoll {
    pub fn check(t: &Thresholds, task: &Task, poll_ns: u64) -> Option<(WarningKind, u64, String)> {
        (poll_ns >= t.blocking_poll_ns && task.kind != TaskKind::Blocking).then(|| {
            (
                WarningKind::BlockingPoll,
                poll_ns,
                format!(
                    "{} blocked its worker for {} in one poll (threshold {})",
                    task.name,
                    ms(poll_ns),
                    ms(t.blocking_poll_ns)
                ),
            )
        })
    }
}

/// A task woken but left waiting for a worker.
pub struct SchedulingLatency;
impl SchedulingLatency {
    pub fn check(
        t: &Thresholds,
        task: &Task,
        waited_ns: u64,
    ) -> Option<(WarningKind, u64, String)> {
        (waited_ns >= t.scheduling_latency_ns).then(|| {
            (
                WarningKind::SchedulingLatency,
                waited_ns,
                format!(
                    "{} waited {} between its wake and its poll",
                    task.name,
                    ms(waited_ns)
                ),
            )
        })
    }
}

/// A task idle with no live waker: nothing can ever wake it again.
pub struct LostWaker;
impl LostWaker {
    pub fn check(task: &Task) -> Option<(WarningKind, u64, String)> {
        (task.phase == Phase::Idle && task.live_wakers <= 0 && task.woken_in_poll.is_none()).then(|| {
            (
                WarningKind::LostWaker,
                0,
                format!("{} returned Pending and no waker for it is alive: it will never be polled again", task.name),
            )
        })
    }
}

/// A poll that has not returned for a long time (`spawn_blocking` closures are
/// expected to run to their end).
pub struct NeverYields;
impl NeverYields {
    pub fn check(
        t: &Thresholds,
        task: &Task,
        running_ns: u64,
    ) -> Option<(WarningKind, u64, String)> {
        (running_ns >= t.never_yields_ns && task.kind != TaskKind::Blocking).then(|| {
            (
                WarningKind::NeverYields,
                running_ns,
                format!(
                    "{} has run {} without returning Pending",
                    task.name,
                    ms(running_ns)
                ),
            )
        })
    }
}

/// A task waking itself over and over.
pub struct SelfWakeStorm;
impl SelfWakeStorm {
    pub fn check(
        t: &Thresholds,
        task: &Task,
        in_window: u64,
    ) -> Option<(WarningKind, u64, String)> {
        (in_window >= t.self_wake_storm_count).then(|| {
            (
                WarningKind::SelfWakeStorm,
                in_window,
                format!(
                    "{} woke itself {in_window} times within {}",
                    task.name,
                    ms(t.self_wake_storm_window_ns)
                ),
            )
        })
    }
}

/// A large future, copied on spawn and on every move.
pub struct LargeFuture;
impl LargeFuture {
    pub fn check(t: &Thresholds, task: &Task) -> Option<(WarningKind, u64, String)> {
        let size = task.size_bytes?;
        (size >= t.large_future_bytes).then(|| {
            (
                WarningKind::LargeFuture,
                size,
                format!(
                    "{}'s future is {size} bytes (threshold {})",
                    task.name, t.large_future_bytes
                ),
            )
        })
    }
}

/// Live tasks growing without bound.
pub struct TaskLeak;
impl TaskLeak {
    /// `history`: (time, live tasks) samples, oldest first.
    pub fn check(t: &Thresholds, history: &[(u64, u64)]) -> Option<(WarningKind, u64, String)> {
        let (last_ts, last) = *history.last()?;
        let boundary = last_ts.checked_sub(t.task_leak_window_ns)?;
        // The samples covering the window: those inside it and the last one before.
        let from = history.iter().rposition(|(ts, _)| *ts <= boundary)?;
        let window = &history[from..];
        let growing = window.windows(2).all(|w| w[1].1 > w[0].1);
        (last >= t.task_leak_live && growing && window.len() >= 3).then(|| {
            (
                WarningKind::TaskLeak,
                last,
                format!(
                    "{last} tasks alive and the number grew at every check for {}",
                    ms(t.task_leak_window_ns)
                ),
            )
        })
    }
}

//! One worker thread's derived state.

use looptrace_wire::TaskId;

/// A worker thread of the traced runtime.
#[derive(Debug, Clone)]
pub struct Worker {
    pub thread: u32,
    pub index: u32,
    pub name: String,
    pub busy_ns: u64,
    pub parked_ns: u64,
    /// Times it parked.
    pub parks: u64,
    pub polls: u64,
    /// Polls of a task whose previous poll ran on another worker (work stealing
    /// or migration).
    pub migrations: u64,
    /// Task being polled now.
    pub running: Option<TaskId>,
    pub parked: bool,
    /// Tasks in its local run queue at the latest sample, and the most seen.
    pub queue: u32,
    pub max_queue: u32,
    /// Times it stole from another worker so far.
    pub steals: u64,
    pub(crate) since_ns: u64,
    pub(crate) first_ns: u64,
}

impl Worker {
    pub(crate) fn new(thread: u32, index: u32, name: String, ts: u64) -> Worker {
        Worker {
            thread,
            index,
            name,
            busy_ns: 0,
            parked_ns: 0,
            parks: 0,
            polls: 0,
            migrations: 0,
            running: None,
            parked: false,
            queue: 0,
            max_queue: 0,
            steals: 0,
            since_ns: ts,
            first_ns: ts,
        }
    }

    /// Share of the time since the worker appeared spent polling, as of `now`.
    pub fn utilization(&self, now: u64) -> f64 {
        let span = now.saturating_sub(self.first_ns);
        if span == 0 {
            return 0.0;
        }
        let mut busy = self.busy_ns;
        if self.running.is_some() {
            busy += now.saturating_sub(self.since_ns);
        }
        (busy as f64 / span as f64).min(1.0)
    }
}

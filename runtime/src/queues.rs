//! The scheduler's queues, sampled from tokio's runtime metrics by a plain
//! thread of looptrace's own: each worker's local run queue, the injection queue
//! and the steals so far. A sample is recorded only when something changed, so an
//! idle app sends none.

use crate::buffer::{self, Raw};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One reading: per worker its local queue and its steals so far, and the
/// injection queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueuesRaw {
    pub local: Vec<u32>,
    pub steals: Vec<u64>,
    pub injection: u32,
}

/// The sampling thread; finish it before the runtime shuts down (its queues
/// then empty).
pub(crate) type Sampler = crate::background::Background;

/// Samples `handle`'s queues every `every` until finished.
pub(crate) fn spawn(handle: tokio::runtime::Handle, every: Duration) -> std::io::Result<Sampler> {
    Sampler::spawn("looptrace-queues", move |stop| run(&handle, every, stop))
}

fn read(handle: &tokio::runtime::Handle) -> QueuesRaw {
    let m = handle.metrics();
    let n = m.num_workers();
    QueuesRaw {
        local: (0..n)
            .map(|i| m.worker_local_queue_depth(i).min(u32::MAX as usize) as u32)
            .collect(),
        steals: (0..n).map(|i| m.worker_steal_count(i)).collect(),
        injection: m.global_queue_depth().min(u32::MAX as usize) as u32,
    }
}

fn run(handle: &tokio::runtime::Handle, every: Duration, stop: &AtomicBool) {
    // A few events a second: a small ring, whatever the app threads' size.
    buffer::QUIET.with(|q| q.set(true));
    let mut last: Option<QueuesRaw> = None;
    while !stop.load(Ordering::Acquire) {
        std::thread::park_timeout(every);
        let now = read(handle);
        if last.as_ref() != Some(&now) {
            buffer::record(Raw::Queues(Box::new(now.clone())));
            last = Some(now);
        }
    }
}

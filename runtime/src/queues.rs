//! The scheduler's queues, sampled from tokio's runtime metrics by the shipping
//! thread as it goes round: each worker's local run queue, the injection queue
//! and the steals so far. A sample is recorded only when something changed, so an
//! idle app sends none. (A thread of its own cost a wake-up per sample, more than
//! the reading itself.)

use crate::buffer::{self, Raw};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One reading: per worker its local queue and its steals so far, and the
/// injection queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueuesRaw {
    pub local: Vec<u32>,
    pub steals: Vec<u64>,
    pub injection: u32,
}

/// What the shipping thread samples, and how often.
pub(crate) struct Sampler {
    handle: tokio::runtime::Handle,
    pub(crate) every: Duration,
    next: Instant,
    last: Option<QueuesRaw>,
    /// Set when the runtime shuts down: its queues are not read after that.
    done: Arc<AtomicBool>,
}

impl Sampler {
    /// Samples `handle`'s queues every `every` until `done` is set.
    pub(crate) fn new(
        handle: tokio::runtime::Handle,
        every: Duration,
        done: Arc<AtomicBool>,
    ) -> Sampler {
        Sampler {
            handle,
            every,
            next: Instant::now(),
            last: None,
            done,
        }
    }

    /// Takes a sample if one is due; false once the runtime is gone.
    pub(crate) fn sample(&mut self) -> bool {
        if self.done.load(Ordering::Acquire) {
            return false;
        }
        let now = Instant::now();
        if now < self.next {
            return true;
        }
        self.next = now + self.every;
        let reading = read(&self.handle);
        if self.last.as_ref() != Some(&reading) {
            buffer::record(Raw::Queues(Box::new(reading.clone())));
            self.last = Some(reading);
        }
        true
    }
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

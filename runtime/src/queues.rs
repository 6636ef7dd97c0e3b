//! The scheduler's queues, sampled from tokio's runtime metrics by the shipping
//! thread as it goes round: each worker's local run queue, the injection queue
//! and the steals so far. A sample is recorded only when something changed, so an
//! idle app sends none. (A thread of its own cost a wake-up per sample, more than
//! the reading itself.)

use crate::buffer::{self, Raw};
use looptrace_wire::Queues;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the queues are sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sampling {
    Off,
    /// At each round of the shipping thread (see `Builder::flush_interval`).
    EachRound,
    Every(Duration),
}

/// The runtime whose queues are read: the runtime takes it back when it shuts
/// down (waiting for a reading under way), and sampling stops.
pub(crate) type Source = Arc<Mutex<Option<tokio::runtime::Handle>>>;

/// What the shipping thread samples, and how often.
pub(crate) struct Sampler {
    source: Source,
    /// `None`: at each round.
    pub(crate) every: Option<Duration>,
    next: Instant,
    last: Option<Queues>,
}

impl Sampler {
    /// Samples `source`'s queues as `sampling` says; `None` if it says none.
    pub(crate) fn new(source: Source, sampling: Sampling) -> Option<Sampler> {
        let every = match sampling {
            Sampling::Off => return None,
            Sampling::EachRound => None,
            Sampling::Every(d) => Some(d),
        };
        Some(Sampler {
            source,
            every,
            next: Instant::now(),
            last: None,
        })
    }

    /// Takes a sample if one is due; false once the runtime is gone.
    pub(crate) fn sample(&mut self) -> bool {
        let now = Instant::now();
        if now < self.next {
            return true;
        }
        let source = self.source.lock().unwrap_or_else(|p| p.into_inner());
        let Some(handle) = source.as_ref() else {
            return false;
        };
        if let Some(every) = self.every {
            self.next = now + every;
        }
        let reading = read(handle);
        drop(source);
        if self.last.as_ref() != Some(&reading) {
            buffer::record(Raw::Queues(Box::new(reading.clone())));
            self.last = Some(reading);
        }
        true
    }
}

/// One reading: per worker its local queue and its steals so far, and the
/// injection queue.
fn read(handle: &tokio::runtime::Handle) -> Queues {
    let m = handle.metrics();
    let n = m.num_workers();
    Queues {
        local: (0..n)
            .map(|i| m.worker_local_queue_depth(i).min(u32::MAX as usize) as u32)
            .collect(),
        steals: (0..n).map(|i| m.worker_steal_count(i)).collect(),
        injection: m.global_queue_depth().min(u32::MAX as usize) as u32,
    }
}

//! The capture clock: a raw counter read on the hot path (the TSC where the CPU has
//! an invariant one, else the monotonic clock), turned into nanoseconds off it.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

fn clock() -> &'static quanta::Clock {
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Reads the raw counter: a few nanoseconds, no syscall.
#[inline(always)]
pub(crate) fn raw() -> u64 {
    clock().raw()
}

/// A fixed point of the raw clock and the wall clock, taken when a session starts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Origin {
    raw: u64,
    pub(crate) unix_ns: u64,
}

impl Origin {
    pub(crate) fn now() -> Origin {
        let raw = raw();
        let unix_ns = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        Origin { raw, unix_ns }
    }

    /// Nanoseconds from the origin to `raw` (0 for anything earlier).
    pub(crate) fn ns(&self, raw: u64) -> u64 {
        clock().delta_as_nanos(self.raw, raw)
    }
}

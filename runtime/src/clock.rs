//! The capture clock: a raw counter read on the hot path (the TSC where the CPU has
//! an invariant one, else the monotonic clock), turned into nanoseconds off it.
//!
//! `quanta` decides whether the TSC is usable and calibrates it. When it is, the hot
//! path reads it with one inlined instruction rather than through `quanta`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
static DIRECT_TSC: AtomicBool = AtomicBool::new(false);

fn clock() -> &'static quanta::Clock {
    CLOCK.get_or_init(|| {
        let clock = quanta::Clock::new();
        DIRECT_TSC.store(reads_tsc(&clock), Ordering::Relaxed);
        clock
    })
}

/// Whether `clock.raw()` is the TSC: a TSC read taken between two of its reads
/// falls between them (nanoseconds of the monotonic clock would not, the TSC ticks
/// several times faster).
#[cfg(target_arch = "x86_64")]
fn reads_tsc(clock: &quanta::Clock) -> bool {
    (0..3).any(|_| {
        let a = clock.raw();
        // SAFETY: `rdtsc` exists on every x86_64 CPU.
        let t = unsafe { core::arch::x86_64::_rdtsc() };
        let b = clock.raw();
        a <= t && t <= b && b - a < 10_000
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn reads_tsc(_: &quanta::Clock) -> bool {
    false
}

/// Makes sure the clock is calibrated before the hot path needs it.
pub(crate) fn init() {
    clock();
}

/// Reads the raw counter: a few nanoseconds, no syscall.
#[inline(always)]
pub(crate) fn raw() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if DIRECT_TSC.load(Ordering::Relaxed) {
        // SAFETY: `rdtsc` exists on every x86_64 CPU.
        return unsafe { core::arch::x86_64::_rdtsc() };
    }
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
        init();
        let raw = raw();
        let unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Origin { raw, unix_ns }
    }

    /// Nanoseconds from the origin to `raw` (0 for anything earlier).
    pub(crate) fn ns(&self, raw: u64) -> u64 {
        clock().delta_as_nanos(self.raw, raw)
    }
}

//! The demos' sense of time: `--speed` scales every sleep, block and burst of CPU
//! work a demo does, so a class can watch in slow motion and tests can run fast.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// 1.0 as f64 bits.
static SPEED: AtomicU64 = AtomicU64::new(0x3FF0_0000_0000_0000);

/// Sets how fast demos run: 2.0 halves every delay, 0.5 doubles it.
/// Speeds that are not finite and positive leave it unchanged.
pub fn set_speed(speed: f64) {
    if speed.is_finite() && speed > 0.0 {
        SPEED.store(speed.to_bits(), Ordering::Relaxed);
    }
}

/// The current speed.
pub fn speed() -> f64 {
    f64::from_bits(SPEED.load(Ordering::Relaxed))
}

/// `secs` of demo time as real time at the current speed.
pub fn paced(secs: f64) -> Duration {
    Duration::from_secs_f64(secs / speed())
}

/// `tokio::time::sleep` for `secs` of demo time: the task returns Pending and the
/// timer wakes it.
pub async fn sleep(secs: f64) {
    tokio::time::sleep(paced(secs)).await;
}

/// `std::thread::sleep` for `secs` of demo time: the thread stops, and with it
/// whatever task is being polled on it (and every task waiting for that worker).
pub fn block(secs: f64) {
    std::thread::sleep(paced(secs));
}

/// Real CPU work for `secs` of demo time (it counts Collatz steps until the time
/// is up), without ever returning to the scheduler. Returns the steps, so the work
/// cannot be optimised away.
pub fn crunch(secs: f64) -> u64 {
    let until = Instant::now() + paced(secs);
    let mut steps = 0u64;
    let mut n = 27u64;
    while Instant::now() < until {
        for _ in 0..1000 {
            n = if n & 1 == 0 { n / 2 } else { 3 * n + 1 };
            if n == 1 {
                n = 27 + steps % 1000;
            }
            steps += 1;
        }
    }
    std::hint::black_box(steps)
}

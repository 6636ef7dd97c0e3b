//! Lock contention: `tokio::sync::Mutex` held across an await vs `std::sync::Mutex`
//! held across blocking work, on a multi-thread runtime.

use crate::pace::{block, sleep};
use crate::trace::{secs, Trace};
use crate::Heartbeat;
use std::sync::Arc;

/// Tasks per part, times each takes the lock, and seconds (demo time) it holds it.
pub const LOCKERS: usize = 4;
pub const ROUNDS: usize = 2;
pub const HOLD_SECS: f64 = 0.1;

/// Part one: four `tokio lock N` tasks take turns on a `tokio::sync::Mutex`,
/// holding it across a 0.1 s await: waiters return Pending and the task that
/// unlocks wakes the next one. Part two: four `std lock N` tasks take a
/// `std::sync::Mutex` and hold it across 0.1 s of blocking work: a waiter blocks
/// its whole worker thread. A heartbeat woken from outside shows whether the
/// workers are free.
pub async fn run() {
    crate::part("part 1: tokio::sync::Mutex, held across .await");
    let beat = Heartbeat::start("heartbeat 1", 0.05);
    let lock = Arc::new(tokio::sync::Mutex::new(0u32));
    let tasks = (1..=LOCKERS)
        .map(|i| {
            let lock = lock.clone();
            crate::spawn(&format!("tokio lock {i}"), async move {
                for _ in 0..ROUNDS {
                    let mut n = lock.lock().await;
                    sleep(HOLD_SECS).await;
                    *n += 1;
                }
            })
        })
        .collect();
    crate::join_all(tasks).await;
    beat.stop().await;
    crate::say!("tokio lock: {} turns", *lock.lock().await);

    crate::part("part 2: std::sync::Mutex, held across blocking work");
    let beat = Heartbeat::start("heartbeat 2", 0.05);
    let lock = Arc::new(std::sync::Mutex::new(0u32));
    let tasks = (1..=LOCKERS)
        .map(|i| {
            let lock = lock.clone();
            crate::spawn(&format!("std lock {i}"), async move {
                for _ in 0..ROUNDS {
                    {
                        let mut n = lock.lock().unwrap_or_else(|p| p.into_inner());
                        block(HOLD_SECS);
                        *n += 1;
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    crate::join_all(tasks).await;
    beat.stop().await;
    crate::say!(
        "std lock: {} turns",
        *lock.lock().unwrap_or_else(|p| p.into_inner())
    );
}

pub fn explain(t: &Trace) -> Vec<String> {
    use looptrace_collector::model::WarningKind::BlockingPoll;
    let tokio_tasks = t.tasks("tokio lock ");
    let std_tasks = t.tasks("std lock ");
    let (Some(b1), Some(b2)) = (t.task("heartbeat 1"), t.task("heartbeat 2")) else {
        return vec!["The trace does not hold the demo's tasks.".into()];
    };
    let handoffs: u64 = tokio_tasks.iter().map(|x| x.wakes.task).sum();
    let longest = std_tasks
        .iter()
        .map(|x| t.longest_poll(x))
        .fold(0.0, f64::max);
    let blocking: usize = std_tasks.iter().map(|x| t.warned(x, BlockingPoll)).sum();
    vec![
        format!(
            "tokio::sync::Mutex: waiters slept (Pending) and were handed the lock {handoffs} times by the task unlocking it; \
             {} for {} turns, and heartbeat 1 never waited more than {}.",
            secs(t.span(&tokio_tasks)),
            LOCKERS * ROUNDS,
            secs(t.longest_wait(b1))
        ),
        format!(
            "std::sync::Mutex: waiting for the lock blocked whole worker threads, in polls of up to {} ({blocking} blocking-poll warnings); \
             heartbeat 2 waited up to {} for a free worker.",
            secs(longest),
            secs(t.longest_wait(b2))
        ),
    ]
}

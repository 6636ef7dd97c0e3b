//! A blocking call inside async code stalls every task that shares its worker.

use crate::pace::{block, paced, sleep};
use crate::trace::{secs, Trace};
use crate::Heartbeat;

/// Part one: `heartbeat 1` is woken ten times a second from outside the runtime
/// while the task `std::thread::sleep` blocks the only worker for 1 s. Part two,
/// the fix: the same wait as `tokio::time::sleep` and inside `spawn_blocking`,
/// while `heartbeat 2` runs.
pub async fn run() {
    crate::part("part 1: std::thread::sleep inside a task");
    let beat = Heartbeat::start("heartbeat 1", 0.1);
    sleep(0.3).await;
    crate::spawn("std::thread::sleep", async {
        crate::say!("std::thread::sleep: blocking the worker for 1 s");
        block(1.0);
        crate::say!("std::thread::sleep: done");
    })
    .await
    .ok();
    sleep(0.3).await;
    beat.stop().await;

    crate::part("part 2: the fix");
    let beat = Heartbeat::start("heartbeat 2", 0.1);
    sleep(0.3).await;
    let awaiting = crate::spawn("tokio::time::sleep", async {
        tokio::time::sleep(paced(1.0)).await;
        crate::say!("tokio::time::sleep: done, and the worker was free all along");
    });
    let offloaded = crate::spawn("spawn_blocking", async {
        let offload = tokio::task::Builder::new()
            .name("sleep on the blocking pool")
            .spawn_blocking(|| block(1.0));
        match offload {
            Ok(handle) => match handle.await {
                Ok(()) => crate::say!("spawn_blocking: done, on a thread of its own"),
                Err(e) => crate::say!("spawn_blocking: the closure did not finish: {e}"),
            },
            Err(e) => crate::say!("spawn_blocking: cannot start: {e}"),
        }
    });
    crate::join_all(vec![awaiting, offloaded]).await;
    sleep(0.3).await;
    beat.stop().await;
}

pub fn explain(t: &Trace) -> Vec<String> {
    let (Some(blocker), Some(b1), Some(b2)) = (
        t.task("std::thread::sleep"),
        t.task("heartbeat 1"),
        t.task("heartbeat 2"),
    ) else {
        return vec!["The trace does not hold the demo's tasks.".into()];
    };
    let fixed: Vec<_> = [
        "tokio::time::sleep",
        "spawn_blocking",
        "sleep on the blocking pool",
    ]
    .iter()
    .filter_map(|n| t.task(n))
    .collect();
    let fixed_warnings: usize = fixed.iter().map(|f| f.warnings as usize).sum();
    vec![
        format!(
            "std::thread::sleep held the worker for {} in one poll ({} blocking-poll warning); heartbeat 1 was woken on time but waited up to {} to be polled.",
            secs(t.longest_poll(blocker)),
            t.warned(blocker, looptrace_collector::model::WarningKind::BlockingPoll),
            secs(t.longest_wait(b1))
        ),
        format!(
            "With tokio::time::sleep and spawn_blocking the same wait ({}) let the worker go: heartbeat 2 waited at most {}, and the fixed tasks raised {} warnings.",
            secs(fixed.iter().map(|f| t.lifetime(f)).fold(0.0, f64::max)),
            secs(t.longest_wait(b2)),
            fixed_warnings
        ),
    ]
}

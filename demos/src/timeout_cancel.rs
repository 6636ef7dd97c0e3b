//! Giving up on work: `timeout`, `select!` and `abort()`.

use crate::pace::{paced, sleep};
use crate::trace::{secs, Trace};

async fn timeout_a_task() {
    let mut request = crate::spawn("slow request", async {
        sleep(3.0).await;
        crate::say!("slow request: answered (nobody is listening)");
    });
    match tokio::time::timeout(paced(1.0), &mut request).await {
        Ok(_) => crate::say!("timeout: the answer came in time"),
        Err(_) => {
            request.abort();
            crate::say!("timeout: gave up on slow request after 1 s and aborted it");
        }
    }
}

async fn race() {
    let mut east = crate::spawn("mirror east", sleep(0.5));
    let mut west = crate::spawn("mirror west", sleep(1.5));
    tokio::select! {
        _ = &mut east => {
            west.abort();
            crate::say!("select!: mirror east answered first; mirror west aborted");
        }
        _ = &mut west => {
            east.abort();
            crate::say!("select!: mirror west answered first; mirror east aborted");
        }
    }
}

async fn abort_a_loop() {
    let countdown = crate::spawn("countdown", async {
        for n in (1..=100).rev() {
            crate::say!("countdown: {n}");
            sleep(0.2).await;
        }
    });
    sleep(1.0).await;
    countdown.abort();
    crate::say!("abort(): countdown stopped mid-wait");
}

async fn impatient() {
    match tokio::time::timeout(paced(0.5), sleep(2.0)).await {
        Ok(()) => crate::say!("impatient: the sleep finished"),
        Err(_) => crate::say!(
            "impatient: gave up after 0.5 s; the sleep future was dropped, the task goes on"
        ),
    }
}

/// Four ways of not waiting for the end, side by side: `timeout` around a task's
/// handle then `abort()` (`slow request`), `select!` between two tasks and abort
/// the loser (`mirror east` / `mirror west`), `abort()` on a loop (`countdown`),
/// and `timeout` around a plain future inside a task that carries on (`impatient`).
pub async fn run() {
    let tasks = vec![
        crate::spawn("timeout", timeout_a_task()),
        crate::spawn("select!", race()),
        crate::spawn("abort()", abort_a_loop()),
        crate::spawn("impatient", impatient()),
    ];
    crate::join_all(tasks).await;
}

pub fn explain(t: &Trace) -> Vec<String> {
    let mut lines = Vec::new();
    for name in [
        "slow request",
        "mirror west",
        "countdown",
        "mirror east",
        "impatient",
    ] {
        if let Some(task) = t.task(name) {
            let how = match task.outcome {
                Some(o) => o.as_str(),
                None => "still running",
            };
            lines.push(format!(
                "{name}: {how} at {} after {} polls.",
                secs(t.ended(task)),
                task.polls
            ));
        }
    }
    lines.push(
        "Cancelled tasks never returned Ready: their futures were dropped where they waited, \
         and the drop ran their destructors (the timers they held were removed)."
            .into(),
    );
    lines
}

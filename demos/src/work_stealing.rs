//! A multi-thread runtime: idle workers steal tasks queued on busy ones.

use crate::pace::crunch;
use crate::trace::Trace;

/// Jobs, chunks per job, and seconds (demo time) of CPU work per chunk.
pub const JOBS: usize = 8;
/// (Chunks stay well under the 10 ms blocking-poll threshold, even on a busy
/// machine where a chunk takes longer than asked.)
pub const CHUNKS: usize = 50;
pub const CHUNK_SECS: f64 = 0.004;

/// `spawner` starts eight `job N` tasks from one worker; each crunches 50
/// chunks of 4 ms, yielding between them. They all land on the spawner's worker's queue;
/// the other workers wake up and steal from it.
pub async fn run() {
    let spawner = crate::spawn("spawner", async {
        let jobs = (1..=JOBS)
            .map(|i| {
                crate::spawn(&format!("job {i}"), async move {
                    for _ in 0..CHUNKS {
                        crunch(CHUNK_SECS);
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        crate::join_all(jobs).await;
    });
    crate::join_all(vec![spawner]).await;
}

pub fn explain(t: &Trace) -> Vec<String> {
    let jobs = t.tasks("job ");
    let (used, moves) = t.workers_used();
    let per_worker: Vec<String> = t
        .model
        .workers
        .values()
        .map(|w| {
            format!(
                "worker {} polled {} times ({:.0}% busy), its queue held up to {} tasks, it stole {} times",
                w.index,
                w.polls,
                100.0 * w.busy_ns as f64 / (w.busy_ns + w.parked_ns).max(1) as f64,
                w.max_queue,
                w.steals
            )
        })
        .collect();
    vec![
        format!("{} jobs ran on {used} workers: {}.", jobs.len(), per_worker.join("; ")),
        format!("Tasks moved between workers {moves} times: a worker with an empty queue took work from a busy one."),
    ]
}

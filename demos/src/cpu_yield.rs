//! CPU-heavy tasks with and without `yield_now()`: who gets the worker, and when.

use crate::pace::crunch;
use crate::trace::{secs, Trace};

/// Chunks of work per task, and seconds (demo time) per chunk: each chunk stays
/// under the 10 ms blocking-poll threshold, so only the greedy tasks warn.
pub const CHUNKS: usize = 50;
pub const CHUNK_SECS: f64 = 0.008;

async fn work(name: &'static str, yielding: bool) {
    for i in 0..CHUNKS {
        crunch(CHUNK_SECS);
        if i == CHUNKS - 1 || (yielding && (i + 1) % 10 == 0) {
            crate::say!("{name}: chunk {} of {CHUNKS} done", i + 1);
        }
        if yielding {
            tokio::task::yield_now().await;
        }
    }
}

/// Part one: `greedy A` and `greedy B` each crunch fifty 8 ms chunks without yielding.
/// Part two: `polite A` and `polite B` do the same with `yield_now()` after each chunk.
pub async fn run() {
    crate::part("part 1: no yield");
    let greedy = vec![
        crate::spawn("greedy A", work("greedy A", false)),
        crate::spawn("greedy B", work("greedy B", false)),
    ];
    crate::join_all(greedy).await;
    crate::part("part 2: yield_now() after every chunk");
    let polite = vec![
        crate::spawn("polite A", work("polite A", true)),
        crate::spawn("polite B", work("polite B", true)),
    ];
    crate::join_all(polite).await;
}

pub fn explain(t: &Trace) -> Vec<String> {
    let names = ["greedy A", "greedy B", "polite A", "polite B"];
    let tasks: Vec<_> = names.iter().filter_map(|n| t.task(n)).collect();
    let [ga, gb, pa, pb] = tasks[..] else {
        return vec!["The trace does not hold the demo's tasks.".into()];
    };
    vec![
        format!(
            "Without yielding, greedy A ran all its work in {} poll(s) of up to {} while greedy B waited {} for its first turn.",
            ga.polls,
            secs(t.longest_poll(ga)),
            secs(t.longest_wait(gb))
        ),
        format!(
            "With yield_now(), polite A and polite B took turns: {} and {} polls, none longer than {}, and neither waited more than {}.",
            pa.polls,
            pb.polls,
            secs(t.longest_poll(pa).max(t.longest_poll(pb))),
            secs(t.longest_wait(pa).max(t.longest_wait(pb)))
        ),
        format!(
            "Both pairs finished in about the same time ({} vs {}): yielding does not make work faster, it makes the worker fair.",
            secs(t.span(&[ga, gb])),
            secs(t.span(&[pa, pb]))
        ),
    ]
}

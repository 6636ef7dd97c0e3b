//! Awaiting one thing after another vs letting them run at the same time.

use crate::hello::{say_hello, PEOPLE};
use crate::trace::{secs, Trace};

/// Side by side: the task `sequential` awaits the three greetings one after
/// another, while `concurrent` spawns them as three tasks and awaits them together.
pub async fn run() {
    let sequential = crate::spawn("sequential", async {
        for (name, delay) in PEOPLE {
            say_hello(format!("{name} (sequential)"), delay).await;
        }
    });
    let concurrent = crate::spawn("concurrent", async {
        let tasks = PEOPLE
            .into_iter()
            .map(|(name, delay)| {
                crate::spawn(
                    &format!("{name} (concurrent)"),
                    say_hello_owned(name, delay),
                )
            })
            .collect();
        crate::join_all(tasks).await;
    });
    crate::join_all(vec![sequential, concurrent]).await;
}

async fn say_hello_owned(name: &'static str, delay: f64) {
    say_hello(format!("{name} (concurrent)"), delay).await;
}

pub fn explain(t: &Trace) -> Vec<String> {
    let (Some(seq), Some(con)) = (t.task("sequential"), t.task("concurrent")) else {
        return vec!["The trace does not hold both tasks.".into()];
    };
    let greeters = t
        .tasks("Alice (concurrent)")
        .into_iter()
        .chain(t.tasks("Bob (concurrent)"))
        .chain(t.tasks("Charlie (concurrent)"));
    let greeters: Vec<_> = greeters.collect();
    let overlap = greeters.iter().map(|g| g.spawned_ns).max().unwrap_or(0)
        < greeters
            .iter()
            .filter_map(|g| g.ended_ns)
            .min()
            .unwrap_or(0);
    vec![
        format!(
            "sequential took {} (2 + 1 + 3: each greeting starts when the one before ends); concurrent took {} (the longest greeting).",
            secs(t.lifetime(seq)),
            secs(t.lifetime(con))
        ),
        format!(
            "sequential was polled {} times in one lane; the three concurrent greetings {} at the same time, in lanes of their own.",
            seq.polls,
            if overlap { "were all waiting" } else { "did not overlap" }
        ),
    ]
}

//! The classic: say hello after a delay, three times at once.

use crate::trace::{secs, Trace};

/// Waits `delay` seconds (demo time), then greets `name`.
pub async fn say_hello(name: impl std::fmt::Display, delay: f64) {
    crate::pace::sleep(delay).await;
    crate::say!("Hello, {name}!");
}

/// The three people and how long each waits.
pub const PEOPLE: [(&str, f64); 3] = [("Alice", 2.0), ("Bob", 1.0), ("Charlie", 3.0)];

/// Alice (2 s), Bob (1 s) and Charlie (3 s), each a task named after them, awaited
/// together.
pub async fn run() {
    let tasks: Vec<_> = PEOPLE
        .into_iter()
        .map(|(name, secs)| crate::spawn(name, say_hello(name, secs)))
        .collect();
    crate::join_all(tasks).await;
}

pub fn explain(t: &Trace) -> Vec<String> {
    let mut people: Vec<_> = PEOPLE.iter().filter_map(|(n, _)| t.task(n)).collect();
    if people.len() < 3 {
        return vec!["The trace does not hold all three greetings.".into()];
    }
    people.sort_by_key(|p| p.ended_ns);
    let sum: f64 = people.iter().map(|p| t.lifetime(p)).sum();
    vec![
        format!(
            "{} finished first, after {}; then {} at {} and {} at {}.",
            people[0].name,
            secs(t.ended(people[0])),
            people[1].name,
            secs(t.ended(people[1])),
            people[2].name,
            secs(t.ended(people[2]))
        ),
        format!(
            "The whole run took {}, not {} (the sum of the three waits): the waits overlapped, and each task was polled {} times.",
            secs(t.span(&people)),
            secs(sum),
            people.iter().map(|p| p.polls.to_string()).collect::<Vec<_>>().join("/")
        ),
    ]
}

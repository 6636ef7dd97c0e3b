//! The classic: say hello after a delay, three times at once.

use std::time::Duration;

/// Waits `delay`, then greets `name`.
pub async fn say_hello(name: &'static str, delay: Duration) {
    tokio::time::sleep(delay).await;
    crate::say!("Hello, {name}!");
}

/// Alice (2 s), Bob (1 s) and Charlie (3 s), each a task named after them, awaited
/// together.
pub async fn run() {
    let people = [("Alice", 2), ("Bob", 1), ("Charlie", 3)];
    let tasks: Vec<_> = people
        .into_iter()
        .map(|(name, secs)| {
            tokio::task::Builder::new()
                .name(name)
                .spawn(say_hello(name, Duration::from_secs(secs)))
                .expect("spawning on a running runtime")
        })
        .collect();
    for t in tasks {
        // A task of this demo cannot panic short of a bug; report it if one does.
        if let Err(e) = t.await {
            eprintln!("a hello task failed: {e}");
        }
    }
}

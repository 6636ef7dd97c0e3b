//! Waiting for several things at once: `join!`, `JoinSet` (asyncio's `gather`) and
//! spawned tasks awaited in order.

use crate::hello::{say_hello, PEOPLE};
use crate::trace::{secs, Trace};

async fn with_join() {
    let [(a, da), (b, db), (c, dc)] = PEOPLE;
    tokio::join!(
        say_hello(format!("{a} (join!)"), da),
        say_hello(format!("{b} (join!)"), db),
        say_hello(format!("{c} (join!)"), dc)
    );
}

async fn with_join_set() {
    let mut set = tokio::task::JoinSet::new();
    for (name, delay) in PEOPLE {
        let task = format!("{name} (JoinSet)");
        let fut = async move {
            say_hello(format!("{name} (JoinSet)"), delay).await;
            name
        };
        if let Err(e) = set.build_task().name(&task).spawn(fut) {
            crate::say!("JoinSet: cannot spawn {task}: {e}");
        }
    }
    let mut order = Vec::new();
    while let Some(done) = set.join_next().await {
        if let Ok(name) = done {
            order.push(name);
        }
    }
    crate::say!(
        "JoinSet: results in the order they finished: {}",
        order.join(", ")
    );
}

async fn with_handles() {
    let handles: Vec<_> = PEOPLE
        .into_iter()
        .map(|(name, delay)| {
            crate::spawn(&format!("{name} (spawned)"), async move {
                say_hello(format!("{name} (spawned)"), delay).await
            })
        })
        .collect();
    let mut order = Vec::new();
    for ((name, _), h) in PEOPLE.iter().zip(handles) {
        if h.await.is_ok() {
            order.push(*name);
        }
    }
    crate::say!(
        "handles: results in the order they were awaited: {}",
        order.join(", ")
    );
}

/// Side by side: `join!` runs the three greetings inside one task; `JoinSet`
/// spawns them and hands results back as they finish; `handles` spawns them and
/// awaits the handles in spawn order.
pub async fn run() {
    let tasks = vec![
        crate::spawn("join!", with_join()),
        crate::spawn("JoinSet", with_join_set()),
        crate::spawn("handles", with_handles()),
    ];
    crate::join_all(tasks).await;
}

pub fn explain(t: &Trace) -> Vec<String> {
    let (Some(j), Some(s), Some(h)) = (t.task("join!"), t.task("JoinSet"), t.task("handles"))
    else {
        return vec!["The trace does not hold the demo's tasks.".into()];
    };
    vec![
        format!(
            "join!: one task, one lane; it was polled {} times (once to start all three, then at each timer) and took {}.",
            j.polls,
            secs(t.lifetime(j))
        ),
        format!(
            "JoinSet: three tasks of their own; the set's task was woken {} times by them, once per result, and took {}.",
            s.wakes.task,
            secs(t.lifetime(s))
        ),
        format!(
            "handles: awaited Alice first, so it slept through Bob's end: polled {} times, woken {} times, and took {}. All three ways take the longest wait, not the sum.",
            h.polls,
            h.wakes.task,
            secs(t.lifetime(h))
        ),
    ]
}

//! A bounded channel between a fast producer and a slow consumer: backpressure.

use crate::pace::sleep;
use crate::trace::{secs, Trace};

/// Items sent, and how many the channel holds.
pub const ITEMS: usize = 10;
pub const CAPACITY: usize = 3;
/// Seconds (demo time) the consumer spends on each item.
pub const WORK_SECS: f64 = 0.2;

/// `producer` sends ten items as fast as it can into a channel of three;
/// `consumer` takes 0.2 s over each. Once the channel is full the producer waits
/// until the consumer makes room, and the consumer's `recv` wakes it.
pub async fn run() {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<usize>(CAPACITY);
    let producer = crate::spawn("producer", async move {
        for i in 1..=ITEMS {
            if tx.send(i).await.is_err() {
                return;
            }
            crate::say!("producer: sent item {i}");
        }
        crate::say!("producer: done");
    });
    let consumer = crate::spawn("consumer", async move {
        while let Some(i) = rx.recv().await {
            sleep(WORK_SECS).await;
            crate::say!("consumer: handled item {i}");
        }
        crate::say!("consumer: channel closed, done");
    });
    crate::join_all(vec![producer, consumer]).await;
}

pub fn explain(t: &Trace) -> Vec<String> {
    let (Some(p), Some(c)) = (t.task("producer"), t.task("consumer")) else {
        return vec!["The trace does not hold the demo's tasks.".into()];
    };
    vec![
        format!(
            "The producer was woken {} times by another task (the consumer making room) and finished at {}, just before the consumer at {}: \
             the full channel held it back instead of letting work pile up.",
            p.wakes.task,
            secs(t.ended(p)),
            secs(t.ended(c))
        ),
        if c.wakes.task == 0 {
            format!("The consumer never waited for an item (the channel was never empty); its {} wakes were its own timer.", c.wakes.timer)
        } else {
            format!("The consumer was woken {} times by its timer (its own work) and {} times by the producer (a new item).", c.wakes.timer, c.wakes.task)
        },
    ]
}

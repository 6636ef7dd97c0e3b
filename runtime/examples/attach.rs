//! The one-line attach: `#[looptrace::main]` instead of `#[tokio::main]`.
//!
//! ```sh
//! LOOPTRACE_RECORD=attach.ltrace cargo run -p looptrace --example attach
//! cargo run -p looptrace-cli -- log attach.ltrace
//! ```

use std::time::Duration;

#[looptrace::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let consumer = tokio::spawn(async move {
        let mut total = 0u64;
        while let Some(n) = rx.recv().await {
            total += n;
        }
        total
    });
    for n in 0..10 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.send(n).await.expect("consumer alive");
    }
    drop(tx);
    println!(
        "consumer got {}",
        consumer.await.expect("consumer finished")
    );
}

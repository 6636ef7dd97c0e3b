//! An app instrumented for tokio-console only (console-subscriber): `looptrace
//! attach` reads it. `console-app PORT` serves tokio-console on PORT, runs a task
//! ticking 40 times over a second, and exits.

use std::time::Duration;

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("console-app PORT");
    use tracing_subscriber::prelude::*;
    let layer = console_subscriber::ConsoleLayer::builder()
        .server_addr(([127, 0, 0, 1], port))
        .publish_interval(Duration::from_millis(50))
        .spawn();
    tracing_subscriber::registry().with(layer).init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let t = tokio::task::Builder::new()
            .name("ticker")
            .spawn(async {
                for _ in 0..40 {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            })
            .expect("spawn");
        let _ = t.await;
        // Stay up long enough for the last update to be published.
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
}

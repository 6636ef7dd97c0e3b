//! `looptrace attach`: an unmodified tokio-console app becomes a (coarse) session.

use looptrace_collector::hub::{Hub, HubConfig};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Not a test on its own: the console-instrumented app the test below starts.
#[test]
fn console_app() {
    let Ok(port) = std::env::var("LOOPTRACE_TEST_CONSOLE_PORT") else {
        return;
    };
    use tracing_subscriber::prelude::*;
    let layer = console_subscriber::ConsoleLayer::builder()
        .server_addr(([127, 0, 0, 1], port.parse::<u16>().unwrap()))
        .publish_interval(Duration::from_millis(50))
        .spawn();
    tracing_subscriber::registry().with(layer).init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let t = tokio::task::Builder::new()
            .name("ticker")
            .spawn(async {
                for _ in 0..40 {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            })
            .unwrap();
        t.await.unwrap();
        // Stay up long enough for the last update to be published.
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
}

#[test]
fn a_console_app_becomes_a_coarse_session() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut app = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "console_app", "--test-threads=1"])
        .env("LOOPTRACE_TEST_CONSOLE_PORT", port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let hub = Hub::new(HubConfig::default());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = format!("http://127.0.0.1:{port}");
    let attached = rt.block_on(async {
        let started = Instant::now();
        loop {
            match looptrace_collector::attach::attach(hub.clone(), &target).await {
                Ok(id) => return id,
                Err(e) if started.elapsed() < Duration::from_secs(10) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
    });
    app.wait().unwrap();
    let (capture, ticker) = hub
        .with_session(attached, |s| {
            let t = s
                .model
                .tasks
                .values()
                .find(|t| &*t.name == "ticker")
                .map(|t| (t.polls, t.wakes.total(), t.busy_ns, t.outcome));
            (
                looptrace_collector::hub::session_summary(s)["capture"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                t,
            )
        })
        .unwrap();
    assert!(capture.starts_with("console (coarse"), "{capture}");
    let (polls, wakes, busy, outcome) = ticker.expect("the ticker task, by name");
    // 41 polls of the future; console also counts the span entered to drop it.
    assert_eq!(polls, 42, "the session counts what console counts");
    assert_eq!(wakes, 40);
    assert!(busy > 0);
    assert_eq!(outcome, Some(looptrace_wire::Outcome::Completed));
}

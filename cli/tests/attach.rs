//! `looptrace attach`: an unmodified tokio-console app becomes a (coarse) session.

use looptrace_collector::hub::{Hub, HubConfig};
use looptrace_test_support::example;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_console_app_becomes_a_coarse_session() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut app = Command::new(example("console-app"))
        .arg(port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let hub = Hub::new(HubConfig::default());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = format!("http://127.0.0.1:{port}");
    let attached = rt.block_on(async {
        let started = Instant::now();
        loop {
            match looptrace_cli::attach::attach(hub.clone(), &target).await {
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
                looptrace_collector::to_api::capture(s.source).to_string(),
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

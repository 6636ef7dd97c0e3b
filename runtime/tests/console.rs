//! looptrace as a layer beside tokio-console's: both keep working.
//! (Its own test binary: it installs a global subscriber.)

mod common;
use common::*;
use console_api::instrument::{instrument_client::InstrumentClient, InstrumentRequest};
use looptrace::wire::{decode_frame, EventKind, Frame, WakeSource};
use std::time::Duration;
use tracing_subscriber::prelude::*;

#[test]
fn works_beside_tokio_console() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let console = console_subscriber::ConsoleLayer::builder()
        .server_addr(([127, 0, 0, 1], port))
        .publish_interval(Duration::from_millis(50))
        .spawn();
    tracing_subscriber::registry()
        .with(console)
        .with(looptrace::layer())
        .init();

    let mem = Memory::default();
    let rt = looptrace::Builder::new_multi_thread()
        .worker_threads(2)
        .from_env(false)
        .sink(mem.clone())
        .build()
        .unwrap();
    let seen_by_console = rt.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u8>(1);
        let receiver = tokio::task::Builder::new()
            .name("console-visible")
            .spawn(async move { rx.recv().await })
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        tokio::task::Builder::new()
            .name("sender")
            .spawn(async move { tx.send(1).await.unwrap() })
            .unwrap()
            .await
            .unwrap();
        receiver.await.unwrap();

        // tokio-console's server still answers, and knows our task.
        let mut client = None;
        for _ in 0..50 {
            match InstrumentClient::connect(format!("http://127.0.0.1:{port}")).await {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let mut client = client.expect("console server reachable");
        let mut updates = client
            .watch_updates(InstrumentRequest {})
            .await
            .unwrap()
            .into_inner();
        let mut seen = String::new();
        for _ in 0..20 {
            match tokio::time::timeout(Duration::from_secs(2), updates.message()).await {
                Ok(Ok(Some(u))) => {
                    seen.push_str(&format!("{:?}", u.task_update));
                    if seen.contains("console-visible") {
                        break;
                    }
                }
                _ => break,
            }
        }
        seen.contains("console-visible")
    });
    rt.shutdown();
    assert!(seen_by_console, "tokio-console lists the task");

    let mut events = Vec::new();
    for f in mem.0.lock().unwrap().iter() {
        if let Frame::Events(mut e) = decode_frame(f).unwrap() {
            events.append(&mut e);
        }
    }
    let id = |name: &str| {
        events
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::Spawn(s) if s.name.as_deref() == Some(name) => Some(s.task),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name} captured"))
    };
    let (rx, tx) = (id("console-visible"), id("sender"));
    let wakes: Vec<_> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Waker {
                task,
                op: looptrace::wire::WakeOp::Wake | looptrace::wire::WakeOp::WakeByRef,
                by,
            } if task == rx => Some(by),
            _ => None,
        })
        .collect();
    assert_eq!(
        wakes,
        [WakeSource::Task(tx)],
        "looptrace captured the wake through its layer"
    );
}

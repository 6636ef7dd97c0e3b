//! A collector that is unreachable, or dies mid-run: the app is not held up, and
//! what did not arrive is counted and reported.

mod common;
use common::serial;
use looptrace::Builder;
use std::net::TcpListener;
use std::time::{Duration, Instant};

async fn workload() {
    let hs: Vec<_> = (0..50)
        .map(|_| {
            tokio::spawn(async {
                for _ in 0..20 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
}

#[test]
fn unreachable_collector_counts_undelivered_events() {
    let _s = serial();
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
        .from_env(false)
        .collector(format!("127.0.0.1:{port}"))
        .build()
        .unwrap();
    let started = Instant::now();
    rt.block_on(workload());
    let ran = started.elapsed();
    let report = rt.shutdown();
    assert!(ran < Duration::from_secs(3), "the app was held up: {ran:?}");
    assert!(report.events > 1000, "{report:?}");
    assert_eq!(
        report.dropped_unsent, report.events,
        "nothing arrived, all counted: {report:?}"
    );
}

#[test]
fn collector_killed_mid_run() {
    let _s = serial();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A collector that takes the header and two frames, then dies.
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(stream).unwrap();
        let mut frames = 0;
        while frames < 3 {
            match ws.read() {
                Ok(tungstenite::Message::Binary(b)) => {
                    looptrace::wire::decode_frame(&b).expect("valid frame");
                    frames += 1;
                }
                Ok(_) => {}
                Err(e) => panic!("collector read failed: {e}"),
            }
        }
        drop(ws);
        drop(listener);
        frames
    });
    let rt = Builder::new_current_thread()
        .from_env(false)
        .collector(format!("ws://{addr}/ingest"))
        .build()
        .unwrap();
    rt.block_on(async {
        workload().await;
        // Keep producing after the collector is gone.
        tokio::time::sleep(Duration::from_millis(300)).await;
        workload().await;
    });
    let report = rt.shutdown();
    assert_eq!(server.join().unwrap(), 3);
    assert!(report.dropped_unsent > 0, "{report:?}");
    assert!(
        report.dropped_unsent < report.events,
        "the first frames were delivered: {report:?}"
    );
}

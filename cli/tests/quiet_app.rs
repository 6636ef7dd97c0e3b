//! A live app that goes quiet after a task lost its waker: the collector raises
//! the lost waker once the grace period has passed, with nothing more sent, and a
//! watching viewer hears of it.

use looptrace_collector::hub::{HubConfig, Source};
use looptrace_test_support::*;
use looptrace_wire::{encode_header, Event, EventKind, Header, ThreadRole, WakeOp, WakeSource};
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_waker_in_a_quiet_live_app_is_raised_and_sent() {
    let (addr, hub) = start(HubConfig::default(), Default::default());
    // The app's clock starts now: its events arrive as they happen.
    let origin = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let header = Header {
        clock_origin_unix_ns: origin,
        ..looptrace_test_support::header("quiet")
    };
    let mut frame = Vec::new();
    encode_header(&header, &mut frame);
    let id = hub.open(header, &frame, Source::Live);
    let mut viewer = connect(addr, "/ws/view").await;
    send_json(&mut viewer, json!({"op": "subscribe", "session": id})).await;
    next_of(&mut viewer, "subscribed", Duration::from_secs(5))
        .await
        .expect("subscribed");
    let ev = |ts_ns, kind| Event {
        ts_ns,
        thread: 0,
        kind,
    };
    hub.ingest(
        id,
        &[
            ev(
                1,
                EventKind::Thread {
                    role: ThreadRole::Worker(0),
                    name: "main".into(),
                },
            ),
            // Another task's waker: the app's wakers are captured.
            ev(
                2,
                EventKind::Waker {
                    task: 9,
                    op: WakeOp::Clone,
                    by: WakeSource::External,
                },
            ),
            spawn_ev(10, 1, "forgetful"),
            ev(20, EventKind::PollStart { task: 1 }),
            ev(
                30,
                EventKind::PollEnd {
                    task: 1,
                    ready: false,
                    clones: 0,
                    drops: 0,
                    context: None,
                },
            ),
        ],
    );
    // Nothing more comes; within a few stats ticks the viewer hears of it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let batch = next_of(&mut viewer, "batch", remaining)
            .await
            .expect("a batch with the lost waker, with no events sent");
        let warnings = batch["warnings"].as_array().cloned().unwrap_or_default();
        if let Some(w) = warnings.iter().find(|w| w["kind"] == "lost_waker") {
            assert_eq!(w["task_name"], "forgetful");
            break;
        }
    }
    let (status, list) = get(addr, &format!("/api/sessions/{id}/warnings"));
    assert_eq!(status, 200);
    assert_eq!(list["warnings"][0]["kind"], "lost_waker");
}

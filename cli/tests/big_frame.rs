//! One frame of a million events, as large as the wire allows: ingested whole and
//! exactly, while the API keeps answering.

use looptrace_collector::hub::{HubConfig, WindowReply};
use looptrace_collector::server::ServerConfig;
use looptrace_test_support::*;
use looptrace_wire::TaskState;
use looptrace_wire::*;
use std::time::Duration;

/// 1000 tasks spawned, then polled in turn, each poll followed by a timer wake;
/// parks to make up a million events.
fn million() -> Vec<Event> {
    let mut events = Vec::with_capacity(1_000_000);
    let mut ts = 0u64;
    let tasks = 1000u64;
    for t in 1..=tasks {
        events.push(spawn_ev(ts, t, &format!("t{t}")));
        ts += 10;
    }
    'outer: loop {
        for t in 1..=tasks {
            if events.len() + 3 > 1_000_000 {
                break 'outer;
            }
            events.push(Event {
                ts_ns: ts,
                thread: 0,
                kind: EventKind::PollStart { task: t },
            });
            events.push(Event {
                ts_ns: ts + 5,
                thread: 0,
                kind: EventKind::PollEnd {
                    task: t,
                    ready: false,
                    clones: 1,
                    drops: 0,
                    context: None,
                },
            });
            events.push(Event {
                ts_ns: ts + 7,
                thread: 0,
                kind: EventKind::Waker {
                    task: t,
                    op: WakeOp::Wake,
                    by: WakeSource::Timer,
                },
            });
            ts += 10;
        }
    }
    while events.len() < 1_000_000 {
        events.push(Event {
            ts_ns: ts,
            thread: 0,
            kind: EventKind::Park,
        });
        ts += 1;
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_events_in_one_frame_are_ingested_while_the_api_answers() {
    let (addr, hub) = start(HubConfig::default(), ServerConfig::default());
    let events = million();
    let frame = events_frame(&events);
    assert!(frame.len() <= ServerConfig::default().max_frame_bytes);
    let mut app = connect(addr, "/ingest").await;
    send_bin(&mut app, header_frame("big")).await;
    send_bin(&mut app, frame).await;
    // While it is ingested, the session list answers, and shows it part way.
    let mut seen_part_way = None;
    let mut done = false;
    for _ in 0..2000 {
        let (status, body) = tokio::task::spawn_blocking(move || get(addr, "/api/sessions"))
            .await
            .unwrap();
        assert_eq!(status, 200);
        let n = body["sessions"][0]["events"].as_u64().unwrap_or(0);
        if n > 0 && n < 1_000_000 {
            seen_part_way.get_or_insert(n);
        }
        if n == 1_000_000 {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(done, "the frame was ingested");
    assert!(
        seen_part_way.is_some(),
        "the API answered while the frame was being ingested"
    );
    let id = hub.session_ids()[0];
    let (polls, tasks, retained) = hub
        .with_session(id, |s| {
            let polls: u64 = s.model.tasks.values().map(|t| t.polls).sum();
            let wakes: u64 = s.model.tasks.values().map(|t| t.wakes.timer).sum();
            assert_eq!(
                wakes, polls,
                "every poll but the first follows a timer wake, and one more wake"
            );
            (polls, s.model.tasks.len(), s.store.retained())
        })
        .unwrap();
    let expected_polls = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::PollStart { .. }))
        .count() as u64;
    assert_eq!((polls, tasks, retained), (expected_polls, 1000, 1_000_000));
    // The intervals of one task, over the whole frame, as the events say.
    let WindowReply::Full(w) = hub.window(id, 0, u64::MAX, usize::MAX, 1).unwrap() else {
        panic!("full detail asked")
    };
    let running = w
        .intervals
        .iter()
        .filter(|i| i.task == 7 && i.state == TaskState::Running)
        .count() as u64;
    let polls_of_7 = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::PollStart { task: 7 }))
        .count() as u64;
    assert_eq!(running, polls_of_7);
}

//! Every kind of message the collector sends a viewer, and every API reply, reads
//! back as `looptrace-api`'s types and writes out as the same JSON: nothing the
//! collector sends is missing from the protocol crate, renamed, or left out.

use futures_util::StreamExt;
use looptrace_api as api;
use looptrace_api::Message;
use looptrace_collector::hub::{Hub, HubConfig, Source};
use looptrace_collector::replay::ReplayControl;
use looptrace_test_support::*;
use looptrace_wire::{Event, EventKind, RawRecording};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hello.ltrace");

/// Reads `text` as a `T` and writes it out again: the same JSON, or a failure
/// naming what differs.
fn round_trip<T: DeserializeOwned + Serialize>(text: &str) -> T {
    let sent: Value = serde_json::from_str(text).expect("JSON");
    let typed: T = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("does not read as the protocol's type: {e}\n{text:.600}"));
    // Through text, as a viewer would see it (f32 shares print as they were sent).
    let again: Value = serde_json::from_str(&serde_json::to_string(&typed).unwrap()).unwrap();
    assert_eq!(again, sent, "written back differently:\n{text:.600}");
    typed
}

/// The message's kind, by an exhaustive match: a new kind of message does not
/// compile here until this test covers it.
fn kind(m: &Message) -> &'static str {
    match m {
        Message::Sessions { .. } => "sessions",
        Message::Subscribed { .. } => "subscribed",
        Message::Unsubscribed => "unsubscribed",
        Message::Batch(_) => "batch",
        Message::Window(w) => match w.window {
            api::WindowReply::Full(_) => "window full",
            api::WindowReply::Aggregate(_) => "window aggregate",
        },
        Message::Snapshot(_) => "snapshot",
        Message::Task(_) => "task",
        Message::Stats(_) => "stats",
        Message::Replay { .. } => "replay",
        Message::Lagged { .. } => "lagged",
        Message::Error { .. } => "error",
    }
}

const EVERY_KIND: [&str; 12] = [
    "sessions",
    "subscribed",
    "unsubscribed",
    "batch",
    "window full",
    "window aggregate",
    "snapshot",
    "task",
    "stats",
    "replay",
    "lagged",
    "error",
];

/// A viewer that checks every message it reads.
struct Viewer {
    ws: Ws,
    seen: BTreeSet<&'static str>,
}

impl Viewer {
    async fn next(&mut self) -> Message {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a message within 10 s")
                .expect("the socket is open")
                .expect("a frame");
            if let WsMessage::Text(t) = msg {
                let m: Message = round_trip(&t);
                self.seen.insert(kind(&m));
                return m;
            }
        }
    }

    /// Reads (checking each) until `want` matches one.
    async fn until(&mut self, want: impl Fn(&Message) -> bool) -> Message {
        loop {
            let m = self.next().await;
            if want(&m) {
                return m;
            }
        }
    }

    async fn ask(&mut self, r: Value) {
        // What the viewer sends is a request of the protocol too.
        serde_json::from_value::<api::Request>(r.clone())
            .unwrap_or_else(|e| panic!("not a request: {e}: {r}"));
        send_json(&mut self.ws, r).await;
    }
}

/// A session with a warning and a mark besides the replayed hello run.
fn troubled_session(hub: &Hub) -> u64 {
    let id = hub.open(header("troubled"), &header_frame("troubled"), Source::Live);
    let mut events = vec![spawn_ev(0, 1, "blocker")];
    events.push(Event {
        ts_ns: 10,
        thread: 0,
        kind: EventKind::Mark {
            label: "the blocking part".into(),
        },
    });
    events.push(Event {
        ts_ns: 1_000,
        thread: 0,
        kind: EventKind::PollStart { task: 1 },
    });
    // A 30 ms poll: a blocking-poll warning.
    events.push(Event {
        ts_ns: 30_001_000,
        thread: 0,
        kind: EventKind::PollEnd {
            task: 1,
            ready: false,
            clones: 1,
            drops: 0,
            context: None,
        },
    });
    hub.ingest(id, &events);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_and_reply_reads_back_as_the_protocol_types() {
    let hub = Hub::new(HubConfig::default());
    let troubled = troubled_session(&hub);
    let control = ReplayControl::new(50.0, true);
    let rec = RawRecording::open(FIXTURE).expect("fixture reads");
    let addr = serve_replay(hub.clone(), rec, control);
    let mut v = Viewer {
        ws: connect(addr, "/ws/view").await,
        seen: BTreeSet::new(),
    };
    // The replay's session, opened paused.
    let replayed = loop {
        if let Message::Sessions { sessions, replay } = v.next().await {
            assert!(replay.is_some_and(|r| r.paused));
            if let Some(s) = sessions.iter().find(|s| s.source == api::Source::Replay) {
                break s.id;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
        v.ask(json!({"op": "subscribe"})).await;
    };
    v.ask(json!({"op": "subscribe", "session": replayed})).await;
    v.until(|m| matches!(m, Message::Subscribed { session: Some(s) } if *s == replayed))
        .await;
    v.ask(json!({"op": "replay", "action": "play"})).await;
    v.until(|m| matches!(m, Message::Replay { replay } if !replay.paused))
        .await;
    // Live batches with their events and intervals, as the replay plays.
    v.until(|m| matches!(m, Message::Batch(b) if b.events.is_some() && b.intervals.is_some()))
        .await;
    v.until(|m| matches!(m, Message::Stats(s) if s.session == replayed))
        .await;
    for (max_intervals, detail) in [(100_000, "window full"), (0, "window aggregate")] {
        v.ask(json!({"op": "window", "id": 7, "session": replayed, "start_ns": 0, "end_ns": 10_000_000_000u64, "max_intervals": max_intervals, "buckets": 50})).await;
        let w = v.until(|m| matches!(m, Message::Window(_))).await;
        assert_eq!(kind(&w), detail);
    }
    v.ask(json!({"op": "snapshot", "session": troubled})).await;
    let Message::Snapshot(snap) = v.until(|m| matches!(m, Message::Snapshot(_))).await else {
        unreachable!()
    };
    assert_eq!(snap.warnings.len(), 1, "the blocking poll");
    assert_eq!(snap.marks.len(), 1);
    v.ask(json!({"op": "task", "session": troubled, "task": 1}))
        .await;
    v.until(
        |m| matches!(m, Message::Task(t) if t.detail.task.id == 1 && !t.recent_polls.is_empty()),
    )
    .await;
    send_json(&mut v.ws, json!({"op": "frobnicate"})).await;
    v.until(|m| matches!(m, Message::Error { .. })).await;
    v.ask(json!({"op": "window", "id": 9, "session": 99, "start_ns": 0, "end_ns": 5}))
        .await;
    v.until(|m| matches!(m, Message::Error { id: Some(9), .. }))
        .await;
    v.ask(json!({"op": "unsubscribe"})).await;
    v.until(|m| matches!(m, Message::Unsubscribed)).await;

    // A viewer too slow for the updates hears what it missed.
    let (live, live_hub) = start(HubConfig::default(), Default::default());
    let mut slow = Viewer {
        ws: connect(live, "/ws/view").await,
        seen: BTreeSet::new(),
    };
    slow.ask(json!({"op": "subscribe"})).await;
    slow.until(|m| matches!(m, Message::Subscribed { .. }))
        .await;
    let feeder = std::thread::spawn(move || {
        let id = live_hub.open(header("busy"), &header_frame("busy"), Source::Live);
        let mut ts = 0;
        // More batches than the update channel holds, each bigger than a socket
        // buffer takes in a few: the viewer, not reading, falls behind.
        for _ in 0..1600 {
            let mut events = Vec::new();
            for _ in 0..100 {
                events.push(spawn_ev(ts, ts + 1, "short-lived"));
                ts += 10;
            }
            live_hub.ingest(id, &events);
        }
    });
    tokio::task::spawn_blocking(move || feeder.join().unwrap())
        .await
        .unwrap();
    slow.until(|m| matches!(m, Message::Lagged { skipped } if *skipped > 0))
        .await;
    finish(slow.ws).await;

    let seen: BTreeSet<_> = v.seen.union(&slow.seen).copied().collect();
    assert_eq!(
        seen,
        EVERY_KIND.into_iter().collect(),
        "every kind of message"
    );

    // The REST API's replies.
    let rest = |path: &str| request(addr, path, &[("Host", &addr.to_string())]);
    let check = |path: &str, want: u16| {
        let (status, text) = rest(path);
        assert_eq!(status, want, "{path}: {text}");
        text
    };
    round_trip::<api::Health>(&check("/api/health", 200));
    round_trip::<api::SessionList>(&check("/api/sessions", 200));
    for id in [replayed, troubled] {
        round_trip::<api::TaskPage>(&check(&format!("/api/sessions/{id}/tasks"), 200));
        round_trip::<api::WarningList>(&check(&format!("/api/sessions/{id}/warnings"), 200));
        round_trip::<api::MarkList>(&check(&format!("/api/sessions/{id}/marks"), 200));
        round_trip::<api::Stats>(&check(&format!("/api/sessions/{id}/stats"), 200));
        for q in ["max_intervals=100000", "max_intervals=0&buckets=20"] {
            round_trip::<api::WindowReply>(&check(&format!("/api/sessions/{id}/window?{q}"), 200));
        }
    }
    round_trip::<api::TaskDetail>(&check(&format!("/api/sessions/{troubled}/tasks/1"), 200));
    round_trip::<api::ErrorBody>(&check("/api/sessions/99/stats", 404));
    round_trip::<api::ErrorBody>(&check("/api/sessions/x/stats", 400));
    finish(v.ws).await;
}

//! The collector as a service: many apps, viewers, bad input, limits.

use looptrace_collector::hub::HubConfig;
use looptrace_collector::server::ServerConfig;
use looptrace_test_support::*;
use looptrace_wire::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

fn run_app(addr: std::net::SocketAddr, names: &str) -> std::process::Child {
    Command::new(example("traced-app"))
        .arg(names)
        .env("LOOPTRACE_ADDR", addr.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn two_apps_at_once_make_two_sessions_each_with_its_own_tasks() {
    let (addr, _hub) = start(HubConfig::default(), ServerConfig::default());
    let mut a = run_app(addr, "alpha-1,alpha-2");
    let mut b = run_app(addr, "beta-1,beta-2,beta-3");
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    // The collector notices each disconnect a moment after the app exits.
    let mut v = serde_json::Value::Null;
    for _ in 0..100 {
        let (status, now) = get(addr, "/api/sessions");
        assert_eq!(status, 200);
        v = now;
        if v["sessions"]
            .as_array()
            .is_some_and(|s| s.len() == 2 && s.iter().all(|s| s["live"] == false))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let sessions = v["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{v}");
    let mut seen = BTreeSet::new();
    for s in sessions {
        assert_eq!(s["flavor"], "current_thread");
        assert_eq!(s["live"], false, "disconnected when the app ended");
        let id = s["id"].as_u64().unwrap();
        let (_, tasks) = get(addr, &format!("/api/sessions/{id}/tasks"));
        let names: BTreeSet<String> = tasks["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        assert!(
            names == ["alpha-1", "alpha-2"].map(String::from).into()
                || names == ["beta-1", "beta-2", "beta-3"].map(String::from).into(),
            "{names:?}"
        );
        for t in tasks["tasks"].as_array().unwrap() {
            assert_eq!(t["polls"], 16, "{t}");
            assert_eq!(t["state"], "done");
            assert_eq!(t["wakes"]["timer"], 15);
        }
        seen.insert(names.into_iter().next().unwrap());
        let (status, stats) = get(addr, &format!("/api/sessions/{id}/stats"));
        assert_eq!(status, 200);
        assert_eq!(stats["workers"].as_array().unwrap().len(), 1);
        let (status, w) = get(addr, &format!("/api/sessions/{id}/warnings"));
        assert_eq!(status, 200);
        assert_eq!(w["warnings"], json!([]));
    }
    assert_eq!(seen.len(), 2);
    assert_eq!(get(addr, "/api/sessions/99/tasks").0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_get_live_updates_fast_and_windows_at_two_levels() {
    let (addr, _hub) = start(HubConfig::default(), ServerConfig::default());
    let mut viewer = connect(addr, "/ws/view").await;
    assert!(next_of(&mut viewer, "sessions", Duration::from_secs(2))
        .await
        .is_some());
    send_json(&mut viewer, json!({"op": "subscribe"})).await;
    assert!(next_of(&mut viewer, "subscribed", Duration::from_secs(2))
        .await
        .is_some());

    let mut app = connect(addr, "/ingest").await;
    send_bin(&mut app, header_frame("live")).await;
    let mut events = vec![spawn_ev(1_000, 7, "watched")];
    for i in 0..50 {
        events.extend(poll_evs(2_000 + i * 1_000, 7));
    }
    events.push(looptrace_wire::Event {
        ts_ns: 52_000,
        thread: 0,
        kind: looptrace_wire::EventKind::Mark {
            label: "done polling".into(),
        },
    });
    let sent = Instant::now();
    send_bin(&mut app, events_frame(&events)).await;
    let batch = next_of(&mut viewer, "batch", Duration::from_secs(2))
        .await
        .expect("a live batch");
    let latency = sent.elapsed();
    assert!(
        latency < Duration::from_millis(100),
        "update took {latency:?}"
    );
    assert_eq!(batch["tasks"][0]["name"], "watched");
    assert_eq!(batch["tasks"][0]["polls"], 50);
    assert_eq!(batch["events"].as_array().unwrap().len(), 102);
    assert_eq!(
        batch["marks"],
        json!([{"at_ns": 52_000, "thread": 0, "label": "done polling"}])
    );
    // The intervals the batch closed: scheduled, then running/idle for each poll
    // (the last idle one is still open).
    let live: Vec<_> = batch["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(live.len(), 1 + 50 + 49, "{live:?}");
    assert_eq!(live[0], "scheduled");
    assert_eq!(live.iter().filter(|p| *p == "running").count(), 50);
    let session = batch["session"].as_u64().unwrap();

    // Full detail: 50 running + 50 idle + 1 scheduled intervals.
    send_json(&mut viewer, json!({"op": "window", "id": 1, "session": session, "start_ns": 0, "end_ns": 60_000, "max_intervals": 1000})).await;
    let full = next_of(&mut viewer, "window", Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(full["detail"], "full");
    assert_eq!(full["id"], 1);
    let intervals = full["intervals"].as_array().unwrap();
    assert_eq!(
        intervals.iter().filter(|i| i["state"] == "running").count(),
        50
    );
    // Zoomed out: too many intervals for the limit, so buckets.
    send_json(&mut viewer, json!({"op": "window", "id": 2, "session": session, "start_ns": 0, "end_ns": 60_000, "max_intervals": 10, "buckets": 6})).await;
    let agg = next_of(&mut viewer, "window", Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(agg["detail"], "aggregate");
    assert_eq!(agg["bucket_ns"], 10_000);
    let polls: u64 = agg["tasks"][0]["polls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .sum();
    assert_eq!(polls, 50);
    let running = agg["tasks"][0]["running"][1].as_f64().unwrap();
    assert!(
        (running - 0.1).abs() < 1e-6,
        "10 polls of 100 ns in a 10 µs bucket: {running}"
    );

    // A snapshot of the session, and one task in detail with its recent polls.
    send_json(&mut viewer, json!({"op": "snapshot", "session": session})).await;
    let snap = next_of(&mut viewer, "snapshot", Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(snap["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(snap["stats"]["events"], 102);
    assert_eq!(snap["marks"][0]["label"], "done polling");
    let (status, marks) = get(addr, &format!("/api/sessions/{session}/marks"));
    assert_eq!(status, 200);
    assert_eq!(marks["marks"][0]["at_ns"], 52_000);
    send_json(
        &mut viewer,
        json!({"op": "task", "session": session, "task": 7}),
    )
    .await;
    let task = next_of(&mut viewer, "task", Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(task["name"], "watched");
    let recent = task["recent_polls"].as_array().unwrap();
    assert_eq!(recent.len(), 20, "the last 20 polls");
    assert_eq!(recent[19]["start_ns"], 51_000);
    assert!(task["poll_histogram"]
        .as_array()
        .is_some_and(|h| !h.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_viewer_does_not_slow_ingest_or_other_viewers() {
    let (addr, hub) = start(HubConfig::default(), ServerConfig::default());
    // A viewer that subscribes and then never reads.
    let mut stalled = connect(addr, "/ws/view").await;
    send_json(&mut stalled, json!({"op": "subscribe"})).await;
    let mut active = connect(addr, "/ws/view").await;
    send_json(&mut active, json!({"op": "subscribe"})).await;
    assert!(next_of(&mut active, "subscribed", Duration::from_secs(2))
        .await
        .is_some());

    let mut app = connect(addr, "/ingest").await;
    send_bin(&mut app, header_frame("flood")).await;
    let frames = 400u64;
    let per = 1000u64;
    let mut ts = 0;
    for f in 0..frames {
        let mut evs = Vec::new();
        if f == 0 {
            evs.push(spawn_ev(0, 1, "busy"));
        }
        while (evs.len() as u64) < per {
            ts += 1_000;
            evs.extend(poll_evs(ts, 1));
        }
        send_bin(&mut app, events_frame(&evs)).await;
    }
    // Ingest took everything, whatever the stalled viewer does.
    let deadline = Instant::now() + Duration::from_secs(20);
    // (the first frame also holds the spawn)
    let total = frames * per + 1;
    while hub.counters.events.load(Relaxed) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hub.counters.events.load(Relaxed), total);
    // The active viewer saw batches up to the last one (or was told what it skipped).
    let mut batches = 0u64;
    let mut skipped = 0u64;
    let mut last_polls = 0;
    while batches + skipped < frames {
        let Some(msg) = next_any(&mut active).await else {
            break;
        };
        match msg["type"].as_str() {
            Some("batch") => {
                batches += 1;
                last_polls = msg["tasks"][0]["polls"].as_u64().unwrap_or(last_polls);
            }
            Some("lagged") => skipped += msg["skipped"].as_u64().unwrap(),
            _ => {}
        }
    }
    assert_eq!(
        batches + skipped,
        frames,
        "every batch delivered or accounted for"
    );
    assert_eq!(
        last_polls,
        frames * per / 2,
        "the newest state reached the active viewer"
    );
    let lagged = hub.counters.viewer_lagged.load(Relaxed);
    assert_eq!(lagged, skipped, "what the active viewer skipped is counted");
    drop(stalled);
}

async fn next_any(ws: &mut Ws) -> Option<serde_json::Value> {
    use futures_util::StreamExt;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .ok()??
            .ok()?;
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            return serde_json::from_str(&t).ok();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_clearly_and_others_keep_being_served() {
    let (addr, hub) = start(
        HubConfig::default(),
        ServerConfig {
            max_frame_bytes: 64 << 10,
            ..ServerConfig::default()
        },
    );
    let mut good = connect(addr, "/ingest").await;
    send_bin(&mut good, header_frame("good")).await;
    send_bin(&mut good, events_frame(&[spawn_ev(1, 1, "fine")])).await;

    // Malformed frames: counted, and the tenth closes the connection with a reason.
    let mut junk = connect(addr, "/ingest").await;
    send_bin(&mut junk, header_frame("junk")).await;
    for _ in 0..10 {
        send_bin(&mut junk, vec![WIRE_VERSION, 2, 0xff, 0xff]).await;
    }
    let (code, reason) = closed(&mut junk).await.expect("closed with a reason");
    assert_eq!(code, 1007);
    assert!(reason.contains("malformed"), "{reason}");

    // Another version of the protocol.
    let mut future = connect(addr, "/ingest").await;
    send_bin(&mut future, vec![9, 1, 0]).await;
    let (code, reason) = closed(&mut future).await.expect("closed with a reason");
    assert_eq!(code, 1008);
    assert!(reason.contains("unsupported wire version 9"), "{reason}");

    // A frame over the limit ends the connection: "message too big".
    let mut big = connect(addr, "/ingest").await;
    send_bin(&mut big, header_frame("big")).await;
    let _ = futures_util::SinkExt::send(
        &mut big,
        tokio_tungstenite::tungstenite::Message::Binary(vec![0u8; 100 << 10].into()),
    )
    .await;
    let (code, reason) = closed(&mut big).await.expect("closed with a reason");
    assert_eq!(code, 1009);
    assert!(reason.contains("65536 bytes"), "{reason}");

    // The good app is still served.
    send_bin(&mut good, events_frame(&poll_evs(10, 1))).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, v) = tokio::task::spawn_blocking(move || get(addr, "/api/sessions"))
        .await
        .unwrap();
    let good_session = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["process"] == "good")
        .unwrap()
        .clone();
    assert_eq!(good_session["events"], 3);
    let junk_session = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["process"] == "junk")
        .unwrap()
        .clone();
    assert_eq!(junk_session["bad_frames"], 10);
    assert!(
        hub.counters.bad_frames.load(Relaxed) >= 12,
        "junk, version and oversize counted"
    );
    assert_eq!(
        v["counters"]["bad_frames"].as_u64().unwrap(),
        hub.counters.bad_frames.load(Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_required_when_set() {
    let (addr, hub) = start(
        HubConfig::default(),
        ServerConfig {
            token: Some("s3cret".into()),
            ..ServerConfig::default()
        },
    );
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{addr}/ingest"))
            .await
            .is_err()
    );
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{addr}/ingest?token=wrong"))
            .await
            .is_err()
    );
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws/view"))
            .await
            .is_err()
    );
    let (status, body) = tokio::task::spawn_blocking(move || get(addr, "/api/sessions"))
        .await
        .unwrap();
    assert_eq!(status, 401);
    assert!(body["error"].as_str().unwrap().contains("token"));
    assert_eq!(hub.counters.rejected_connections.load(Relaxed), 4);
    let mut ok = connect(addr, "/ingest?token=s3cret").await;
    send_bin(&mut ok, header_frame("authorised")).await;
    let (status, _) = tokio::task::spawn_blocking(move || get(addr, "/api/sessions?token=s3cret"))
        .await
        .unwrap();
    assert_eq!(status, 200);
}

#[test]
fn the_store_stays_within_its_budget_and_reports_eviction() {
    let budget = 200_000;
    let (addr, hub) = start(
        HubConfig {
            memory_budget: budget,
            ..HubConfig::default()
        },
        ServerConfig::default(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut app = connect(addr, "/ingest").await;
        send_bin(&mut app, header_frame("big")).await;
        let mut ts = 0;
        let mut evs = vec![spawn_ev(0, 1, "t")];
        for _ in 0..100 {
            while evs.len() < 2000 {
                ts += 1000;
                evs.extend(poll_evs(ts, 1));
            }
            send_bin(&mut app, events_frame(&evs)).await;
            evs.clear();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while hub.counters.events.load(Relaxed) < 200_001 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let (_, s) = get(addr, "/api/sessions/1/stats");
    let store = &s["store"];
    assert!(
        store["memory_bytes"].as_u64().unwrap() <= budget as u64,
        "{store}"
    );
    assert!(store["evicted_events"].as_u64().unwrap() > 0, "{store}");
    assert!(
        store["bytes_per_event"].as_f64().unwrap() <= 16.0,
        "{store}"
    );
    assert_eq!(
        store["retained_events"].as_u64().unwrap() + store["evicted_events"].as_u64().unwrap(),
        200_001
    );
    // The model still counts every poll.
    let (_, t) = get(addr, "/api/sessions/1/tasks/1");
    assert_eq!(t["polls"], 100_000);
    assert!(t["poll_histogram"]
        .as_array()
        .is_some_and(|h| !h.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_sockets_only_from_the_collectors_own_origin() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (addr, hub) = start(HubConfig::default(), ServerConfig::default());
    let with_origin = |origin: &str| {
        let mut req = format!("ws://{addr}/ws/view")
            .into_client_request()
            .unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        req
    };
    assert!(
        tokio_tungstenite::connect_async(with_origin("http://evil.example"))
            .await
            .is_err()
    );
    assert_eq!(hub.counters.rejected_connections.load(Relaxed), 1);
    let (mut ok, _) = tokio_tungstenite::connect_async(with_origin(&format!("http://{addr}")))
        .await
        .expect("own origin accepted");
    assert!(next_of(&mut ok, "sessions", Duration::from_secs(2))
        .await
        .is_some());
}

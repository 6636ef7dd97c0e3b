//! A busy program streamed to a collector and recorded at once: replaying the
//! recording, and exporting it, give the same tasks, polls and wakes as the live
//! session did.

use looptrace_collector::export::write_jsonl;
use looptrace_collector::hub::{Hub, HubConfig};
use looptrace_collector::model::{Model, WakeCounts};
use looptrace_collector::replay::{replay, ReplayControl};
use looptrace_collector::server::ServerConfig;
use looptrace_collector::Session;
use looptrace_wire::{RawRecording, Recording};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Per task: name, polls and wakes by source.
fn reading(m: &Model) -> BTreeMap<u64, (String, u64, WakeCounts)> {
    m.tasks
        .values()
        .map(|t| (t.id, (t.name.to_string(), t.polls, t.wakes)))
        .collect()
}

/// Hundreds of tasks passing messages, yielding and sleeping: some 300 000 events.
async fn busy() {
    let mut tasks = Vec::new();
    for p in 0..100u64 {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(1);
        tasks.push(
            tokio::task::Builder::new()
                .name(&format!("consumer {p}"))
                .spawn(async move {
                    let mut sum = 0;
                    while let Some(v) = rx.recv().await {
                        sum += v;
                        if v % 50 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    sum
                })
                .unwrap(),
        );
        tasks.push(
            tokio::task::Builder::new()
                .name(&format!("producer {p}"))
                .spawn(async move {
                    for v in 0..400 {
                        tx.send(v).await.unwrap();
                        if v % 100 == 0 {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                    0
                })
                .unwrap(),
        );
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[test]
fn replay_and_export_match_the_live_session() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.ltrace");
    // The live collector.
    let (addr, live) = looptrace_test_support::start(HubConfig::default(), ServerConfig::default());
    let rt = looptrace::Builder::new_multi_thread()
        .worker_threads(2)
        // Room for everything, even with the shipper of a debug build.
        .buffer_capacity(1 << 20)
        .from_env(false)
        .collector(addr.to_string())
        .record(&path)
        .build()
        .unwrap();
    rt.block_on(busy());
    let report = rt.shutdown();
    assert_eq!(
        (report.dropped_buffer_full, report.dropped_unsent),
        (0, 0),
        "nothing lost"
    );
    assert!(report.events > 200_000, "{} events", report.events);
    let id = live.session_ids()[0];
    let deadline = Instant::now() + Duration::from_secs(30);
    while live.with_session(id, |s| s.store.events).unwrap() < report.events {
        assert!(Instant::now() < deadline, "the collector got everything");
        std::thread::sleep(Duration::from_millis(20));
    }
    let live_reading = live.with_session(id, |s| reading(&s.model)).unwrap();
    assert_eq!(live_reading.len(), 200, "every task");

    // Replayed at the fastest speed.
    let replayed = Hub::new(HubConfig::default());
    let rec = RawRecording::open(&path).unwrap();
    assert!(rec.damage.is_empty());
    tokio::runtime::Runtime::new().unwrap().block_on(replay(
        replayed.clone(),
        rec,
        ReplayControl::new(100.0, false),
    ));
    let rid = replayed.session_ids()[0];
    assert_eq!(
        replayed.with_session(rid, |s| reading(&s.model)).unwrap(),
        live_reading
    );

    // Exported as JSONL: the same polls and wakes per task.
    let rec = Recording::open(&path).unwrap();
    assert_eq!(rec.events.len() as u64, report.events);
    let mut out = Vec::new();
    write_jsonl(&Session::from_events(rec.header, rec.events), &mut out).unwrap();
    let mut exported: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for line in String::from_utf8(out).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(task) = v["task"].as_u64() else {
            continue;
        };
        let e = exported.entry(task).or_default();
        match v["kind"].as_str() {
            Some("poll_start") => e.0 += 1,
            Some("wake") => e.1 += 1,
            _ => {}
        }
    }
    let expected: BTreeMap<u64, (u64, u64)> = live_reading
        .iter()
        .map(|(id, (_, polls, wakes))| (*id, (*polls, wakes.total())))
        .collect();
    assert_eq!(exported, expected);
}

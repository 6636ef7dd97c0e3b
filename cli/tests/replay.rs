//! `looptrace serve --record` survives `kill -9`; `looptrace replay` serves a
//! recording as if live, in order, at the asked speed, pausable.

use looptrace_test_support::*;
use looptrace_wire::*;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `looptrace ARGS --addr 127.0.0.1:0` and reads the address it prints.
fn launch(args: &[&str]) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_looptrace"))
        .args(args)
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("address in {line:?}"));
    (child, addr)
}

#[test]
fn a_recording_survives_kill_9_of_the_collector() {
    let dir = tempfile::tempdir().unwrap();
    let (mut collector, addr) = launch(&["serve", "--record", dir.path().to_str().unwrap()]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sent = rt.block_on(async {
        let mut app = connect(addr, "/ingest").await;
        send_bin(&mut app, header_frame("victim")).await;
        let mut sent = vec![spawn_ev(0, 1, "t")];
        send_bin(&mut app, events_frame(&sent)).await;
        for i in 0..50u64 {
            let evs = poll_evs(1000 + i * 1000, 1).to_vec();
            send_bin(&mut app, events_frame(&evs)).await;
            sent.extend(evs);
        }
        // Let the collector write them, then kill it without warning.
        for _ in 0..100 {
            let (_, v) = get(addr, "/api/sessions");
            if v["sessions"][0]["events"] == 101 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sent
    });
    collector.kill().unwrap(); // SIGKILL
    collector.wait().unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let rec = Recording::open(&files[0]).unwrap();
    assert_eq!(rec.header.process_name, "victim");
    assert!(
        rec.damage.is_empty(),
        "every chunk was complete: {:?}",
        rec.damage
    );
    assert_eq!(rec.events, sent);

    // A write torn by the kill reads back up to the last complete chunk.
    let bytes = std::fs::read(&files[0]).unwrap();
    let torn = dir.path().join("torn.ltrace");
    std::fs::write(&torn, &bytes[..bytes.len() - 5]).unwrap();
    let rec = Recording::open(&torn).unwrap();
    assert_eq!(rec.events, sent[..sent.len() - 2]);
    assert_eq!(rec.damage.len(), 1);
    assert!(rec.damage[0].is_torn_tail(), "{}", rec.damage[0]);
    // The command line says so, and fails unless told to accept it.
    let info = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_looptrace"))
            .arg("info")
            .arg(&torn)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = info(&[]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("writer was stopped") && err.contains("--allow-damage"),
        "{err}"
    );
    assert!(info(&["--allow-damage"]).status.success());

    // A flipped byte in the middle: that chunk is skipped, the rest is read, and
    // the commands say so.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    let flipped = dir.path().join("flipped.ltrace");
    std::fs::write(&flipped, &bytes).unwrap();
    let rec = Recording::open(&flipped).unwrap();
    assert_eq!(rec.damage.len(), 1, "{:?}", rec.damage);
    assert!(!rec.damage[0].is_torn_tail());
    assert!(rec.events.len() < sent.len() && rec.events.len() >= sent.len() - 4);
    assert_eq!(
        rec.events.last(),
        sent.last(),
        "chunks after the damage are read"
    );
    for cmd in ["info", "log"] {
        let out = Command::new(env!("CARGO_BIN_EXE_looptrace"))
            .args([cmd, flipped.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{cmd}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("corrupt chunk"),
            "{cmd}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_looptrace"))
        .args([
            "export",
            flipped.to_str().unwrap(),
            "--format",
            "jsonl",
            "--allow-damage",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(
        lines,
        rec.events.len() + 1,
        "the header and every event read"
    );
}

/// A recording with an event every 100 ms for a second.
fn synthetic(dir: &std::path::Path) -> (std::path::PathBuf, Vec<Event>) {
    let path = dir.join("paced.ltrace");
    let mut w = RecordingWriter::create(&path, &header("paced")).unwrap();
    let mut events = vec![spawn_ev(0, 1, "ticker")];
    for i in 1..=10u64 {
        events.extend(poll_evs(i * 100_000_000, 1));
    }
    w.write_events(&events).unwrap();
    (path, events)
}

fn replay_at(speed: f64, file: &std::path::Path) -> Vec<(Duration, u64)> {
    let (mut child, addr) = launch(&[
        "replay",
        file.to_str().unwrap(),
        "--speed",
        &speed.to_string(),
        "--paused",
    ]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let arrivals = rt.block_on(async {
        let mut viewer = connect(addr, "/ws/view").await;
        let hello = next_of(&mut viewer, "sessions", Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(hello["replay"]["paused"], true);
        send_json(&mut viewer, json!({"op": "subscribe"})).await;
        next_of(&mut viewer, "subscribed", Duration::from_secs(2))
            .await
            .unwrap();
        // Paused: nothing arrives.
        assert!(next_of(&mut viewer, "batch", Duration::from_millis(300))
            .await
            .is_none());
        send_json(&mut viewer, json!({"op": "replay", "action": "play"})).await;
        let start = Instant::now();
        let mut arrivals = Vec::new();
        while arrivals.len() < 21 {
            let Some(b) = next_of(&mut viewer, "batch", Duration::from_secs(10)).await else {
                break;
            };
            for e in b["events"].as_array().unwrap() {
                arrivals.push((start.elapsed(), e["ts_ns"].as_u64().unwrap()));
            }
        }
        arrivals
    });
    child.kill().unwrap();
    child.wait().unwrap();
    arrivals
}

#[test]
fn replay_keeps_order_and_relative_timing_at_any_speed() {
    let dir = tempfile::tempdir().unwrap();
    let (file, events) = synthetic(dir.path());
    for speed in [2.0, 0.5] {
        let arrivals = replay_at(speed, &file);
        let ts: Vec<u64> = arrivals.iter().map(|a| a.1).collect();
        assert_eq!(
            ts,
            events.iter().map(|e| e.ts_ns).collect::<Vec<_>>(),
            "all events, in order"
        );
        // Each poll start arrives about (its time / speed) after play.
        for (at, ts) in arrivals
            .iter()
            .filter(|(_, ts)| ts % 100_000_000 == 0 && *ts > 0)
        {
            let expected = Duration::from_nanos((*ts as f64 / speed) as u64);
            let diff = at.abs_diff(expected);
            assert!(
                diff < Duration::from_millis(120),
                "speed {speed}: event at {ts} ns arrived at {at:?}, expected {expected:?}"
            );
        }
    }
}

#[test]
fn a_replay_shows_the_first_note_then_the_last_when_it_is_over() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = synthetic(dir.path());
    append_note(
        &file,
        &Note {
            title: "watch for".into(),
            text: "ten polls".into(),
        },
    )
    .unwrap();
    append_note(
        &file,
        &Note {
            title: "what happened".into(),
            text: "ten polls, 1 s".into(),
        },
    )
    .unwrap();
    let (mut child, addr) = launch(&["replay", file.to_str().unwrap(), "--speed", "4", "--paused"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let titles = rt.block_on(async {
        let mut viewer = connect(addr, "/ws/view").await;
        // Paused at the start: the first note.
        let hello = next_of(&mut viewer, "sessions", Duration::from_secs(2))
            .await
            .unwrap();
        let mut titles: Vec<String> = vec![hello["sessions"][0]["note"]["title"]
            .as_str()
            .unwrap_or("none")
            .to_string()];
        send_json(&mut viewer, json!({"op": "replay", "action": "play"})).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && titles.last().map(String::as_str) != Some("what happened")
        {
            let Some(s) = next_of(&mut viewer, "sessions", Duration::from_secs(2)).await else {
                break;
            };
            if let Some(t) = s["sessions"][0]["note"]["title"].as_str() {
                if titles.last().map(String::as_str) != Some(t) {
                    titles.push(t.to_string());
                }
            }
        }
        titles
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(titles, ["watch for", "what happened"]);
}

//! `looptrace export` on a real recording: Chrome Trace Event JSON that follows the
//! format, JSONL that follows its contract, and damaged files handled.

use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn record(dir: &Path) -> PathBuf {
    // One capture session per process at a time.
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let path = dir.join("program.ltrace");
    let rt = looptrace::Builder::new_multi_thread()
        .worker_threads(2)
        .from_env(false)
        // Shipped in several rounds, so the recording has several chunks (a
        // cut one leaves the others whole).
        .flush_interval(Duration::from_millis(10))
        .record(&path)
        .build()
        .unwrap();
    rt.block_on(async {
        looptrace::mark("sending");
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
        let receiver = tokio::task::Builder::new()
            .name("receiver")
            .spawn(async move { while rx.recv().await.is_some() {} })
            .unwrap();
        let sender = tokio::task::Builder::new()
            .name("sender")
            .spawn(async move {
                for i in 0..5 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    tx.send(i).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
            .unwrap();
        tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(5)))
            .await
            .unwrap();
        sender.await.unwrap();
        receiver.await.unwrap();
    });
    rt.shutdown();
    path
}

fn looptrace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_looptrace"))
        .args(args)
        .output()
        .expect("looptrace runs")
}

#[test]
fn chrome_export_follows_the_trace_event_format() {
    let dir = tempfile::tempdir().unwrap();
    let file = record(dir.path());
    let out = dir.path().join("trace.json");
    let o = looptrace(&[
        "export",
        file.to_str().unwrap(),
        "--format",
        "chrome",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let events = doc["traceEvents"].as_array().expect("traceEvents array");
    let mut flow_starts = HashSet::new();
    let mut flow_ends = HashSet::new();
    let mut task_tracks: HashMap<u64, String> = HashMap::new();
    let mut thread_tracks = HashSet::new();
    let mut poll_slices: HashMap<String, usize> = HashMap::new();
    let mut parked = 0;
    for e in events {
        let ph = e["ph"].as_str().expect("ph");
        assert!(e["pid"].is_u64(), "{e}");
        match ph {
            "M" => {
                if e["name"] == "thread_name" {
                    let name = e["args"]["name"].as_str().unwrap().to_string();
                    if e["pid"] == 2 {
                        task_tracks.insert(e["tid"].as_u64().unwrap(), name);
                    } else {
                        thread_tracks.insert(name);
                    }
                }
            }
            "X" => {
                assert!(
                    e["ts"].is_number() && e["dur"].as_f64().unwrap() >= 0.0,
                    "{e}"
                );
                assert!(e["tid"].is_u64() && e["name"].is_string(), "{e}");
                if e["cat"] == "poll" && e["pid"] == 2 {
                    *poll_slices
                        .entry(e["name"].as_str().unwrap().to_string())
                        .or_default() += 1;
                }
                if e["name"] == "parked" {
                    parked += 1;
                }
            }
            "s" => assert!(flow_starts.insert(e["id"].as_u64().unwrap())),
            "f" => {
                assert_eq!(e["bp"], "e");
                assert!(flow_ends.insert(e["id"].as_u64().unwrap()));
            }
            "i" => assert!(e["ts"].is_number()),
            other => panic!("unexpected phase {other}"),
        }
    }
    assert_eq!(flow_starts, flow_ends, "every wake arrow has both ends");
    assert!(
        flow_starts.len() >= 10,
        "wakes as flows: {}",
        flow_starts.len()
    );
    assert!(task_tracks.values().any(|n| n.starts_with("receiver #")));
    assert!(task_tracks.values().any(|n| n.starts_with("sender #")));
    assert!(
        thread_tracks.iter().any(|n| n.starts_with("worker 0")),
        "{thread_tracks:?}"
    );
    assert!(
        thread_tracks.iter().any(|n| n.starts_with("blocking")),
        "{thread_tracks:?}"
    );
    // sender: 1 + 5 timer wakes + 5 yields (+ channel waits) polls at least.
    assert!(poll_slices["sender"] >= 11, "{poll_slices:?}");
    assert!(poll_slices["receiver"] >= 6, "{poll_slices:?}");
    assert!(parked > 0, "parked time visible");
    // The program's mark: an instant across the whole trace.
    assert!(
        events.iter().any(|e| e["ph"] == "i"
            && e["s"] == "g"
            && e["name"] == "sending"
            && e["cat"] == "mark"),
        "the mark is exported"
    );
}

#[test]
fn jsonl_export_follows_its_contract() {
    let dir = tempfile::tempdir().unwrap();
    let file = record(dir.path());
    let o = looptrace(&["export", file.to_str().unwrap(), "--format", "jsonl"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let kinds = [
        "header",
        "thread",
        "spawn",
        "poll_start",
        "poll_end",
        "wake",
        "waker_clone",
        "waker_drop",
        "terminate",
        "park",
        "unpark",
        "blocking_start",
        "blocking_end",
        "timer_armed",
        "timer_fired",
        "dropped",
        "mark",
        "context",
        "queues",
    ];
    let mut seen = HashSet::new();
    let mut names = HashMap::new();
    let mut wake_by = Vec::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let kind = v["kind"].as_str().expect("kind");
        assert!(kinds.contains(&kind), "{kind}");
        assert!(v["ts_ns"].is_u64(), "{line}");
        seen.insert(kind.to_string());
        if kind != "header" {
            assert!(v["worker"].is_u64() || v["worker"].is_null(), "{line}");
        }
        match kind {
            "spawn" => {
                names.insert(
                    v["task"].as_u64().unwrap(),
                    v["name"].as_str().unwrap().to_string(),
                );
            }
            "poll_start" | "terminate" | "waker_clone" | "waker_drop" => {
                assert!(v["task"].is_u64(), "{line}")
            }
            "queues" => assert!(
                v["local"].is_array() && v["steals"].is_array() && v["injection"].is_u64(),
                "{line}"
            ),
            "poll_end" => {
                assert!(
                    v["ready"].is_boolean()
                        && v["task"].is_u64()
                        && v["waker_clones"].is_u64()
                        && v["waker_drops"].is_u64(),
                    "{line}"
                );
                // A task's own waker operations in its poll are folded into its end.
                if v["waker_clones"].as_u64() > Some(0) {
                    seen.insert("poll_end with waker clones".to_string());
                }
            }
            "wake" => {
                let by = v["by"].as_str().unwrap();
                let ok = ["timer", "io", "blocking", "external"].contains(&by)
                    || by
                        .strip_prefix("task:")
                        .is_some_and(|n| n.parse::<u64>().is_ok());
                assert!(ok, "{line}");
                wake_by.push((v["task"].as_u64().unwrap(), by.to_string()));
            }
            _ => {}
        }
    }
    for k in [
        "header",
        "spawn",
        "poll_start",
        "poll_end",
        "wake",
        "poll_end with waker clones",
        "terminate",
        "park",
        "unpark",
        "timer_armed",
        "mark",
    ] {
        assert!(seen.contains(k), "no {k} line");
    }
    assert!(
        text.lines()
            .any(|l| l.contains(r#""kind":"mark""#) && l.contains(r#""label":"sending""#)),
        "mark lines carry their label"
    );
    let id = |n: &str| *names.iter().find(|(_, v)| *v == n).unwrap().0;
    let (rx, tx) = (id("receiver"), id("sender"));
    assert!(
        wake_by.contains(&(rx, format!("task:{tx}"))),
        "receiver woken by the sender"
    );
    assert!(
        wake_by.contains(&(tx, "timer".to_string())),
        "sender woken by its timer"
    );
    assert!(
        wake_by.contains(&(tx, format!("task:{tx}"))),
        "sender's yield is a self-wake"
    );
    // Unnamed tasks are named `file:line`.
    assert!(names.values().any(|n| n.contains(".rs:")), "{names:?}");
}

#[test]
fn a_truncated_recording_exports_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let file = record(dir.path());
    let bytes = std::fs::read(&file).unwrap();
    let cut = dir.path().join("cut.ltrace");
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
    let o = looptrace(&["export", cut.to_str().unwrap(), "--format", "jsonl"]);
    // What it holds is exported, and the command says what was lost and fails,
    // unless told to accept it.
    assert_eq!(o.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("ends mid-chunk"), "{stderr}");
    let accepted = looptrace(&[
        "export",
        cut.to_str().unwrap(),
        "--format",
        "jsonl",
        "--allow-damage",
    ]);
    assert!(accepted.status.success());
    assert_eq!(accepted.stdout, o.stdout);
    let full = looptrace(&["export", file.to_str().unwrap(), "--format", "jsonl"]);
    let (a, b) = (
        String::from_utf8_lossy(&o.stdout).lines().count(),
        String::from_utf8_lossy(&full.stdout).lines().count(),
    );
    assert!(
        a > 1 && a < b,
        "{a} lines from the cut file, {b} from the whole"
    );

    let junk = dir.path().join("junk.ltrace");
    std::fs::write(&junk, b"this is not a recording at all").unwrap();
    let o = looptrace(&["export", junk.to_str().unwrap(), "--format", "chrome"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a looptrace recording"));
}

#[test]
fn log_and_info_describe_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let file = record(dir.path());
    let o = looptrace(&["log", file.to_str().unwrap()]);
    assert!(o.status.success());
    let log = String::from_utf8_lossy(&o.stdout);
    assert!(log.contains("spawn    receiver"), "{log}");
    assert!(log.contains("receiver woken by sender"), "{log}");
    assert!(log.contains("sender woken by the timer"), "{log}");
    assert!(log.contains("sender woke itself"), "{log}");
    assert!(log.contains("mark     sending"), "{log}");
    let o = looptrace(&["info", file.to_str().unwrap()]);
    let info = String::from_utf8_lossy(&o.stdout);
    assert!(info.contains("multi_thread, 2 worker(s)"), "{info}");
    assert!(info.contains("dropped  0"), "{info}");
}

/// A reader that stops reading (`looptrace log app.ltrace | head`) ends the
/// command quietly and successfully, as with other Unix tools: no panic, no
/// error.
#[test]
fn a_closed_pipe_ends_output_commands_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let file = record(dir.path());
    let file = file.to_str().unwrap();
    for args in [
        vec!["log", file],
        vec!["info", file],
        vec!["check", file],
        vec!["export", file, "--format", "jsonl"],
        vec!["export", file, "--format", "chrome"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_looptrace"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("looptrace runs");
        // Closed before it writes a thing: its first write finds no reader.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

/// A recording that is not there: the path and the system's reason, each said
/// once.
#[test]
fn a_missing_recording_says_why_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.ltrace");
    let o = Command::new(env!("CARGO_BIN_EXE_looptrace"))
        .args(["info", missing.to_str().unwrap()])
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("looptrace runs");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nowhere.ltrace"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

//! A demo streams to a running collector when `LOOPTRACE_ADDR` says where, as
//! any traced app does, and still shows its own timeline.

use looptrace_collector::hub::HubConfig;
use looptrace_test_support::*;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn a_demo_with_looptrace_addr_is_a_session_of_that_collector() {
    let (addr, _hub) = start(HubConfig::default(), Default::default());
    let out = Command::new(env!("CARGO_BIN_EXE_demos"))
        .args([
            "hello",
            "--exit",
            "--no-tui",
            "--speed",
            "8",
            "--serve",
            "127.0.0.1:0",
        ])
        .env("LOOPTRACE_ADDR", addr.to_string())
        .env_remove("LOOPTRACE_RECORD")
        .output()
        .expect("demos runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("also streaming to the collector at {addr}")),
        "the demo says where it streams:\n{said}"
    );
    assert!(
        said.contains("timeline: http://127.0.0.1:"),
        "and still serves its own"
    );
    // The session, with the demo's three tasks, once the collector has it all.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = get(addr, "/api/sessions");
        let session = v["sessions"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["process"] == "demos hello"))
            .cloned();
        if let Some(s) = session.filter(|s| s["live"] == false) {
            let (_, tasks) = get(addr, &format!("/api/sessions/{}/tasks", s["id"]));
            let mut names: Vec<String> = tasks["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string())
                .filter(|n| ["Alice", "Bob", "Charlie"].contains(&n.as_str()))
                .collect();
            names.sort();
            assert_eq!(names, ["Alice", "Bob", "Charlie"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no finished session of the demo: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

//! `looptrace check` gates a CI run on a recording's warnings, and `looptrace
//! info` summarises them with the longest polls and the longest waits.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const HELLO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hello.ltrace");

/// A program with one blocking poll (a 40 ms `std::thread::sleep` in a task).
fn record_blocking(path: &Path) {
    let rt = looptrace::Builder::new_current_thread()
        .from_env(false)
        .record(path)
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::task::Builder::new()
            .name("sleeper")
            .spawn(async { std::thread::sleep(Duration::from_millis(40)) })
            .unwrap()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    });
    rt.shutdown();
}

fn looptrace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_looptrace"))
        .args(args)
        .output()
        .expect("looptrace runs")
}

#[test]
fn check_fails_on_warnings_of_the_kinds_asked_and_passes_without() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocking.ltrace");
    record_blocking(&path);
    let file = path.to_str().unwrap();

    let out = looptrace(&["check", file]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(
        said.contains("FAIL blocking_poll") && said.contains("sleeper blocked its worker"),
        "{said}"
    );

    // Only the kinds asked for fail it; the others are noted.
    let out = looptrace(&["check", file, "--fail-on", "lost_waker,task_leak"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("note blocking_poll"), "{said}");
    assert_eq!(
        looptrace(&["check", file, "--fail-on", "blocking_poll"])
            .status
            .code(),
        Some(4)
    );

    // A recording without warnings passes.
    let out = looptrace(&["check", HELLO]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A kind that does not exist is a usage error that names the kinds.
    let out = looptrace(&["check", file, "--fail-on", "slow"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("blocking_poll, scheduling_latency"));

    // info: the warnings by kind, the longest polls, the longest waits.
    let out = looptrace(&["info", file]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("warnings 1") && said.contains("1  blocking_poll"),
        "{said}"
    );
    let longest = said
        .lines()
        .skip_while(|l| !l.starts_with("longest polls"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        longest.contains("ms  sleeper"),
        "the sleeper's poll first: {said}"
    );
    assert!(said.contains("most time scheduled"), "{said}");
}

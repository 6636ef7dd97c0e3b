//! looptrace warns when the app's own tracing subscriber leaves wakes uncaptured,
//! and only then. Each case runs in a child process: the global subscriber is set
//! once per process, and the warning goes to stderr.

use std::process::Command;

const CASE: &str = "LOOPTRACE_TEST_SUBSCRIBER_CASE";
const WARNING: &str = "without looptrace::layer()";

/// The child's side: installs the case's subscriber, builds a runtime and
/// checks that wakes were (or were not) captured.
fn child(case: &str) {
    use tracing_subscriber::prelude::*;
    let wakes_expected = match case {
        "looptrace" => {
            tracing::dispatcher::set_global_default(tracing::Dispatch::new(
                looptrace::LooptraceSubscriber::new(),
            ))
            .unwrap();
            true
        }
        "layer" => {
            tracing_subscriber::registry()
                .with(looptrace::layer())
                .init();
            true
        }
        "other" => {
            tracing_subscriber::registry().init();
            false
        }
        _ => unreachable!("unknown case {case}"),
    };
    let path = tempfile::NamedTempFile::new().unwrap();
    let rt = looptrace::Builder::new_current_thread()
        .from_env(false)
        .record(path.path())
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::spawn(async { tokio::task::yield_now().await })
            .await
            .unwrap();
    });
    rt.shutdown();
    let rec = looptrace::wire::Recording::open(path.path()).unwrap();
    let wakes = rec
        .events
        .iter()
        .any(|e| matches!(e.kind, looptrace::wire::EventKind::Waker { .. }));
    assert_eq!(wakes, wakes_expected, "case {case}");
}

/// Runs `case` in a child process; its stderr.
fn run(case: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_process", "--ignored", "--nocapture"])
        .env(CASE, case)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "case {case} failed:\n{stderr}");
    // The child really ran the case (an empty filter match would pass silently).
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "case {case}: child did not run"
    );
    stderr
}

#[test]
#[ignore = "the other tests run it in a child process, with a case to run"]
fn child_process() {
    // Run on its own (`--include-ignored`), there is no case: nothing to do.
    if let Ok(case) = std::env::var(CASE) {
        child(&case);
    }
}

#[test]
fn no_warning_when_the_app_installs_looptraces_subscriber_itself() {
    let stderr = run("looptrace");
    assert!(!stderr.contains(WARNING), "{stderr}");
}

#[test]
fn no_warning_with_the_layer() {
    let stderr = run("layer");
    assert!(!stderr.contains(WARNING), "{stderr}");
}

#[test]
fn warns_when_the_apps_subscriber_leaves_wakes_out() {
    let stderr = run("other");
    assert!(stderr.contains(WARNING), "{stderr}");
}

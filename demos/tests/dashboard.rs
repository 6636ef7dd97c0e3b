//! `demos NAME` on a terminal (tmux): the dashboard opens with what to watch for
//! and the browser address, shows the demo's tasks live, reopens with what
//! happened when the demo ends, and leaves that summary in the terminal on `q`.

use looptrace_test_support::tmux;
use std::time::Duration;

fn wait_for(session: &str, needle: &str) -> String {
    tmux::wait_for(session, needle, Duration::from_secs(15))
}

#[test]
fn a_demo_on_a_terminal_runs_in_the_dashboard_with_its_lesson() {
    let session = format!("looptrace-demo-{}", std::process::id());
    let cmd = format!(
        "{} sequential-vs-concurrent --speed 2 --serve 127.0.0.1:0 --no-color; echo DEMO-EXITED; sleep 30",
        env!("CARGO_BIN_EXE_demos")
    );
    tmux::tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "36",
        &cmd,
    ]);
    let screen = wait_for(&session, "what to watch for");
    assert!(
        screen.contains("sequential-vs-concurrent: what to watch for"),
        "{screen}"
    );
    assert!(
        screen.contains("browser: http://127.0.0.1:"),
        "the browser timeline's address: {screen}"
    );
    // Any key closes the panel: the demo's tasks are in the table, live (the
    // table may show them behind the panel before the key is read).
    tmux::tmux(&["send-keys", "-t", &session, "Escape"]);
    let screen = tmux::wait_until(&session, Duration::from_secs(15), |s| {
        s.contains("Alice (concurrent)") && !s.contains("what to watch for")
    });
    assert!(
        screen.contains("sequential") && screen.contains("Alice (concurrent)"),
        "{screen}"
    );
    assert!(!screen.contains("what to watch for"), "{screen}");
    // When the demo ends (3 s at 2x), the panel opens again with what happened.
    let screen = wait_for(&session, "sequential-vs-concurrent: what happened");
    assert!(
        screen.contains("sequential-vs-concurrent: what happened")
            && screen.contains("sequential took 3.0 s"),
        "{screen}"
    );
    tmux::tmux(&["send-keys", "-t", &session, "Escape"]);
    tmux::tmux(&["send-keys", "-t", &session, "q"]);
    let screen = wait_for(&session, "DEMO-EXITED");
    tmux::tmux(&["kill-session", "-t", &session]);
    assert!(screen.contains("DEMO-EXITED"), "{screen}");
    assert!(
        !screen.contains("1 Tasks"),
        "the dashboard is gone: {screen}"
    );
    assert!(
        screen.contains("What happened:") && screen.contains("concurrent took 1.5 s"),
        "the summary stays in the terminal: {screen}"
    );
}

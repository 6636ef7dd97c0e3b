//! `looptrace tui` in a real terminal (tmux): it draws, takes keys, and gives the
//! terminal back when it quits.

use looptrace_collector::hub::HubConfig;
use looptrace_collector::server::ServerConfig;
use looptrace_test_support::*;
use std::time::Duration;

fn wait_for(session: &str, needle: &str) -> String {
    tmux::wait_for(session, needle, Duration::from_secs(10))
}

#[test]
fn the_tui_draws_takes_keys_and_restores_the_terminal() {
    let (addr, hub) = start(HubConfig::default(), ServerConfig::default());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut app = rt.block_on(async {
        let mut app = connect(addr, "/ingest").await;
        send_bin(&mut app, header_frame("tmux-app")).await;
        let mut evs = vec![
            spawn_ev(10, 1, "first-task"),
            spawn_ev(20, 2, "second-task"),
        ];
        evs.extend(poll_evs(100, 1));
        send_bin(&mut app, events_frame(&evs)).await;
        app
    });
    let session = format!("looptrace-test-{}", std::process::id());
    let cmd = format!(
        "{} tui {addr} --no-color; echo TUI-EXITED; sleep 30",
        env!("CARGO_BIN_EXE_looptrace")
    );
    tmux::tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "110",
        "-y",
        "30",
        &cmd,
    ]);
    let screen = wait_for(&session, "second-task");
    assert!(
        screen.contains("1 Tasks")
            && screen.contains("first-task")
            && screen.contains("second-task"),
        "{screen}"
    );
    // Live: a new task shows up.
    rt.block_on(send_bin(
        &mut app,
        events_frame(&[spawn_ev(200, 3, "third-task")]),
    ));
    let screen = wait_for(&session, "third-task");
    assert!(screen.contains("third-task"), "{screen}");
    // The session's note opens as the lesson panel; any key closes it.
    let id = hub.session_ids()[0];
    hub.set_note(
        id,
        looptrace_collector::hub::Note {
            title: "about this app".into(),
            text: "It spawns three tasks.".into(),
        },
    );
    let screen = wait_for(&session, "about this app");
    assert!(screen.contains("It spawns three tasks."), "{screen}");
    tmux::tmux(&["send-keys", "-t", &session, "Escape"]);
    // Keys: the timeline view, then the help overlay.
    tmux::tmux(&["send-keys", "-t", &session, "2"]);
    let screen = wait_for(&session, "follow");
    assert!(screen.contains("first-task #1"), "{screen}");
    tmux::tmux(&["send-keys", "-t", &session, "?"]);
    let screen = wait_for(&session, "this help");
    assert!(screen.contains("q, Ctrl-C"), "{screen}");
    tmux::tmux(&["send-keys", "-t", &session, "Escape"]);
    tmux::tmux(&["send-keys", "-t", &session, "q"]);
    let screen = wait_for(&session, "TUI-EXITED");
    tmux::tmux(&["kill-session", "-t", &session]);
    assert!(screen.contains("TUI-EXITED"), "{screen}");
    assert!(
        !screen.contains("1 Tasks"),
        "the alternate screen is gone: {screen}"
    );
}

//! The shipping thread's pace: `LOOPTRACE_FLUSH_MS` sets it, and by default
//! events go out while the app runs, not only at shutdown.

use std::time::Duration;

/// Captures 300 ms of a task ticking every millisecond; what had been shipped
/// by then, and in all.
fn shipped_while_running_and_in_all() -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let rt = looptrace::Builder::new_current_thread()
        .record(dir.path().join("pace.ltrace"))
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::spawn(async {
            for _ in 0..300 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .unwrap();
    });
    let while_running = rt.report().events;
    let all = rt.shutdown().events;
    (while_running, all)
}

#[test]
fn the_environment_sets_the_pace_and_the_default_ships_as_it_goes() {
    // The only test in this binary: setting the environment is safe here.
    unsafe { std::env::set_var(looptrace::ENV_FLUSH_MS, "600000") };
    let (running, all) = shipped_while_running_and_in_all();
    assert_eq!(
        running, 0,
        "a 10-minute pace shipped {running} events early"
    );
    assert!(all > 600, "{all} events at shutdown");

    unsafe { std::env::remove_var(looptrace::ENV_FLUSH_MS) };
    let (running, all) = shipped_while_running_and_in_all();
    assert!(
        running > 0 && running <= all,
        "by default {running} of {all} events shipped while running"
    );
}

//! The shipping thread's pace: 50 ms by default, `LOOPTRACE_FLUSH_MS` sets it
//! (kept within 1 to 100 ms; `0` or nonsense ignored).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Runs a task ticking every millisecond for a second with the environment's
/// pace set to `env` (or unset), and counts the shipping rounds seen: the times
/// the shipped-events count moved, read every 2 ms from another thread.
fn rounds_in_a_second(env: Option<&str>) -> usize {
    // The only test in this binary: setting the environment is safe here.
    match env {
        Some(v) => unsafe { std::env::set_var(looptrace::ENV_FLUSH_MS, v) },
        None => unsafe { std::env::remove_var(looptrace::ENV_FLUSH_MS) },
    }
    let dir = tempfile::tempdir().unwrap();
    let rt = looptrace::Builder::new_current_thread()
        .record(dir.path().join("pace.ltrace"))
        .build()
        .unwrap();
    let done = AtomicBool::new(false);
    let rounds = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let (mut last, mut moves) = (rt.report().events, 0);
            while !done.load(Ordering::Relaxed) {
                let now = rt.report().events;
                if now != last {
                    (last, moves) = (now, moves + 1);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            moves
        });
        rt.block_on(async {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(1) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        done.store(true, Ordering::Relaxed);
        watcher.join().unwrap()
    });
    let report = rt.shutdown();
    assert!(report.events > 500, "{} events", report.events);
    rounds
}

#[test]
fn the_pace_is_50_ms_by_default_and_the_environment_sets_it_within_bounds() {
    let default = rounds_in_a_second(None);
    let fast = rounds_in_a_second(Some("10"));
    let capped = rounds_in_a_second(Some("600000"));
    let zero = rounds_in_a_second(Some("0"));
    let nonsense = rounds_in_a_second(Some("50ms"));
    let all = format!(
        "rounds in a second: default {default}, 10 ms {fast}, 600 s (capped at 100 ms) {capped}, \"0\" {zero}, \"50ms\" {nonsense}"
    );
    eprintln!("{all}");
    // About 100, 20 and 10 rounds; a loaded machine sees fewer, never more.
    assert!(fast >= 45, "{all}");
    assert!((8..=24).contains(&default), "{all}");
    assert!((4..=12).contains(&capped) && capped < default, "{all}");
    // Ignored: the default pace.
    assert!((8..=24).contains(&zero), "{all}");
    assert!((8..=24).contains(&nonsense), "{all}");
}

//! Each warning is raised by a program written to provoke it, on the right task,
//! and not on the tasks that behave.

use looptrace_collector::embedded::Embedded;
use looptrace_collector::hub::HubConfig;
use looptrace_collector::model::{Thresholds, WarningKind};
use std::collections::BTreeSet;
use std::future::Future;
use std::task::Poll;
use std::time::{Duration, Instant};

fn named<F>(name: &str, f: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::task::Builder::new().name(name).spawn(f).unwrap()
}

#[test]
fn each_warning_is_raised_by_the_program_that_provokes_it() {
    let thresholds = Thresholds {
        task_leak_live: 100,
        task_leak_window_ns: 500_000_000,
        ..Thresholds::default()
    };
    let (sink, handle) = Embedded::serve(
        "127.0.0.1:0".parse().unwrap(),
        HubConfig {
            thresholds,
            ..HubConfig::default()
        },
    )
    .unwrap();
    let rt = looptrace::Builder::new_current_thread()
        .from_env(false)
        .sink(sink)
        .build()
        .unwrap();
    rt.block_on(async {
        named("polite", async {
            tokio::time::sleep(Duration::from_millis(5)).await
        })
        .await
        .unwrap();
        // A poll that blocks the loop: a std sleep inside a task.
        named("sleeper", async {
            std::thread::sleep(Duration::from_millis(30))
        })
        .await
        .unwrap();
        // A future that returns Pending without keeping its waker: nobody can wake it.
        let lost = named("forgetful", std::future::poll_fn(|_cx| Poll::<()>::Pending));
        // A busy loop that never returns Pending.
        named("spinner", async {
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(700) {
                std::hint::spin_loop();
            }
        })
        .await
        .unwrap();
        // A task woken by another that then hogs the worker: the woken one waits.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let victim = named("victim", async move { rx.await.unwrap() });
        tokio::task::yield_now().await;
        named("hog", async move {
            tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(80));
        })
        .await
        .unwrap();
        victim.await.unwrap();
        // Waking itself thousands of times a second.
        named("restless", async {
            for _ in 0..3000 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        // A future of 32 KiB.
        named("hefty", async {
            let buf = [1u8; 32 * 1024];
            tokio::task::yield_now().await;
            std::hint::black_box(&buf);
        })
        .await
        .unwrap();
        // Tasks piling up, never finishing.
        let mut leaked = Vec::new();
        for _ in 0..16 {
            for _ in 0..20 {
                leaked.push(tokio::spawn(std::future::pending::<()>()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        lost.abort();
    });
    rt.shutdown();
    let hub = handle.hub();
    let id = hub.session_ids()[0];
    let all = hub.with_session(id, |s| s.model.warnings.clone()).unwrap();
    // The findings that hold (a never-yielding poll that ended was taken back).
    let warnings: Vec<_> = all.iter().filter(|w| !w.withdrawn).cloned().collect();
    let got: BTreeSet<(WarningKind, Option<String>)> = warnings
        .iter()
        .map(|w| (w.kind, w.task_name.clone()))
        .collect();
    let has = |k: WarningKind, name: Option<&str>| got.contains(&(k, name.map(String::from)));
    assert!(has(WarningKind::BlockingPoll, Some("sleeper")), "{got:?}");
    assert!(has(WarningKind::LostWaker, Some("forgetful")), "{got:?}");
    // The spinner was seen never yielding while it ran; once it ended, it is one
    // blocking poll of its whole length, and the never-yields finding withdrawn.
    assert!(has(WarningKind::BlockingPoll, Some("spinner")), "{got:?}");
    assert!(!has(WarningKind::NeverYields, Some("spinner")), "{got:?}");
    assert!(
        all.iter().any(|w| w.kind == WarningKind::NeverYields
            && w.task_name.as_deref() == Some("spinner")
            && w.withdrawn),
        "{all:?}"
    );
    // The victim waited for the hog's blocking poll: one cause, the hog's finding.
    assert!(has(WarningKind::BlockingPoll, Some("hog")), "{got:?}");
    assert!(
        !has(WarningKind::SchedulingLatency, Some("victim")),
        "{got:?}"
    );
    assert!(has(WarningKind::SelfWakeStorm, Some("restless")), "{got:?}");
    assert!(has(WarningKind::LargeFuture, Some("hefty")), "{got:?}");
    assert!(has(WarningKind::TaskLeak, None), "{got:?}");
    // The well-behaved tasks are not flagged.
    for name in ["polite", "forgetful"] {
        let kinds: Vec<_> = got
            .iter()
            .filter(|(_, n)| n.as_deref() == Some(name))
            .map(|(k, _)| *k)
            .collect();
        let expected: Vec<WarningKind> = if name == "forgetful" {
            vec![WarningKind::LostWaker]
        } else {
            vec![]
        };
        assert_eq!(kinds, expected, "{name}");
    }
    // Each warning says when, so a viewer can jump to it.
    let sleeper = warnings
        .iter()
        .find(|w| w.kind == WarningKind::BlockingPoll && w.task_name.as_deref() == Some("sleeper"))
        .unwrap();
    assert!(
        sleeper.value >= 30_000_000 && sleeper.at_ns > 0,
        "{sleeper:?}"
    );
}

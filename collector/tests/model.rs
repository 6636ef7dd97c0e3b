//! The derived model on hand-made event sequences: phases, their boundaries,
//! statistics and the intervals a viewer gets, exactly.

use looptrace_collector::model::timeline::{aggregate, window};
use looptrace_collector::model::{Model, Thresholds, WarningKind};
use looptrace_wire::TaskState;
use looptrace_wire::*;

fn header() -> Header {
    Header {
        process_name: "t".into(),
        pid: 1,
        flavor: Flavor::CurrentThread,
        workers: 1,
        clock_origin_unix_ns: 0,
    }
}

fn ev(ts_ns: u64, kind: EventKind) -> Event {
    Event {
        ts_ns,
        thread: 0,
        kind,
    }
}

fn spawn(ts: u64, task: u64) -> Event {
    ev(
        ts,
        EventKind::Spawn(Box::new(looptrace_wire::Spawn {
            task,
            kind: TaskKind::Task,
            name: Some(format!("t{task}")),
            location: "a.rs:1:1".into(),
            parent: None,
            size_bytes: Some(64),
        })),
    )
}
fn start(ts: u64, task: u64) -> Event {
    ev(ts, EventKind::PollStart { task })
}
fn end(ts: u64, task: u64, ready: bool) -> Event {
    ev(
        ts,
        EventKind::PollEnd {
            task,
            ready,
            clones: 0,
            drops: 0,
            context: None,
        },
    )
}
fn wake(ts: u64, task: u64, op: WakeOp, by: WakeSource) -> Event {
    ev(ts, EventKind::Waker { task, op, by })
}

/// A hub holding one live session of [`header`]'s app.
fn live_hub() -> (
    std::sync::Arc<looptrace_collector::hub::Hub>,
    looptrace_collector::hub::SessionId,
) {
    live_hub_with(looptrace_collector::hub::HubConfig::default())
}

/// [`live_hub`], configured so.
fn live_hub_with(
    config: looptrace_collector::hub::HubConfig,
) -> (
    std::sync::Arc<looptrace_collector::hub::Hub>,
    looptrace_collector::hub::SessionId,
) {
    use looptrace_collector::hub::{Hub, Source};
    let hub = Hub::new(config);
    let mut frame = Vec::new();
    encode_header(&header(), &mut frame);
    let id = hub.open(header(), &frame, Source::Live);
    (hub, id)
}

/// Thread 0 says it is worker 0.
fn worker_thread() -> Event {
    ev(
        0,
        EventKind::Thread {
            role: ThreadRole::Worker(0),
            name: "w".into(),
        },
    )
}

/// t1: spawned at 100, polled 200-300 (Pending, having cloned its waker), woken by
/// the timer at 1000, polled 1500-1600 (woken by itself inside the poll), polled
/// again 1700-1750 and Ready.
fn sequence() -> Vec<Event> {
    vec![
        ev(
            0,
            EventKind::Thread {
                role: ThreadRole::Worker(0),
                name: "main".into(),
            },
        ),
        spawn(100, 1),
        start(200, 1),
        wake(250, 1, WakeOp::Clone, WakeSource::Task(1)),
        end(300, 1, false),
        ev(400, EventKind::Park),
        wake(1000, 1, WakeOp::Wake, WakeSource::Timer),
        ev(1100, EventKind::Unpark),
        start(1500, 1),
        wake(1550, 1, WakeOp::WakeByRef, WakeSource::Task(1)),
        end(1600, 1, false),
        start(1700, 1),
        ev(
            1740,
            EventKind::Terminate {
                task: 1,
                outcome: Outcome::Completed,
            },
        ),
        end(1750, 1, true),
    ]
}

#[test]
fn phases_and_statistics_are_exact() {
    let mut m = Model::new(header(), Thresholds::default());
    for e in sequence() {
        m.apply(&e);
    }
    let t = &m.tasks[&1];
    assert_eq!(t.state(), TaskState::Done);
    assert_eq!(t.polls, 3);
    assert_eq!(t.busy_ns, 100 + 100 + 50);
    // scheduled: spawn->first poll 100, timer wake->poll 500, self-wake (end of poll)->poll 100
    assert_eq!(t.scheduled_ns, 100 + 500 + 100);
    assert_eq!(t.idle_ns, 700); // 300 -> 1000
    assert_eq!(t.wakes.timer, 1);
    assert_eq!(t.wakes.own, 1);
    assert_eq!(t.wakes.total(), 2);
    assert_eq!(t.longest_poll_ns, 100);
    assert_eq!(t.outcome, Some(Outcome::Completed));
    let h = t.histograms().unwrap();
    assert_eq!(h.poll.len(), 3);
    assert_eq!(h.sched.len(), 3);
    assert_eq!(m.live_tasks(), 0);
    let w = &m.workers[&0];
    assert_eq!(w.busy_ns, 250);
    assert_eq!(w.parked_ns, 700);
    assert_eq!(w.polls, 3);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
}

#[test]
fn window_intervals_have_exact_boundaries() {
    let w = window(&sequence(), 0, 2000);
    let got: Vec<_> = w
        .intervals
        .iter()
        .map(|i| {
            (
                i.start_ns,
                i.end_ns,
                i.state,
                i.woken_by.map(|b| b.to_string()),
                i.ready,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (100, 200, TaskState::Scheduled, None, None),
            (200, 300, TaskState::Running, None, Some(false)),
            (300, 1000, TaskState::Idle, None, None),
            (
                1000,
                1500,
                TaskState::Scheduled,
                Some("timer".to_string()),
                None
            ),
            (1500, 1600, TaskState::Running, None, Some(false)),
            (
                1600,
                1700,
                TaskState::Scheduled,
                Some("task:1".to_string()),
                None
            ),
            (1700, 1750, TaskState::Running, None, Some(true)),
        ]
    );
    let arrows: Vec<_> = w
        .wakes
        .iter()
        .map(|a| (a.at_ns, a.by.to_string(), a.polled_ns))
        .collect();
    assert_eq!(
        arrows,
        vec![
            (1000, "timer".to_string(), Some(1500)),
            (1550, "task:1".to_string(), Some(1700))
        ]
    );
    let parked: Vec<_> = w
        .workers
        .iter()
        .filter(|s| s.task.is_none())
        .map(|s| (s.start_ns, s.end_ns))
        .collect();
    assert_eq!(parked, vec![(400, 1100)]);
    // A window in the middle clips.
    let mid = window(&sequence(), 250, 1200);
    let got: Vec<_> = mid
        .intervals
        .iter()
        .map(|i| (i.start_ns, i.end_ns, i.state))
        .collect();
    assert_eq!(
        got,
        vec![
            (250, 300, TaskState::Running),
            (300, 1000, TaskState::Idle),
            (1000, 1200, TaskState::Scheduled)
        ]
    );
}

#[test]
fn aggregate_sums_shares_per_bucket() {
    let w = window(&sequence(), 0, 2000);
    let a = aggregate(&w, 4); // 500 ns buckets
    assert_eq!(a.bucket_ns, 500);
    let t = &a.tasks[0];
    // running: 200-300 in bucket 0; 1500-1600 and 1700-1750 in bucket 3
    assert_eq!(t.running, vec![0.2, 0.0, 0.0, 0.3]);
    assert_eq!(t.polls, vec![1, 0, 0, 2]);
    // scheduled: 100-200 (b0), 1000-1500 (b2), 1600-1700 (b3)
    assert_eq!(t.scheduled, vec![0.2, 0.0, 1.0, 0.2]);
    assert_eq!(a.wakes, vec![0, 0, 1, 1]);
}

#[test]
fn lost_waker_blocking_poll_and_latency_are_flagged() {
    let mut m = Model::new(header(), Thresholds::default());
    let ms = 1_000_000;
    for e in [
        ev(
            0,
            EventKind::Thread {
                role: ThreadRole::Worker(0),
                name: "main".into(),
            },
        ),
        wake(1, 99, WakeOp::Clone, WakeSource::External), // another task's waker: the session captures wakers
        spawn(10, 1),
        spawn(10, 2),
        // t1 polls for 20 ms (blocking) and returns Pending without keeping a waker.
        start(20, 1),
        end(20 + 20 * ms, 1, false),
        // t2 was woken at spawn and waited 20 ms: under the 50 ms threshold.
        start(20 + 20 * ms, 2),
        wake(20 + 20 * ms + 5, 2, WakeOp::Clone, WakeSource::Task(2)),
        end(20 + 21 * ms, 2, false),
        wake(30 * ms, 2, WakeOp::Wake, WakeSource::External),
        // ... then 60 ms later it is polled: latency.
        start(90 * ms, 2),
        end(91 * ms, 2, true),
    ] {
        m.apply(&e);
    }
    // t1 stayed idle with no waker past the grace period.
    m.settle(20 * ms + 20 + 1_000 * ms);
    let kinds: Vec<_> = m.findings().map(|w| (w.kind, w.task, w.at_ns)).collect();
    assert!(
        kinds.contains(&(WarningKind::BlockingPoll, Some(1), 20)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(WarningKind::LostWaker, Some(1), 20 + 20 * ms)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(WarningKind::SchedulingLatency, Some(2), 90 * ms)),
        "{kinds:?}"
    );
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    // Each task counts its own warnings, as task lists show them.
    assert_eq!(m.tasks[&1].warnings, 2);
    assert_eq!(m.tasks[&2].warnings, 1);
    use looptrace_collector::to_api::ToApi;
    assert_eq!(m.tasks[&1].to_api(m.now_ns).warnings, 2);
}

#[test]
fn a_waker_lost_before_any_waker_event_is_flagged_once_wakers_show_up() {
    let mut m = Model::new(header(), Thresholds::default());
    for e in [
        ev(
            0,
            EventKind::Thread {
                role: ThreadRole::Worker(0),
                name: "main".into(),
            },
        ),
        spawn(10, 1),
        spawn(10, 2),
        spawn(10, 3),
        // t1 returns Pending with no waker, before the session has shown any waker event.
        start(20, 1),
        end(30, 1, false),
        // t3 goes idle early the same way.
        start(40, 3),
        end(50, 3, false),
        // t2 keeps its waker: the first waker event.
        start(60, 2),
        wake(65, 2, WakeOp::Clone, WakeSource::Task(2)),
        end(70, 2, false),
    ] {
        m.apply(&e);
    }
    m.settle(2_000_000_000);
    let kinds: Vec<_> = m.findings().map(|w| (w.kind, w.task, w.at_ns)).collect();
    // Both early idlers had no waker when the first waker event came; each is flagged at the time it went idle.
    assert_eq!(
        kinds,
        vec![
            (WarningKind::LostWaker, Some(1), 30),
            (WarningKind::LostWaker, Some(3), 50)
        ]
    );
    // A session without waker events at all raises none.
    let mut quiet = Model::new(header(), Thresholds::default());
    for e in [spawn(10, 1), start(20, 1), end(30, 1, false)] {
        quiet.apply(&e);
    }
    assert!(quiet.warnings.is_empty());
}

#[test]
fn a_long_spawn_blocking_closure_is_not_a_blocking_poll() {
    let mut m = Model::new(header(), Thresholds::default());
    let s = 1_000_000_000;
    for e in [
        ev(
            0,
            EventKind::Spawn(Box::new(looptrace_wire::Spawn {
                task: 1,
                kind: TaskKind::Blocking,
                name: None,
                location: "b.rs:1:1".into(),
                parent: None,
                size_bytes: None,
            })),
        ),
        ev(10, EventKind::BlockingStart { task: 1 }),
        ev(2 * s, EventKind::BlockingEnd { task: 1 }),
        // The same on a task is one blocking poll (one finding per poll).
        spawn(3 * s, 2),
        start(3 * s, 2),
        end(5 * s, 2, true),
    ] {
        m.apply(&e);
    }
    let kinds: Vec<_> = m.findings().map(|w| (w.kind, w.task)).collect();
    assert_eq!(kinds, vec![(WarningKind::BlockingPoll, Some(2))]);
    assert_eq!(
        m.tasks[&1].longest_poll_ns,
        2 * s - 10,
        "its run still counts as busy time"
    );
}

#[test]
fn marks_are_kept_newest_last_up_to_a_bound() {
    use looptrace_collector::model::MARKS_MAX;
    let mut m = Model::new(header(), Thresholds::default());
    for i in 0..MARKS_MAX as u64 + 5 {
        m.apply(&ev(
            i,
            EventKind::Mark {
                label: format!("m{i}"),
            },
        ));
    }
    assert_eq!(m.marks.len(), MARKS_MAX);
    assert_eq!(m.marks.front().unwrap().label, "m5", "the oldest go first");
    assert_eq!(m.marks.back().unwrap().at_ns, MARKS_MAX as u64 + 4);
}

#[test]
fn windows_from_checkpoints_match_windows_from_the_start() {
    use looptrace_collector::hub::WindowReply;
    let (hub, id) = live_hub();
    // 4 tasks taking turns, each poll followed by a wake of the next: 300k events.
    let mut all = vec![worker_thread()];
    for t in 1..=4 {
        all.push(spawn(t, t));
    }
    let mut ts = 10;
    while all.len() < 300_000 {
        for t in 1..=4u64 {
            all.push(start(ts, t));
            all.push(wake(
                ts + 10,
                t % 4 + 1,
                WakeOp::WakeByRef,
                WakeSource::Task(t),
            ));
            all.push(end(ts + 20, t, false));
            ts += 30;
        }
    }
    for chunk in all.chunks(5000) {
        hub.ingest(id, chunk);
    }
    for (a, b) in [(0, 1_000), (ts / 2, ts / 2 + 3_000), (ts - 5_000, ts + 1)] {
        let from_hub = match hub.window(id, a, b, usize::MAX, 10).unwrap() {
            WindowReply::Full(w) => w,
            WindowReply::Aggregate(_) => panic!("full detail asked"),
        };
        let direct = window(&all, a, b);
        assert_eq!(from_hub.intervals, direct.intervals, "window {a}..{b}");
        assert_eq!(from_hub.wakes, direct.wakes, "window {a}..{b}");
        assert!(!direct.intervals.is_empty());
    }
}

#[test]
fn io_readiness_is_a_marker() {
    let evs = vec![
        spawn(0, 1),
        start(10, 1),
        end(20, 1, false),
        wake(500, 1, WakeOp::Wake, WakeSource::Io),
        start(600, 1),
        end(650, 1, true),
    ];
    let w = window(&evs, 0, 1000);
    let io: Vec<_> = w
        .markers
        .iter()
        .filter(|m| m.kind == looptrace_collector::model::timeline::MarkerKind::IoReady)
        .map(|m| (m.task, m.at_ns))
        .collect();
    assert_eq!(io, vec![(1, 500)]);
}

/// A worker's spans (polling, parked) are the same whatever number its app gave
/// the thread, a small one or one no runtime would (kept apart, not indexed).
#[test]
fn worker_spans_are_the_same_for_any_thread_number() {
    let on = |thread: u32, ts: u64, kind: EventKind| Event {
        ts_ns: ts,
        thread,
        kind,
    };
    let spans = |thread: u32| {
        let evs = vec![
            spawn(0, 1),
            on(thread, 10, EventKind::PollStart { task: 1 }),
            on(thread, 20, end(0, 1, false).kind),
            on(thread, 30, EventKind::Park),
            on(thread, 50, EventKind::Unpark),
            on(thread, 60, EventKind::PollStart { task: 1 }),
            on(thread, 70, end(0, 1, false).kind),
            on(thread, 80, EventKind::PollStart { task: 1 }),
        ];
        window(&evs, 0, 100)
            .workers
            .iter()
            .map(|w| (w.thread, w.start_ns, w.end_ns, w.task))
            .collect::<Vec<_>>()
    };
    for thread in [0, 3, 1023, 1024, 1_000_000, u32::MAX] {
        assert_eq!(
            spans(thread),
            [
                (thread, 10, 20, Some(1)),
                (thread, 30, 50, None),
                (thread, 60, 70, Some(1)),
                // Still polled when the data ends: closed at its last event.
                (thread, 80, 80, Some(1)),
            ],
            "thread {thread}"
        );
    }
}

#[test]
fn a_tiny_poll_still_shows_in_a_wide_bucket() {
    // A 10 µs poll in one of four 30 ms buckets.
    let evs = vec![spawn(0, 1), start(40_000_000, 1), end(40_010_000, 1, false)];
    let a = aggregate(&window(&evs, 0, 120_000_000), 4);
    assert_eq!(a.tasks[0].running, vec![0.0, 0.001, 0.0, 0.0]);
    assert_eq!(a.tasks[0].polls, vec![0, 1, 0, 0]);
}

/// The memory budget counts each task's histograms at what they hold (they
/// are made small and grow to the longest duration recorded), however they grew
/// and whichever task gave them up.
#[test]
fn the_memory_budget_counts_histograms_as_they_hold() {
    let mut m = Model::new(header(), Thresholds::default());
    let held = |m: &Model| -> u64 {
        m.tasks
            .values()
            .filter_map(|t| t.histograms().map(|h| h.bytes() as u64))
            .sum()
    };
    let mut ts = 0;
    let mut polls = |m: &mut Model, task: u64, ns: u64, n: usize| {
        for _ in 0..n {
            m.apply(&start(ts, task));
            ts += ns;
            m.apply(&end(ts, task, false));
            ts += 1_000;
        }
        m.flush_histograms();
    };
    for task in 1..=3 {
        m.apply(&spawn(0, task));
    }
    polls(&mut m, 1, 1_000, 20);
    polls(&mut m, 2, 40_000_000, 3);
    let short = m.tasks[&1].histograms().unwrap().bytes();
    let long = m.tasks[&2].histograms().unwrap().bytes();
    assert!(
        short < long,
        "{short} bytes for 1 µs polls, {long} for 40 ms ones"
    );
    assert_eq!(m.memory().histograms, held(&m));
    // Grown again, in the middle of a batch and over 4 s (recorded at once).
    polls(&mut m, 1, 3_000_000, 40);
    polls(&mut m, 3, 5_000_000_000, 1);
    assert!(m.tasks[&1].histograms().unwrap().bytes() > short);
    assert_eq!(m.memory().histograms, held(&m));
    // Given up (idle tasks first), then nothing counted for them.
    let total = m.memory().total();
    m.shrink_to(total as usize - 1);
    assert!(m.tasks.values().any(|t| t.histograms().is_none()));
    assert_eq!(m.memory().histograms, held(&m));
}

#[test]
fn per_task_histograms_stay_small() {
    let mut m = Model::new(header(), Thresholds::default());
    m.apply(&spawn(0, 1));
    let t = &m.tasks[&1];
    // Two histograms per task: they are what a task costs the collector most.
    let bytes = t.histograms().unwrap().bytes();
    assert!(bytes <= 6 * 1024, "{bytes} bytes of histograms per task");
    // Durations beyond the range count at its top, rather than being lost.
    let mut m = Model::new(header(), Thresholds::default());
    for e in [
        spawn(0, 1),
        start(10, 1),
        end(10 + 200_000_000_000, 1, false),
    ] {
        m.apply(&e);
    }
    assert_eq!(m.tasks[&1].histograms().unwrap().poll.len(), 1);
}

#[test]
fn a_poll_that_never_yields_is_one_blocking_poll_once_it_ends() {
    let mut m = Model::new(header(), Thresholds::default());
    let ms = 1_000_000;
    let worker = |ts| {
        ev(
            ts,
            EventKind::Thread {
                role: ThreadRole::Worker(0),
                name: "w".into(),
            },
        )
    };
    m.apply(&worker(0));
    m.apply(&spawn(10, 1));
    m.apply(&start(20, 1));
    // Other threads' events while it runs: the periodic check sees it running.
    for ts in [600 * ms, 1_200 * ms, 1_800 * ms] {
        m.apply(&Event {
            ts_ns: ts,
            thread: 1,
            kind: EventKind::Park,
        });
    }
    let live: Vec<_> = m.findings().map(|w| w.kind).collect();
    assert_eq!(live, vec![WarningKind::NeverYields], "while it runs");
    m.take_changes();
    m.apply(&end(2_000 * ms, 1, false));
    let after: Vec<_> = m.findings().map(|w| (w.kind, w.value)).collect();
    assert_eq!(after, vec![(WarningKind::BlockingPoll, 2_000 * ms - 20)]);
    assert_eq!(m.tasks[&1].warnings, 1);
    // Viewers hear of the withdrawal: the never-yields warning is sent again, withdrawn.
    let changed = m.take_changes().warnings;
    assert!(changed
        .iter()
        .any(|&i| m.warnings[i].withdrawn && m.warnings[i].kind == WarningKind::NeverYields));
    // Another such poll reuses the withdrawn warning's place: no slot is left dead.
    let slots = m.warnings.len();
    m.apply(&start(2_100 * ms, 1));
    for ts in [2_700 * ms, 3_300 * ms] {
        m.apply(&Event {
            ts_ns: ts,
            thread: 1,
            kind: EventKind::Park,
        });
    }
    assert_eq!(
        m.findings().map(|w| w.kind).collect::<Vec<_>>(),
        vec![WarningKind::NeverYields, WarningKind::BlockingPoll]
    );
    m.apply(&end(3_500 * ms, 1, false));
    assert_eq!(m.warnings.len(), slots, "the withdrawn slot was reused");
    let blocking: Vec<_> = m.findings().map(|w| (w.kind, w.count)).collect();
    assert_eq!(blocking, vec![(WarningKind::BlockingPoll, 2)]);
}

#[test]
fn a_lost_waker_waits_for_its_grace_period_and_is_withdrawn_when_woken() {
    let ms = 1_000_000;
    // A session that follows wakers; task 1 goes idle at 30 keeping no waker.
    let idle_without_waker = || {
        vec![
            wake(1, 99, WakeOp::Clone, WakeSource::External),
            spawn(10, 1),
            start(20, 1),
            end(30, 1, false),
        ]
    };
    let run = |after: Vec<Event>, settle_at: u64| {
        let mut m = Model::new(header(), Thresholds::default());
        let mut events = vec![worker_thread()];
        events.extend(idle_without_waker());
        events.extend(after);
        for e in &events {
            m.apply(e);
        }
        m.settle(settle_at);
        m.findings().map(|w| w.kind).collect::<Vec<_>>()
    };
    // Within the grace period (250 ms): nothing yet.
    assert_eq!(run(vec![], 200 * ms), vec![]);
    // Past it: lost.
    assert_eq!(run(vec![], 1_100 * ms), vec![WarningKind::LostWaker]);
    // Cancelled (the runtime shutting down, or its owner) within it: nothing lost.
    let cancelled = ev(
        100 * ms,
        EventKind::Terminate {
            task: 1,
            outcome: looptrace_wire::Outcome::Cancelled,
        },
    );
    assert_eq!(run(vec![cancelled], 5_000 * ms), vec![]);
    // Aborted by its owner after a second without a waker: it was lost.
    let aborted = ev(
        1_000 * ms,
        EventKind::Terminate {
            task: 1,
            outcome: looptrace_wire::Outcome::Cancelled,
        },
    );
    assert_eq!(run(vec![aborted], 1_000 * ms), vec![WarningKind::LostWaker]);
    // Reported, then woken after all: withdrawn.
    let mut m = Model::new(header(), Thresholds::default());
    for e in idle_without_waker() {
        m.apply(&e);
    }
    m.settle(2_000 * ms);
    assert_eq!(m.findings().count(), 1);
    m.apply(&wake(2_100 * ms, 1, WakeOp::Wake, WakeSource::External));
    // Woken: by a waker the count missed, or by an abort. Polled on, it was the former.
    m.apply(&start(2_101 * ms, 1));
    m.apply(&end(2_102 * ms, 1, false));
    assert_eq!(m.findings().count(), 0, "woken and polled on: withdrawn");
    assert_eq!(m.tasks[&1].warnings, 0);

    // Woken by its owner's abort after a second with no waker: it stands.
    let mut m = Model::new(header(), Thresholds::default());
    for e in idle_without_waker().into_iter().chain([
        wake(1_000 * ms, 1, WakeOp::Wake, WakeSource::Task(7)),
        start(1_001 * ms, 1),
        ev(
            1_001 * ms + 10,
            EventKind::Terminate {
                task: 1,
                outcome: looptrace_wire::Outcome::Cancelled,
            },
        ),
        end(1_001 * ms + 20, 1, true),
    ]) {
        m.apply(&e);
    }
    let found: Vec<_> = m.findings().map(|w| (w.kind, w.at_ns)).collect();
    assert_eq!(found, vec![(WarningKind::LostWaker, 30)]);
}

#[test]
fn findings_of_one_cause_are_one_warning_with_a_count() {
    let mut m = Model::new(header(), Thresholds::default());
    let ms = 1_000_000;
    // Three connection tasks spawned at one place, two blocked serving the same
    // request, one serving another.
    let conn = |ts, task| {
        ev(
            ts,
            EventKind::Spawn(Box::new(looptrace_wire::Spawn {
                task,
                kind: TaskKind::Task,
                name: None,
                location: "/home/me/.cargo/registry/src/index.crates.io-1/axum-0.8.9/src/serve/mod.rs:389:5"
                    .into(),
                parent: None,
                size_bytes: None,
            })),
        )
    };
    let context = |ts, task, label: &str| {
        ev(
            ts,
            EventKind::Context {
                task,
                label: label.into(),
            },
        )
    };
    for (i, (task, route)) in [
        (1, "GET /blocking"),
        (2, "GET /blocking"),
        (3, "GET /report"),
    ]
    .into_iter()
    .enumerate()
    {
        let t0 = i as u64 * 100 * ms;
        m.apply(&conn(t0, task));
        m.apply(&start(t0 + 1, task));
        if task == 2 {
            // The same, its context carried by the poll's end.
            m.apply(&ev(
                t0 + 50 * ms,
                EventKind::PollEnd {
                    task,
                    ready: true,
                    clones: 0,
                    drops: 0,
                    context: Some(route.into()),
                },
            ));
            continue;
        }
        m.apply(&context(t0 + 2, task, route));
        m.apply(&end(t0 + 50 * ms, task, true));
    }
    let found: Vec<_> = m
        .findings()
        .map(|w| (w.context.clone().unwrap_or_default(), w.count, w.task))
        .collect();
    assert_eq!(
        found,
        vec![
            ("GET /blocking".to_string(), 2, Some(1)),
            ("GET /report".to_string(), 1, Some(3))
        ]
    );
    for task in [1, 2, 3] {
        assert_eq!(m.tasks[&task].warnings, 1, "task {task} counts its own");
    }
}

#[test]
fn queue_samples_give_each_worker_its_queue_and_steals() {
    let mut m = Model::new(header(), Thresholds::default());
    for (thread, index) in [(0, 0), (1, 1)] {
        m.apply(&Event {
            ts_ns: 1,
            thread,
            kind: EventKind::Thread {
                role: ThreadRole::Worker(index),
                name: format!("w{index}"),
            },
        });
    }
    for (ts, local, steals, injection) in [
        (10, vec![30, 0], vec![0, 0], 2),
        (20, vec![12, 3], vec![0, 1], 0),
    ] {
        m.apply(&Event {
            ts_ns: ts,
            thread: 2,
            kind: EventKind::Queues(Box::new(looptrace_wire::Queues {
                local,
                steals,
                injection,
            })),
        });
    }
    use looptrace_collector::to_api::ToApi;
    let w: Vec<_> = m.workers.values().map(|w| w.to_api(m.now_ns)).collect();
    assert_eq!(
        (w[0].queue_depth, w[0].max_queue_depth, w[0].steals),
        (12, 30, 0)
    );
    assert_eq!(
        (w[1].queue_depth, w[1].max_queue_depth, w[1].steals),
        (3, 3, 1)
    );
    assert_eq!(m.injection_queue, 0);
}

/// Context labels are said once per frame and referred to by index after: a
/// frame longer than one ingest chunk, with labels all through it, is stored
/// and read back with every poll's label (the chunks after the first are kept
/// encoded anew, not cut where they would refer to a label said before them).
#[test]
fn labels_said_once_per_frame_survive_ingest_in_chunks() {
    use looptrace_collector::hub::{WindowReply, CHUNK_EVENTS};
    let (hub, id) = live_hub();
    let mut all = vec![worker_thread()];
    all.push(spawn(1, 1));
    let routes = ["GET /a", "POST /b"];
    let mut ts = 10;
    let mut polls = 0;
    while all.len() < 3 * CHUNK_EVENTS {
        all.push(start(ts, 1));
        let label: std::sync::Arc<str> = routes[polls % 2].into();
        if polls % 3 == 2 {
            // Carried by the poll's end (a poll over before its app shipped).
            all.push(ev(
                ts + 20,
                EventKind::PollEnd {
                    task: 1,
                    ready: false,
                    clones: (polls % 2) as u32,
                    drops: 0,
                    context: Some(label),
                },
            ));
        } else {
            all.push(ev(ts + 5, EventKind::Context { task: 1, label }));
            all.push(end(ts + 20, 1, false));
        }
        ts += 30;
        polls += 1;
    }
    let frame = looptrace_collector::store::frame_of(&all);
    assert_eq!(hub.ingest_frame(id, &frame), Ok(all.len()));
    let WindowReply::Full(w) = hub.window(id, 0, ts, usize::MAX, 1).unwrap() else {
        panic!("full detail asked")
    };
    let running: Vec<_> = w
        .intervals
        .iter()
        .filter(|i| i.task == 1 && i.state == TaskState::Running)
        .collect();
    assert_eq!(running.len(), polls);
    for (i, iv) in running.iter().enumerate() {
        assert_eq!(iv.context.as_deref(), Some(routes[i % 2]), "poll {i}");
    }
}

/// A poll on another worker than the task's last poll says where it came from
/// (stolen or moved); the first poll and polls on the same worker do not.
#[test]
fn a_poll_on_another_worker_says_where_the_last_one_ran() {
    let on = |ts: u64, thread: u32, kind: EventKind| Event {
        ts_ns: ts,
        thread,
        kind,
    };
    let mut events = vec![spawn(0, 1)];
    for (ts, thread) in [(10, 0), (30, 0), (50, 1), (70, 0)] {
        events.push(on(ts, thread, EventKind::PollStart { task: 1 }));
        events.push(on(
            ts + 5,
            thread,
            EventKind::PollEnd {
                task: 1,
                ready: false,
                clones: 0,
                drops: 0,
                context: None,
            },
        ));
    }
    let w = window(&events, 0, 100);
    let moved: Vec<(u64, Option<u32>)> = w
        .intervals
        .iter()
        .filter(|i| i.state == TaskState::Running)
        .map(|i| (i.start_ns, i.moved_from))
        .collect();
    assert_eq!(
        moved,
        [(10, None), (30, None), (50, Some(0)), (70, Some(1))]
    );
}

/// Zoomed out, the queues stay visible: per bucket each worker's deepest local
/// queue (a depth carries over buckets without a sample), its steals in the
/// bucket, and the injection queue.
#[test]
fn aggregates_keep_the_queues() {
    let q = |ts: u64, local: [u32; 2], steals: [u64; 2], injection: u32| {
        ev(
            ts,
            EventKind::Queues(Box::new(looptrace_wire::Queues {
                local: local.to_vec(),
                steals: steals.to_vec(),
                injection,
            })),
        )
    };
    let events = vec![
        q(5, [3, 0], [0, 0], 1),
        q(8, [6, 0], [0, 0], 0),
        q(15, [2, 0], [0, 2], 0),
        // Nothing sampled in 20..30: the depth holds.
        q(35, [0, 1], [0, 5], 4),
    ];
    let a = aggregate(&window(&events, 0, 40), 4);
    let queues = a.queues.expect("queue buckets");
    assert_eq!(queues.local, [vec![6, 2, 2, 0], vec![0, 0, 0, 1]]);
    assert_eq!(queues.steals, [vec![0, 0, 0, 0], vec![0, 2, 0, 3]]);
    assert_eq!(queues.injection, [1, 0, 0, 4]);
    // A window that starts between samples begins with the depth then in
    // force, and counts steals from it.
    let later = aggregate(&window(&events, 20, 40), 4);
    let queues = later.queues.expect("queue buckets");
    assert_eq!(queues.local, [vec![2, 2, 2, 0], vec![0, 0, 0, 1]]);
    assert_eq!(queues.steals, [vec![0, 0, 0, 0], vec![0, 0, 0, 3]]);
    // An app that does not sample its queues has none.
    let none = aggregate(&window(&[start(1, 1), end(2, 1, false)], 0, 40), 4);
    assert_eq!(none.queues, None);
}

/// Findings go to an exporter's outbox as they happen, but at most one span a
/// second for each warning: a self-wake storm (a finding at every wake past the
/// threshold) sends a span a second, each counting the findings it stands for.
#[test]
fn a_storm_of_findings_sends_a_span_a_second() {
    use looptrace_collector::model::outbox::Outbox;
    let mut m = Model::new(header(), Thresholds::default());
    m.outbox = Some(Outbox::new(None));
    m.apply(&spawn(0, 1));
    // 3 s of a task waking itself 5000 times a second.
    let mut ts = 1_000;
    for _ in 0..15_000 {
        m.apply(&start(ts, 1));
        m.apply(&wake(ts + 50, 1, WakeOp::WakeByRef, WakeSource::Task(1)));
        m.apply(&end(ts + 100, 1, false));
        ts += 200_000;
    }
    let findings = m
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::SelfWakeStorm)
        .map(|w| w.count)
        .sum::<u64>();
    assert!(
        findings > 5_000,
        "the storm is found at every wake past the threshold: {findings}"
    );
    let (spans, dropped) = m.outbox.as_mut().unwrap().take();
    assert_eq!(dropped, 0);
    let storm: Vec<_> = spans
        .iter()
        .filter(|s| s.kind == Some(WarningKind::SelfWakeStorm))
        .collect();
    assert!(
        (2..=4).contains(&storm.len()),
        "about one span a second: {} spans",
        storm.len()
    );
    // Every finding is stood for by a span, but those since the last span.
    let stood_for: u64 = storm.iter().map(|s| s.findings).sum();
    assert!(
        stood_for <= findings && findings - stood_for < 5_000,
        "{stood_for} of {findings}"
    );
}

/// A window that ends while a poll runs still says what that poll was doing,
/// though the poll's end (which carries its context) or the context sent on
/// its own comes after the window: both in a stored session's window and in
/// one made from the events directly.
#[test]
fn a_window_ending_inside_a_poll_has_that_polls_context() {
    let label = |l: &str| -> std::sync::Arc<str> { l.into() };
    let mut all = vec![worker_thread(), spawn(1, 1), spawn(2, 2), spawn(3, 3)];
    // Task 1's poll ends at 100 carrying its context; task 2 said its context on
    // its own at 120 (its poll ran long); task 3's poll said none. Task 2 runs
    // on another thread.
    all.push(start(10, 1));
    all.push(Event {
        thread: 1,
        ..start(20, 2)
    });
    all.push(end(50, 1, false));
    all.push(start(60, 3));
    all.push(end(70, 3, false));
    all.push(start(80, 1));
    all.push(ev(
        100,
        EventKind::PollEnd {
            task: 1,
            ready: false,
            clones: 0,
            drops: 0,
            context: Some(label("GET /a")),
        },
    ));
    all.push(Event {
        thread: 1,
        ..ev(
            120,
            EventKind::Context {
                task: 2,
                label: label("GET /slow"),
            },
        )
    });
    all.push(Event {
        thread: 1,
        ..end(500, 2, true)
    });
    let (hub, id) = live_hub();
    let frame = looptrace_collector::store::frame_of(&all);
    assert_eq!(hub.ingest_frame(id, &frame), Ok(all.len()));
    let stored = match hub.window(id, 0, 90, usize::MAX, 1).expect("the session") {
        looptrace_collector::hub::WindowReply::Full(w) => w,
        _ => panic!("full detail asked"),
    };
    for w in [window(&all, 0, 90), stored] {
        let running = |task| {
            w.intervals
                .iter()
                .filter(|i| i.task == task && i.state == TaskState::Running)
                .map(|i| {
                    (
                        i.start_ns,
                        i.end_ns,
                        i.context.as_deref().map(str::to_string),
                    )
                })
                .collect::<Vec<_>>()
        };
        // The first poll of task 1 said nothing; the one cut at 90 said GET /a.
        assert_eq!(
            running(1),
            [(10, 50, None), (80, 90, Some("GET /a".to_string()))]
        );
        assert_eq!(running(2), [(20, 90, Some("GET /slow".to_string()))]);
        assert_eq!(running(3), [(60, 70, None)]);
    }
}

/// A task's histograms take its durations a few at a time; whatever is read,
/// between batches or in the middle of one, holds every poll and every wait.
#[test]
fn histograms_hold_every_duration_whenever_read() {
    let mut m = Model::new(header(), Thresholds::default());
    m.apply(&spawn(0, 1));
    let mut ts = 10;
    let mut polls = Vec::new();
    for i in 0..13u64 {
        // Woken (scheduled) for i+1 µs, polled for 2(i+1) µs.
        m.apply(&ev(
            ts,
            EventKind::Waker {
                task: 1,
                op: WakeOp::Wake,
                by: WakeSource::Io,
            },
        ));
        ts += (i + 1) * 1000;
        m.apply(&start(ts, 1));
        ts += 2 * (i + 1) * 1000;
        m.apply(&end(ts, 1, false));
        polls.push(2 * (i + 1) * 1000);
        ts += 100;
    }
    // A long poll (over 4 s) as well.
    m.apply(&start(ts, 1));
    ts += 5_000_000_000;
    m.apply(&end(ts, 1, false));
    polls.push(5_000_000_000);
    let read = |m: &Model| {
        let h = m.tasks[&1].histograms().expect("kept");
        (h.poll.len(), h.sched.len(), h.poll.max(), h.sched.min())
    };
    let mid_batch = read(&m);
    m.flush_histograms();
    let flushed = read(&m);
    assert_eq!(mid_batch, flushed);
    // 14 polls; 13 waits to be polled (the long poll came with no wake).
    assert_eq!((flushed.0, flushed.1), (polls.len() as u64, 13));
    let h = m.tasks[&1].histograms().unwrap();
    assert!(h.poll.equivalent(h.poll.max(), 5_000_000_000));
    for p in &polls {
        assert!(h.poll.count_at(*p) >= 1, "poll of {p} ns");
    }
}

/// Each batch's changes name every task it changed, though a task is put in the
/// set once for events of its in a row.
#[test]
fn a_task_changed_again_after_its_changes_were_taken_is_changed() {
    let mut m = Model::new(header(), Thresholds::default());
    m.track_changes = true;
    let poll = |m: &mut Model, task, ts| {
        m.apply(&start(ts, task));
        m.apply(&end(ts + 5, task, false));
    };
    poll(&mut m, 1, 10);
    poll(&mut m, 2, 20);
    poll(&mut m, 1, 30);
    assert_eq!(m.take_changes().tasks, [1, 2]);
    poll(&mut m, 1, 40);
    assert_eq!(m.take_changes().tasks, [1]);
    assert!(m.take_changes().tasks.is_empty());
}

/// The next live batch `rx` gets.
fn next_batch(
    rx: &mut tokio::sync::broadcast::Receiver<looptrace_collector::hub::Update>,
) -> looptrace_api::Batch {
    use looptrace_collector::hub::Update;
    loop {
        match rx.try_recv() {
            Ok(Update::Batch { message, .. }) => match serde_json::from_str(&message) {
                Ok(looptrace_api::Message::Batch(b)) => return b,
                other => panic!("not a batch: {other:?}"),
            },
            Ok(Update::Sessions) => continue,
            Err(e) => panic!("no batch: {e}"),
        }
    }
}

/// A batch too big to carry what it closed is still followed: a poll it
/// started is drawn whole by the next batch, which ends it.
#[test]
fn a_poll_started_in_a_batch_too_big_to_draw_is_drawn_by_the_batch_that_ends_it() {
    let (hub, id) = live_hub_with(looptrace_collector::hub::HubConfig {
        max_live_events: 10,
        ..Default::default()
    });
    let _watch = hub.watch(Some(id));
    let mut rx = hub.subscribe();

    // Task 2 polled 20 times, then task 1's poll starts at 5000.
    let mut big: Vec<Event> = (0..20)
        .flat_map(|i| [start(100 * i, 2), end(100 * i + 50, 2, false)])
        .collect();
    big.push(start(5_000, 1));
    hub.ingest(id, &big);
    let b = next_batch(&mut rx);
    assert_eq!((b.intervals, b.events_skipped), (None, Some(41)));

    hub.ingest(id, &[end(7_000, 1, false)]);
    let b = next_batch(&mut rx);
    let polls: Vec<_> = b
        .intervals
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.state == TaskState::Running)
        .map(|i| (i.task, i.start_ns, i.end_ns))
        .collect();
    assert_eq!(polls, [(1, 5_000, 7_000)]);
}

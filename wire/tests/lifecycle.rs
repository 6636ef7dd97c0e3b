//! How events move a task between states: the cases the one derivation must get
//! right for the model, the timeline and the exports alike.

use looptrace_wire::*;

fn ev(ts_ns: u64, thread: u32, kind: EventKind) -> Event {
    Event {
        ts_ns,
        thread,
        kind,
    }
}

fn spawn(ts: u64) -> Event {
    ev(
        ts,
        0,
        EventKind::Spawn(Box::new(looptrace_wire::Spawn {
            task: 1,
            kind: TaskKind::Task,
            name: None,
            location: "src/main.rs:1:1".into(),
            parent: None,
            size_bytes: None,
        })),
    )
}

fn start(ts: u64, thread: u32) -> Event {
    ev(ts, thread, EventKind::PollStart { task: 1 })
}

fn end(ts: u64, ready: bool) -> Event {
    ev(
        ts,
        0,
        EventKind::PollEnd {
            task: 1,
            ready,
            clones: 0,
            drops: 0,
            context: None,
        },
    )
}

fn wake(ts: u64, by: WakeSource) -> Event {
    ev(
        ts,
        0,
        EventKind::Waker {
            task: 1,
            op: WakeOp::Wake,
            by,
        },
    )
}

/// Follows `events`: the stretches closed, as (state, start, end).
fn follow(life: &mut Lifecycle, events: &[Event]) -> Vec<(TaskState, u64, u64)> {
    events
        .iter()
        .filter_map(|e| life.apply(e))
        .map(|s| (s.state, s.start_ns, s.end_ns))
        .collect()
}

use TaskState::*;

#[test]
fn spawned_scheduled_polled_idle_woken_done() {
    let mut t = Lifecycle::default();
    let closed = follow(
        &mut t,
        &[
            spawn(10),
            start(20, 1),
            end(30, false),
            wake(50, WakeSource::Timer),
            start(70, 0),
            end(75, true),
        ],
    );
    assert_eq!(
        closed,
        [
            (Scheduled, 10, 20),
            (Running, 20, 30),
            (Idle, 30, 50),
            (Scheduled, 50, 70),
            (Running, 70, 75)
        ]
    );
    assert_eq!(t.state, Some(Done));
    assert_eq!(t.open_stretch(100), None, "a finished task spends no time");
}

#[test]
fn a_stretch_says_who_woke_it_and_how_a_poll_ended() {
    let mut t = Lifecycle::default();
    t.apply(&spawn(0));
    t.apply(&start(5, 3));
    let poll = t.apply(&end(9, false)).unwrap();
    assert_eq!((poll.thread, poll.ready), (Some(3), Some(false)));
    t.apply(&wake(20, WakeSource::Io));
    let waited = t.apply(&start(25, 3)).unwrap();
    assert_eq!(
        (waited.state, waited.woken_by),
        (Scheduled, Some(WakeSource::Io))
    );
    // Spawned, not woken: scheduled with no waker.
    let mut u = Lifecycle::default();
    u.apply(&spawn(0));
    assert_eq!(u.apply(&start(1, 0)).unwrap().woken_by, None);
}

#[test]
fn a_wake_during_its_poll_schedules_it_when_the_poll_ends() {
    let mut t = Lifecycle::default();
    t.apply(&spawn(0));
    t.apply(&start(10, 0));
    // yield_now: woken by itself while running.
    assert_eq!(t.apply(&wake(12, WakeSource::Task(1))), None);
    assert_eq!(t.state, Some(Running));
    t.apply(&end(15, false));
    assert_eq!(t.state, Some(Scheduled));
    assert_eq!(t.woken_by, Some(WakeSource::Task(1)));
    assert_eq!(t.since_ns, 15);
    // A second wake while scheduled changes nothing.
    assert_eq!(t.apply(&wake(16, WakeSource::Timer)), None);
    assert_eq!(t.woken_by, Some(WakeSource::Task(1)));
}

#[test]
fn terminated_during_its_last_poll_it_is_done_when_the_poll_ends() {
    let mut t = Lifecycle::default();
    t.apply(&spawn(0));
    t.apply(&start(10, 0));
    let term = ev(
        12,
        0,
        EventKind::Terminate {
            task: 1,
            outcome: Outcome::Cancelled,
        },
    );
    assert_eq!(t.apply(&term), None, "the poll goes on");
    assert_eq!(t.state, Some(Running));
    let poll = t.apply(&end(14, false)).unwrap();
    assert_eq!((poll.state, poll.start_ns, poll.end_ns), (Running, 10, 14));
    assert_eq!(t.state, Some(Done));
    // Terminated while idle: done at once, its idle time closed.
    let mut u = Lifecycle::default();
    follow(&mut u, &[spawn(0), start(1, 0), end(2, false)]);
    let idle = u.apply(&ev(
        9,
        0,
        EventKind::Terminate {
            task: 1,
            outcome: Outcome::Cancelled,
        },
    ));
    assert_eq!(
        idle.map(|s| (s.state, s.start_ns, s.end_ns)),
        Some((Idle, 2, 9))
    );
    assert_eq!(u.state, Some(Done));
}

#[test]
fn first_seen_mid_stream_nothing_before_is_invented() {
    // The data begins inside a poll: its end measures nothing.
    let mut t = Lifecycle::default();
    assert_eq!(t.apply(&end(50, false)), None);
    assert_eq!((t.state, t.since_ns), (Some(Idle), 50));
    // The data begins at a poll: no scheduled time before it.
    let mut u = Lifecycle::default();
    assert_eq!(u.apply(&start(70, 0)), None);
    assert_eq!(u.state, Some(Running));
    // Woken before anything else was seen: scheduled from the wake.
    let mut w = Lifecycle::default();
    assert_eq!(w.apply(&wake(5, WakeSource::External)), None);
    assert_eq!((w.state, w.since_ns), (Some(Scheduled), 5));
}

#[test]
fn a_restated_state_is_not_a_transition() {
    let mut t = Lifecycle::default();
    let restated = |ts, thread, state| ev(ts, thread, EventKind::TaskState { task: 1, state });
    assert_eq!(t.apply(&restated(100, 2, Idle)), None);
    assert_eq!((t.state, t.since_ns, t.thread), (Some(Idle), 100, None));
    // Running: restated with the thread it runs on.
    assert_eq!(t.apply(&restated(110, 4, Running)), None);
    assert_eq!(t.thread, Some(4));
    let poll = t.apply(&end(120, false)).unwrap();
    assert_eq!((poll.start_ns, poll.thread), (110, Some(4)));
}

#[test]
fn a_blocking_closure_runs_once_and_is_done() {
    let mut t = Lifecycle::default();
    t.apply(&spawn(0));
    t.apply(&ev(3, 7, EventKind::BlockingStart { task: 1 }));
    let ran = t
        .apply(&ev(9, 7, EventKind::BlockingEnd { task: 1 }))
        .unwrap();
    assert_eq!(
        (ran.state, ran.thread, ran.ready),
        (Running, Some(7), Some(true))
    );
    assert_eq!(t.state, Some(Done));
}

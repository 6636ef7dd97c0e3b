//! Exact event sequences for small known programs, and who woke whom.

mod common;
use common::*;
use looptrace::wire::{EventKind, Flavor, Outcome, TaskKind, ThreadRole, WakeOp, WakeSource};
use looptrace::Builder;
use std::io::{Read, Write};
use std::time::Duration;

fn named<F>(name: &str, f: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::task::Builder::new().name(name).spawn(f).unwrap()
}

#[test]
fn a_sleeping_task_is_polled_twice_and_woken_by_the_timer() {
    let _s = serial();
    let (t, _) = run(Builder::new_current_thread(), || async {
        named("sleeper", async {
            tokio::time::sleep(Duration::from_millis(30)).await
        })
        .await
        .unwrap();
    });
    assert_eq!(t.header.flavor, Flavor::CurrentThread);
    assert_eq!(t.header.workers, 1);
    let id = t.task("sleeper");
    assert_eq!(
        t.story(id),
        [
            "spawn",
            "poll",
            "timer armed",
            "pending",
            "timer fired",
            "wake by timer",
            "poll",
            "terminate completed",
            "ready"
        ]
    );
    let polls = t.ts_of(id, |k| matches!(k, EventKind::PollStart { .. }));
    let gap = polls[1] - polls[0];
    assert!(
        gap >= 30_000_000,
        "second poll only {gap} ns after the first"
    );
    // The main thread became worker 0.
    let workers: Vec<_> = t
        .roles()
        .into_values()
        .filter(|r| matches!(r, ThreadRole::Worker(_)))
        .collect();
    assert_eq!(workers, [ThreadRole::Worker(0)]);
    assert_eq!(t.report.dropped_buffer_full + t.report.dropped_unsent, 0);
}

#[test]
fn a_channel_send_wakes_the_receiver_by_the_senders_task() {
    let _s = serial();
    for builder in [
        Builder::new_current_thread(),
        Builder::new_multi_thread().worker_threads(2),
    ] {
        let (t, _) = run(builder, || async {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
            let rx_task = named("receiver", async move { rx.recv().await });
            tokio::time::sleep(Duration::from_millis(20)).await;
            named("sender", async move { tx.send(7).await.unwrap() })
                .await
                .unwrap();
            assert_eq!(rx_task.await.unwrap(), Some(7));
        });
        let (rx, tx) = (t.task("receiver"), t.task("sender"));
        assert_eq!(t.wakes_of(rx), [WakeSource::Task(tx)], "{:?}", t.story(rx));
        assert_eq!(
            t.story(rx),
            [
                "spawn",
                "poll",
                "pending",
                &format!("wake by task:{tx}"),
                "poll",
                "terminate completed",
                "ready"
            ]
        );
    }
}

#[test]
fn a_wake_from_a_plain_thread_is_external() {
    let _s = serial();
    let (t, _) = run(Builder::new_multi_thread().worker_threads(2), || async {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let waiter = named("waiter", async move { rx.await.unwrap() });
        let th = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            tx.send(()).unwrap();
        });
        waiter.await.unwrap();
        th.join().unwrap();
    });
    let id = t.task("waiter");
    assert_eq!(t.wakes_of(id), [WakeSource::External]);
    let roles = t.roles();
    assert!(
        roles
            .values()
            .filter(|r| matches!(r, ThreadRole::Worker(_)))
            .count()
            >= 1
    );
    assert_eq!(t.header.workers, 2);
    assert_eq!(t.header.flavor, Flavor::MultiThread);
}

#[test]
fn a_socket_becoming_readable_wakes_by_io() {
    let _s = serial();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // One connection per scheduler below, served one after the other.
    let peer = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(40));
            s.write_all(b"ping").unwrap();
            let mut buf = [0; 1];
            let _ = s.read(&mut buf);
        }
    });
    for builder in [
        Builder::new_current_thread(),
        Builder::new_multi_thread().worker_threads(2),
    ] {
        let (t, _) = run(builder, || async move {
            named("reader", async move {
                use tokio::io::AsyncReadExt;
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).await.unwrap();
                assert_eq!(&buf, b"ping");
            })
            .await
            .unwrap();
        });
        let id = t.task("reader");
        let wakes = t.wakes_of(id);
        assert!(wakes.contains(&WakeSource::Io), "{wakes:?}");
        assert!(wakes.iter().all(|w| *w == WakeSource::Io), "{wakes:?}");
    }
    peer.join().unwrap();
}

#[test]
fn yield_now_is_a_self_wake() {
    let _s = serial();
    for builder in [
        Builder::new_current_thread(),
        Builder::new_multi_thread().worker_threads(2),
    ] {
        let (t, _) = run(builder, || async {
            named("yielder", async {
                for _ in 0..5 {
                    tokio::task::yield_now().await;
                }
            })
            .await
            .unwrap();
        });
        let id = t.task("yielder");
        assert_eq!(
            t.wakes_of(id),
            vec![WakeSource::Task(id); 5],
            "{:?}",
            t.story(id)
        );
        assert_eq!(
            t.ts_of(id, |k| matches!(k, EventKind::PollStart { .. }))
                .len(),
            6
        );
    }
}

#[test]
fn spawn_blocking_runs_and_wakes_by_blocking() {
    let _s = serial();
    let (t, _) = run(Builder::new_multi_thread().worker_threads(2), || async {
        let (tx, rx) = tokio::sync::oneshot::channel::<u8>();
        let waiter = named("waiter", async move { rx.await.unwrap() });
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(1).unwrap();
        })
        .await
        .unwrap();
        waiter.await.unwrap();
    });
    let blocking: Vec<u64> = t
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Spawn(s) if s.kind == TaskKind::Blocking => Some(s.task),
            _ => None,
        })
        .collect();
    assert_eq!(
        blocking.len(),
        1,
        "one spawn_blocking task, not tokio's workers"
    );
    // Spawned from `block_on`'s future, not from a task: no parent.
    assert!(t.events.iter().any(|e| matches!(
        &e.kind,
        EventKind::Spawn(s) if s.kind == TaskKind::Blocking && s.parent.is_none()
    )));
    let b = blocking[0];
    let start = t.ts_of(b, |k| matches!(k, EventKind::BlockingStart { .. }));
    let end = t.ts_of(b, |k| matches!(k, EventKind::BlockingEnd { .. }));
    assert_eq!((start.len(), end.len()), (1, 1));
    assert!(end[0] - start[0] >= 20_000_000);
    let on = t
        .events
        .iter()
        .find(|e| matches!(e.kind, EventKind::BlockingStart { .. }))
        .unwrap()
        .thread;
    assert_eq!(t.roles()[&on], ThreadRole::Blocking);
    assert_eq!(t.wakes_of(t.task("waiter")), [WakeSource::Blocking]);
}

#[test]
fn outcomes_parents_and_aborts() {
    let _s = serial();
    let (t, _) = run(Builder::new_current_thread(), || async {
        let parent = named("parent", async {
            named("child", async {}).await.unwrap();
        });
        parent.await.unwrap();
        let p = named("panicker", async { panic!("on purpose") });
        assert!(p.await.unwrap_err().is_panic());
        let sleeper = named("aborted", async {
            tokio::time::sleep(Duration::from_secs(60)).await
        });
        tokio::task::yield_now().await;
        sleeper.abort();
        assert!(sleeper.await.unwrap_err().is_cancelled());
        // Left pending at shutdown: cancelled when the runtime drops.
        named("left behind", std::future::pending::<()>());
        tokio::task::yield_now().await;
    });
    let outcome = |name: &str| {
        let id = t.task(name);
        t.of(id)
            .iter()
            .find_map(|e| match e.kind {
                EventKind::Terminate { outcome, .. } => Some(outcome),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name} never terminated"))
    };
    assert_eq!(outcome("parent"), Outcome::Completed);
    assert_eq!(outcome("child"), Outcome::Completed);
    assert_eq!(outcome("panicker"), Outcome::Panicked);
    assert_eq!(outcome("aborted"), Outcome::Cancelled);
    assert_eq!(outcome("left behind"), Outcome::Cancelled);
    let child = t.task("child");
    let parent = t.task("parent");
    assert!(t.events.iter().any(
        |e| matches!(&e.kind, EventKind::Spawn(s) if s.task == child && s.parent == Some(parent))
    ));
    // A panicking poll still ends, as Ready.
    let p = t.task("panicker");
    assert_eq!(t.story(p), ["spawn", "poll", "terminate panicked", "ready"]);
    // Unnamed tasks are named by location.
    assert!(t.events.iter().all(|e| match &e.kind {
        EventKind::Spawn(s) => s.location.contains(".rs:"),
        _ => true,
    }));
}

#[test]
fn an_unnamed_task_says_where_it_was_spawned_by_whom_and_its_size() {
    let _s = serial();
    let (t, line) = run(Builder::new_current_thread(), || async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        named("parent", async move {
            let big = [7u8; 1000];
            let line = line!() + 1;
            tokio::spawn(async move { std::hint::black_box(big).len() })
                .await
                .unwrap();
            tx.send(line).unwrap();
        })
        .await
        .unwrap();
        rx.await.unwrap()
    });
    let parent = t.task("parent");
    let spawns: Vec<_> = t
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Spawn(s) if s.name.is_none() => {
                Some((s.kind, s.location.clone(), s.parent, s.size_bytes))
            }
            _ => None,
        })
        .collect();
    let at = |l: u32| format!("{}:{l}:", file!());
    let child = spawns
        .iter()
        .find(|s| s.1.starts_with(&at(line)))
        .expect("the child's spawn");
    assert_eq!((child.0, child.2), (TaskKind::Task, Some(parent)));
    assert!(
        child.3.is_some_and(|n| n >= 1000),
        "its size: {:?}",
        child.3
    );
}

#[test]
fn a_full_buffer_drops_and_counts_without_blocking() {
    let _s = serial();
    // Tiny buffers and a slow shipper: most events cannot fit.
    let builder = Builder::new_current_thread()
        .buffer_capacity(64)
        .flush_interval(Duration::from_millis(200));
    let (t, _) = run(builder, || async {
        named("busy", async {
            for _ in 0..20_000 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
    });
    let reported: u64 = t
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Dropped { count } => Some(count),
            _ => None,
        })
        .sum();
    assert!(t.report.dropped_buffer_full > 10_000, "{:?}", t.report);
    assert_eq!(
        reported, t.report.dropped_buffer_full,
        "every drop is reported in the stream"
    );
}

#[test]
fn a_buffer_half_full_wakes_the_shipper_before_its_round() {
    let _s = serial();
    // Far more events than the buffer holds, over far less than a shipping round,
    // at a pace the shipper keeps up with once woken (about 150 events every
    // 2 ms: what it may take each time).
    let builder = Builder::new_current_thread()
        .buffer_capacity(1024)
        .flush_interval(Duration::from_secs(60))
        // Nothing else to wake the shipper: no queue sampling on a timer of its own.
        .sample_queues(None);
    let (t, ()) = run(builder, || async {
        for _ in 0..400 {
            let batch: Vec<_> = (0..4)
                .map(|_| tokio::spawn(tokio::task::yield_now()))
                .collect();
            for h in batch {
                h.await.unwrap();
            }
            // Blocks the runtime's only thread: time passes, no events.
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    assert_eq!(t.report.dropped_buffer_full, 0, "{:?}", t.report);
    let polls = t
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::PollStart { .. }))
        .count();
    // Each task polled twice (once pending after its yield, once to finish).
    assert_eq!(polls, 400 * 4 * 2);
    assert!(t.events.len() > 8 * 1024, "{} events", t.events.len());
}

#[test]
fn events_are_in_time_order_and_poll_pairs_nest() {
    let _s = serial();
    let (t, _) = run(Builder::new_multi_thread().worker_threads(2), || async {
        let hs: Vec<_> = (0..20)
            .map(|i| {
                tokio::spawn(async move {
                    for _ in 0..i {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    });
    // Per thread, polls never overlap and every start has its end.
    let mut open = std::collections::HashMap::new();
    for e in &t.events {
        match e.kind {
            EventKind::PollStart { task } => assert!(
                open.insert(e.thread, task).is_none(),
                "nested poll on {}",
                e.thread
            ),
            EventKind::PollEnd { task, .. } => assert_eq!(open.remove(&e.thread), Some(task)),
            _ => {}
        }
    }
    assert!(open.is_empty());
    let polls = t
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::PollStart { .. }))
        .count();
    assert_eq!(polls, (0..20).map(|i| i + 1).sum::<usize>());
}

#[test]
fn spawn_blocking_from_a_task_names_its_parent() {
    let _s = serial();
    let (t, _) = run(Builder::new_current_thread(), || async {
        named("caller", async {
            tokio::task::spawn_blocking(|| 40 + 2).await.unwrap()
        })
        .await
        .unwrap();
    });
    let caller = t.task("caller");
    let spawns: Vec<_> = t
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Spawn(s) if s.kind == TaskKind::Blocking => Some((s.task, s.parent)),
            _ => None,
        })
        .collect();
    assert_eq!(spawns.len(), 1);
    assert_eq!(spawns[0].1, Some(caller));
    let b = spawns[0].0;
    assert_eq!(
        t.ts_of(b, |k| matches!(k, EventKind::BlockingEnd { .. }))
            .len(),
        1
    );
    assert!(
        t.wakes_of(caller).contains(&WakeSource::Blocking),
        "{:?}",
        t.story(caller)
    );
}

#[test]
fn marks_carry_their_label_time_and_thread() {
    let _s = serial();
    // Nothing captured: a no-op.
    looptrace::mark("before any session");
    let (t, _) = run(Builder::new_multi_thread().worker_threads(2), || async {
        looptrace::mark("start");
        named("marker", async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            looptrace::mark(String::from("in a task"));
        })
        .await
        .unwrap();
        std::thread::spawn(|| looptrace::mark("from a plain thread"))
            .join()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    });
    let marks: Vec<(u64, u32, &str)> = t
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Mark { label } => Some((e.ts_ns, e.thread, label.as_str())),
            _ => None,
        })
        .collect();
    let labels: Vec<_> = marks.iter().map(|m| m.2).collect();
    assert_eq!(labels, ["start", "in a task", "from a plain thread"]);
    assert!(marks[0].0 < marks[1].0 && marks[1].0 < marks[2].0);
    // The task's mark is inside its second poll, on the worker that ran it.
    let id = t.task("marker");
    let polls = t.ts_of(id, |k| matches!(k, EventKind::PollStart { .. }));
    assert!(marks[1].0 >= polls[1], "{marks:?} {polls:?}");
    let roles = t.roles();
    assert!(matches!(roles[&marks[1].1], ThreadRole::Worker(_)));
    assert_eq!(roles[&marks[2].1], ThreadRole::External);
}

/// A future that, on its first poll, clones its own waker three times, drops two of
/// the clones and wakes itself with the third (consuming it); then finishes.
struct Juggler(bool);

impl std::future::Future for Juggler {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        let (a, b, c) = (cx.waker().clone(), cx.waker().clone(), cx.waker().clone());
        drop(a);
        drop(b);
        c.wake();
        std::task::Poll::Pending
    }
}

#[test]
fn own_waker_clones_and_drops_fold_into_the_poll_end() {
    let _s = serial();
    for every in [false, true] {
        let (t, _) = run(
            Builder::new_current_thread().every_waker_op(every),
            || async { named("juggler", Juggler(false)).await.unwrap() },
        );
        let id = t.task("juggler");
        let ops = |op: WakeOp| {
            t.of(id)
                .iter()
                .filter(|e| matches!(e.kind, EventKind::Waker { op: o, .. } if o == op))
                .count()
        };
        let ends: Vec<(u32, u32)> = t
            .of(id)
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::PollEnd { clones, drops, .. } => Some((clones, drops)),
                _ => None,
            })
            .collect();
        // The wake is an event either way, and by the task itself.
        assert_eq!(t.wakes_of(id), vec![WakeSource::Task(id)], "every={every}");
        if every {
            assert_eq!((ops(WakeOp::Clone), ops(WakeOp::Drop)), (3, 2));
            assert_eq!(ends, vec![(0, 0), (0, 0)]);
        } else {
            assert_eq!((ops(WakeOp::Clone), ops(WakeOp::Drop)), (0, 0));
            assert_eq!(ends, vec![(3, 2), (0, 0)]);
        }
    }
}

/// Polls once: hands its waker to a plain thread, waits there until that
/// thread has woken it, and returns `Pending`; then is ready.
struct WokenMidPoll {
    polled: bool,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::future::Future for WokenMidPoll {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.polled {
            if let Some(t) = self.thread.take() {
                t.join().unwrap();
            }
            return std::task::Poll::Ready(());
        }
        self.polled = true;
        let woken = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (waker, flag) = (cx.waker().clone(), woken.clone());
        self.thread = Some(std::thread::spawn(move || {
            waker.wake_by_ref();
            flag.store(true, std::sync::atomic::Ordering::Release);
        }));
        while !woken.load(std::sync::atomic::Ordering::Acquire) {
            std::hint::spin_loop();
        }
        std::task::Poll::Pending
    }
}

#[test]
fn a_wake_by_another_thread_during_a_poll_goes_out_between_its_start_and_end() {
    let _s = serial();
    // Nothing else happens on the polling thread during that poll: it goes into
    // the ring as one slot, which the shipper must still take apart in order.
    // One runtime thread: on two, tokio may poll the woken task again on the
    // other before this poll's end hook runs (it runs after the task is
    // rescheduled), and a preempted worker stamps that end late.
    let (t, _) = run(Builder::new_current_thread(), || async {
        let f = WokenMidPoll {
            polled: false,
            thread: None,
        };
        named("woken", f).await.unwrap();
    });
    let id = t.task("woken");
    assert_eq!(
        t.story(id),
        [
            "spawn",
            "poll",
            "wake by external",
            "pending",
            "poll",
            "terminate completed",
            "ready"
        ]
    );
    let times: Vec<u64> = t.of(id).iter().map(|e| e.ts_ns).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn a_long_poll_is_shipped_started_while_it_runs() {
    let _s = serial();
    // Two workers; then twelve, busy enough that more rings than the merge
    // scans take part in a round (it then keeps them in a heap).
    for workers in [2, 12] {
        let (rt, mem) = in_memory(
            Builder::new_multi_thread()
                .worker_threads(workers)
                .flush_interval(Duration::from_millis(10)),
        );
        let shipped_during = rt.block_on(async {
            let tickers: Vec<_> = (0..workers)
                .map(|i| {
                    named(&format!("ticker {i}"), async {
                        for _ in 0..100 {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                    })
                })
                .collect();
            let mem = mem.clone();
            let long = named("long", async move {
                // Blocks its worker: nothing else is pushed on it meanwhile.
                std::thread::sleep(Duration::from_millis(150));
                mem.frames()
            });
            let during = long.await.unwrap();
            for t in tickers {
                t.await.unwrap();
            }
            during
        });
        rt.shutdown();
        let shipped = mem.events();
        let shipped_by = shipped.iter().filter(|(f, _)| *f < shipped_during).count();
        let events: Vec<_> = shipped.into_iter().map(|(_, e)| e).collect();
        let name = |n: &str| {
            events.iter().find_map(|e| match &e.kind {
                EventKind::Spawn(s) if s.name.as_deref() == Some(n) => Some(s.task),
                _ => None,
            })
        };
        let (long, ticker) = (name("long").unwrap(), name("ticker 0").unwrap());
        let at = |pred: &dyn Fn(&EventKind) -> bool| -> Vec<usize> {
            (0..events.len())
                .filter(|&i| pred(&events[i].kind))
                .collect()
        };
        let starts = at(&|k| matches!(k, EventKind::PollStart { task } if *task == long));
        let ends = at(&|k| matches!(k, EventKind::PollEnd { task, .. } if *task == long));
        // Once each: shipped from the running poll, not again from its slot.
        assert_eq!((starts.len(), ends.len()), (1, 1), "{workers} workers");
        let (start, end) = (starts[0], ends[0]);
        // Its start went out in a frame shipped before the poll ended.
        assert!(
            start < shipped_by,
            "{workers} workers: start at {start}, {shipped_by} shipped during the poll"
        );
        // A ticker's polls during it go out between its start and its end.
        let (t0, t1) = (events[start].ts_ns, events[end].ts_ns);
        let between: Vec<usize> =
            at(&|k| matches!(k, EventKind::PollStart { task } if *task == ticker))
                .into_iter()
                .filter(|&i| events[i].ts_ns > t0 && events[i].ts_ns < t1)
                .collect();
        assert!(
            between.len() >= 20,
            "{} ticker polls during the long one",
            between.len()
        );
        assert!(between.iter().all(|&i| start < i && i < end));
        // And the whole stream is in time order.
        let late = events
            .windows(2)
            .filter(|w| w[1].ts_ns < w[0].ts_ns)
            .count();
        assert_eq!(late, 0, "{workers} workers: events out of time order");
    }
}

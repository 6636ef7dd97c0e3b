//! Every demo, run by its binary (sped up) with a recording: the phenomenon it
//! teaches is in the trace.

use demos::trace::{model_of, Trace};
use looptrace_collector::model::task::Task;
use looptrace_collector::model::Model;
use looptrace_collector::model::WarningKind;
use looptrace_test_support::{body, http_get};
use looptrace_wire::{Event, EventKind, Outcome, Recording, TaskId, WakeSource};
use std::process::Command;

struct Run {
    events: Vec<Event>,
    model: Model,
    stdout: String,
}

impl Run {
    fn trace(&self) -> Trace<'_> {
        Trace::new(&self.model)
    }

    fn task(&self, name: &str) -> &Task {
        self.trace()
            .task(name)
            .unwrap_or_else(|| panic!("no task named {name:?}"))
    }

    /// Wakes (wake or wake_by_ref) of `task`, with who did them.
    fn wakes_of(&self, task: TaskId) -> Vec<WakeSource> {
        looptrace_test_support::wakes_of(&self.events, task)
    }

    /// Tasks in the order their polls started.
    fn poll_order(&self) -> Vec<TaskId> {
        self.events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::PollStart { task } => Some(task),
                _ => None,
            })
            .collect()
    }

    /// The marks (`looptrace::mark`) in the recording: time and label.
    fn marks(&self) -> Vec<(u64, String)> {
        self.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Mark { label } => Some((e.ts_ns, label.clone())),
                _ => None,
            })
            .collect()
    }

    /// Worker threads that polled `task`.
    fn threads_of(&self, task: TaskId) -> std::collections::BTreeSet<u32> {
        self.events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::PollStart { task: t } if t == task))
            .map(|e| e.thread)
            .collect()
    }
}

/// Runs `demos NAME --speed SPEED` to its end, recorded, and reads the recording back.
fn run(name: &str, speed: f64) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.ltrace"));
    let out = Command::new(env!("CARGO_BIN_EXE_demos"))
        .args([
            name,
            "--exit",
            "--quiet",
            "--no-tui",
            "--serve",
            "127.0.0.1:0",
            "--speed",
            &speed.to_string(),
            "--record",
        ])
        .arg(&path)
        .output()
        .expect("demos runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Watch for:"),
        "{name} says what to watch for first:\n{stdout}"
    );
    assert!(
        stdout.contains("What happened:"),
        "{name} says what happened after:\n{stdout}"
    );
    let rec = Recording::open(&path).unwrap();
    assert!(rec.damage.is_empty(), "{:?}", rec.damage);
    // The lesson is in the recording, for replays: before, then after.
    let titles: Vec<_> = rec.notes.iter().map(|n| n.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            format!("{name}: what to watch for"),
            format!("{name}: what happened")
        ],
        "{name}"
    );
    let dropped: u64 = rec
        .events
        .iter()
        .filter_map(|e| {
            if let EventKind::Dropped { count } = e.kind {
                Some(count)
            } else {
                None
            }
        })
        .sum();
    assert_eq!(dropped, 0, "{name}: no event lost");
    let model = model_of(rec.header.clone(), &rec.events);
    Run {
        events: rec.events,
        model,
        stdout,
    }
}

fn near(got: f64, want: f64, slack: f64, what: &str) {
    assert!(
        (got - want).abs() <= slack,
        "{what}: {got:.3} s, expected {want:.3} ± {slack} s"
    );
}

#[test]
fn list_names_every_demo_and_unknown_names_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_demos"))
        .arg("list")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let catalog = demos::catalog();
    assert!(catalog.len() >= 11);
    for d in &catalog {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(d.name) && l.contains(d.summary)),
            "{} listed:\n{text}",
            d.name
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_demos"))
        .arg("no-such-demo")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no demo named \"no-such-demo\"") && err.contains("work-stealing"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_demos"))
        .args(["hello", "--speed", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a positive number"));
    // Serving off loopback needs a token, as `looptrace serve` does.
    let out = Command::new(env!("CARGO_BIN_EXE_demos"))
        .args(["hello", "--no-tui", "--serve", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs a token"), "{err}");
}

#[test]
fn hello_explains_itself_with_numbers_from_the_trace() {
    let r = run("hello", 2.0);
    let t = r.trace();
    near(t.ended(r.task("Bob")), 0.5, 0.1, "Bob");
    near(t.ended(r.task("Charlie")), 1.5, 0.1, "Charlie");
    // The summary's numbers are the trace's: Bob first after 0.5 s; 1.5 s in all, not 3.0 s.
    assert!(
        r.stdout.contains("Bob finished first, after 0.5 s"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("took 1.5 s, not 3.0 s"), "{}", r.stdout);
}

#[test]
fn sequential_takes_twice_as_long_as_concurrent_whose_tasks_overlap() {
    let speed = 4.0;
    let r = run("sequential-vs-concurrent", speed);
    let t = r.trace();
    let seq = t.lifetime(r.task("sequential"));
    let con = t.lifetime(r.task("concurrent"));
    near(seq, 6.0 / speed, 0.15, "sequential");
    near(con, 3.0 / speed, 0.15, "concurrent");
    assert!(
        (seq / con - 2.0).abs() < 0.2,
        "sequential {seq:.3} s is about twice concurrent {con:.3} s"
    );
    // One task, polled once to start and once per timer.
    assert_eq!(r.task("sequential").polls, 4);
    let greeters: Vec<_> = [
        "Alice (concurrent)",
        "Bob (concurrent)",
        "Charlie (concurrent)",
    ]
    .iter()
    .map(|n| r.task(n))
    .collect();
    let last_spawn = greeters.iter().map(|g| g.spawned_ns).max().unwrap();
    let first_end = greeters.iter().filter_map(|g| g.ended_ns).min().unwrap();
    assert!(
        last_spawn < first_end,
        "the concurrent greetings are all alive at once"
    );
    // And they are alive at the same time as the sequential one.
    assert!(r.task("sequential").spawned_ns < first_end);
}

#[test]
fn blocking_stalls_the_other_task_and_the_fix_does_not() {
    let speed = 2.0;
    let blocked = 1.0 / speed;
    let r = run("blocking", speed);
    let t = r.trace();
    let blocker = r.task("std::thread::sleep");
    assert!(
        t.longest_poll(blocker) >= blocked * 0.95,
        "one poll of about {blocked} s"
    );
    assert!(
        t.warned(blocker, WarningKind::BlockingPoll) >= 1,
        "{:?}",
        r.model.warnings
    );
    let hb1 = r.task("heartbeat 1");
    let hb2 = r.task("heartbeat 2");
    // The heartbeat is woken from outside, on time; it waits for the blocked worker.
    assert!(r
        .wakes_of(hb1.id)
        .iter()
        .all(|w| *w == WakeSource::External));
    assert!(
        t.longest_wait(hb1) >= blocked * 0.7,
        "heartbeat 1 waited {:.3} s of the {blocked} s block",
        t.longest_wait(hb1)
    );
    // Its wait has the blocking poll for cause: that poll's finding, not one of its own.
    assert_eq!(t.warned(hb1, WarningKind::SchedulingLatency), 0);
    assert!(
        t.longest_wait(hb2) < 0.05,
        "heartbeat 2 waited {:.3} s",
        t.longest_wait(hb2)
    );
    // Each part is marked on the timeline, part 2 after part 1's tasks are done.
    let marks = r.marks();
    let labels: Vec<_> = marks.iter().map(|m| m.1.as_str()).collect();
    assert_eq!(
        labels,
        [
            "part 1: std::thread::sleep inside a task",
            "part 2: the fix"
        ]
    );
    assert!(
        marks[0].0 <= hb1.spawned_ns
            && hb1.ended_ns.unwrap() <= marks[1].0
            && marks[1].0 <= hb2.spawned_ns
    );
    for fixed in [
        "tokio::time::sleep",
        "spawn_blocking",
        "sleep on the blocking pool",
        "heartbeat 2",
    ] {
        assert_eq!(r.task(fixed).warnings, 0, "{fixed}: {:?}", r.model.warnings);
        assert!(t.lifetime(r.task(fixed)) >= blocked * 0.95);
    }
}

#[test]
fn cpu_work_interleaves_only_when_it_yields() {
    let r = run("cpu-yield", 2.0);
    let switches = |a: &str, b: &str| {
        let (a, b) = (r.task(a).id, r.task(b).id);
        let order: Vec<_> = r
            .poll_order()
            .into_iter()
            .filter(|t| *t == a || *t == b)
            .collect();
        order.windows(2).filter(|w| w[0] != w[1]).count()
    };
    assert_eq!(r.task("greedy A").polls, 1);
    assert_eq!(r.task("greedy B").polls, 1);
    assert_eq!(
        switches("greedy A", "greedy B"),
        1,
        "A runs to its end, then B"
    );
    let marks = r.marks();
    assert_eq!(marks.len(), 2);
    assert!(
        r.task("greedy B").ended_ns.unwrap() <= marks[1].0
            && marks[1].0 <= r.task("polite A").spawned_ns,
        "{marks:?}"
    );
    assert!(r.task("polite A").polls > demos::cpu_yield::CHUNKS as u64);
    let s = switches("polite A", "polite B");
    assert!(
        s >= demos::cpu_yield::CHUNKS,
        "polite tasks take turns: {s} switches"
    );
    // Yielding is a self-wake.
    let a = r.task("polite A").id;
    assert!(
        r.wakes_of(a)
            .iter()
            .filter(|w| **w == WakeSource::Task(a))
            .count()
            >= demos::cpu_yield::CHUNKS
    );
    // Greedy B waits for all of A's work; polite B for about one chunk of it.
    let t = r.trace();
    let chunk = demos::cpu_yield::CHUNK_SECS / 2.0;
    let (greedy, polite) = (
        t.longest_wait(r.task("greedy B")),
        t.longest_wait(r.task("polite B")),
    );
    assert!(
        greedy >= 0.9 * chunk * demos::cpu_yield::CHUNKS as f64,
        "greedy B waited {greedy:.3} s"
    );
    // (A margin for the OS: a chunk is a few ms, and CI machines preempt.)
    assert!(
        polite * 5.0 <= greedy,
        "polite B waited {polite:.3} s, greedy B {greedy:.3} s"
    );
}

#[test]
fn a_full_channel_makes_the_producer_wait_for_the_consumer() {
    use demos::producer_consumer::{CAPACITY, ITEMS, WORK_SECS};
    let speed = 4.0;
    let r = run("producer-consumer", speed);
    let (p, c) = (r.task("producer"), r.task("consumer"));
    let by_consumer = r
        .wakes_of(p.id)
        .iter()
        .filter(|w| **w == WakeSource::Task(c.id))
        .count();
    assert!(
        by_consumer >= ITEMS - CAPACITY - 1,
        "the consumer woke the producer {by_consumer} times"
    );
    // Backpressure: the producer cannot finish until the consumer has taken all but a channel's worth.
    let t = r.trace();
    let earliest = (ITEMS - CAPACITY - 1) as f64 * WORK_SECS / speed;
    assert!(
        t.ended(p) >= earliest * 0.95,
        "producer done at {:.3} s, not before {earliest:.3} s",
        t.ended(p)
    );
    near(
        t.ended(c),
        ITEMS as f64 * WORK_SECS / speed,
        0.15,
        "consumer",
    );
    assert!(r.stdout.contains("consumer: handled item 10"));
}

#[test]
fn echo_connections_are_woken_by_io() {
    use demos::echo_server::{CLIENTS, MESSAGES};
    let r = run("echo-server", 4.0);
    let conns = r.trace().tasks("connection ");
    assert_eq!(conns.len(), CLIENTS);
    let mut io = 0;
    for c in &conns {
        let wakes = r.wakes_of(c.id);
        assert!(
            wakes.iter().all(|w| *w == WakeSource::Io),
            "{}: {wakes:?}",
            c.name
        );
        io += wakes.len();
    }
    assert!(io >= CLIENTS * MESSAGES, "{io} io wakes");
    assert_eq!(r.trace().tasks("client ").len(), CLIENTS);
    assert!(
        r.trace().cancelled(r.task("echo server")),
        "the server is stopped at the end"
    );
}

#[test]
fn tokio_mutex_hands_over_by_wakes_and_std_mutex_blocks_workers() {
    let speed = 2.0;
    let r = run("mutex", speed);
    let t = r.trace();
    assert_eq!(r.model.header.workers, 2);
    let tokio_lockers = t.tasks("tokio lock ");
    let ids: Vec<_> = tokio_lockers.iter().map(|x| x.id).collect();
    let handoffs: usize = tokio_lockers
        .iter()
        .map(|x| {
            r.wakes_of(x.id)
                .iter()
                .filter(|w| matches!(w, WakeSource::Task(by) if *by != x.id && ids.contains(by)))
                .count()
        })
        .sum();
    assert!(
        handoffs >= 4,
        "waiters are woken by the task unlocking: {handoffs}"
    );
    for x in &tokio_lockers {
        assert_eq!(t.warned(x, WarningKind::BlockingPoll), 0, "{}", x.name);
    }
    let std_lockers = t.tasks("std lock ");
    let blocking: usize = std_lockers
        .iter()
        .map(|x| t.warned(x, WarningKind::BlockingPoll))
        .sum();
    assert!(
        blocking >= 2,
        "std lockers block their workers: {:?}",
        r.model.warnings
    );
    let hold = demos::mutex::HOLD_SECS / speed;
    let (w1, w2) = (
        t.longest_wait(r.task("heartbeat 1")),
        t.longest_wait(r.task("heartbeat 2")),
    );
    assert!(
        w1 < hold / 2.0,
        "heartbeat 1 waited {w1:.3} s: the workers were free"
    );
    assert!(
        w2 > w1 && w2 >= hold * 0.4,
        "heartbeat 2 waited {w2:.3} s for a worker"
    );
}

#[test]
fn timeout_select_and_abort_cancel_tasks() {
    let speed = 2.0;
    let r = run("timeout-cancel", speed);
    let t = r.trace();
    for (name, at) in [
        ("slow request", 1.0),
        ("mirror west", 0.5),
        ("countdown", 1.0),
    ] {
        let task = r.task(name);
        assert_eq!(task.outcome, Some(Outcome::Cancelled), "{name}");
        near(t.ended(task), at / speed, 0.1, name);
    }
    for (name, at) in [("mirror east", 0.5), ("impatient", 0.5)] {
        let task = r.task(name);
        assert_eq!(task.outcome, Some(Outcome::Completed), "{name}");
        near(t.ended(task), at / speed, 0.1, name);
    }
    assert!(r.stdout.contains("slow request: cancelled"), "{}", r.stdout);
}

#[test]
fn join_runs_in_one_task_and_joinset_in_many() {
    let speed = 4.0;
    let r = run("join-gather", speed);
    let t = r.trace();
    let join = r.task("join!");
    assert_eq!(join.polls, 4, "started, then woken by each of three timers");
    assert!(t.tasks("Alice (join!)").is_empty(), "join! spawns no task");
    let set = r.task("JoinSet");
    let children: Vec<_> = ["Alice (JoinSet)", "Bob (JoinSet)", "Charlie (JoinSet)"]
        .iter()
        .map(|n| r.task(n))
        .collect();
    let woken_by_children = r
        .wakes_of(set.id)
        .iter()
        .filter(|w| matches!(w, WakeSource::Task(c) if children.iter().any(|x| x.id == *c)))
        .count();
    assert_eq!(woken_by_children, 3, "each result wakes the set");
    assert!(children.iter().all(|c| c.parent == Some(set.id)));
    assert_eq!(
        r.task("handles").polls,
        3,
        "awaiting Alice first sleeps through Bob's end"
    );
    for name in ["join!", "JoinSet", "handles"] {
        near(t.lifetime(r.task(name)), 3.0 / speed, 0.1, name);
    }
}

#[test]
fn work_is_stolen_across_workers() {
    let r = run("work-stealing", 1.0);
    let jobs = r.trace().tasks("job ");
    assert_eq!(jobs.len(), demos::work_stealing::JOBS);
    let threads: std::collections::BTreeSet<u32> =
        jobs.iter().flat_map(|j| r.threads_of(j.id)).collect();
    assert!(
        threads.len() >= 2,
        "jobs ran on {} worker(s)",
        threads.len()
    );
    let (used, moves) = r.trace().workers_used();
    assert!(used >= 2);
    assert!(moves >= 1, "some task moved between workers");
}

#[test]
fn the_lost_waker_is_caught() {
    let r = run("lost-waker", 2.0);
    let t = r.trace();
    let lost = r.task("forgetful");
    assert_eq!(
        t.warned(lost, WarningKind::LostWaker),
        1,
        "{:?}",
        r.model.warnings
    );
    assert_eq!(lost.polls, 1);
    assert_eq!(lost.outcome, Some(Outcome::Cancelled));
    let ok = r.task("faithful");
    assert_eq!(ok.warnings, 0, "{:?}", r.model.warnings);
    assert_eq!(r.wakes_of(ok.id), vec![WakeSource::External]);
    assert_eq!(ok.outcome, Some(Outcome::Completed));
}

#[test]
fn the_readme_and_the_lesson_plan_cover_every_demo() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let lesson = std::fs::read_to_string(root.join("docs/teaching.md")).unwrap();
    for d in demos::catalog() {
        assert!(
            readme.contains(&format!("| `{}` |", d.name)),
            "README's demo table lists {}",
            d.name
        );
        assert!(
            lesson.contains(&format!("`{}`", d.name)),
            "docs/teaching.md mentions {}",
            d.name
        );
    }
    // Every picture the lesson plan shows is there.
    for part in lesson.split("](").skip(1) {
        let target = &part[..part.find(')').unwrap()];
        if target.ends_with(".png") {
            assert!(
                root.join("docs").join(target).exists(),
                "docs/{target} exists"
            );
        }
    }
}

#[test]
fn the_browser_timeline_carries_the_lesson_before_and_after() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_demos"))
        .args([
            "hello",
            "--quiet",
            "--no-tui",
            "--serve",
            "127.0.0.1:0",
            "--speed",
            "4",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the timeline's address is printed")
            .unwrap();
        if let Some(rest) = line.strip_prefix("timeline: http://") {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    let mut titles = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline
        && titles.last().map(String::as_str) != Some("hello: what happened")
    {
        let response = http_get(&addr, "/api/sessions");
        let v: serde_json::Value = serde_json::from_str(body(&response)).unwrap();
        if let Some(t) = v["sessions"][0]["note"]["title"].as_str() {
            if titles.last().map(String::as_str) != Some(t) {
                titles.push(t.to_string());
            }
            if t == "hello: what happened" {
                let text = v["sessions"][0]["note"]["text"].as_str().unwrap();
                assert!(
                    text.contains("Bob finished first") && text.contains("Watch for:"),
                    "{text}"
                );
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(titles, ["hello: what to watch for", "hello: what happened"]);
}

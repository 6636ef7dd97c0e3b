//! Teaching demos: small async programs whose scheduling is worth watching.
//!
//! Each [`Demo`] says what it shows and what to watch for, runs on the scheduler it
//! needs, and reads its own trace afterwards to say what happened ([`trace`]).
//! [`catalog`] lists them in teaching order; [`pace`] scales their time (`--speed`).

pub mod blocking;
pub mod cpu_yield;
pub mod echo_server;
pub mod hello;
pub mod join_gather;
pub mod lost_waker;
pub mod mutex;
pub mod pace;
pub mod producer_consumer;
pub mod sequential;
pub mod timeout_cancel;
pub mod trace;
pub mod work_stealing;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::task::JoinHandle;
pub use trace::Trace;

static SILENT: AtomicBool = AtomicBool::new(false);

/// Stops [`say()`] printing (the terminal dashboard owns the screen).
pub fn silence() {
    SILENT.store(true, Ordering::Relaxed);
}

/// Lets [`say()`] print again (the terminal dashboard has closed).
pub fn unsilence() {
    SILENT.store(false, Ordering::Relaxed);
}

/// Prints a line to stdout; a closed stdout (`demos hello | head`) is not an error
/// worth a panic in a task.
pub fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if !SILENT.load(Ordering::Relaxed) {
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

/// `println!` that tolerates a closed stdout.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { $crate::say(format_args!($($t)*)) };
}

/// Starts a part of a demo: printed, and marked on the timeline (`looptrace::mark`).
pub fn part(label: &str) {
    say!("-- {label}");
    looptrace::mark(label);
}

/// Spawns a task with a name, which is what the timeline shows for it.
pub fn spawn<F>(name: &str, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    // Fails only when the runtime is shutting down, which the demos never race.
    tokio::task::Builder::new()
        .name(name)
        .spawn(future)
        .expect("spawning on a running runtime")
}

/// Awaits every handle in order; a task that panicked or was aborted is reported.
pub async fn join_all<T>(handles: Vec<JoinHandle<T>>) -> Vec<Option<T>> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(v) => out.push(Some(v)),
            Err(e) => {
                say!("a task did not finish: {e}");
                out.push(None);
            }
        }
    }
    out
}

/// A task woken from outside the runtime at a steady beat, the way requests
/// arrive from a network: its wakes come on time, so how long it then waits to be
/// polled shows whether a worker was free.
pub struct Heartbeat {
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Heartbeat {
    /// Starts the task `name`, woken every `every` seconds (demo time) by a thread.
    pub fn start(name: &str, every: f64) -> Heartbeat {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<std::time::Instant>();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let sender = std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    pace::block(every);
                    if tx.send(std::time::Instant::now()).is_err() {
                        break;
                    }
                }
            });
        if let Err(e) = sender {
            say!("{name}: cannot start its thread: {e}");
        }
        let label = name.to_string();
        let task = spawn(name, async move {
            let (mut beats, mut worst) = (0u32, std::time::Duration::ZERO);
            while let Some(sent) = rx.recv().await {
                beats += 1;
                worst = worst.max(sent.elapsed());
            }
            say!(
                "{label}: {beats} beats, the latest handled {:.1} ms after it was sent",
                worst.as_secs_f64() * 1e3
            );
        });
        Heartbeat { stop, task }
    }

    /// Stops the beat and waits for the task to see the last one.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
    }
}

/// Which scheduler a demo runs on unless told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// One thread: the event loop of the explainer.
    CurrentThread,
    /// Worker threads that steal work from each other.
    MultiThread,
}

/// A demo: its name on the command line, a one-line summary, what to watch for,
/// the program itself, and how to read its trace afterwards.
pub struct Demo {
    pub name: &'static str,
    pub summary: &'static str,
    pub watch_for: &'static str,
    pub flavor: Flavor,
    pub run: fn() -> Pin<Box<dyn Future<Output = ()> + Send>>,
    /// What happened, in numbers from the trace.
    pub explain: fn(&Trace) -> Vec<String>,
}

/// Every demo, in teaching order.
pub fn catalog() -> Vec<Demo> {
    use Flavor::*;
    vec![
        Demo {
            name: "hello",
            summary: "Three tasks say hello after 2 s (Alice), 1 s (Bob) and 3 s (Charlie), spawned together.",
            watch_for: "Each task is polled once, returns Pending while its timer runs, and the worker parks with \
                        nothing to do. The timer wakes Bob at 1 s, Alice at 2 s, Charlie at 3 s; each is polled \
                        once more and returns Ready. The run takes about 3 s, not 6: the sleeps overlap.",
            flavor: CurrentThread,
            run: || Box::pin(hello::run()),
            explain: hello::explain,
        },
        Demo {
            name: "sequential-vs-concurrent",
            summary: "The same three greetings awaited one after another (6 s) and spawned together (3 s), side by side.",
            watch_for: "The `sequential` lane has one task that sleeps 2 s, then 1 s, then 3 s: one wait at a time. \
                        Beside it, `concurrent` spawns three tasks whose waits overlap, and is done at 3 s while \
                        `sequential` still has 3 s to go. `.await` waits for one thing; spawning lets waits overlap.",
            flavor: CurrentThread,
            run: || Box::pin(sequential::run()),
            explain: sequential::explain,
        },
        Demo {
            name: "blocking",
            summary: "std::thread::sleep inside a task freezes the worker; then the fix with tokio::time::sleep and spawn_blocking.",
            watch_for: "In part 1, `std::thread::sleep` shows one 1 s poll (a blocking-poll warning) and `heartbeat 1` \
                        sits scheduled (woken, waiting) for that whole second: nobody else can run. In part 2 the same \
                        wait is an await or a blocking-pool thread, and `heartbeat 2` is polled the moment it is woken. \
                        A dashed line marks where each part starts.",
            flavor: CurrentThread,
            run: || Box::pin(blocking::run()),
            explain: blocking::explain,
        },
        Demo {
            name: "cpu-yield",
            summary: "CPU-heavy tasks without and with yield_now(): one hogs the worker, or they take turns.",
            watch_for: "`greedy A` runs in one long poll while `greedy B` waits scheduled, then B does the same. \
                        `polite A` and `polite B` alternate chunk by chunk: many short polls, each woken by itself \
                        (yield_now), and neither waits long. Both pairs need the same total time. A dashed line marks \
                        where each part starts.",
            flavor: CurrentThread,
            run: || Box::pin(cpu_yield::run()),
            explain: cpu_yield::explain,
        },
        Demo {
            name: "producer-consumer",
            summary: "A fast producer and a slow consumer on a bounded channel: backpressure and task-to-task wakes.",
            watch_for: "The producer fills the channel (3 items) in its first poll and goes idle. Each time the \
                        consumer takes an item, an arrow goes from consumer to producer: it woke the producer to \
                        send one more. The producer ends just before the consumer, never more than 3 items ahead.",
            flavor: CurrentThread,
            run: || Box::pin(producer_consumer::run()),
            explain: producer_consumer::explain,
        },
        Demo {
            name: "echo-server",
            summary: "A TCP echo server and eight clients on loopback, all on one thread: I/O wakes.",
            watch_for: "Every `connection N` lane is mostly idle, with short polls each time its socket has data: \
                        those wakes come from the I/O driver (io markers). The clients' wakes alternate between I/O \
                        (the echo arrived) and the timer (their pause). One thread serves everyone.",
            flavor: CurrentThread,
            run: || Box::pin(echo_server::run()),
            explain: echo_server::explain,
        },
        Demo {
            name: "mutex",
            summary: "Lock contention: tokio::sync::Mutex held across .await vs std::sync::Mutex held across blocking work.",
            watch_for: "With the tokio mutex, waiters are idle and the unlocking task wakes the next (task-to-task \
                        arrows); the workers stay free and `heartbeat 1` is polled at once. With the std mutex, \
                        waiting for the lock blocks a whole worker: long polls, blocking-poll warnings, and \
                        `heartbeat 2` left scheduled. A dashed line marks where each part starts.",
            flavor: MultiThread,
            run: || Box::pin(mutex::run()),
            explain: mutex::explain,
        },
        Demo {
            name: "timeout-cancel",
            summary: "Not waiting for the end: timeout, select! and abort() drop tasks before they finish.",
            watch_for: "`slow request`, `mirror west` and `countdown` end while idle, never returning Ready: they are \
                        cancelled (their futures dropped) at 1 s, 0.5 s and 1 s. `mirror east` completes; `impatient` \
                        gives up on a future, not a task, and completes normally.",
            flavor: CurrentThread,
            run: || Box::pin(timeout_cancel::run()),
            explain: timeout_cancel::explain,
        },
        Demo {
            name: "join-gather",
            summary: "join! inside one task, a JoinSet (asyncio's gather) and spawned handles: three ways to wait for all.",
            watch_for: "`join!` is a single lane polled at each timer: concurrency without tasks. The JoinSet's \
                        greetings get lanes of their own and wake the set as each finishes (Bob, Alice, Charlie). \
                        `handles` awaits Alice first, so Bob's end at 1 s does not wake it. All take 3 s.",
            flavor: CurrentThread,
            run: || Box::pin(join_gather::run()),
            explain: join_gather::explain,
        },
        Demo {
            name: "work-stealing",
            summary: "Eight CPU jobs spawned from one worker of a multi-thread runtime: the others steal them.",
            watch_for: "In the worker lanes, the jobs start on the spawner's worker: its queue fills (the orange \
                        bars along the bottom of its lane; the event-loop panel counts them). The idle worker unparks \
                        and steals half of it (⇠ on its lane; steals in the workers view). A job's polls hop between \
                        workers (migrations).",
            flavor: MultiThread,
            run: || Box::pin(work_stealing::run()),
            explain: work_stealing::explain,
        },
        Demo {
            name: "lost-waker",
            summary: "A hand-written future that returns Pending without keeping its waker, and one that keeps it.",
            watch_for: "`forgetful` is polled once, returns Pending, and stays idle with no waker alive: the \
                        lost-waker warning. `faithful` clones its waker first; a thread wakes it at 0.5 s and it \
                        finishes. After 1.5 s the demo gives up on `forgetful` and aborts it.",
            flavor: CurrentThread,
            run: || Box::pin(lost_waker::run()),
            explain: lost_waker::explain,
        },
    ]
}

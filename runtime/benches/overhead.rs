//! What capture costs, measured beside plain tokio and tokio-console in one process.
//!
//! `cargo bench -p looptrace --bench overhead` runs, on both schedulers, a yield-heavy
//! workload (1000 tasks x 2000 `yield_now`, ~2M polls) and a ping-pong workload
//! (100 task pairs over `mpsc(1)`) and a request workload (200 tasks x 1000
//! requests, each in a request span as tower-http's `TraceLayer` makes, polled
//! twice: what request context costs), each in these configurations, interleaved
//! round by round (median of the rounds):
//!
//! * `plain`: tokio, no hooks, no subscriber;
//! * `hooks`: looptrace's poll path only (spawn/poll/terminate/park hooks, timestamped);
//! * `spans`: the poll path plus tokio's task spans (entered and exited on every
//!   poll), without waker events;
//! * `full`: looptrace capturing everything (hooks plus waker and span events);
//! * `live`: the same, shipped as it goes: a recording written by the shipping
//!   thread at its default pace, so its cost is in the timed part too
//!   (the CPU column shows it; wall time hides what it does on the other core);
//! * `console`: `console_subscriber` active instead;
//! * `floor`: plain tokio, its task spans and waker events dispatched to a
//!   subscriber that does nothing: the part of `full` that is tokio's `tracing`
//!   instrumentation itself, which any tracer of tokio's wakes pays.
//!
//! The tracing subscriber is switched per configuration behind one global dispatcher
//! (and the callsite cache rebuilt), so each configuration sees tokio's callsites
//! exactly as it would alone. Except in `live`, shipping is deferred to the end of
//! each run (large buffers, long flush interval) so that the figures are the cost
//! inside the traced runtime; events are counted and drops reported.
//!
//! Each round's cost is taken against the same round's `plain`; the report gives
//! the median and the spread (min..max) over rounds.
//!
//! Environment: `LOOPTRACE_BENCH_ROUNDS` (default 7), `LOOPTRACE_BENCH_SCALE`
//! (default 1.0; 0.1 for a quick look).

use looptrace::wire::FrameSink;
use looptrace::LooptraceSubscriber;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing_core::span::{Attributes, Current, Id, Record};
use tracing_core::subscriber::{Interest, Subscriber};
use tracing_core::{Dispatch, Event, LevelFilter, Metadata};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Plain = 0,
    Hooks = 1,
    Full = 2,
    Console = 3,
    /// Hooks and tokio's task spans (entered on every poll), but no waker events:
    /// what `full` adds on top of this is the waker operations alone.
    Spans = 4,
    /// Everything, shipped live to a recording.
    Live = 5,
    /// Plain tokio, its task spans and waker events dispatched to a subscriber
    /// that does nothing with them: what any tracer of tokio's wakes pays before
    /// it records a thing, the floor under `full`.
    Floor = 6,
}
const MODES: [Mode; 7] = [
    Mode::Plain,
    Mode::Floor,
    Mode::Hooks,
    Mode::Spans,
    Mode::Full,
    Mode::Live,
    Mode::Console,
];

static MODE: AtomicU8 = AtomicU8::new(0);

fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        1 => Mode::Hooks,
        2 => Mode::Full,
        3 => Mode::Console,
        4 => Mode::Spans,
        5 => Mode::Live,
        6 => Mode::Floor,
        _ => Mode::Plain,
    }
}

/// console-subscriber, as deployed (`console_subscriber::spawn()`/`init()`),
/// gives its server thread a scoped no-op dispatcher, which puts every thread of the
/// process on tracing's scoped-dispatch path. A helper thread holds such a guard
/// exactly while the console configuration runs, so console is measured as users
/// run it and the other configurations as they run without it.
static SCOPER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<bool>>> =
    std::sync::OnceLock::new();

fn scoped_no_op(on: bool) {
    let tx = SCOPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<bool>();
        let (ack_tx, ack_rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let mut guard = None;
            for on in rx {
                guard = if on {
                    Some(tracing::dispatcher::set_default(&Dispatch::none()))
                } else {
                    None
                };
                let _ = ack_tx.send(());
            }
            drop(guard);
        });
        ACK.set(std::sync::Mutex::new(ack_rx)).ok();
        std::sync::Mutex::new(tx)
    });
    tx.lock().unwrap().send(on).unwrap();
    ACK.get().unwrap().lock().unwrap().recv().unwrap();
}
static ACK: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Receiver<()>>> =
    std::sync::OnceLock::new();

fn set_mode(m: Mode) {
    let was = mode();
    MODE.store(m as u8, Ordering::SeqCst);
    if (m == Mode::Console) != (was == Mode::Console) {
        scoped_no_op(m == Mode::Console);
    }
    tracing_core::callsite::rebuild_interest_cache();
}

type Console = tracing_subscriber::layer::Layered<
    console_subscriber::ConsoleLayer,
    tracing_subscriber::Registry,
>;

/// Console's span ids, as the switch hands them out: its registry's (small)
/// with this bit, which looptrace's keys never have alone (its context keys set
/// bit 63; its task keys are small).
const CONSOLE_TAG: u64 = 1 << 62;
/// The one span id of the `floor` configuration.
const FLOOR_ID: u64 = 1 << 61;

/// Which subscriber made a span.
enum Owner {
    Looptrace,
    /// With console's own id.
    Console(Id),
    Floor,
}

fn owner(s: &Id) -> Owner {
    let v = s.into_u64();
    if v >> 62 == 1 {
        Owner::Console(Id::from_u64(v & !CONSOLE_TAG))
    } else if v == FLOOR_ID {
        Owner::Floor
    } else {
        Owner::Looptrace
    }
}

/// Routes everything to looptrace's subscriber, console's, or nowhere. Both are held
/// as plain values, not `Dispatch`es: every `Dispatch` takes part in tracing's
/// callsite interest, and console's would make every callsite "sometimes" for all
/// configurations.
struct Switch {
    looptrace: LooptraceSubscriber,
    console: Console,
}

impl Subscriber for Switch {
    fn register_callsite(&self, m: &'static Metadata<'static>) -> Interest {
        match mode() {
            Mode::Full | Mode::Live | Mode::Floor => self.looptrace.register_callsite(m),
            Mode::Spans if m.target() == "tokio::task::waker" => Interest::never(),
            Mode::Spans => self.looptrace.register_callsite(m),
            Mode::Console => self.console.register_callsite(m),
            _ => Interest::never(),
        }
    }
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        match mode() {
            Mode::Full | Mode::Live | Mode::Floor => self.looptrace.enabled(m),
            Mode::Spans => m.target() != "tokio::task::waker" && self.looptrace.enabled(m),
            Mode::Console => self.console.enabled(m),
            _ => false,
        }
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }
    fn new_span(&self, a: &Attributes<'_>) -> Id {
        match mode() {
            Mode::Console => {
                // An explicit parent is named by the switch's id: console's
                // registry knows it by its own (and a parent another subscriber
                // made, not at all).
                let id = match a.parent().map(owner) {
                    Some(Owner::Console(p)) => {
                        self.console
                            .new_span(&Attributes::child_of(p, a.metadata(), a.values()))
                    }
                    Some(_) => self
                        .console
                        .new_span(&Attributes::new_root(a.metadata(), a.values())),
                    None => self.console.new_span(a),
                };
                Id::from_u64(id.into_u64() | CONSOLE_TAG)
            }
            // Any id: nothing is ever looked up by it.
            Mode::Floor => Id::from_u64(FLOOR_ID),
            _ => self.looptrace.new_span(a),
        }
    }
    // A span goes back to the subscriber that made it, whatever the mode now:
    // the console server's thread lives across configurations, and its spans
    // with it.
    fn record(&self, s: &Id, v: &Record<'_>) {
        if let Owner::Console(s) = owner(s) {
            self.console.record(&s, v)
        }
    }
    fn record_follows_from(&self, s: &Id, f: &Id) {
        if let (Owner::Console(s), Owner::Console(f)) = (owner(s), owner(f)) {
            self.console.record_follows_from(&s, &f)
        }
    }
    fn event(&self, e: &Event<'_>) {
        match mode() {
            Mode::Full | Mode::Live | Mode::Spans => self.looptrace.event(e),
            Mode::Console => self.console.event(e),
            _ => {}
        }
    }
    fn enter(&self, s: &Id) {
        match owner(s) {
            Owner::Console(s) => self.console.enter(&s),
            Owner::Looptrace => self.looptrace.enter(s),
            Owner::Floor => {}
        }
    }
    fn exit(&self, s: &Id) {
        match owner(s) {
            Owner::Console(s) => self.console.exit(&s),
            Owner::Looptrace => self.looptrace.exit(s),
            Owner::Floor => {}
        }
    }
    fn clone_span(&self, s: &Id) -> Id {
        match owner(s) {
            Owner::Console(c) => Id::from_u64(self.console.clone_span(&c).into_u64() | CONSOLE_TAG),
            Owner::Looptrace => self.looptrace.clone_span(s),
            Owner::Floor => s.clone(),
        }
    }
    fn try_close(&self, s: Id) -> bool {
        match owner(&s) {
            Owner::Console(c) => self.console.try_close(c),
            Owner::Looptrace => self.looptrace.try_close(s),
            Owner::Floor => false,
        }
    }
    fn current_span(&self) -> Current {
        match mode() {
            Mode::Console => match self.console.current_span().into_inner() {
                Some((id, meta)) => Current::new(Id::from_u64(id.into_u64() | CONSOLE_TAG), meta),
                None => Current::none(),
            },
            _ => Current::none(),
        }
    }
    // Says it holds looptrace's subscriber, so that the builder knows wakes reach it.
    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == std::any::TypeId::of::<LooptraceSubscriber>() {
            Some(&self.looptrace as *const LooptraceSubscriber as *const ())
        } else {
            None
        }
    }
}

/// Counts waker operations: those sent one event each, and a task's own clones
/// and drops folded into its poll ends. Shipping is deferred past the timed part,
/// so decoding here costs the measurement nothing.
#[derive(Clone, Default)]
struct Count {
    wakers: Arc<AtomicU64>,
}
impl FrameSink for Count {
    fn frame(&mut self, f: &[u8]) {
        use looptrace::wire::EventKind;
        if let Ok(looptrace::wire::Frame::Events(events)) = looptrace::wire::decode_frame(f) {
            let n: u64 = events
                .iter()
                .map(|e| match e.kind {
                    EventKind::Waker { .. } => 1,
                    EventKind::PollEnd { clones, drops, .. } => (clones + drops) as u64,
                    _ => 0,
                })
                .sum();
            self.wakers.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// CPU time of the whole process (every thread, the shipping one included).
fn process_cpu() -> Duration {
    // SAFETY: a zeroed timespec is a valid out-parameter.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

#[derive(Clone, Copy)]
enum Workload {
    Yield {
        tasks: usize,
        yields: usize,
    },
    PingPong {
        pairs: usize,
        rounds: usize,
    },
    /// Each request in its own span (method and uri, as tower-http's
    /// `TraceLayer` makes), polled twice inside it.
    Requests {
        tasks: usize,
        requests: usize,
    },
    /// Tasks that each spawn short children one after the other and await
    /// them (a task per request or connection): a child is polled twice (it
    /// yields once) and its parent once more, three polls a spawn.
    Spawn {
        tasks: usize,
        spawns: usize,
    },
}

impl Workload {
    fn name(&self) -> &'static str {
        match self {
            Workload::Yield { .. } => "yield",
            Workload::PingPong { .. } => "ping-pong",
            Workload::Requests { .. } => "requests",
            Workload::Spawn { .. } => "spawn",
        }
    }

    async fn run(self) {
        match self {
            Workload::Yield { tasks, yields } => {
                let hs: Vec<_> = (0..tasks)
                    .map(|_| {
                        tokio::spawn(async move {
                            for _ in 0..yields {
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
            }
            Workload::PingPong { pairs, rounds } => {
                let mut hs = Vec::new();
                for _ in 0..pairs {
                    let (atx, mut arx) = tokio::sync::mpsc::channel::<u32>(1);
                    let (btx, mut brx) = tokio::sync::mpsc::channel::<u32>(1);
                    hs.push(tokio::spawn(async move {
                        for i in 0..rounds as u32 {
                            atx.send(i).await.unwrap();
                            brx.recv().await.unwrap();
                        }
                    }));
                    hs.push(tokio::spawn(async move {
                        while let Some(i) = arx.recv().await {
                            if btx.send(i).await.is_err() {
                                break;
                            }
                        }
                    }));
                }
                for h in hs {
                    h.await.unwrap();
                }
            }
            Workload::Spawn { tasks, spawns } => {
                let hs: Vec<_> = (0..tasks)
                    .map(|_| {
                        tokio::spawn(async move {
                            for _ in 0..spawns {
                                tokio::spawn(tokio::task::yield_now()).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
            }
            Workload::Requests { tasks, requests } => {
                use tracing::Instrument;
                let hs: Vec<_> = (0..tasks)
                    .map(|_| {
                        tokio::spawn(async move {
                            for i in 0..requests {
                                // Each request its own path, as REST ids make them.
                                let span = tracing::info_span!(
                                    "request",
                                    method = %"GET",
                                    uri = %format_args!("/items/{i}?page=2"),
                                    version = ?"HTTP/1.1"
                                );
                                tokio::task::yield_now().instrument(span).await;
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
            }
        }
    }
}

struct Sample {
    ns_per_poll: f64,
    /// Process CPU per poll (all threads).
    cpu_per_poll: f64,
    events_per_poll: f64,
    wakers_per_poll: f64,
    dropped: u64,
    /// Process CPU of the whole run, ns.
    cpu_ns: f64,
}

/// Gets every worker running (and past its thread-start hook) before timing.
fn warm_up(rt: &tokio::runtime::Runtime) {
    rt.block_on(async {
        let hs: Vec<_> = (0..16)
            .map(|_| tokio::spawn(async { std::thread::sleep(Duration::from_millis(2)) }))
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    });
}

fn polls(rt: &tokio::runtime::Runtime) -> u64 {
    let m = rt.metrics();
    (0..m.num_workers()).map(|w| m.worker_poll_count(w)).sum()
}

fn measure(mode: Mode, multi: bool, w: Workload) -> Sample {
    set_mode(mode);
    let workers = 2;
    match mode {
        Mode::Plain | Mode::Console | Mode::Floor => {
            let mut b = if multi {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(workers);
                b
            } else {
                tokio::runtime::Builder::new_current_thread()
            };
            let rt = b.enable_all().build().unwrap();
            warm_up(&rt);
            let before = polls(&rt);
            let (t, cpu) = (Instant::now(), process_cpu());
            rt.block_on(w.run());
            let (took, cpu) = (t.elapsed(), process_cpu() - cpu);
            let p = polls(&rt) - before;
            Sample {
                ns_per_poll: took.as_nanos() as f64 / p as f64,
                cpu_per_poll: cpu.as_nanos() as f64 / p as f64,
                events_per_poll: 0.0,
                wakers_per_poll: 0.0,
                dropped: 0,
                cpu_ns: cpu.as_nanos() as f64,
            }
        }
        Mode::Hooks | Mode::Spans | Mode::Full | Mode::Live => {
            let b = if multi {
                looptrace::Builder::new_multi_thread().worker_threads(workers)
            } else {
                looptrace::Builder::new_current_thread()
            };
            let sink = Count::default();
            let b = b.from_env(false);
            let path = std::env::temp_dir()
                .join(format!("looptrace-overhead-{}.ltrace", std::process::id()));
            let rt = if mode == Mode::Live {
                // Shipped as it runs, at the default pace. A tight yield loop
                // makes events faster than one shipping thread takes them: the
                // buffers hold the backlog, so that all is shipped and counted.
                b.record(&path)
                    .buffer_capacity(1 << 23)
                    .prefault_buffers(true)
                    .build()
                    .unwrap()
            } else {
                b.sink(sink.clone())
                    .buffer_capacity(1 << 23)
                    .prefault_buffers(true)
                    .flush_interval(Duration::from_secs(30))
                    .build()
                    .unwrap()
            };
            warm_up(rt.tokio());
            let before = polls(rt.tokio());
            let events_before = rt.report().events;
            let wakers_before = sink.wakers.load(Ordering::Relaxed);
            let (t, cpu) = (Instant::now(), process_cpu());
            rt.block_on(w.run());
            let (took, cpu) = (t.elapsed(), process_cpu() - cpu);
            let p = polls(rt.tokio()) - before;
            let mut r = rt.shutdown();
            let _ = std::fs::remove_file(&path);
            r.events -= events_before;
            let wakers = sink.wakers.load(Ordering::Relaxed) - wakers_before;
            Sample {
                ns_per_poll: took.as_nanos() as f64 / p as f64,
                cpu_per_poll: cpu.as_nanos() as f64 / p as f64,
                events_per_poll: r.events as f64 / p as f64,
                wakers_per_poll: wakers as f64 / p as f64,
                dropped: r.dropped_buffer_full,
                cpu_ns: cpu.as_nanos() as f64,
            }
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds: usize = std::env::var("LOOPTRACE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let scale: f64 = std::env::var("LOOPTRACE_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let console = {
        use tracing_subscriber::prelude::*;
        let (layer, server) = console_subscriber::ConsoleLayer::builder()
            .server_addr(([127, 0, 0, 1], port))
            .build();
        // Serve it ourselves (see `scoped_no_op` for the scoped dispatcher `spawn()`
        // would install for good).
        std::thread::Builder::new()
            .name("console-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let _ = rt.block_on(server.serve());
            })
            .unwrap();
        tracing_subscriber::registry().with(layer)
    };
    tracing::dispatcher::set_global_default(Dispatch::new(Switch {
        looptrace: LooptraceSubscriber::new(),
        console,
    }))
    .expect("no other global subscriber");

    // `LOOPTRACE_BENCH_ONLY=full` (or plain, hooks, console) runs one configuration, to profile it.
    let only: Option<Mode> = std::env::var("LOOPTRACE_BENCH_ONLY").ok().and_then(|v| {
        MODES
            .into_iter()
            .find(|m| format!("{m:?}").eq_ignore_ascii_case(&v))
    });
    let skip_console = std::env::var_os("LOOPTRACE_BENCH_NO_CONSOLE").is_some();
    let flavors: Vec<bool> = match std::env::var("LOOPTRACE_BENCH_FLAVOR").as_deref() {
        Ok("current_thread") => vec![false],
        Ok("multi_thread") => vec![true],
        _ => vec![false, true],
    };
    let workload_filter = std::env::var("LOOPTRACE_BENCH_WORKLOAD").ok();
    let s = |n: usize| ((n as f64 * scale) as usize).max(1);
    let workloads = [
        Workload::Yield {
            tasks: s(1000),
            yields: 2000,
        },
        Workload::PingPong {
            pairs: 100,
            rounds: s(2000),
        },
        Workload::Requests {
            tasks: s(200),
            requests: 1000,
        },
        Workload::Spawn {
            tasks: s(100),
            spawns: 1000,
        },
    ];
    println!(
        "looptrace capture overhead: {rounds} rounds, median; ns per poll (added over plain)\n"
    );
    for multi in flavors {
        for w in workloads {
            if workload_filter.as_deref().is_some_and(|f| f != w.name()) {
                continue;
            }
            let mut by_mode: Vec<Vec<Sample>> = (0..MODES.len()).map(|_| Vec::new()).collect();
            for round in 0..rounds {
                for k in 0..MODES.len() {
                    // Rotate the order each round so no configuration always runs first.
                    let m = MODES[(k + round) % MODES.len()];
                    // Behind this benchmark's switch, console-subscriber's span
                    // registry fails on the spawn workload from its second run
                    // on (it is asked to close a task span it no longer holds;
                    // a single run of it does not fail), and on the requests
                    // workload on two workers most runs (the same panic, for a
                    // request span): console is not measured there.
                    let console_fails = matches!(w, Workload::Spawn { .. })
                        || (multi && matches!(w, Workload::Requests { .. }));
                    if only.is_some_and(|o| o != m)
                        || ((skip_console || console_fails) && m == Mode::Console)
                    {
                        continue;
                    }
                    by_mode[m as usize].push(measure(m, multi, w));
                }
            }
            // Per round, against that round's plain run: median [min..max].
            let n = by_mode[Mode::Plain as usize].len();
            let diff = |a: Mode, b: Mode, f: fn(&Sample) -> f64| -> Vec<f64> {
                (0..n)
                    .filter_map(|k| {
                        Some(f(by_mode[a as usize].get(k)?) - f(by_mode[b as usize].get(k)?))
                    })
                    .collect()
            };
            let wall = |s: &Sample| s.ns_per_poll;
            let cpu = |s: &Sample| s.cpu_per_poll;
            let plain = median(by_mode[Mode::Plain as usize].iter().map(wall).collect());
            let poll_path = diff(Mode::Hooks, Mode::Plain, wall);
            let span_path = diff(Mode::Spans, Mode::Hooks, wall);
            let waker_ops = diff(Mode::Full, Mode::Spans, wall);
            let added = diff(Mode::Full, Mode::Plain, wall);
            let live_wall = diff(Mode::Live, Mode::Plain, wall);
            let live_cpu = diff(Mode::Live, Mode::Plain, cpu);
            let floor = diff(Mode::Floor, Mode::Plain, wall);
            let own = diff(Mode::Full, Mode::Floor, wall);
            let console_added = diff(Mode::Console, Mode::Plain, wall);
            let console_cpu = diff(Mode::Console, Mode::Plain, cpu);
            let full_s = &by_mode[Mode::Full as usize];
            let wakers = median(full_s.iter().map(|s| s.wakers_per_poll).collect());
            let events = median(full_s.iter().map(|s| s.events_per_poll).collect());
            let dropped: u64 = by_mode.iter().flatten().map(|s| s.dropped).sum();
            let per_op: Vec<f64> = waker_ops.iter().map(|x| x / wakers.max(1e-9)).collect();
            let ratio = |a: &[f64], b: &[f64]| -> Vec<f64> {
                a.iter().zip(b).map(|(c, l)| c / l.max(0.1)).collect()
            };
            println!(
                "{} {} (plain {plain:.1} ns/poll; {events:.2} events/poll, {wakers:.2} waker ops/poll; dropped {dropped})",
                if multi { "multi_thread" } else { "current_thread" },
                w.name(),
            );
            println!(
                "  tokio's tracing    {} ns/poll (the floor: tokio's spans and waker events to a subscriber that does nothing)",
                spread(&floor, "+")
            );
            println!("  poll path          {} ns/poll", spread(&poll_path, "+"));
            println!(
                "  {}  {} ns/poll",
                if matches!(w, Workload::Requests { .. }) {
                    "task+request spans"
                } else {
                    "task spans        "
                },
                spread(&span_path, "+")
            );
            println!("  waker ops          {} ns/op", spread(&per_op, "+"));
            println!(
                "  everything         {} ns/poll (shipping deferred)",
                spread(&added, "+")
            );
            println!(
                "  looptrace's own    {} ns/poll (everything less the floor)",
                spread(&own, "+")
            );
            println!(
                "  everything, live   {} ns/poll wall, {} ns/poll CPU of all threads (recorded as it goes)",
                spread(&live_wall, "+"),
                spread(&live_cpu, "+")
            );
            println!(
                "  console            {} ns/poll wall, {} ns/poll CPU",
                spread(&console_added, "+"),
                spread(&console_cpu, "+")
            );
            if matches!(w, Workload::Requests { .. }) {
                // Two polls a request.
                let per_request: Vec<f64> = live_cpu.iter().map(|x| 2.0 * x).collect();
                let console_request: Vec<f64> = console_cpu.iter().map(|x| 2.0 * x).collect();
                println!(
                    "  per request        {} ns CPU live, console {} ns CPU{}",
                    spread(&per_request, "+"),
                    spread(&console_request, "+"),
                    if console_request.is_empty() {
                        " (not measured: its registry fails behind the switch)"
                    } else {
                        ""
                    }
                );
            }
            if let Workload::Spawn { tasks, spawns } = w {
                let n = (tasks * spawns) as f64;
                let per_spawn: Vec<f64> = diff(Mode::Live, Mode::Plain, |s| s.cpu_ns)
                    .iter()
                    .map(|x| x / n)
                    .collect();
                println!(
                    "  per spawn          {} ns CPU live (console not measured: its registry fails behind the switch)",
                    spread(&per_spawn, "+"),
                );
            }
            println!(
                "  console / looptrace: {}x (everything, wall), {}x (live, CPU); console / floor: {}x (the most any tracer on tokio's tracing can reach)",
                spread(&ratio(&console_added, &added), ""),
                spread(&ratio(&console_cpu, &live_cpu), ""),
                spread(&ratio(&console_added, &floor), "")
            );
            println!();
        }
    }
}

/// `median [min..max]` of `v`, each with `sign` ("+" to show it).
fn spread(v: &[f64], sign: &str) -> String {
    let mut v = v.to_vec();
    if v.is_empty() {
        return "-".to_string();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let f = |x: f64| {
        if sign == "+" {
            format!("{x:+.1}")
        } else {
            format!("{x:.1}")
        }
    };
    format!("{} [{}..{}]", f(v[v.len() / 2]), f(v[0]), f(v[v.len() - 1]))
}

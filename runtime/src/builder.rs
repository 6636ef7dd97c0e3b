//! The attach API: a runtime builder that mirrors tokio's and adds capture.

use crate::buffer;
use crate::capture;
use crate::clock::Origin;
use crate::destination::{Dest, Destination};
use crate::ship::{Counters, Shipper};
use crate::subscriber::LooptraceSubscriber;
use looptrace_wire::{Flavor, FrameSink, Header};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// Environment variable naming a collector: `HOST:PORT` or a `ws://` URL.
pub const ENV_ADDR: &str = "LOOPTRACE_ADDR";
/// Environment variable naming a recording file to write.
pub const ENV_RECORD: &str = "LOOPTRACE_RECORD";
/// Environment variable: where the embedded collector serves its viewer API
/// (`HOST:PORT`; default `127.0.0.1:0`, any free port).
pub const ENV_VIEW: &str = "LOOPTRACE_VIEW";
/// Environment variable: the token the embedded collector requires of viewers
/// (needed when [`ENV_VIEW`] is not a loopback address), and that the app presents
/// to a collector ([`ENV_ADDR`]) started with `--token`.
pub const ENV_TOKEN: &str = "LOOPTRACE_TOKEN";
/// The embedded collector pushes its metrics and findings to this OTLP/gRPC
/// endpoint (e.g. `http://127.0.0.1:4317`; needs the `otlp` feature).
pub const ENV_OTLP: &str = "LOOPTRACE_OTLP";
/// With [`ENV_OTLP`], every poll at least this many milliseconds long is sent
/// as a span too.
pub const ENV_OTLP_POLL_MS: &str = "LOOPTRACE_OTLP_POLL_MS";
/// Environment variable: `1` records every waker clone and drop as an event of its
/// own (see [`Builder::every_waker_op`]).
pub const ENV_EVERY_WAKER_OP: &str = "LOOPTRACE_EVERY_WAKER_OP";
/// Milliseconds between samples of the scheduler's queues (`0`: none); see
/// [`Builder::sample_queues`].
pub const ENV_QUEUES_MS: &str = "LOOPTRACE_QUEUES_MS";
/// Environment variable: `0` reads no request context from the app's own
/// `tracing` spans (see [`Builder::request_context`]).
pub const ENV_CONTEXT: &str = "LOOPTRACE_CONTEXT";
/// Environment variable: how often, in milliseconds, the shipping thread drains
/// the buffers (see [`Builder::flush_interval`]; default 50, kept within 1 to
/// 100). It overrides the interval set in code; `0` or a value that is not a
/// number is ignored.
pub const ENV_FLUSH_MS: &str = "LOOPTRACE_FLUSH_MS";

/// The shipping thread's default pace (see [`Builder::flush_interval`]).
const DEFAULT_FLUSH: Duration = Duration::from_millis(50);
/// The shortest pace: sooner, the shipping thread would spin.
const MIN_FLUSH: Duration = Duration::from_millis(1);
/// The longest pace [`ENV_FLUSH_MS`] sets: later, a live collector's lost-waker
/// check (250 ms of quiet) could outrun the events still on their way, and a
/// round past 50 ms saves next to nothing more. (Code may ask for longer, to
/// defer shipping in a measurement.)
const MAX_ENV_FLUSH: Duration = Duration::from_millis(100);

/// A number of milliseconds from the environment variable `name`; `None` if
/// it is unset or not a number.
fn env_ms(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

static SESSION_ACTIVE: AtomicBool = AtomicBool::new(false);
static LAYER_USED: AtomicBool = AtomicBool::new(false);

pub(crate) fn note_layer() {
    LAYER_USED.store(true, Ordering::Relaxed);
}

/// Why a traced runtime could not be built.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir();
/// let first = looptrace::Builder::new_current_thread().record(dir.join("looptrace-error-1.ltrace")).build()?;
/// // One capture session per process at a time.
/// let second = looptrace::Builder::new_current_thread().record(dir.join("looptrace-error-2.ltrace")).build();
/// assert!(matches!(second, Err(looptrace::Error::AlreadyCapturing)));
/// first.shutdown();
/// # Ok(()) }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// tokio could not build the runtime (threads, I/O driver).
    #[error("failed to build the tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The shipping thread could not be started.
    #[error("failed to start looptrace's shipping thread: {0}")]
    Shipper(#[source] std::io::Error),
    /// One capture session per process: another runtime is being captured.
    #[error("another looptrace runtime is already capturing in this process")]
    AlreadyCapturing,
}

/// Builds a tokio runtime that looptrace captures.
///
/// It wraps [`tokio::runtime::Builder`] (reach it with [`Builder::tokio`] for
/// anything not mirrored here) and adds looptrace's hooks. I/O and time drivers are
/// enabled.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let path = std::env::temp_dir().join("looptrace-doc-example.ltrace");
/// let rt = looptrace::Builder::new_current_thread().record(&path).build()?;
/// rt.block_on(async {
///     tokio::spawn(async { tokio::task::yield_now().await }).await.unwrap();
/// });
/// let report = rt.shutdown();
/// assert!(report.events > 0);
/// # Ok(()) }
/// ```
pub struct Builder {
    tokio: tokio::runtime::Builder,
    flavor: Flavor,
    workers: Option<usize>,
    destinations: Vec<Destination>,
    process_name: Option<String>,
    buffer_capacity: usize,
    backlog_bytes: usize,
    flush_interval: Duration,
    from_env: bool,
    prefault: bool,
    every_waker_op: bool,
    queues: crate::queues::Sampling,
    request_context: bool,
}

impl Builder {
    /// A single-threaded runtime: every task runs on the thread calling `block_on`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-current-thread.ltrace");
    /// let rt = looptrace::Builder::new_current_thread().record(&path).build()?;
    /// let thread = rt.block_on(async {
    ///     tokio::spawn(async { std::thread::current().id() }).await.unwrap()
    /// });
    /// assert_eq!(thread, std::thread::current().id());
    /// # Ok(()) }
    /// ```
    pub fn new_current_thread() -> Builder {
        Builder::new(
            tokio::runtime::Builder::new_current_thread(),
            Flavor::CurrentThread,
        )
    }

    /// A work-stealing runtime with one worker per CPU (or [`Builder::worker_threads`]).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-multi-thread.ltrace");
    /// let rt = looptrace::Builder::new_multi_thread().worker_threads(2).record(&path).build()?;
    /// rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
    /// rt.shutdown();
    /// assert_eq!(looptrace::wire::Recording::open(&path)?.header.workers, 2);
    /// # Ok(()) }
    /// ```
    pub fn new_multi_thread() -> Builder {
        Builder::new(
            tokio::runtime::Builder::new_multi_thread(),
            Flavor::MultiThread,
        )
    }

    fn new(mut tokio: tokio::runtime::Builder, flavor: Flavor) -> Builder {
        tokio.enable_all();
        Builder {
            tokio,
            flavor,
            workers: None,
            destinations: Vec::new(),
            process_name: None,
            buffer_capacity: buffer::DEFAULT_CAPACITY,
            backlog_bytes: 64 << 20,
            flush_interval: DEFAULT_FLUSH,
            from_env: true,
            prefault: false,
            every_waker_op: false,
            queues: crate::queues::Sampling::EachRound,
            request_context: true,
        }
    }

    /// Number of worker threads of a multi-thread runtime.
    pub fn worker_threads(mut self, n: usize) -> Self {
        self.tokio.worker_threads(n);
        self.workers = Some(n);
        self
    }

    /// The wrapped tokio builder, for settings looptrace does not mirror. Do not
    /// replace the task, park or thread-start hooks: looptrace's are set at `build`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-tokio-builder.ltrace");
    /// let mut builder = looptrace::Builder::new_multi_thread().worker_threads(1).record(&path);
    /// builder.tokio().thread_name("app-worker");
    /// let rt = builder.build()?;
    /// let name = rt.block_on(async {
    ///     tokio::spawn(async { std::thread::current().name().map(String::from) }).await.unwrap()
    /// });
    /// assert_eq!(name.as_deref(), Some("app-worker"));
    /// # Ok(()) }
    /// ```
    pub fn tokio(&mut self) -> &mut tokio::runtime::Builder {
        &mut self.tokio
    }

    /// Streams events to a collector: `HOST:PORT` or a `ws://` URL.
    ///
    /// A collector that is down never holds the app up: events wait in a bounded
    /// backlog while looptrace retries, and what is never delivered is counted.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // Nothing listens on port 1: the app runs anyway.
    /// let rt = looptrace::Builder::new_current_thread().collector("127.0.0.1:1").build()?;
    /// rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
    /// let report = rt.shutdown();
    /// assert!(report.dropped_unsent > 0);
    /// # Ok(()) }
    /// ```
    pub fn collector(mut self, addr: impl Into<String>) -> Self {
        self.destinations.push(Destination::Collector(addr.into()));
        self
    }

    /// Writes a recording file (`looptrace replay`, `looptrace export`, or read it
    /// with [`crate::wire::Recording`]).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-record.ltrace");
    /// let rt = looptrace::Builder::new_current_thread().record(&path).build()?;
    /// rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
    /// rt.shutdown();
    /// let rec = looptrace::wire::Recording::open(&path)?;
    /// assert!(rec.events.iter().any(|e| matches!(e.kind, looptrace::wire::EventKind::Spawn(_))));
    /// # Ok(()) }
    /// ```
    pub fn record(mut self, path: impl Into<PathBuf>) -> Self {
        self.destinations.push(Destination::File(path.into()));
        self
    }

    /// Hands encoded frames to an in-process consumer (the embedded collector).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// struct Frames(Arc<Mutex<Vec<Vec<u8>>>>);
    /// impl looptrace::wire::FrameSink for Frames {
    ///     fn frame(&mut self, frame: &[u8]) {
    ///         self.0.lock().unwrap().push(frame.to_vec());
    ///     }
    /// }
    /// let frames = Arc::new(Mutex::new(Vec::new()));
    /// let rt = looptrace::Builder::new_current_thread().sink(Frames(frames.clone())).build()?;
    /// rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
    /// rt.shutdown();
    /// let frames = frames.lock().unwrap();
    /// // The header first, then events.
    /// assert!(matches!(looptrace::wire::decode_frame(&frames[0])?, looptrace::wire::Frame::Header(_)));
    /// # Ok(()) }
    /// ```
    pub fn sink(mut self, sink: impl FrameSink) -> Self {
        self.destinations.push(Destination::Sink(Box::new(sink)));
        self
    }

    /// Adds any [`Destination`].
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-destination.ltrace");
    /// let rt = looptrace::Builder::new_current_thread()
    ///     .destination(looptrace::Destination::File(path.clone()))
    ///     .build()?;
    /// rt.shutdown();
    /// assert!(path.exists());
    /// # Ok(()) }
    /// ```
    pub fn destination(mut self, d: Destination) -> Self {
        self.destinations.push(d);
        self
    }

    /// Whether to read [`ENV_ADDR`], [`ENV_RECORD`], [`ENV_EVERY_WAKER_OP`],
    /// [`ENV_CONTEXT`], [`ENV_QUEUES_MS`] and [`ENV_FLUSH_MS`] (default: yes).
    /// With `false`, only the destinations and settings given in code are used.
    /// (The embedded collector's [`ENV_VIEW`], [`ENV_TOKEN`] and [`ENV_OTLP`]
    /// are read either way.)
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-from-env.ltrace");
    /// let rt = looptrace::Builder::new_current_thread().from_env(false).record(&path).build()?;
    /// assert!(rt.is_capturing());
    /// # Ok(()) }
    /// ```
    pub fn from_env(mut self, yes: bool) -> Self {
        self.from_env = yes;
        self
    }

    /// The process name in the session header (default: the executable's name).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-process-name.ltrace");
    /// let rt = looptrace::Builder::new_current_thread().process_name("checkout").record(&path).build()?;
    /// rt.shutdown();
    /// assert_eq!(looptrace::wire::Recording::open(&path)?.header.process_name, "checkout");
    /// # Ok(()) }
    /// ```
    pub fn process_name(mut self, name: impl Into<String>) -> Self {
        self.process_name = Some(name.into());
        self
    }

    /// Events each thread can hold before the shipper drains them (default 65 536,
    /// 2 MiB; a poll with nothing else in it takes one place for its start and
    /// end). A full buffer drops new events and counts them
    /// ([`Report::dropped_buffer_full`]).
    ///
    /// A buffer half full wakes the shipping thread before its next round (see
    /// [`Builder::flush_interval`]), so a buffer fills only if a burst outruns
    /// the shipping thread, or the shipping thread gets no CPU for that long.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-buffer-capacity.ltrace");
    /// let rt = looptrace::Builder::new_current_thread()
    ///     .buffer_capacity(1 << 20) // a busy server: fewer drops, 32 MiB per thread
    ///     .record(&path)
    ///     .build()?;
    /// # rt.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn buffer_capacity(mut self, events: usize) -> Self {
        self.buffer_capacity = events;
        self
    }

    /// Bytes of encoded events kept while a collector is unreachable (default 64 MiB).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = looptrace::Builder::new_current_thread()
    ///     .collector("127.0.0.1:1")
    ///     .backlog_bytes(1 << 20)
    ///     .build()?;
    /// # rt.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn backlog_bytes(mut self, bytes: usize) -> Self {
        self.backlog_bytes = bytes;
        self
    }

    /// Touch each thread's buffer when it is created (default: no), so its first lap
    /// does not page-fault on the hot path. Costs the buffer's memory up front for
    /// every thread that reports anything; meant for measurements.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-prefault.ltrace");
    /// let rt = looptrace::Builder::new_current_thread().prefault_buffers(true).record(&path).build()?;
    /// # rt.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn prefault_buffers(mut self, yes: bool) -> Self {
        self.prefault = yes;
        self
    }

    /// Records every waker clone and drop as an event of its own (default: no; also
    /// set by [`ENV_EVERY_WAKER_OP`]`=1`).
    ///
    /// By default a task cloning or dropping its own waker while it is polled is
    /// counted in the poll's end event instead: on a busy server those are nearly
    /// half of all events, and only their number matters (how many wakers of the
    /// task are alive, which the lost-waker warning follows). One event each shows
    /// when, inside the poll, each happened (`looptrace log --verbose`), at a cost.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-every-waker-op.ltrace");
    /// use looptrace::wire::{EventKind, WakeOp};
    /// let rt = looptrace::Builder::new_current_thread().every_waker_op(true).record(&path).build()?;
    /// rt.block_on(async {
    ///     tokio::spawn(async { tokio::time::sleep(std::time::Duration::from_millis(1)).await })
    ///         .await
    ///         .unwrap()
    /// });
    /// rt.shutdown();
    /// let rec = looptrace::wire::Recording::open(&path)?;
    /// let clones = rec.events.iter().filter(|e| {
    ///     matches!(e.kind, EventKind::Waker { op: WakeOp::Clone, .. })
    /// });
    /// assert!(clones.count() > 0);
    /// # Ok(()) }
    /// ```
    pub fn every_waker_op(mut self, yes: bool) -> Self {
        self.every_waker_op = yes;
        self
    }

    /// Whether to read the app's own `tracing` spans as the request context of
    /// each poll (default yes; [`ENV_CONTEXT`]`=0` turns it off). Off, the app's
    /// spans are not enabled by looptrace at all: nothing is spent on them.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-nocontext.ltrace");
    /// let rt = looptrace::Builder::new_current_thread()
    ///     .request_context(false)
    ///     .record(&path)
    ///     .build()?;
    /// # rt.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn request_context(mut self, yes: bool) -> Self {
        self.request_context = yes;
        self
    }

    /// How often to sample the scheduler's queues (each worker's local run
    /// queue, the injection queue, steals), from tokio's runtime metrics; `None`
    /// samples none. A sample is sent only when something changed.
    /// [`ENV_QUEUES_MS`] sets it too (`0`: none).
    ///
    /// The shipping thread samples them: by default at each of its rounds (see
    /// [`Builder::flush_interval`]); an interval given here that is shorter than
    /// the flush interval makes rounds that often.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-queues.ltrace");
    /// let rt = looptrace::Builder::new_multi_thread()
    ///     .sample_queues(Some(std::time::Duration::from_millis(1)))
    ///     .record(&path)
    ///     .build()?;
    /// # rt.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn sample_queues(mut self, every: Option<Duration>) -> Self {
        self.queues = match every.filter(|d| !d.is_zero()) {
            Some(d) => crate::queues::Sampling::Every(d),
            None => crate::queues::Sampling::Off,
        };
        self
    }

    /// How often the shipper drains the buffers (default 50 ms, at least 1 ms;
    /// sooner when a thread's buffer is half full). Events younger than 2 ms wait
    /// for the next round, so that those of all threads go out in time order.
    ///
    /// Each round has a cost of its own besides its events': the shipping thread
    /// (and a collector it streams to) wakes up with cold caches. On a busy server,
    /// rounds every 50 ms took a fifth less of the shipping thread's CPU than rounds
    /// every 10 ms, and a sixth less of a streaming collector's. A shorter interval
    /// makes a live view fresher (the demos ship every 10 ms), a longer one costs
    /// less; a viewer typically sees events this plus 2 ms late. [`ENV_FLUSH_MS`]
    /// sets it too (up to 100 ms). Past some 200 ms, a live collector's
    /// lost-waker check (250 ms of quiet) can run ahead of events still on their
    /// way: longer paces are for measurements that defer shipping.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-flush.ltrace");
    /// // A fresher live view, for a little more of the shipping thread's CPU.
    /// let rt = looptrace::Builder::new_current_thread()
    ///     .flush_interval(std::time::Duration::from_millis(10))
    ///     .record(&path)
    ///     .build()?;
    /// # rt.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn flush_interval(mut self, every: Duration) -> Self {
        self.flush_interval = every.max(MIN_FLUSH);
        self
    }

    /// Builds the runtime and starts capturing.
    ///
    /// With no destination, neither in code nor in the environment, the collector
    /// runs in this process (feature `embedded`, on by default) and serves its
    /// viewer API on a local port printed on stderr (see [`Runtime::viewer_addr`]);
    /// without that feature the runtime runs uncaptured and a note says so.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # std::env::remove_var(looptrace::ENV_ADDR);
    /// # std::env::remove_var(looptrace::ENV_RECORD);
    /// // No destination: the embedded collector serves the viewers on a local port.
    /// let rt = looptrace::Builder::new_current_thread().build()?;
    /// assert!(rt.viewer_addr().is_some());
    /// # Ok(()) }
    /// ```
    pub fn build(mut self) -> Result<Runtime, Error> {
        if self.from_env {
            // Said once, at start: a user sees that the variable took.
            if let Some(addr) = std::env::var(ENV_ADDR).ok().filter(|a| !a.is_empty()) {
                eprintln!("looptrace: streaming to the collector at {addr} ({ENV_ADDR})");
                self.destinations.push(Destination::Collector(addr));
            }
            if let Some(path) = std::env::var_os(ENV_RECORD).filter(|p| !p.is_empty()) {
                let path = std::path::PathBuf::from(path);
                eprintln!("looptrace: recording to {} ({ENV_RECORD})", path.display());
                self.destinations.push(Destination::File(path));
            }
            if std::env::var(ENV_EVERY_WAKER_OP).is_ok_and(|v| v == "1") {
                self.every_waker_op = true;
            }
            if std::env::var(ENV_CONTEXT).is_ok_and(|v| v.trim() == "0") {
                self.request_context = false;
            }
            if let Some(ms) = env_ms(ENV_QUEUES_MS) {
                self = self.sample_queues(Some(Duration::from_millis(ms)));
            }
            if let Some(ms) = env_ms(ENV_FLUSH_MS).filter(|ms| *ms > 0) {
                self = self.flush_interval(Duration::from_millis(ms).min(MAX_ENV_FLUSH));
            }
        }
        let mut viewer = None;
        if self.destinations.is_empty() {
            match embedded_collector() {
                Some((sink, addr)) => {
                    eprintln!("looptrace: embedded collector at http://{addr} (viewers: ws://{addr}/ws/view)");
                    viewer = Some(addr);
                    self.destinations.push(Destination::Sink(sink));
                }
                None => {
                    eprintln!("looptrace: no destination (set {ENV_ADDR}=HOST:PORT or {ENV_RECORD}=FILE); not capturing");
                    let rt = self.tokio.build().map_err(Error::Runtime)?;
                    return Ok(Runtime {
                        rt: Some(rt),
                        session: None,
                        viewer: None,
                    });
                }
            }
        }
        if SESSION_ACTIVE.swap(true, Ordering::AcqRel) {
            return Err(Error::AlreadyCapturing);
        }
        crate::context::set_enabled(self.request_context);
        install_subscriber();
        capture::FOLD_OWN_WAKER_OPS.store(!self.every_waker_op, Ordering::Relaxed);
        capture::install_hooks(&mut self.tokio);

        let origin = Origin::now();
        buffer::start_session(self.buffer_capacity, self.prefault);
        // The thread building the runtime usually drives it (`block_on`).
        buffer::prepare_thread();
        let rt = match self.tokio.build() {
            Ok(rt) => rt,
            Err(e) => {
                buffer::stop_session();
                SESSION_ACTIVE.store(false, Ordering::Release);
                return Err(Error::Runtime(e));
            }
        };
        let workers = match self.flavor {
            Flavor::CurrentThread => 1,
            Flavor::MultiThread => {
                self.workers.unwrap_or_else(|| rt.metrics().num_workers()) as u32
            }
        };
        let header = Header {
            process_name: self.process_name.unwrap_or_else(process_name),
            pid: std::process::id(),
            flavor: self.flavor,
            workers,
            clock_origin_unix_ns: origin.unix_ns,
        };
        let counters = Arc::new(Counters::default());
        let queues: crate::queues::Source = Arc::new(Mutex::new(Some(rt.handle().clone())));
        let sampler = crate::queues::Sampler::new(queues.clone(), self.queues);
        let dests = self
            .destinations
            .into_iter()
            .map(|d| Dest::new(d, self.backlog_bytes))
            .collect();
        let shipper = match crate::ship::spawn(
            header,
            origin,
            dests,
            self.flush_interval,
            counters.clone(),
            sampler,
        ) {
            Ok(s) => s,
            Err(e) => {
                buffer::stop_session();
                SESSION_ACTIVE.store(false, Ordering::Release);
                return Err(Error::Shipper(e));
            }
        };
        Ok(Runtime {
            rt: Some(rt),
            session: Some(Session {
                shipper,
                counters,
                queues,
            }),
            viewer,
        })
    }
}

/// The collector, in this process, on its own thread and runtime.
#[cfg(feature = "embedded")]
fn embedded_collector() -> Option<(Box<dyn FrameSink>, std::net::SocketAddr)> {
    let addr = std::env::var(ENV_VIEW)
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| ([127, 0, 0, 1], 0).into());
    let server = looptrace_collector::server::ServerConfig {
        token: std::env::var(ENV_TOKEN).ok(),
        ..Default::default()
    };
    let otlp = std::env::var(ENV_OTLP).ok().filter(|v| !v.is_empty());
    let config = looptrace_collector::hub::HubConfig {
        outbox: otlp.is_some(),
        export_polls_ns: env_ms(ENV_OTLP_POLL_MS).map(|ms| ms.saturating_mul(1_000_000)),
        ..Default::default()
    };
    match looptrace_collector::Embedded::serve_with(addr, config, server) {
        Ok((sink, handle)) => {
            if let Some(endpoint) = otlp {
                export_otlp(&sink, endpoint);
            }
            Some((Box::new(sink), handle.addr()))
        }
        Err(e) => {
            eprintln!("looptrace: cannot start the embedded collector on {addr}: {e}");
            None
        }
    }
}

/// Starts the embedded collector's OpenTelemetry exporter.
#[cfg(all(feature = "embedded", feature = "otlp"))]
fn export_otlp(collector: &looptrace_collector::Embedded, endpoint: String) {
    if let Err(e) = collector.export_otlp(looptrace_collector::otlp::OtlpConfig::new(endpoint)) {
        eprintln!("looptrace: {e}");
    }
}

#[cfg(all(feature = "embedded", not(feature = "otlp")))]
fn export_otlp(_: &looptrace_collector::Embedded, _: String) {
    eprintln!("looptrace: {ENV_OTLP} is set, but looptrace was built without its `otlp` feature: nothing is exported");
}

#[cfg(not(feature = "embedded"))]
fn embedded_collector() -> Option<(Box<dyn FrameSink>, std::net::SocketAddr)> {
    None
}

fn process_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown".into())
}

/// Installs looptrace's subscriber unless the app has its own (which should then
/// include [`crate::layer`]).
fn install_subscriber() {
    if tracing::dispatcher::has_been_set() {
        // The app may have installed looptrace's own subscriber itself.
        let ours = tracing::dispatcher::get_default(|d| d.is::<LooptraceSubscriber>());
        if !ours && !LAYER_USED.load(Ordering::Relaxed) {
            eprintln!(
                "looptrace: the app set its own tracing subscriber without looptrace::layer(); \
                 spawns and polls are captured, wakes are not"
            );
        }
        return;
    }
    let _ =
        tracing::dispatcher::set_global_default(tracing::Dispatch::new(LooptraceSubscriber::new()));
}

/// What a capture session produced.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let path = std::env::temp_dir().join("looptrace-report.ltrace");
/// let rt = looptrace::Builder::new_current_thread().record(&path).build()?;
/// rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
/// let report = rt.shutdown();
/// assert!(report.events > 0);
/// assert_eq!(report.dropped_buffer_full + report.dropped_unsent, 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Events shipped to the destinations.
    pub events: u64,
    /// Events lost because a thread's buffer was full.
    pub dropped_buffer_full: u64,
    /// Events a collector never received (unreachable, backlog overflowed).
    pub dropped_unsent: u64,
}

struct Session {
    shipper: Shipper,
    counters: Arc<Counters>,
    /// The runtime whose queues the shipping thread samples, taken back before
    /// it shuts down.
    queues: crate::queues::Source,
}

impl Session {
    fn report(&self) -> Report {
        Report {
            events: self.counters.events.load(Ordering::Relaxed),
            dropped_buffer_full: self.counters.dropped_full.load(Ordering::Relaxed),
            dropped_unsent: self.counters.dropped_unsent.load(Ordering::Relaxed),
        }
    }

    fn finish(mut self) -> Report {
        buffer::stop_session();
        self.shipper.finish();
        SESSION_ACTIVE.store(false, Ordering::Release);
        let r = self.report();
        if r.dropped_buffer_full + r.dropped_unsent > 0 {
            eprintln!(
                "looptrace: {} events captured; {} dropped (buffers full), {} not delivered to the collector",
                r.events, r.dropped_buffer_full, r.dropped_unsent
            );
        }
        r
    }
}

/// A tokio runtime being captured. Derefs to nothing: use [`Runtime::block_on`],
/// [`Runtime::handle`] or [`Runtime::tokio`].
///
/// Dropping it shuts the runtime down (tasks still pending are recorded as
/// cancelled) and then ships the last events.
pub struct Runtime {
    rt: Option<tokio::runtime::Runtime>,
    session: Option<Session>,
    viewer: Option<std::net::SocketAddr>,
}

impl Runtime {
    /// Runs a future to completion, like [`tokio::runtime::Runtime::block_on`].
    /// Wakes done by this future (not a task) are reported as `external`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-block-on.ltrace");
    /// let rt = looptrace::Builder::new_current_thread().record(&path).build()?;
    /// assert_eq!(rt.block_on(async { 6 * 7 }), 42);
    /// # Ok(()) }
    /// ```
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.tokio().block_on(BlockOn(future))
    }

    /// The wrapped tokio runtime.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-runtime-tokio.ltrace");
    /// let rt = looptrace::Builder::new_multi_thread().worker_threads(2).record(&path).build()?;
    /// assert_eq!(rt.tokio().metrics().num_workers(), 2);
    /// # Ok(()) }
    /// ```
    pub fn tokio(&self) -> &tokio::runtime::Runtime {
        // Only `shutdown` and `drop` take it out.
        self.rt.as_ref().expect("runtime present until shutdown")
    }

    /// A handle to spawn onto the runtime from elsewhere.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-handle.ltrace");
    /// let rt = looptrace::Builder::new_multi_thread().worker_threads(1).record(&path).build()?;
    /// let task = rt.handle().spawn(async { "from a handle" });
    /// assert_eq!(rt.block_on(task)?, "from a handle");
    /// # Ok(()) }
    /// ```
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.tokio().handle()
    }

    /// Where the embedded collector serves the viewer API, if it runs (no other
    /// destination was given); open `http://ADDR/` for the timeline.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-viewer-addr.ltrace");
    /// let rt = looptrace::Builder::new_current_thread().record(&path).build()?;
    /// assert_eq!(rt.viewer_addr(), None); // recording only
    /// # Ok(()) }
    /// ```
    pub fn viewer_addr(&self) -> Option<std::net::SocketAddr> {
        self.viewer
    }

    /// Whether events are being captured: false only when there was no destination
    /// and no embedded collector to fall back on.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-is-capturing.ltrace");
    /// let rt = looptrace::Builder::new_current_thread().record(&path).build()?;
    /// assert!(rt.is_capturing());
    /// # Ok(()) }
    /// ```
    pub fn is_capturing(&self) -> bool {
        self.session.is_some()
    }

    /// Counts so far (events are counted once shipped, at each round of the
    /// shipping thread: see [`Builder::flush_interval`]).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-report-so-far.ltrace");
    /// use std::time::Duration;
    /// let rt = looptrace::Builder::new_current_thread()
    ///     .flush_interval(Duration::from_millis(10))
    ///     .record(&path)
    ///     .build()?;
    /// rt.block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
    /// assert!(rt.report().events > 0);
    /// # Ok(()) }
    /// ```
    pub fn report(&self) -> Report {
        self.session
            .as_ref()
            .map(Session::report)
            .unwrap_or_default()
    }

    /// Shuts the runtime down, ships everything and returns the final counts.
    /// Tasks still pending are recorded as cancelled.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-shutdown.ltrace");
    /// let rt = looptrace::Builder::new_current_thread().record(&path).build()?;
    /// rt.block_on(async { tokio::spawn(std::future::pending::<()>()) });
    /// let report = rt.shutdown();
    /// assert!(report.events > 0);
    /// # Ok(()) }
    /// ```
    pub fn shutdown(mut self) -> Report {
        self.stop()
    }

    fn stop(&mut self) -> Report {
        // The queues are sampled no more (once a reading under way is done):
        // the runtime goes.
        if let Some(s) = self.session.as_ref() {
            s.queues.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
        drop(self.rt.take());
        self.session.take().map(Session::finish).unwrap_or_default()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `block_on`'s future, marked so its wakes are not taken for the driver's.
struct BlockOn<F>(F);

impl<F: Future> Future for BlockOn<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: structural pinning of the only field; it is never moved out.
        let inner = unsafe { self.map_unchecked_mut(|s| &mut s.0) };
        capture::in_block_on(|| inner.poll(cx))
    }
}

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
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Environment variable naming a collector: `HOST:PORT` or a `ws://` URL.
pub const ENV_ADDR: &str = "LOOPTRACE_ADDR";
/// Environment variable naming a recording file to write.
pub const ENV_RECORD: &str = "LOOPTRACE_RECORD";
/// Environment variable: where the embedded collector serves its viewer API
/// (`HOST:PORT`; default `127.0.0.1:0`, any free port).
pub const ENV_VIEW: &str = "LOOPTRACE_VIEW";

static SESSION_ACTIVE: AtomicBool = AtomicBool::new(false);
static LAYER_USED: AtomicBool = AtomicBool::new(false);

pub(crate) fn note_layer() {
    LAYER_USED.store(true, Ordering::Relaxed);
}

/// Why a traced runtime could not be built.
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
}

impl Builder {
    /// A single-threaded runtime: every task runs on the thread calling `block_on`.
    pub fn new_current_thread() -> Builder {
        Builder::new(
            tokio::runtime::Builder::new_current_thread(),
            Flavor::CurrentThread,
        )
    }

    /// A work-stealing runtime with one worker per CPU (or [`Builder::worker_threads`]).
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
            buffer_capacity: 1 << 16,
            backlog_bytes: 64 << 20,
            flush_interval: Duration::from_millis(10),
            from_env: true,
            prefault: false,
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
    pub fn tokio(&mut self) -> &mut tokio::runtime::Builder {
        &mut self.tokio
    }

    /// Streams events to a collector: `HOST:PORT` or a `ws://` URL.
    pub fn collector(mut self, addr: impl Into<String>) -> Self {
        self.destinations.push(Destination::Collector(addr.into()));
        self
    }

    /// Writes a recording file.
    pub fn record(mut self, path: impl Into<PathBuf>) -> Self {
        self.destinations.push(Destination::File(path.into()));
        self
    }

    /// Hands encoded frames to an in-process consumer (the embedded collector).
    pub fn sink(mut self, sink: impl FrameSink) -> Self {
        self.destinations.push(Destination::Sink(Box::new(sink)));
        self
    }

    /// Adds any [`Destination`].
    pub fn destination(mut self, d: Destination) -> Self {
        self.destinations.push(d);
        self
    }

    /// Whether to read [`ENV_ADDR`] and [`ENV_RECORD`] (default: yes).
    pub fn from_env(mut self, yes: bool) -> Self {
        self.from_env = yes;
        self
    }

    /// The process name in the session header (default: the executable's name).
    pub fn process_name(mut self, name: impl Into<String>) -> Self {
        self.process_name = Some(name.into());
        self
    }

    /// Events each thread can hold before the shipper drains them (default 65 536).
    /// A full buffer drops new events and counts them.
    pub fn buffer_capacity(mut self, events: usize) -> Self {
        self.buffer_capacity = events;
        self
    }

    /// Bytes of encoded events kept while a collector is unreachable (default 64 MiB).
    pub fn backlog_bytes(mut self, bytes: usize) -> Self {
        self.backlog_bytes = bytes;
        self
    }

    /// Touch each thread's buffer when it is created (default: no), so its first lap
    /// does not page-fault on the hot path. Costs the buffer's memory up front for
    /// every thread that reports anything; meant for measurements.
    pub fn prefault_buffers(mut self, yes: bool) -> Self {
        self.prefault = yes;
        self
    }

    /// How often the shipper drains the buffers (default 10 ms).
    pub fn flush_interval(mut self, every: Duration) -> Self {
        self.flush_interval = every;
        self
    }

    /// Builds the runtime and starts capturing.
    ///
    /// With no destination, neither in code nor in the environment, the collector
    /// runs in this process (feature `embedded`, on by default) and serves its
    /// viewer API on a local port printed on stderr (see [`Runtime::viewer_addr`]);
    /// without that feature the runtime runs uncaptured and a note says so.
    pub fn build(mut self) -> Result<Runtime, Error> {
        if self.from_env {
            if let Some(addr) = std::env::var(ENV_ADDR).ok().filter(|a| !a.is_empty()) {
                self.destinations.push(Destination::Collector(addr));
            }
            if let Some(path) = std::env::var_os(ENV_RECORD).filter(|p| !p.is_empty()) {
                self.destinations.push(Destination::File(path.into()));
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
        install_subscriber();
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
        let dests = self
            .destinations
            .into_iter()
            .map(|d| Dest::new(d, self.backlog_bytes))
            .collect();
        let shipper =
            match Shipper::spawn(header, origin, dests, self.flush_interval, counters.clone()) {
                Ok(s) => s,
                Err(e) => {
                    buffer::stop_session();
                    SESSION_ACTIVE.store(false, Ordering::Release);
                    return Err(Error::Shipper(e));
                }
            };
        Ok(Runtime {
            rt: Some(rt),
            session: Some(Session { shipper, counters }),
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
    match looptrace_collector::Embedded::serve(addr, Default::default()) {
        Ok((sink, handle)) => Some((Box::new(sink), handle.addr())),
        Err(e) => {
            eprintln!("looptrace: cannot start the embedded collector on {addr}: {e}");
            None
        }
    }
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
        if !LAYER_USED.load(Ordering::Relaxed) {
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
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.tokio().block_on(BlockOn(future))
    }

    /// The wrapped tokio runtime.
    pub fn tokio(&self) -> &tokio::runtime::Runtime {
        // Only `shutdown` and `drop` take it out.
        self.rt.as_ref().expect("runtime present until shutdown")
    }

    /// A handle to spawn onto the runtime from elsewhere.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.tokio().handle()
    }

    /// Where the embedded collector serves the viewer API, if it runs.
    pub fn viewer_addr(&self) -> Option<std::net::SocketAddr> {
        self.viewer
    }

    /// Whether events are being captured.
    pub fn is_capturing(&self) -> bool {
        self.session.is_some()
    }

    /// Counts so far.
    pub fn report(&self) -> Report {
        self.session
            .as_ref()
            .map(Session::report)
            .unwrap_or_default()
    }

    /// Shuts the runtime down, ships everything and returns the final counts.
    pub fn shutdown(mut self) -> Report {
        self.stop()
    }

    fn stop(&mut self) -> Report {
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

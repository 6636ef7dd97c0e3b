//! Per-thread capture buffers.
//!
//! Each thread that reports anything gets its own single-producer ring (`rtrb`): the
//! hot path is a counter read and a push, with no lock and no allocation. The
//! shipping thread owns the consumer ends, listed in a registry a thread joins once.
//! A full ring drops the event and counts it; the traced app never waits.

use crate::clock;
use looptrace_wire::{Outcome, WakeOp};
use rtrb::{Consumer, Producer, PushError, RingBuffer};
use std::cell::{Cell, RefCell};
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

/// What the hot path stores: raw facts, resolved into wire events by the shipper.
#[derive(Debug)]
pub(crate) enum Raw {
    PollStart(u64),
    PollEnd { task: u64, ready: bool },
    Terminate { task: u64, outcome: Outcome },
    Spawn { task: u64, location: &'static Location<'static>, parent: u64 },
    Span(Box<SpanInfo>),
    Waker { task: u64, op: WakeOp, current: u64, ctx: WakeCtx },
    Park,
    Unpark,
    /// This thread is worker `n` of the traced runtime.
    Worker(u32),
    /// This thread belongs to the traced runtime (worker or blocking pool).
    RuntimeThread,
    BlockingStart(u64),
    BlockingEnd(u64),
    /// A `Sleep` polled by `task` registered a deadline `ms` milliseconds away.
    SleepArmed { sleep: u64, task: u64, ms: u64 },
    /// `task` polled a `Sleep`.
    SleepPolled { sleep: u64, task: u64, ready: bool },
}

/// What a waking thread was doing, besides polling a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WakeCtx {
    Plain,
    /// Inside a `spawn_blocking` closure.
    Blocking,
    /// Polling `block_on`'s own future.
    BlockOn,
}

/// What tokio's `runtime.spawn` span says about a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpanInfo {
    pub task: u64,
    pub kind: looptrace_wire::TaskKind,
    pub name: Option<String>,
    pub location: Option<String>,
    pub size_bytes: Option<u64>,
    /// tokio's own internal blocking tasks (the multi-thread workers), not the app's.
    pub internal: bool,
}

pub(crate) struct Slot {
    pub tsc: u64,
    pub raw: Raw,
}

/// Session generation; 0 while no session captures.
static GEN: AtomicU64 = AtomicU64::new(0);
static CAPACITY: AtomicUsize = AtomicUsize::new(1 << 16);
static PREFAULT: AtomicBool = AtomicBool::new(false);
static REGISTRY: Mutex<Vec<ThreadBuf>> = Mutex::new(Vec::new());
static NEXT_THREAD: AtomicU64 = AtomicU64::new(0);

/// The shipper's end of one thread's ring.
pub(crate) struct ThreadBuf {
    pub consumer: Consumer<Slot>,
    pub thread: u32,
    pub name: String,
    pub dropped: Arc<AtomicU64>,
    pub reported_drops: u64,
}

struct Buf {
    producer: Producer<Slot>,
    gen: u64,
    dropped: Arc<AtomicU64>,
}

/// Per-thread capture state. Plain `Cell`s: only this thread touches them.
pub(crate) struct Local {
    buf: RefCell<Option<Buf>>,
    /// Task being polled on this thread (0: none).
    pub current: Cell<u64>,
    /// Times the current task's span was entered during this poll.
    pub enters: Cell<u32>,
    /// The current task terminated during this poll.
    pub terminated: Cell<bool>,
    /// The current task panicked during this poll.
    pub panicked: Cell<bool>,
    /// `spawn_blocking` task running on this thread (0: none).
    pub blocking: Cell<u64>,
    /// The last blocking task that ran here (its span is entered again when dropped).
    pub blocking_done: Cell<u64>,
    pub block_on: Cell<bool>,
    /// The `Sleep` whose span is entered (0: none).
    pub sleep: Cell<u64>,
    /// Session generation in which this thread reported its worker index.
    pub worker_gen: Cell<u64>,
    /// The last clock reading pushed from this thread.
    pub last_tsc: Cell<u64>,
}

thread_local! {
    pub(crate) static LOCAL: Local = const {
        Local {
            buf: RefCell::new(None),
            current: Cell::new(0),
            enters: Cell::new(0),
            terminated: Cell::new(false),
            panicked: Cell::new(false),
            blocking: Cell::new(0),
            blocking_done: Cell::new(0),
            block_on: Cell::new(false),
            sleep: Cell::new(0),
            worker_gen: Cell::new(0),
            last_tsc: Cell::new(0),
        }
    };
}

/// Records `raw` on this thread's ring, timestamped now.
#[inline]
pub(crate) fn record(raw: Raw) {
    let gen = GEN.load(Relaxed);
    if gen == 0 {
        return;
    }
    let tsc = clock::raw();
    // `try_with`: a thread being torn down has lost its buffer; its events are dropped.
    let _ = LOCAL.try_with(|l| l.push(gen, Slot { tsc, raw }));
}

/// Whether a session is capturing.
#[inline]
pub(crate) fn active() -> u64 {
    GEN.load(Relaxed)
}

impl Local {
    #[inline]
    pub(crate) fn push(&self, gen: u64, slot: Slot) {
        // Re-entrance (a push from inside a push) cannot happen through our code; if it
        // ever did, drop rather than panic.
        let Ok(mut buf) = self.buf.try_borrow_mut() else { return };
        if buf.as_ref().map(|b| b.gen) != Some(gen) {
            *buf = Some(join(gen));
        }
        self.last_tsc.set(slot.tsc);
        if let Some(b) = buf.as_mut() {
            if let Err(PushError::Full(slot)) = b.producer.push(slot) {
                b.dropped.fetch_add(1, Relaxed);
                drop(slot);
            }
        }
    }
}

fn join(gen: u64) -> Buf {
    let (mut producer, consumer) = RingBuffer::new(CAPACITY.load(Relaxed).max(16));
    if PREFAULT.load(Relaxed) {
        // Touch every slot now (without publishing any), so that the first lap around
        // the ring does not page-fault on the hot path.
        let n = producer.slots();
        if let Ok(mut chunk) = producer.write_chunk_uninit(n) {
            let (a, b) = chunk.as_mut_slices();
            for s in a.iter_mut().chain(b.iter_mut()) {
                // SAFETY: writing zero bytes into `MaybeUninit` storage is always sound.
                unsafe { std::ptr::write_bytes(s.as_mut_ptr(), 0, 1) };
            }
        }
    }
    let dropped = Arc::new(AtomicU64::new(0));
    let thread = NEXT_THREAD.fetch_add(1, Relaxed) as u32;
    let name = std::thread::current().name().unwrap_or("unnamed").to_string();
    registry().push(ThreadBuf { consumer, thread, name, dropped: dropped.clone(), reported_drops: 0 });
    Buf { producer, gen, dropped }
}

pub(crate) fn registry() -> MutexGuard<'static, Vec<ThreadBuf>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Gives the calling thread its ring now rather than at its first event.
pub(crate) fn prepare_thread() {
    let gen = GEN.load(Relaxed);
    if gen == 0 {
        return;
    }
    let _ = LOCAL.try_with(|l| {
        if let Ok(mut buf) = l.buf.try_borrow_mut() {
            if buf.as_ref().map(|b| b.gen) != Some(gen) {
                *buf = Some(join(gen));
            }
        }
    });
}

/// Starts a new capture session; buffers of earlier sessions are forgotten.
pub(crate) fn start_session(capacity: usize, prefault: bool) -> u64 {
    PREFAULT.store(prefault, Relaxed);
    let mut reg = registry();
    reg.clear();
    NEXT_THREAD.store(0, Relaxed);
    CAPACITY.store(capacity, Relaxed);
    static GENERATIONS: AtomicU64 = AtomicU64::new(0);
    let gen = GENERATIONS.fetch_add(1, Relaxed) + 1;
    GEN.store(gen, Relaxed);
    gen
}

/// Stops capturing; what is in the rings stays there for a last drain.
pub(crate) fn stop_session() {
    GEN.store(0, Relaxed);
}

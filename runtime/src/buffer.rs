//! Per-thread capture buffers.
//!
//! Each thread that reports anything gets its own single-producer ring (`rtrb`): the
//! hot path is a counter read and a push, with no lock and no allocation. The
//! shipping thread owns the consumer ends, listed in a registry a thread joins once.
//! A full ring drops the event and counts it; the traced app never waits.
//!
//! A thread whose ring passes half full wakes the shipper rather than wait for its
//! next round: a burst fills a ring only if it outruns the shipping thread itself.

use crate::clock;
use looptrace_wire::{Outcome, WakeOp};
use rtrb::{Consumer, Producer, PushError, RingBuffer};
use std::cell::Cell;
use std::panic::Location;
use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Arc, Mutex, MutexGuard};

/// What the hot path stores: raw facts, resolved into wire events by the shipper.
#[derive(Debug)]
pub(crate) enum Raw {
    PollStart(u64),
    /// A whole poll during which this thread pushed nothing else: its start
    /// `back` clock ticks before the slot's time, its end at it (see
    /// [`Local::start_poll`]).
    Poll {
        task: u64,
        back: u32,
        ready: bool,
        clones: u32,
        drops: u32,
        /// The poll's context, if a fixed label ([`crate::context::fixed_number`]; 0: none).
        context: u16,
    },
    PollEnd {
        task: u64,
        ready: bool,
        /// The task's own waker, cloned and dropped during the poll (folded).
        clones: u32,
        drops: u32,
        /// As in `Poll`.
        context: u16,
    },
    Terminate {
        task: u64,
        outcome: Outcome,
    },
    /// A task was spawned here, by the task this thread polls if any: the
    /// shipper knows which (it sees that poll's start), and the low bits of
    /// its id, kept here, make sure (a poll's start or end may have been lost
    /// to a full ring).
    Spawn {
        task: u64,
        location: &'static Location<'static>,
        parent_low: u32,
        in_poll: bool,
    },
    /// The span of a task with no name whose place its spawn hook tells (most
    /// tasks): in the slot, allocating nothing.
    TaskSpan {
        task: u64,
        /// `u64::MAX`: not known.
        size_bytes: u64,
        local: bool,
    },
    /// Any other task span (boxed, to keep every slot at 32 bytes).
    Span(Box<SpanInfo>),
    Waker {
        task: u64,
        op: WakeOp,
        current: u64,
        ctx: WakeCtx,
    },
    Park,
    Unpark,
    /// This thread is worker `n` of the traced runtime.
    Worker(u32),
    /// This thread belongs to the traced runtime (worker or blocking pool).
    RuntimeThread,
    BlockingStart(u64),
    BlockingEnd(u64),
    /// A `Sleep` polled by `task` registered a deadline `ms` milliseconds away.
    SleepArmed {
        sleep: u64,
        task: u64,
        ms: u32,
    },
    /// `task` polled a `Sleep`.
    SleepPolled {
        sleep: u64,
        task: u64,
        ready: bool,
    },
    /// The program labelled this moment (boxed: rare, and slots stay small).
    Mark(Box<str>),
    /// The poll running on this thread entered the app's span so labelled.
    Context(crate::context::SpanLabel),
    /// The same, a label made once for its callsite and kept for good.
    FixedContext(&'static crate::context::SpanLabel),
    /// The scheduler's queues, sampled (boxed: one per sampling period at most,
    /// each shipping round by default).
    Queues(Box<looptrace_wire::Queues>),
    /// A note to show beside the session (sent as a frame of its own).
    Note(Box<looptrace_wire::Note>),
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

const _: () = assert!(std::mem::size_of::<Slot>() == 32);

/// A [`Raw::Poll`] slot taken apart: its task, how far back it started (in
/// clock ticks before the slot's time), and what its end says. Plain data:
/// taking the start alone makes no end to throw away.
#[derive(Clone, Copy)]
pub(crate) struct WholePoll {
    pub task: u64,
    pub back: u64,
    ready: bool,
    clones: u32,
    drops: u32,
    context: u16,
}

impl WholePoll {
    /// The poll's end, as a fact of its own.
    pub(crate) fn end(self) -> Raw {
        Raw::PollEnd {
            task: self.task,
            ready: self.ready,
            clones: self.clones,
            drops: self.drops,
            context: self.context,
        }
    }
}

impl Raw {
    /// A whole poll's slot, taken apart.
    pub(crate) fn whole_poll(&self) -> Option<WholePoll> {
        match *self {
            Raw::Poll {
                task,
                back,
                ready,
                clones,
                drops,
                context,
            } => Some(WholePoll {
                task,
                back: back as u64,
                ready,
                clones,
                drops,
                context,
            }),
            _ => None,
        }
    }

    /// Wire events this fact makes, as counted when it is lost to a full ring
    /// (a whole poll's start may have gone out already, from [`Running`]: then
    /// one too many).
    fn events(&self) -> u64 {
        match self {
            Raw::Poll { .. } => 2,
            _ => 1,
        }
    }
}

/// The poll running on a thread whose start is not in its ring yet, for the
/// shipper to send if the poll outlasts the hold time (a long poll is seen while
/// it runs, and which request it serves). `since` is the start's clock reading,
/// 0 when there is none. `task` is written just before `since` is set, and
/// `context` (during the poll) is cleared before `since` is set again, so a
/// `since` read the same before and after them vouches for them.
#[derive(Debug, Default)]
pub(crate) struct Running {
    since: AtomicU64,
    task: AtomicU64,
    context: AtomicU32,
}

/// What [`Running::read`] saw.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunningPoll {
    pub since: u64,
    pub task: u64,
    /// A fixed label's number, 0: none yet.
    pub context: u16,
}

impl Running {
    /// The kept start (and `context`, if one was kept) went into the ring. Said
    /// after the push: a shipper that still reads the start then finds it in
    /// the ring (or ships it first and skips it there), never in neither.
    #[inline]
    fn clear(&self, context: bool) {
        self.since.store(0, Release);
        if context {
            self.context.store(0, Release);
        }
    }

    /// The running poll whose start is not in the ring, if any.
    pub(crate) fn read(&self) -> Option<RunningPoll> {
        let since = self.since.load(Acquire);
        if since == 0 {
            return None;
        }
        let task = self.task.load(Acquire);
        let context = self.context.load(Acquire) as u16;
        (self.since.load(Acquire) == since).then_some(RunningPoll {
            since,
            task,
            context,
        })
    }
}

/// Session generation; 0 while no session captures.
static GEN: AtomicU64 = AtomicU64::new(0);
static CAPACITY: AtomicUsize = AtomicUsize::new(DEFAULT_CAPACITY);
/// Slots of a thread's ring unless the app says otherwise (2 MiB of 32-byte slots).
pub(crate) const DEFAULT_CAPACITY: usize = 1 << 16;
static PREFAULT: AtomicBool = AtomicBool::new(false);
/// Rings of threads that joined since the shipper last looked: it takes them over.
static REGISTRY: Mutex<Vec<ThreadBuf>> = Mutex::new(Vec::new());
static NEXT_THREAD: AtomicU64 = AtomicU64::new(0);

/// The shipper's end of one thread's ring.
pub(crate) struct ThreadBuf {
    pub consumer: Consumer<Slot>,
    pub thread: u32,
    pub name: String,
    pub dropped: Arc<AtomicU64>,
    pub reported_drops: u64,
    pub running: Arc<Running>,
    /// The clock reading of a poll start already shipped whose slot (its own,
    /// or the whole poll's) has not been taken yet; 0: none.
    pub started: u64,
    /// The start of the running poll whose context was shipped from `running`.
    pub context_of: u64,
}

struct Buf {
    producer: Producer<Slot>,
    gen: u64,
    dropped: Arc<AtomicU64>,
    running: Arc<Running>,
    /// Pushes so far (wrapping): the fill level is looked at when `pushes &
    /// check_mask` is 0.
    pushes: u32,
    check_mask: u32,
    /// Free slots under which the shipper is woken.
    low_free: usize,
}

/// Pushes between two looks at a ring's fill level (a look reads the shipper's
/// position, a line it writes); fewer for a small ring (a quarter of it).
const CHECK_EVERY: u32 = 64;

/// The shipping thread, to wake when a ring passes half full; `WAKE_ASKED` keeps
/// it to one wake a round.
static SHIPPER: Mutex<Option<std::thread::Thread>> = Mutex::new(None);
static WAKE_ASKED: AtomicBool = AtomicBool::new(false);

/// The calling thread is the shipper (`true`) or no longer is (`false`).
pub(crate) fn set_shipper(me: bool) {
    let mut s = SHIPPER.lock().unwrap_or_else(|p| p.into_inner());
    let current = std::thread::current();
    if me {
        *s = Some(current);
    } else if s.as_ref().is_some_and(|t| t.id() == current.id()) {
        *s = None;
    }
}

/// Called by the shipper as a round starts: rings passing half full from now on
/// wake it again (it calls this at most once per hold time, see `ship`).
pub(crate) fn round_started() {
    WAKE_ASKED.store(false, Relaxed);
}

/// Whether a ring asked for a round since the last [`round_started`].
pub(crate) fn wake_pending() -> bool {
    WAKE_ASKED.load(Relaxed)
}

#[cold]
fn wake_shipper() {
    if !WAKE_ASKED.swap(true, Relaxed) {
        if let Some(t) = SHIPPER.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            t.unpark();
        }
    }
}

/// Per-thread capture state. Plain `Cell`s and no destructor, so that reaching it
/// is a single thread-pointer-relative access; the ring itself is owned through a
/// raw pointer and freed by [`BufOwner`] when the thread exits.
pub(crate) struct Local {
    buf: Cell<*mut Buf>,
    /// The thread is exiting: no new ring.
    dead: Cell<bool>,
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
    /// The current task's own waker, cloned and dropped during this poll.
    pub own_clones: Cell<u32>,
    pub own_drops: Cell<u32>,
    /// The current poll's context (the app's span) was sent.
    pub context_sent: Cell<bool>,
    /// The clock reading of the current poll's start while it is not in the
    /// ring (0: none, or pushed).
    pending: Cell<u64>,
    /// That poll's context, a fixed label's number (0: none).
    pending_context: Cell<u16>,
}

thread_local! {
    pub(crate) static LOCAL: Local = const {
        Local {
            buf: Cell::new(std::ptr::null_mut()),
            dead: Cell::new(false),
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
            own_clones: Cell::new(0),
            own_drops: Cell::new(0),
            context_sent: Cell::new(false),
            pending: Cell::new(0),
            pending_context: Cell::new(0),
        }
    };
    static OWNER: BufOwner = const { BufOwner };
}

/// Frees this thread's ring when the thread exits.
struct BufOwner;

impl Drop for BufOwner {
    fn drop(&mut self) {
        LOCAL.with(|l| {
            l.dead.set(true);
            let p = l.buf.replace(std::ptr::null_mut());
            if !p.is_null() {
                // SAFETY: `p` came from `Box::into_raw` in `Local::rejoin` and is
                // reachable from this thread only.
                drop(unsafe { Box::from_raw(p) });
            }
        });
    }
}

/// Records `raw` on this thread's ring, timestamped now.
#[inline]
pub(crate) fn record(raw: Raw) {
    let gen = GEN.load(Relaxed);
    if gen == 0 {
        return;
    }
    let tsc = clock::raw();
    LOCAL.with(|l| l.push(gen, Slot { tsc, raw }));
}

/// Whether a session is capturing.
#[inline]
pub(crate) fn active() -> u64 {
    GEN.load(Relaxed)
}

impl Local {
    /// This thread's ring for session `gen`, made if need be; `None` once the
    /// thread is exiting.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    fn ring(&self, gen: u64) -> Option<&mut Buf> {
        let mut p = self.buf.get();
        // SAFETY (both derefs): `p` is null or this thread's own live ring (see
        // `rejoin`); callers hold the reference only within one hook, and nothing
        // re-enters this thread's buffer meanwhile.
        if p.is_null() || unsafe { (*p).gen } != gen {
            p = self.rejoin(gen);
            if p.is_null() {
                return None;
            }
        }
        Some(unsafe { &mut *p })
    }

    #[inline]
    pub(crate) fn push(&self, gen: u64, slot: Slot) {
        if let Some(b) = self.ring(gen) {
            self.push_in(b, slot);
        }
    }

    /// Pushes `slot` onto `b`, after the current poll's start if that is kept.
    #[inline]
    fn push_in(&self, b: &mut Buf, slot: Slot) {
        if self.pending.get() != 0 {
            self.push_start(b);
        }
        self.put(b, slot);
    }

    /// A poll of `task` starts at `tsc`. Its start stays here rather than in the
    /// ring: a poll during which this thread pushes nothing else (most of a
    /// server's) goes in as one slot at its end, one push instead of two. Any
    /// other push first pushes the start, so a ring stays in time order; the
    /// shipper sends a start still here once it is older than its hold time.
    #[inline]
    pub(crate) fn start_poll(&self, gen: u64, tsc: u64, task: u64) {
        let Some(b) = self.ring(gen) else { return };
        if self.pending.get() != 0 {
            // A poll inside a poll: the outer start goes in first.
            self.push_start(b);
        }
        // 0 says "none".
        let tsc = tsc.max(1);
        b.running.task.store(task, Release);
        b.running.since.store(tsc, Release);
        self.pending.set(tsc);
        // What a clone or drop in this poll is timed at (see `on_waker`).
        self.last_tsc.set(tsc);
    }

    /// The poll of `task` ends at `tsc`.
    #[inline]
    pub(crate) fn end_poll(
        &self,
        gen: u64,
        tsc: u64,
        task: u64,
        ready: bool,
        clones: u32,
        drops: u32,
    ) {
        let Some(b) = self.ring(gen) else { return };
        let start = self.pending.get();
        if start != 0 && b.running.task.load(Relaxed) == task {
            if let Some(back) = tsc.checked_sub(start).and_then(|d| u32::try_from(d).ok()) {
                self.pending.set(0);
                let context = self.pending_context.replace(0);
                let raw = Raw::Poll {
                    task,
                    back,
                    ready,
                    clones,
                    drops,
                    context,
                };
                self.put(b, Slot { tsc, raw });
                return b.running.clear(context != 0);
            }
        }
        let raw = Raw::PollEnd {
            task,
            ready,
            clones,
            drops,
            context: 0,
        };
        self.push_in(b, Slot { tsc, raw });
    }

    /// The poll running here entered the app's span labelled `label`. Kept
    /// with the poll's start if that is still here and the label is fixed
    /// (no reference to count): it then goes in the poll's slot.
    #[inline]
    pub(crate) fn context(&self, gen: u64, label: crate::context::LabelRef<'_>) {
        let Some(b) = self.ring(gen) else { return };
        if let (true, crate::context::LabelRef::Fixed(l)) = (self.pending.get() != 0, label) {
            let n = crate::context::fixed_number(l);
            if n != 0 {
                self.pending_context.set(n);
                b.running.context.store(n as u32, Release);
                return;
            }
        }
        let tsc = clock::raw();
        self.push_in(
            b,
            Slot {
                tsc,
                raw: label.raw(),
            },
        );
    }

    /// Pushes the current poll's start, kept back until now.
    fn push_start(&self, b: &mut Buf) {
        let tsc = self.pending.replace(0);
        let task = b.running.task.load(Relaxed);
        self.put(
            b,
            Slot {
                tsc,
                raw: Raw::PollStart(task),
            },
        );
        let context = self.pending_context.replace(0);
        if let Some(label) = crate::context::fixed_label(context) {
            // Its time is the start's (the span was entered later, in the
            // same poll): the ring stays in time order.
            let raw = Raw::FixedContext(label);
            self.put(b, Slot { tsc, raw });
        }
        b.running.clear(context != 0);
    }

    #[inline]
    fn put(&self, b: &mut Buf, slot: Slot) {
        self.last_tsc.set(slot.tsc);
        if let Err(PushError::Full(slot)) = b.producer.push(slot) {
            b.dropped.fetch_add(slot.raw.events(), Relaxed);
            drop(slot);
        }
        b.pushes = b.pushes.wrapping_add(1);
        if b.pushes & b.check_mask == 0 && b.producer.slots() < b.low_free {
            wake_shipper();
        }
    }

    /// Gives this thread a ring of session `gen`, replacing one of an earlier
    /// session. Null once the thread is exiting: its events are dropped.
    #[cold]
    fn rejoin(&self, gen: u64) -> *mut Buf {
        if self.dead.get() || OWNER.try_with(|_| ()).is_err() {
            return std::ptr::null_mut();
        }
        // A start kept back belongs to the earlier session.
        self.pending.set(0);
        self.pending_context.set(0);
        let old = self.buf.replace(std::ptr::null_mut());
        if !old.is_null() {
            // SAFETY: from `Box::into_raw` below, owned by this thread.
            drop(unsafe { Box::from_raw(old) });
        }
        let p = Box::into_raw(Box::new(join(gen)));
        self.buf.set(p);
        p
    }
}

/// Slots of the ring of a thread of looptrace's own that records a few events
/// a second (the shipper's queue samples): not the app threads' size, nor prefaulted.
const SMALL_RING: usize = 1024;

thread_local! {
    /// This thread records little (set by looptrace's own threads before their
    /// first event): it gets a small ring.
    pub(crate) static QUIET: Cell<bool> = const { Cell::new(false) };
}

fn join(gen: u64) -> Buf {
    let quiet = QUIET.with(Cell::get);
    let capacity = if quiet {
        SMALL_RING.min(CAPACITY.load(Relaxed))
    } else {
        CAPACITY.load(Relaxed)
    };
    let capacity = capacity.max(16);
    let (mut producer, consumer) = RingBuffer::new(capacity);
    if PREFAULT.load(Relaxed) && !quiet {
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
    let running = Arc::new(Running::default());
    let thread = NEXT_THREAD.fetch_add(1, Relaxed) as u32;
    let name = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_string();
    registry().push(ThreadBuf {
        consumer,
        thread,
        name,
        dropped: dropped.clone(),
        reported_drops: 0,
        running: running.clone(),
        started: 0,
        context_of: 0,
    });
    Buf {
        producer,
        gen,
        dropped,
        running,
        pushes: 0,
        check_mask: ((capacity / 4).clamp(1, CHECK_EVERY as usize) as u32).next_power_of_two() - 1,
        low_free: capacity / 2,
    }
}

fn registry() -> MutexGuard<'static, Vec<ThreadBuf>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// The rings of threads that joined since the last call, for the shipper to own.
pub(crate) fn take_new_threads(into: &mut Vec<ThreadBuf>) {
    into.append(&mut registry());
}

/// Gives the calling thread its ring now rather than at its first event.
pub(crate) fn prepare_thread() {
    let gen = GEN.load(Relaxed);
    if gen == 0 {
        return;
    }
    LOCAL.with(|l| {
        let p = l.buf.get();
        // SAFETY: null or this thread's own live ring.
        if p.is_null() || unsafe { (*p).gen } != gen {
            l.rejoin(gen);
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

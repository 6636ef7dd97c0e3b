//! The shipping thread: merges every thread's ring in time order, resolves, encodes,
//! and hands frames to the destinations. It is a plain OS thread outside any
//! runtime, so looptrace never traces itself.
//!
//! Each ring is already in time order, so a round merges them in place: it reads
//! the slots each ring holds, repeatedly takes the earliest head among them, and
//! encodes what the resolver makes of it straight into the frame. Nothing is copied
//! into an intermediate list or sorted.

use crate::buffer::{self, Raw, RunningPoll, Slot, ThreadBuf};
use crate::clock::{self, Origin};
use crate::destination::Dest;
use crate::queues::Sampler;
use crate::resolve::Resolver;
use looptrace_wire::{encode_header, encode_note, Event, EventKind, EventsWriter, Header, Note};
use rtrb::chunks::ReadChunk;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Events newer than this are held back one round, so that an event whose thread
/// was descheduled between its clock read and its push still goes out in order.
const HOLD_NS: u64 = 2_000_000;
/// Largest events frame the shipper sends.
const FRAME_EVENTS: u64 = 16_384;
/// Rings merged by scanning their heads; more use a heap.
const SCAN_HEADS: usize = 8;

/// Running totals, shared with the app's [`crate::Session`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub events: AtomicU64,
    pub dropped_full: AtomicU64,
    pub dropped_unsent: AtomicU64,
}

/// The shipping thread; finishing it ships what is left and waits for the
/// destinations to close.
pub(crate) type Shipper = crate::background::Background;

/// Starts the shipping thread. A plain thread with no tokio and no tracing:
/// nothing there is captured. (A scoped no-op dispatcher would take every thread
/// off tracing's fast path.)
pub(crate) fn spawn(
    header: Header,
    origin: Origin,
    dests: Vec<Dest>,
    interval: Duration,
    counters: Arc<Counters>,
    sampler: Option<Sampler>,
) -> std::io::Result<Shipper> {
    Shipper::spawn("looptrace-ship", move |stop| {
        run(header, origin, dests, interval, stop, &counters, sampler)
    })
}

/// Where encoded frames go: every destination.
struct Out<'a> {
    dests: &'a mut [Dest],
    events: u64,
}

impl Out<'_> {
    /// Sends a frame of `count` events; `kept` holds them decoded, if kept.
    fn send(&mut self, frame: &[u8], count: u64, kept: &mut Vec<Event>) {
        for d in self.dests.iter_mut() {
            d.events(frame, count, kept);
        }
        kept.clear();
        self.events += count;
    }
}

/// One ring's slots readable this round, and how far the merge has taken them.
///
/// A whole poll in one slot (`Raw::Poll`) is taken in two steps, its start at
/// its start's time and its end at its end's, so that what other threads did
/// meanwhile goes out between them, as it happened.
struct Cursor<'a> {
    chunk: ReadChunk<'a, Slot>,
    taken: usize,
    len: usize,
    thread: u32,
    /// The time of the next fact to take.
    head_ns: u64,
    /// The thread's poll start already shipped (see [`ThreadBuf::started`]).
    started: &'a mut u64,
    /// See [`ThreadBuf::context_of`].
    context_of: &'a mut u64,
    /// A running poll whose start is not in the ring: its start, then its
    /// context, go after the ring's slots unless shipped already.
    running: Option<RunningPoll>,
}

impl Cursor<'_> {
    fn slot(&mut self, i: usize) -> &mut Slot {
        let (a, b) = self.chunk.as_mut_slices();
        if i < a.len() {
            &mut a[i]
        } else {
            &mut b[i - a.len()]
        }
    }

    /// Whether the ring's slots hold the poll start at `since` (pushed after
    /// the shipper read it kept), or a later slot, which comes after it.
    /// Slots of the same time may come before it: the worker's index, noted
    /// with the poll's own clock reading.
    fn holds_start(&mut self, since: u64) -> bool {
        for i in (0..self.len).rev() {
            let slot = self.slot(i);
            if slot.tsc != since {
                return slot.tsc > since;
            }
            if matches!(slot.raw, Raw::PollStart(_) | Raw::Poll { .. }) {
                return true;
            }
        }
        false
    }

    /// Sets `head_ns` to the next fact's time; false if none is due by `cutoff`.
    fn advance(&mut self, origin: &Origin, cutoff: u64) -> bool {
        let tsc = loop {
            if self.taken == self.len {
                match self.running {
                    Some(r) => break r.since,
                    None => return false,
                }
            }
            let started = *self.started;
            let slot = self.slot(self.taken);
            match slot.raw {
                // Shipped already, from `Running` (the thread pushed it later).
                Raw::PollStart(_) if slot.tsc == started => {
                    *self.started = 0;
                    self.taken += 1;
                }
                Raw::Poll { back, .. } if slot.tsc - back as u64 != started => {
                    break slot.tsc - back as u64
                }
                _ => break slot.tsc,
            }
        };
        self.head_ns = origin.ns(tsc);
        self.head_ns <= cutoff
    }

    /// Moves the next fact out (the ring drops the husk when committed); none
    /// once `advance` said there is none.
    fn take(&mut self) -> Option<Raw> {
        let i = self.taken;
        if i == self.len {
            let r = self.running?;
            if *self.started != r.since {
                *self.started = r.since;
                if r.context == 0 || *self.context_of == r.since {
                    self.running = None;
                }
                return Some(Raw::PollStart(r.task));
            }
            self.running = None;
            *self.context_of = r.since;
            return crate::context::fixed_label(r.context).map(Raw::FixedContext);
        }
        let started = *self.started;
        let slot = self.slot(i);
        if let Some(poll) = slot.raw.whole_poll() {
            let start = slot.tsc - poll.back;
            if start != started {
                // Its start now; the slot stays at the head for its end.
                *self.started = start;
                return Some(Raw::PollStart(poll.task));
            }
            *self.started = 0;
            self.taken += 1;
            return Some(poll.end());
        }
        let raw = std::mem::replace(&mut slot.raw, Raw::Park);
        self.taken += 1;
        Some(raw)
    }
}

fn run(
    header: Header,
    origin: Origin,
    mut dests: Vec<Dest>,
    interval: Duration,
    stop: &AtomicBool,
    counters: &Counters,
    mut sampler: Option<Sampler>,
) {
    // It records little of its own (the queues' samples): a small ring.
    buffer::QUIET.with(|q| q.set(true));
    // Queues sampled more often than the rounds go make rounds that often.
    let wait = sampler
        .as_ref()
        .and_then(|s| s.every)
        .map_or(interval, |every| every.min(interval));
    // When a thread's ring last could wake this one (see below).
    let mut wakeable_since = 0;
    let mut frame = Vec::new();
    encode_header(&header, &mut frame);
    for d in &mut dests {
        d.header(&frame);
    }
    let mut resolver = Resolver::default();
    resolver.keep = dests.iter().any(Dest::wants_events);
    resolver.follow = dests.iter().any(Dest::may_resume);
    buffer::set_shipper(true);
    let mut threads: Vec<ThreadBuf> = Vec::new();
    let mut notes: Vec<Note> = Vec::new();
    let mut drops: Vec<(u32, u64)> = Vec::new();
    // The latest time of a fact resolved so far. Not a round's last fact's:
    // that may be older than what went out before (a context, or a start
    // shipped from a thread's running poll, takes that poll's start time).
    let mut last_ts = 0;
    loop {
        let stopping = stop.load(Ordering::Acquire);
        if sampler.as_mut().is_some_and(|s| !s.sample()) {
            sampler = None;
        }
        let now_ns = origin.ns(clock::raw());
        // A ring half full may wake this thread again, but not sooner than its
        // events can be shipped (they are held `HOLD_NS`): a ring filling
        // faster would otherwise have it spin through rounds that ship nothing.
        if now_ns >= wakeable_since + HOLD_NS {
            buffer::round_started();
            wakeable_since = now_ns;
        }
        let joined = threads.len();
        buffer::take_new_threads(&mut threads);
        for tb in &threads[joined..] {
            resolver.thread_name(tb.thread, &tb.name);
        }
        let cutoff = if stopping {
            u64::MAX
        } else {
            now_ns.saturating_sub(HOLD_NS)
        };
        let mut out = Out {
            dests: &mut dests,
            events: 0,
        };
        frame.clear();
        let mut w = EventsWriter::new(&mut frame);
        {
            let mut cursors: Vec<Cursor<'_>> = Vec::new();
            for tb in threads.iter_mut() {
                let d = tb.dropped.load(Ordering::Relaxed);
                if d > tb.reported_drops {
                    drops.push((tb.thread, d - tb.reported_drops));
                    tb.reported_drops = d;
                }
                // Read before the ring: a poll that ends meanwhile is in it.
                let running = tb.running.read().filter(|r| {
                    r.since != tb.started || (r.context != 0 && r.since != tb.context_of)
                });
                let n = tb.consumer.slots();
                if n == 0 && running.is_none() {
                    continue;
                }
                if let Ok(chunk) = tb.consumer.read_chunk(n) {
                    let mut c = Cursor {
                        chunk,
                        taken: 0,
                        len: n,
                        thread: tb.thread,
                        head_ns: 0,
                        started: &mut tb.started,
                        context_of: &mut tb.context_of,
                        running,
                    };
                    if let Some(RunningPoll { since, .. }) = c.running {
                        if c.holds_start(since) {
                            c.running = None;
                        }
                    }
                    if c.advance(&origin, cutoff) {
                        cursors.push(c);
                    } else {
                        let taken = c.taken;
                        c.chunk.commit(taken);
                    }
                }
            }
            let mut heap = std::collections::BinaryHeap::new();
            if cursors.len() > SCAN_HEADS {
                heap.extend(
                    cursors
                        .iter()
                        .enumerate()
                        .map(|(i, c)| std::cmp::Reverse((c.head_ns, i))),
                );
            }
            loop {
                // The cursor whose head is earliest, and the earliest head of the
                // others: events are taken from it up to there without looking
                // at the others again (with one busy thread, one comparison an
                // event, however many rings there are).
                let (i, limit) = if cursors.len() > SCAN_HEADS {
                    match heap.pop() {
                        Some(std::cmp::Reverse((_, i))) => {
                            let limit = heap.peek().map_or(u64::MAX, |r| r.0 .0);
                            (i, limit)
                        }
                        None => break,
                    }
                } else {
                    let mut best: Option<usize> = None;
                    let mut limit = u64::MAX;
                    for (i, c) in cursors.iter().enumerate() {
                        if c.head_ns <= cutoff && (c.taken < c.len || c.running.is_some()) {
                            match best {
                                Some(b) if c.head_ns >= cursors[b].head_ns => {
                                    limit = limit.min(c.head_ns)
                                }
                                Some(b) => {
                                    limit = limit.min(cursors[b].head_ns);
                                    best = Some(i);
                                }
                                None => best = Some(i),
                            }
                        }
                    }
                    match best {
                        Some(i) => (i, limit),
                        None => break,
                    }
                };
                loop {
                    let c = &mut cursors[i];
                    let (ts, thread) = (c.head_ns, c.thread);
                    let raw = c.take();
                    let due = c.advance(&origin, cutoff);
                    let next = if due { c.head_ns } else { u64::MAX };
                    if !due {
                        // Past the cutoff (or empty): out of the race this round.
                        c.head_ns = u64::MAX;
                    }
                    match raw {
                        None => {}
                        Some(Raw::Note(note)) => {
                            // After the events that came before it.
                            let n = w.finish();
                            if n > 0 {
                                out.send(&frame, n, &mut resolver.kept);
                            }
                            notes.push(*note);
                            send_notes(&mut notes, &mut frame, &mut out);
                            frame.clear();
                            w = EventsWriter::new(&mut frame);
                        }
                        Some(raw) => resolver.resolve(ts, thread, raw, &mut w),
                    }
                    last_ts = last_ts.max(ts);
                    if w.len() >= FRAME_EVENTS {
                        let n = w.finish();
                        out.send(&frame, n, &mut resolver.kept);
                        frame.clear();
                        w = EventsWriter::new(&mut frame);
                    }
                    // Ties go to the other ring: equal times keep their old order.
                    if !due || next >= limit {
                        if due && cursors.len() > SCAN_HEADS {
                            heap.push(std::cmp::Reverse((next, i)));
                        }
                        break;
                    }
                }
            }
            for c in cursors {
                let taken = c.taken;
                c.chunk.commit(taken);
            }
        }
        resolver.end_round(&mut w, last_ts);
        for (thread, count) in drops.drain(..) {
            counters.dropped_full.fetch_add(count, Ordering::Relaxed);
            let e = Event {
                ts_ns: now_ns,
                thread,
                kind: EventKind::Dropped { count },
            };
            w.push(&e);
            if resolver.keep {
                resolver.kept.push(e);
            }
        }
        let n = w.finish();
        if n > 0 {
            out.send(&frame, n, &mut resolver.kept);
        }
        let shipped = out.events;
        counters.events.fetch_add(shipped, Ordering::Relaxed);
        if shipped == 0 {
            for d in &mut dests {
                d.tick();
            }
        }
        // A collector met again (or late) hears first what it missed.
        for d in &mut dests {
            if let Some(undelivered) = d.needs_resume() {
                d.resume(resolver.resume(now_ns, undelivered));
            }
        }
        // Threads that ended and were drained leave.
        threads.retain(|tb| !(tb.consumer.is_abandoned() && tb.consumer.is_empty()));
        if stopping {
            break;
        }
        let sleep = if buffer::wake_pending() {
            // A ring asked for a round that could not take its events yet (too
            // young): back as soon as they can go.
            let now = origin.ns(clock::raw());
            Duration::from_nanos((wakeable_since + HOLD_NS).saturating_sub(now)).min(wait)
        } else {
            wait
        };
        std::thread::park_timeout(sleep);
    }
    buffer::set_shipper(false);
    for d in &mut dests {
        counters
            .dropped_unsent
            .fetch_add(d.close(), Ordering::Relaxed);
    }
}

fn send_notes(notes: &mut Vec<Note>, frame: &mut Vec<u8>, out: &mut Out<'_>) {
    for note in notes.drain(..) {
        frame.clear();
        encode_note(&note, frame);
        out.send(frame, 0, &mut Vec::new());
    }
}

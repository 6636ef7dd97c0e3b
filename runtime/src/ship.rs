//! The shipping thread: drains every thread's ring, merges in time order, resolves,
//! encodes, and hands frames to the destinations. It is a plain OS thread outside
//! any runtime, so looptrace never traces itself.

use crate::buffer::{self, Raw};
use crate::clock::{self, Origin};
use crate::destination::Dest;
use crate::resolve::Resolver;
use looptrace_wire::{encode_events, encode_header, encode_note, Event, EventKind, Header, Note};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Events newer than this are held back one round, so that an event whose thread
/// was descheduled between its clock read and its push still goes out in order.
const HOLD_NS: u64 = 2_000_000;
/// Largest events frame the shipper sends.
const MAX_FRAME_EVENTS: usize = 16_384;

/// Running totals, shared with the app's [`crate::Session`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub events: AtomicU64,
    pub dropped_full: AtomicU64,
    pub dropped_unsent: AtomicU64,
}

pub(crate) struct Shipper {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Shipper {
    pub(crate) fn spawn(
        header: Header,
        origin: Origin,
        dests: Vec<Dest>,
        interval: Duration,
        counters: Arc<Counters>,
    ) -> std::io::Result<Shipper> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        // A plain thread with no tokio and no tracing: nothing here is captured. (A
        // scoped no-op dispatcher would take every thread off tracing's fast path.)
        let thread = std::thread::Builder::new()
            .name("looptrace-ship".into())
            .spawn(move || run(header, origin, dests, interval, &stop2, &counters))?;
        Ok(Shipper {
            stop,
            thread: Some(thread),
        })
    }

    /// Ships what is left and waits for the destinations to close.
    pub(crate) fn finish(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn run(
    header: Header,
    origin: Origin,
    mut dests: Vec<Dest>,
    interval: Duration,
    stop: &AtomicBool,
    counters: &Counters,
) {
    let mut frame = Vec::new();
    encode_header(&header, &mut frame);
    for d in &mut dests {
        d.header(&frame);
    }
    let mut resolver = Resolver::default();
    let mut named = HashSet::new();
    let mut pending: Vec<(u64, u32, Raw)> = Vec::new();
    let mut out: Vec<Event> = Vec::new();
    let mut drops: Vec<(u32, u64)> = Vec::new();
    let mut notes: Vec<Note> = Vec::new();
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let now_ns = origin.ns(clock::raw());
        {
            let mut reg = buffer::registry();
            for tb in reg.iter_mut() {
                if named.insert(tb.thread) {
                    resolver.thread_name(tb.thread, &tb.name);
                }
                let n = tb.consumer.slots();
                if n > 0 {
                    if let Ok(chunk) = tb.consumer.read_chunk(n) {
                        pending.extend(
                            chunk
                                .into_iter()
                                .map(|s| (origin.ns(s.tsc), tb.thread, s.raw)),
                        );
                    }
                }
                let d = tb.dropped.load(Ordering::Relaxed);
                if d > tb.reported_drops {
                    drops.push((tb.thread, d - tb.reported_drops));
                    tb.reported_drops = d;
                }
            }
            // Threads that ended and were drained leave the registry.
            reg.retain(|tb| !(tb.consumer.is_abandoned() && tb.consumer.is_empty()));
        }
        pending.sort_by_key(|p| p.0);
        let cutoff = if stopping {
            u64::MAX
        } else {
            now_ns.saturating_sub(HOLD_NS)
        };
        let ready = pending.partition_point(|p| p.0 <= cutoff);
        for (ts, thread, raw) in pending.drain(..ready) {
            match raw {
                Raw::Note(note) => notes.push(*note),
                raw => resolver.resolve(ts, thread, raw, &mut out),
            }
        }
        for (thread, count) in drops.drain(..) {
            counters.dropped_full.fetch_add(count, Ordering::Relaxed);
            out.push(Event {
                ts_ns: now_ns,
                thread,
                kind: EventKind::Dropped { count },
            });
        }
        for batch in out.chunks(MAX_FRAME_EVENTS) {
            frame.clear();
            encode_events(batch, &mut frame);
            for d in &mut dests {
                d.events(&frame, batch.len() as u64);
            }
        }
        // Notes after the events that came before them.
        for note in notes.drain(..) {
            frame.clear();
            encode_note(&note, &mut frame);
            for d in &mut dests {
                d.events(&frame, 0);
            }
        }
        counters
            .events
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        if out.is_empty() {
            for d in &mut dests {
                d.tick();
            }
        }
        out.clear();
        if stopping {
            break;
        }
        std::thread::park_timeout(interval);
    }
    for d in &mut dests {
        counters
            .dropped_unsent
            .fetch_add(d.close(), Ordering::Relaxed);
    }
}

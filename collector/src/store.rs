//! The bounded event history of one session.
//!
//! Events are kept encoded with the wire codec (4 to 6 bytes for a poll event) in
//! blocks of a few thousand, each with its time range, so a window is found by
//! comparing ranges and only its blocks are decoded. A block is a list of *runs*:
//! byte ranges of events as they arrived in a frame (copied, not re-encoded: a run
//! knows the timestamp its first event's delta is taken from), or, for frames of a
//! handful of events, encoded anew onto the block's own run. Appending is linear in
//! the events appended, whatever the frame's size. Blocks are shared (`Arc`) so a
//! viewer's query decodes them without holding up ingest. The hub evicts the
//! oldest blocks when the memory budget is exceeded.
//!
//! Timeline checkpoints (a [`Tracker`] that had followed the first N events) let a
//! window query start near its window instead of at the beginning. They are made by
//! the queries themselves, as they pass, so ingest pays nothing for them.

use crate::model::timeline::Tracker;
use looptrace_wire::{DecodeError, Event, EventsReader, EventsWriter, RunState};
use std::collections::VecDeque;
use std::sync::Arc;

/// Events per sealed block (at least; a large run may make one bigger).
pub const BLOCK_EVENTS: usize = 4096;
/// Events between timeline checkpoints.
pub const CHECKPOINT_EVERY: u64 = 16 * BLOCK_EVENTS as u64;
/// Checkpoints kept per session; past this, every other one is dropped (they
/// grow sparser rather than unbounded: each holds every live task's state).
pub const MAX_CHECKPOINTS: usize = 64;
/// Runs shorter than this are encoded onto the block's own run rather than
/// copied as runs of their own (whose bookkeeping would cost more than the events).
const SMALL_RUN: u64 = 32;

/// A run of encoded events within a block.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// Byte offset in the block's data.
    start: u32,
    count: u32,
    /// The timestamp the first event's delta is taken from.
    base_ns: u64,
}

/// A sealed run of events.
#[derive(Debug)]
pub struct Block {
    pub first_ns: u64,
    pub last_ns: u64,
    pub count: usize,
    /// Global sealing order, for oldest-first eviction across sessions.
    pub seq: u64,
    /// Index (in arrival order, within the session) of its first event.
    pub first_index: u64,
    data: Box<[u8]>,
    runs: Box<[Run]>,
}

impl Block {
    /// The block's events, in arrival order.
    pub fn events(&self) -> Vec<Event> {
        let mut out = Vec::with_capacity(self.count);
        decode_runs(&self.data, &self.runs, &mut out);
        out
    }

    pub fn bytes(&self) -> usize {
        self.data.len()
            + self.runs.len() * std::mem::size_of::<Run>()
            + std::mem::size_of::<Block>()
    }
}

fn decode_runs(data: &[u8], runs: &[Run], out: &mut Vec<Event>) {
    for (i, r) in runs.iter().enumerate() {
        let end = runs.get(i + 1).map_or(data.len(), |n| n.start as usize);
        let bytes = &data[r.start as usize..end];
        for e in EventsReader::run(bytes, r.count as u64, r.base_ns) {
            match e {
                Ok(e) => out.push(e),
                // Checked when it arrived (or encoded here): cannot fail short of a bug.
                Err(_) => break,
            }
        }
    }
}

/// The block being filled.
#[derive(Debug, Default)]
struct Open {
    data: Vec<u8>,
    runs: Vec<Run>,
    count: usize,
    first_ns: u64,
    last_ns: u64,
    /// Whether the last run is the block's own (small appends are encoded onto it),
    /// and where its encoding stands.
    own: Option<RunState>,
}

impl Open {
    fn note_times(&mut self, first_ns: u64, last_ns: u64) {
        if self.count == 0 {
            self.first_ns = first_ns;
            self.last_ns = last_ns;
        } else {
            self.first_ns = self.first_ns.min(first_ns);
            self.last_ns = self.last_ns.max(last_ns);
        }
    }

    fn bytes(&self) -> usize {
        self.data.capacity() + self.runs.capacity() * std::mem::size_of::<Run>()
    }
}

/// One session's retained events.
#[derive(Debug, Default)]
pub struct Store {
    blocks: VecDeque<Arc<Block>>,
    open: Open,
    /// Bytes held by sealed blocks.
    sealed_bytes: usize,
    /// Events sealed into blocks, ever.
    sealed_events: u64,
    /// Timeline trackers that had followed the first `index` events, so a window
    /// query starts from the nearest one instead of the beginning.
    checkpoints: VecDeque<(u64, Arc<Tracker>)>,
    /// Bytes the checkpoints hold (each measured when kept).
    checkpoint_bytes: usize,
    /// Events ever stored.
    pub events: u64,
    /// Events evicted to stay within the budget.
    pub evicted_events: u64,
    pub evicted_blocks: u64,
}

/// A consistent view of a store, cheap to take, decoded outside any lock.
pub struct Snapshot {
    blocks: Vec<Arc<Block>>,
    open: Option<Arc<Block>>,
    /// Index of the first event of the snapshot.
    pub first_index: u64,
    /// Events of the snapshot's start to skip (those a checkpoint already followed).
    skip: u64,
}

/// Where a run of events came from, for [`Store::append_run`].
pub struct RunSource<'a> {
    /// The events, encoded back to back.
    pub bytes: &'a [u8],
    /// The timestamp the first event's delta is taken from.
    pub base_ns: u64,
    /// The same events, decoded (used when the run is small enough to re-encode).
    pub events: &'a [Event],
}

impl Store {
    /// Appends events that arrived encoded (a frame's run, see [`RunSource`]).
    pub fn append_run(&mut self, run: RunSource<'_>, next_seq: &mut u64) {
        let n = run.events.len() as u64;
        if n == 0 {
            return;
        }
        if n < SMALL_RUN {
            return self.append_events(run.events, next_seq);
        }
        let (first, last) = time_range(run.events);
        let o = &mut self.open;
        o.note_times(first, last);
        o.runs.push(Run {
            start: o.data.len() as u32,
            count: n as u32,
            base_ns: run.base_ns,
        });
        o.data.extend_from_slice(run.bytes);
        o.own = None;
        o.count += n as usize;
        self.events += n;
        if self.open.count >= BLOCK_EVENTS {
            self.seal_open(next_seq);
        }
    }

    /// Appends decoded events, encoding them.
    pub fn append_events(&mut self, events: &[Event], next_seq: &mut u64) {
        for chunk in events.chunks(BLOCK_EVENTS) {
            let (first, last) = time_range(chunk);
            let o = &mut self.open;
            o.note_times(first, last);
            let mut run = match o.own.take() {
                Some(run) => run,
                None => {
                    o.runs.push(Run {
                        start: o.data.len() as u32,
                        count: 0,
                        base_ns: 0,
                    });
                    RunState::default()
                }
            };
            for e in chunk {
                looptrace_wire::codec::encode_event(e, &mut run, &mut o.data);
            }
            if let Some(r) = o.runs.last_mut() {
                r.count += chunk.len() as u32;
            }
            o.own = Some(run);
            o.count += chunk.len();
            self.events += chunk.len() as u64;
            if self.open.count >= BLOCK_EVENTS {
                self.seal_open(next_seq);
            }
        }
    }

    /// Seals the events not yet in a block (to make them compact and evictable).
    pub fn seal_open(&mut self, next_seq: &mut u64) {
        if self.open.count == 0 {
            return;
        }
        let o = std::mem::take(&mut self.open);
        *next_seq += 1;
        let b = Block {
            first_ns: o.first_ns,
            last_ns: o.last_ns,
            count: o.count,
            seq: *next_seq,
            first_index: self.sealed_events,
            data: o.data.into_boxed_slice(),
            runs: o.runs.into_boxed_slice(),
        };
        self.sealed_events += b.count as u64;
        self.sealed_bytes += b.bytes();
        self.blocks.push_back(Arc::new(b));
    }

    /// Memory held, in bytes: blocks, the open block and checkpoints.
    pub fn memory(&self) -> usize {
        self.sealed_bytes + self.open.bytes() + self.checkpoint_bytes()
    }

    /// Drops the timeline checkpoints (window queries make them again).
    pub fn clear_checkpoints(&mut self) {
        self.checkpoints.clear();
        self.checkpoint_bytes = 0;
    }

    /// Memory held by timeline checkpoints.
    pub fn checkpoint_bytes(&self) -> usize {
        self.checkpoint_bytes
    }

    /// Events retained now.
    pub fn retained(&self) -> u64 {
        self.events - self.evicted_events
    }

    /// Average bytes per retained event in sealed blocks.
    pub fn bytes_per_event(&self) -> f64 {
        let n = self.sealed_events - self.evicted_events;
        if n == 0 {
            0.0
        } else {
            self.sealed_bytes as f64 / n as f64
        }
    }

    /// Sequence number of the oldest sealed block.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.blocks.front().map(|b| b.seq)
    }

    /// Evicts the oldest sealed block; returns the bytes freed.
    pub fn evict_oldest(&mut self) -> Option<usize> {
        let b = self.blocks.pop_front()?;
        self.sealed_bytes -= b.bytes();
        self.evicted_events += b.count as u64;
        self.evicted_blocks += 1;
        // A checkpoint is usable only if every event after it is still here.
        let first = self.first_index();
        while self.checkpoints.front().is_some_and(|(i, _)| *i < first) {
            if let Some((_, t)) = self.checkpoints.pop_front() {
                self.checkpoint_bytes -= t.memory();
            }
        }
        Some(b.bytes())
    }

    /// Index of the oldest retained event.
    pub fn first_index(&self) -> u64 {
        self.blocks
            .front()
            .map_or(self.sealed_events, |b| b.first_index)
    }

    /// Keeps `tracker`, which has followed the first `index` events, as a
    /// checkpoint, unless one is near it already or its events were evicted.
    pub fn add_checkpoint(&mut self, index: u64, tracker: Arc<Tracker>) {
        if index < self.first_index() || index > self.events {
            return;
        }
        let at = self.checkpoints.partition_point(|(i, _)| *i < index);
        let near = |k: usize| {
            self.checkpoints
                .get(k)
                .is_some_and(|(i, _)| i.abs_diff(index) < CHECKPOINT_EVERY)
        };
        if near(at) || (at > 0 && near(at - 1)) {
            return;
        }
        self.checkpoint_bytes += tracker.memory();
        self.checkpoints.insert(at, (index, tracker));
        if self.checkpoints.len() > MAX_CHECKPOINTS {
            let mut k = 0;
            self.checkpoints.retain(|_| {
                k += 1;
                k % 2 == 1
            });
            self.checkpoint_bytes = self.checkpoints.iter().map(|(_, t)| t.memory()).sum();
        }
    }

    /// Time of the oldest retained event.
    pub fn first_ns(&self) -> Option<u64> {
        self.blocks
            .front()
            .map(|b| b.first_ns)
            .or((self.open.count > 0).then_some(self.open.first_ns))
    }

    fn open_block(&self) -> Option<Arc<Block>> {
        (self.open.count > 0).then(|| {
            Arc::new(Block {
                first_ns: self.open.first_ns,
                last_ns: self.open.last_ns,
                count: self.open.count,
                seq: 0,
                first_index: self.sealed_events,
                data: self.open.data.clone().into_boxed_slice(),
                runs: self.open.runs.clone().into_boxed_slice(),
            })
        })
    }

    /// Every retained event from index `from` on (or from the oldest retained).
    pub fn snapshot_from(&self, from: u64) -> Snapshot {
        let from = from.max(self.first_index());
        let blocks: Vec<_> = self
            .blocks
            .iter()
            .filter(|b| b.first_index + b.count as u64 > from)
            .cloned()
            .collect();
        let first_index = blocks.first().map_or(self.sealed_events, |b| b.first_index);
        Snapshot {
            blocks,
            open: self.open_block(),
            first_index,
            skip: from.saturating_sub(first_index),
        }
    }

    /// Blocks that may hold events before `end_ns`, and the open events.
    pub fn snapshot_until(&self, end_ns: u64) -> Snapshot {
        let blocks: Vec<_> = self
            .blocks
            .iter()
            .filter(|b| b.first_ns < end_ns)
            .cloned()
            .collect();
        let first_index = blocks.first().map_or(self.sealed_events, |b| b.first_index);
        Snapshot {
            blocks,
            open: self.open_block().filter(|b| b.first_ns < end_ns),
            first_index,
            skip: 0,
        }
    }

    /// What a window `[start_ns, end_ns)` needs: the latest checkpoint from before
    /// `start_ns` (if any) and the events after it, up to `end_ns`.
    pub fn snapshot_window(&self, start_ns: u64, end_ns: u64) -> (Option<Arc<Tracker>>, Snapshot) {
        let Some((index, tracker)) = self
            .checkpoints
            .iter()
            .rev()
            .find(|(_, t)| t.last_ns() <= start_ns)
            .cloned()
        else {
            return (None, self.snapshot_until(end_ns));
        };
        let blocks: Vec<_> = self
            .blocks
            .iter()
            .filter(|b| b.first_index + b.count as u64 > index && b.first_ns < end_ns)
            .cloned()
            .collect();
        let first_index = blocks.first().map_or(self.sealed_events, |b| b.first_index);
        let open = self
            .open_block()
            .filter(|b| b.first_ns < end_ns || blocks.is_empty());
        (
            Some(tracker),
            Snapshot {
                blocks,
                open,
                first_index,
                skip: index.saturating_sub(first_index),
            },
        )
    }
}

fn time_range(events: &[Event]) -> (u64, u64) {
    events
        .iter()
        .fold((u64::MAX, 0), |(a, b), e| (a.min(e.ts_ns), b.max(e.ts_ns)))
}

impl Snapshot {
    /// Events in the snapshot.
    pub fn len(&self) -> u64 {
        let n: usize = self.blocks.iter().chain(&self.open).map(|b| b.count).sum();
        (n as u64).saturating_sub(self.skip)
    }

    /// Whether it holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index (in the session) of the snapshot's first event.
    pub fn start_index(&self) -> u64 {
        self.first_index + self.skip
    }

    /// All events of the snapshot, in time order.
    pub fn events(self) -> Vec<Event> {
        let mut out: Vec<Event> = Vec::with_capacity(self.len() as usize + self.skip as usize);
        for b in self.blocks.iter().chain(&self.open) {
            decode_runs(&b.data, &b.runs, &mut out);
        }
        out.drain(..(self.skip as usize).min(out.len()));
        // Threads' events interleave with small disorder: restore time order.
        out.sort_by_key(|e| e.ts_ns);
        out
    }

    /// The snapshot's events a block at a time, each block in time order (blocks
    /// follow each other in arrival order), until `f` returns false: bounded
    /// memory however long the snapshot.
    pub fn for_each_block(&self, mut f: impl FnMut(&mut [Event]) -> bool) {
        let mut skip = self.skip as usize;
        let mut buf = Vec::new();
        for b in self.blocks.iter().chain(&self.open) {
            buf.clear();
            decode_runs(&b.data, &b.runs, &mut buf);
            let s = skip.min(buf.len());
            skip -= s;
            if s < buf.len() {
                let rest = &mut buf[s..];
                // Threads' events interleave with small disorder: restore time order.
                rest.sort_by_key(|e| e.ts_ns);
                if !f(rest) {
                    return;
                }
            }
        }
    }
}

/// Checks that `bytes` hold `count` well-formed events after `base_ns`, decoding
/// them into `out`.
pub fn decode_run(
    bytes: &[u8],
    count: u64,
    base_ns: u64,
    out: &mut Vec<Event>,
) -> Result<(), DecodeError> {
    for e in EventsReader::run(bytes, count, base_ns) {
        out.push(e?);
    }
    Ok(())
}

/// Encodes `events` as one events frame (for a recording).
pub fn frame_of(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = EventsWriter::new(&mut out);
    for e in events {
        w.push(e);
    }
    w.finish();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use looptrace_wire::{encode_events, EventKind};

    fn polls(n: u64, from: u64) -> Vec<Event> {
        (from..from + n)
            .map(|i| Event {
                ts_ns: 1_000 + i * 350,
                thread: (i % 2) as u32,
                kind: if i % 2 == 0 {
                    EventKind::PollStart { task: 7 + i % 50 }
                } else {
                    EventKind::PollEnd {
                        task: 7 + i % 50,
                        ready: false,
                        clones: 0,
                        drops: 0,
                        context: None,
                    }
                },
            })
            .collect()
    }

    /// Appends `events` as a frame would bring them: bytes and decoded.
    fn append_frame(s: &mut Store, events: &[Event], seq: &mut u64) {
        let mut frame = Vec::new();
        encode_events(events, &mut frame);
        let mut r = EventsReader::new(&frame).unwrap();
        let (start, base) = (r.position(), r.prev_ns());
        assert!(r.all(|e| e.is_ok()));
        s.append_run(
            RunSource {
                bytes: &frame[start..],
                base_ns: base,
                events,
            },
            seq,
        );
    }

    #[test]
    fn stores_compactly_and_evicts_oldest() {
        let mut s = Store::default();
        let mut seq = 0;
        let events = polls(3 * BLOCK_EVENTS as u64 + 10, 0);
        append_frame(&mut s, &events[..100], &mut seq);
        s.append_events(&events[100..110], &mut seq);
        for chunk in events[110..].chunks(1000) {
            append_frame(&mut s, chunk, &mut seq);
        }
        assert_eq!(s.retained(), events.len() as u64);
        assert!(
            s.bytes_per_event() <= 8.0,
            "{} bytes per event",
            s.bytes_per_event()
        );
        let all = s.snapshot_until(u64::MAX).events();
        assert_eq!(all, events);
        let before = s.memory();
        let freed = s.evict_oldest().unwrap();
        assert_eq!(s.memory(), before - freed);
        let first_block = s.first_index() as usize;
        assert_eq!(s.evicted_events, first_block as u64);
        assert_eq!(s.snapshot_until(u64::MAX).events(), events[first_block..]);
        assert_eq!(s.first_ns(), Some(events[first_block].ts_ns));
        assert_eq!(
            s.snapshot_from(first_block as u64 + 5).len(),
            (events.len() - first_block - 5) as u64
        );
    }

    #[test]
    fn tiny_frames_cost_no_more_than_big_ones() {
        let mut s = Store::default();
        let mut seq = 0;
        let events = polls(2 * BLOCK_EVENTS as u64, 0);
        for chunk in events.chunks(3) {
            append_frame(&mut s, chunk, &mut seq);
        }
        s.seal_open(&mut seq);
        assert!(s.bytes_per_event() <= 8.0, "{}", s.bytes_per_event());
        assert_eq!(s.snapshot_until(u64::MAX).events(), events);
    }

    #[test]
    fn one_huge_run_is_one_copy() {
        // A million events in one frame: copied once into one block, not split
        // block by block (which copied the rest of the frame each time).
        let mut s = Store::default();
        let mut seq = 0;
        let events = polls(1_000_000, 0);
        append_frame(&mut s, &events, &mut seq);
        assert_eq!(s.retained(), 1_000_000);
        assert_eq!(s.blocks.len(), 1);
        assert_eq!(s.snapshot_from(999_990).events(), events[999_990..]);
    }
}

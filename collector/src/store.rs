//! The bounded event history of one session.
//!
//! Events are kept encoded with the wire codec (4 to 6 bytes for a poll event) in
//! blocks of a few thousand, each with its time range, so a window is found by
//! comparing ranges and only its blocks are decoded. Blocks are shared (`Arc`) so
//! a viewer's query decodes them without holding up ingest. The hub evicts the
//! oldest blocks when the memory budget is exceeded.

use crate::model::timeline::Tracker;
use looptrace_wire::{decode_frame, encode_events, Event, Frame};
use std::collections::VecDeque;
use std::sync::Arc;

/// Events per sealed block.
pub const BLOCK_EVENTS: usize = 4096;
/// Events between timeline checkpoints.
pub const CHECKPOINT_EVERY: u64 = 16 * BLOCK_EVENTS as u64;

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
    data: Vec<u8>,
}

impl Block {
    pub fn events(&self) -> Vec<Event> {
        match decode_frame(&self.data) {
            Ok(Frame::Events(e)) => e,
            // Encoded by us a moment ago: cannot fail short of a bug.
            _ => Vec::new(),
        }
    }

    pub fn bytes(&self) -> usize {
        self.data.len() + std::mem::size_of::<Block>()
    }
}

/// One session's retained events.
#[derive(Debug, Default)]
pub struct Store {
    blocks: VecDeque<Arc<Block>>,
    open: Vec<Event>,
    /// Bytes held by sealed blocks.
    sealed_bytes: usize,
    /// Events sealed into blocks, ever.
    sealed_events: u64,
    /// Timeline trackers that had followed the first `index` events, so a window
    /// query starts from the nearest one instead of the beginning.
    checkpoints: VecDeque<(u64, Arc<Tracker>)>,
    /// Events ever stored.
    pub events: u64,
    /// Events evicted to stay within the budget.
    pub evicted_events: u64,
    pub evicted_blocks: u64,
}

/// A consistent view of a store, cheap to take, decoded outside any lock.
pub struct Snapshot {
    blocks: Vec<Arc<Block>>,
    /// Events of the first block already followed by the checkpoint.
    skip: usize,
    open: Vec<Event>,
}

impl Store {
    /// Appends events; returns how many bytes were sealed into a new block (if any).
    pub fn push(&mut self, events: &[Event], next_seq: &mut u64) {
        self.events += events.len() as u64;
        self.open.extend_from_slice(events);
        while self.open.len() >= BLOCK_EVENTS {
            let rest = self.open.split_off(BLOCK_EVENTS);
            let full = std::mem::replace(&mut self.open, rest);
            self.seal(full, next_seq);
        }
    }

    /// Seals the events not yet in a block (to make them compact and evictable).
    pub fn seal_open(&mut self, next_seq: &mut u64) {
        if !self.open.is_empty() {
            let open = std::mem::take(&mut self.open);
            self.seal(open, next_seq);
        }
    }

    fn seal(&mut self, events: Vec<Event>, next_seq: &mut u64) {
        let first_ns = events.iter().map(|e| e.ts_ns).min().unwrap_or(0);
        let last_ns = events.iter().map(|e| e.ts_ns).max().unwrap_or(0);
        let mut data = Vec::with_capacity(events.len() * 5);
        encode_events(&events, &mut data);
        data.shrink_to_fit();
        *next_seq += 1;
        let b = Block {
            first_ns,
            last_ns,
            count: events.len(),
            seq: *next_seq,
            first_index: self.sealed_events,
            data,
        };
        self.sealed_events += events.len() as u64;
        self.sealed_bytes += b.bytes();
        self.blocks.push_back(Arc::new(b));
    }

    /// Approximate memory held, in bytes.
    pub fn memory(&self) -> usize {
        // Open events are decoded structs; count them at their in-memory size.
        self.sealed_bytes + self.open.len() * std::mem::size_of::<Event>()
    }

    /// Events retained now.
    pub fn retained(&self) -> u64 {
        self.blocks.iter().map(|b| b.count as u64).sum::<u64>() + self.open.len() as u64
    }

    /// Average bytes per retained event in sealed blocks.
    pub fn bytes_per_event(&self) -> f64 {
        let n: usize = self.blocks.iter().map(|b| b.count).sum();
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
            self.checkpoints.pop_front();
        }
        Some(b.bytes())
    }

    /// Index of the oldest retained event.
    fn first_index(&self) -> u64 {
        self.blocks
            .front()
            .map_or(self.sealed_events, |b| b.first_index)
    }

    /// Records that `tracker` has followed every event pushed so far.
    pub fn checkpoint(&mut self, tracker: &Tracker) {
        let index = self.events;
        if self
            .checkpoints
            .back()
            .is_none_or(|(i, _)| index - i >= CHECKPOINT_EVERY)
        {
            self.checkpoints
                .push_back((index, Arc::new(tracker.clone())));
        }
    }

    /// Time of the oldest retained event.
    pub fn first_ns(&self) -> Option<u64> {
        self.blocks
            .front()
            .map(|b| b.first_ns)
            .or_else(|| self.open.iter().map(|e| e.ts_ns).min())
    }

    /// Blocks that may hold events before `end_ns`, and the open events.
    pub fn snapshot_until(&self, end_ns: u64) -> Snapshot {
        Snapshot {
            blocks: self
                .blocks
                .iter()
                .filter(|b| b.first_ns < end_ns)
                .cloned()
                .collect(),
            skip: 0,
            open: self
                .open
                .iter()
                .filter(|e| e.ts_ns < end_ns)
                .cloned()
                .collect(),
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
        let skip = blocks
            .first()
            .map_or(0, |b| index.saturating_sub(b.first_index) as usize);
        let open_skip = index.saturating_sub(self.sealed_events) as usize;
        let open = self
            .open
            .iter()
            .skip(open_skip)
            .filter(|e| e.ts_ns < end_ns)
            .cloned()
            .collect();
        (Some(tracker), Snapshot { blocks, skip, open })
    }
}

impl Snapshot {
    /// All events of the snapshot, in time order.
    pub fn events(self) -> Vec<Event> {
        let mut out: Vec<Event> = Vec::with_capacity(
            self.blocks.iter().map(|b| b.count).sum::<usize>() + self.open.len(),
        );
        for (i, b) in self.blocks.iter().enumerate() {
            let events = b.events();
            let skip = if i == 0 {
                self.skip.min(events.len())
            } else {
                0
            };
            out.extend(events.into_iter().skip(skip));
        }
        out.extend(self.open);
        // Threads' events interleave with small disorder: restore time order.
        out.sort_by_key(|e| e.ts_ns);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use looptrace_wire::EventKind;

    #[test]
    fn stores_compactly_and_evicts_oldest() {
        let mut s = Store::default();
        let mut seq = 0;
        let events: Vec<Event> = (0..3 * BLOCK_EVENTS as u64 + 10)
            .map(|i| Event {
                ts_ns: 1_000 + i * 350,
                thread: (i % 2) as u32,
                kind: if i % 2 == 0 {
                    EventKind::PollStart { task: 7 + i % 50 }
                } else {
                    EventKind::PollEnd {
                        clones: 0,
                        drops: 0,
                        task: 7 + i % 50,
                        ready: false,
                    }
                },
            })
            .collect();
        s.push(&events, &mut seq);
        assert_eq!(s.retained(), events.len() as u64);
        assert!(
            s.bytes_per_event() <= 16.0,
            "{} bytes per event",
            s.bytes_per_event()
        );
        let all = s.snapshot_until(u64::MAX).events();
        assert_eq!(all, events);
        let before = s.memory();
        let freed = s.evict_oldest().unwrap();
        assert_eq!(s.memory(), before - freed);
        assert_eq!(s.evicted_events, BLOCK_EVENTS as u64);
        assert_eq!(s.snapshot_until(u64::MAX).events(), events[BLOCK_EVENTS..]);
        assert_eq!(s.first_ns(), Some(events[BLOCK_EVENTS].ts_ns));
    }
}

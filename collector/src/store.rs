//! The bounded event history of one session.
//!
//! Events are kept encoded with the wire codec (4 to 6 bytes for a poll event) in
//! blocks of a few thousand, each with its time range, so a window is found by
//! comparing ranges and only its blocks are decoded. Blocks are shared (`Arc`) so
//! a viewer's query decodes them without holding up ingest. The hub evicts the
//! oldest blocks when the memory budget is exceeded.

use looptrace_wire::{decode_frame, encode_events, Event, Frame};
use std::collections::VecDeque;
use std::sync::Arc;

/// Events per sealed block.
pub const BLOCK_EVENTS: usize = 4096;

/// A sealed run of events.
#[derive(Debug)]
pub struct Block {
    pub first_ns: u64,
    pub last_ns: u64,
    pub count: usize,
    /// Global sealing order, for oldest-first eviction across sessions.
    pub seq: u64,
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
    /// Events ever stored.
    pub events: u64,
    /// Events evicted to stay within the budget.
    pub evicted_events: u64,
    pub evicted_blocks: u64,
}

/// A consistent view of a store, cheap to take, decoded outside any lock.
pub struct Snapshot {
    blocks: Vec<Arc<Block>>,
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
        let b = Block { first_ns, last_ns, count: events.len(), seq: *next_seq, data };
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
        Some(b.bytes())
    }

    /// Time of the oldest retained event.
    pub fn first_ns(&self) -> Option<u64> {
        self.blocks.front().map(|b| b.first_ns).or_else(|| self.open.iter().map(|e| e.ts_ns).min())
    }

    /// Blocks that may hold events before `end_ns`, and the open events.
    pub fn snapshot_until(&self, end_ns: u64) -> Snapshot {
        Snapshot {
            blocks: self.blocks.iter().filter(|b| b.first_ns < end_ns).cloned().collect(),
            open: self.open.iter().filter(|e| e.ts_ns < end_ns).cloned().collect(),
        }
    }
}

impl Snapshot {
    /// All events of the snapshot, in time order.
    pub fn events(self) -> Vec<Event> {
        let mut out: Vec<Event> = Vec::with_capacity(self.blocks.iter().map(|b| b.count).sum::<usize>() + self.open.len());
        for b in &self.blocks {
            out.extend(b.events());
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
                kind: if i % 2 == 0 { EventKind::PollStart { task: 7 + i % 50 } } else { EventKind::PollEnd { task: 7 + i % 50, ready: false } },
            })
            .collect();
        s.push(&events, &mut seq);
        assert_eq!(s.retained(), events.len() as u64);
        assert!(s.bytes_per_event() <= 16.0, "{} bytes per event", s.bytes_per_event());
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

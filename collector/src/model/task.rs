//! One task's derived state and statistics.

use hdrhistogram::Histogram;
use looptrace_api::WakeCounts;
use looptrace_wire::{Lifecycle, Outcome, Stretch, TaskId, TaskKind, TaskState};
use std::sync::Arc;

/// A task's poll-time and scheduling-latency histograms: most of what a task
/// costs the collector (up to some 4 KiB), so the first detail given up when memory
/// runs short.
#[derive(Debug, Clone)]
pub struct Histograms {
    /// Poll durations (ns).
    pub poll: Histogram<u32>,
    /// Wake-to-poll latencies (ns).
    pub sched: Histogram<u32>,
    /// [`Histograms::bytes`] as the model last counted it (they grow).
    pub(crate) counted: usize,
}

impl Histograms {
    fn new() -> Box<Histograms> {
        let mut h = Box::new(Histograms {
            poll: histogram(),
            sched: histogram(),
            counted: 0,
        });
        h.counted = h.bytes();
        h
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Histograms>()
            + (self.poll.distinct_values() + self.sched.distinct_values()) * 4
    }

    /// Bytes a task's histograms hold at most, grown to their longest value.
    #[cfg(test)]
    pub(crate) fn most_bytes() -> usize {
        let full = Histogram::<u32>::new_with_bounds(1, HISTOGRAM_MAX_NS, SIGFIG)
            .map_or(0, |h| h.distinct_values());
        std::mem::size_of::<Histograms>() + 2 * full * 4
    }
}

/// Everything the collector knows about one task.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: TaskId,
    /// Names and locations are shared between the tasks that have them.
    pub name: Arc<str>,
    pub given_name: Option<Arc<str>>,
    pub location: Arc<str>,
    pub kind: TaskKind,
    pub parent: Option<TaskId>,
    pub size_bytes: Option<u64>,
    pub spawned_ns: u64,
    pub ended_ns: Option<u64>,
    pub outcome: Option<Outcome>,
    /// Where it stands (the one derivation of task states, shared with the
    /// timeline and the exports).
    pub life: Lifecycle,
    pub polls: u64,
    pub busy_ns: u64,
    pub scheduled_ns: u64,
    pub idle_ns: u64,
    pub wakes: WakeCounts,
    pub longest_poll_ns: u64,
    pub last_poll_ns: Option<u64>,
    /// Wakers alive (clones not yet dropped or consumed).
    pub live_wakers: i64,
    /// Warnings raised about this task (kept here: task lists show it for every task).
    pub warnings: u32,
    /// What the app was doing in the task's latest poll that said (its `tracing`
    /// span, e.g. `GET /blocking`), and whether that was the current (or last) poll.
    pub context: Option<Arc<str>>,
    pub context_in_poll: bool,
    /// `None` once given up to stay within the memory budget (the counters stay).
    /// Read it with [`Task::histograms`]: the latest durations may still be
    /// in `pending`.
    pub(crate) hist: Option<Box<Histograms>>,
    pub(crate) pending: Pending,
    /// Its group's index in [`super::groups::Groups`].
    pub group: u32,
}

/// Durations a task's histograms take a few at a time.
const PENDING: usize = 8;

/// A task's latest durations, not yet in its histograms. When a poll ends, the
/// task's histogram counts are seldom in cache (a histogram record was most of
/// an event's ingest cost); a task's polls mostly land in the same few counts,
/// so several go in together: when [`PENDING`] are held, and after each batch
/// of events ([`super::Model::flush_histograms`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Pending {
    poll: [u32; PENDING],
    sched: [u32; PENDING],
    polls: u8,
    scheds: u8,
    /// The task is on the model's list of tasks to flush.
    pub(crate) listed: bool,
}

impl Pending {
    /// Puts these durations into `h`.
    fn add_to(&self, h: &mut Histograms) {
        record_all(&mut h.poll, &self.poll[..self.polls as usize]);
        record_all(&mut h.sched, &self.sched[..self.scheds as usize]);
    }
}

fn record_all(h: &mut Histogram<u32>, values: &[u32]) {
    for &v in values {
        record(h, v as u64);
    }
}

/// Records `ns` (at most [`HISTOGRAM_MAX_NS`]), growing `h` if need be.
fn record(h: &mut Histogram<u32>, ns: u64) {
    let held = h.distinct_values();
    if h.record(ns).is_err() {
        // Only if it cannot grow (it can, up to far past any value given).
        h.saturating_record(ns);
    }
    if h.distinct_values() != held {
        // Grown: its counts' buffer may have doubled past what even a full
        // histogram holds; a copy holds only what it needs (a task grows its
        // histograms a few times at most).
        *h = h.clone();
    }
}

/// Longest duration a histogram tells apart (longer ones count as this).
pub const HISTOGRAM_MAX_NS: u64 = 100_000_000_000;

/// Significant digits: durations to about 10%.
const SIGFIG: u8 = 1;

fn histogram() -> Histogram<u32> {
    // 1 ns .. 100 s (some 2 KiB per histogram at most, two per task), made
    // small and grown to the longest duration recorded: a task of short polls
    // keeps a fraction of that, and a task that polls a few times is made
    // without clearing 4 KiB (it was most of a short task's cost).
    let mut h =
        Histogram::new_with_bounds(1, 2, SIGFIG).expect("static histogram bounds are valid");
    h.auto(true);
    h
}

impl Task {
    pub(crate) fn new(id: TaskId, ts: u64) -> Task {
        Task {
            id,
            name: format!("task {id}").into(),
            given_name: None,
            location: "".into(),
            kind: TaskKind::Task,
            parent: None,
            size_bytes: None,
            spawned_ns: ts,
            ended_ns: None,
            outcome: None,
            life: Lifecycle::default(),
            polls: 0,
            busy_ns: 0,
            scheduled_ns: 0,
            idle_ns: 0,
            wakes: WakeCounts::default(),
            longest_poll_ns: 0,
            last_poll_ns: None,
            live_wakers: 0,
            warnings: 0,
            context: None,
            context_in_poll: false,
            hist: Some(Histograms::new()),
            pending: Pending::default(),
            group: super::groups::OTHER,
        }
    }

    /// Records a poll's duration, if the histograms are kept.
    /// True if the task must now be listed to flush (it was not).
    pub(crate) fn record_poll(&mut self, ns: u64) -> bool {
        self.record(ns, false)
    }

    /// Records a wake-to-poll latency, if the histograms are kept; true if the
    /// task must now be listed to flush.
    pub(crate) fn record_scheduled(&mut self, ns: u64) -> bool {
        self.record(ns, true)
    }

    fn record(&mut self, ns: u64, sched: bool) -> bool {
        let Some(h) = &mut self.hist else {
            return false;
        };
        let ns = ns.clamp(1, HISTOGRAM_MAX_NS);
        let p = &mut self.pending;
        let (values, n, hist) = if sched {
            (&mut p.sched, &mut p.scheds, &mut h.sched)
        } else {
            (&mut p.poll, &mut p.polls, &mut h.poll)
        };
        match u32::try_from(ns) {
            Ok(v) => {
                values[*n as usize] = v;
                *n += 1;
                if *n as usize == PENDING {
                    record_all(hist, &values[..]);
                    *n = 0;
                }
            }
            // Over 4 s: rare, recorded at once.
            Err(_) => record(hist, ns),
        }
        let listed = std::mem::replace(&mut p.listed, true);
        !listed
    }

    /// Puts the pending durations into the histograms; returns the bytes they
    /// grew by since last counted (a task that recorded any duration is flushed
    /// before its batch ends, so every growth is counted here).
    pub(crate) fn flush_pending(&mut self) -> usize {
        let p = std::mem::take(&mut self.pending);
        let Some(h) = &mut self.hist else { return 0 };
        p.add_to(h);
        let now = h.bytes();
        let grown = now.saturating_sub(h.counted);
        h.counted = now;
        grown
    }

    /// The histograms with every duration recorded so far (a copy only when some
    /// are still pending: after a batch of events none are).
    pub fn histograms(&self) -> Option<std::borrow::Cow<'_, Histograms>> {
        let h = self.hist.as_deref()?;
        let p = &self.pending;
        if p.polls == 0 && p.scheds == 0 {
            return Some(std::borrow::Cow::Borrowed(h));
        }
        let mut h = h.clone();
        p.add_to(&mut h);
        Some(std::borrow::Cow::Owned(h))
    }

    /// Where it stands (scheduled until an event says otherwise).
    pub fn state(&self) -> TaskState {
        self.life.state.unwrap_or(TaskState::Scheduled)
    }

    /// The context of its current (or last) poll, if that poll entered one.
    pub fn poll_context(&self) -> Option<&Arc<str>> {
        self.context.as_ref().filter(|_| self.context_in_poll)
    }

    /// When its current state began.
    pub fn since_ns(&self) -> u64 {
        self.life.since_ns
    }

    /// Adds a stretch it spent in one state to the right total.
    pub(crate) fn add(&mut self, span: &Stretch) {
        let spent = span.duration_ns();
        match span.state {
            TaskState::Running => self.busy_ns += spent,
            TaskState::Scheduled => self.scheduled_ns += spent,
            TaskState::Idle => self.idle_ns += spent,
            TaskState::Done => {}
        }
    }

    /// Totals (busy, scheduled, idle) as of `now`, counting the current state so far.
    pub fn totals_at(&self, now: u64) -> (u64, u64, u64) {
        let (mut b, mut s, mut i) = (self.busy_ns, self.scheduled_ns, self.idle_ns);
        if let Some(open) = self.life.open_stretch(now.max(self.life.since_ns)) {
            let spent = open.duration_ns();
            match open.state {
                TaskState::Running => b += spent,
                TaskState::Scheduled => s += spent,
                TaskState::Idle => i += spent,
                TaskState::Done => {}
            }
        }
        (b, s, i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Grown as values come, a task's histograms say what histograms made at
    /// full size say, and hold less while its polls are short.
    #[test]
    fn grown_histograms_read_as_full_ones() {
        let mut full = Histogram::<u32>::new_with_bounds(1, HISTOGRAM_MAX_NS, SIGFIG).unwrap();
        let mut t = Task::new(1, 0);
        for ns in [40, 700, 1_500, 9_000, 9_100, 120_000] {
            t.record_poll(ns);
            full.saturating_record(ns);
        }
        t.flush_pending();
        let grown = t.histograms().unwrap().poll.clone();
        assert!(
            grown.distinct_values() * 2 < full.distinct_values(),
            "{} values held for polls up to 120 µs, {} at full size",
            grown.distinct_values(),
            full.distinct_values()
        );
        // Up to the longest (and past it: clamped), the same answers.
        for ns in [
            HISTOGRAM_MAX_NS / 3,
            HISTOGRAM_MAX_NS,
            10 * HISTOGRAM_MAX_NS,
            7,
        ] {
            t.record_poll(ns);
            full.saturating_record(ns.min(HISTOGRAM_MAX_NS));
        }
        t.flush_pending();
        let grown = &t.histograms().unwrap().poll;
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(
                grown.value_at_quantile(q),
                full.value_at_quantile(q),
                "q {q}"
            );
        }
        assert_eq!(
            (grown.len(), grown.min(), grown.max()),
            (full.len(), full.min(), full.max())
        );
        assert!(t.hist.as_ref().unwrap().bytes() <= Histograms::most_bytes());
    }
}

//! Findings and long polls kept for an exporter to send as spans
//! (OpenTelemetry), in a bounded queue: a warning's findings as they happen,
//! at most one a second for each warning (the span counts those it stands
//! for), so a finding that repeats thousands of times a second (a self-wake
//! storm) sends a span a second, not thousands.

use looptrace_api::WarningKind;
use looptrace_wire::TaskId;
use std::collections::VecDeque;
use std::sync::Arc;

/// Spans kept until an exporter takes them; past this the oldest go (counted).
pub const OUTBOX_MAX: usize = 4096;

/// One finding, or one poll at least as long as asked, as a span.
#[derive(Debug, Clone, PartialEq)]
pub struct OutSpan {
    /// The finding's kind; `None` for a long poll.
    pub kind: Option<WarningKind>,
    pub task: Option<TaskId>,
    pub task_name: Option<Arc<str>>,
    /// What the task was doing (its poll's `tracing` span), when known.
    pub context: Option<Arc<str>>,
    /// When it began (session time): the poll's start, the wait's start.
    pub start_ns: u64,
    /// How long it lasted (0 for a moment).
    pub duration_ns: u64,
    /// The value that crossed the threshold (ns, bytes or tasks).
    pub value: u64,
    pub message: String,
    /// The thread the task last ran on.
    pub thread: Option<u32>,
    /// Findings of its warning this span stands for: itself, and those since
    /// the warning's last span that were not sent on their own.
    pub findings: u64,
}

/// A warning's findings are sent as spans at most this often.
pub const SPAN_EVERY_NS: u64 = 1_000_000_000;
/// Warnings whose last span is remembered; past this, all are forgotten (and
/// the next finding of each is sent).
const REMEMBERED: usize = 4096;

/// The spans of one session waiting for the exporter.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Polls at least this long are kept too.
    pub poll_ns: Option<u64>,
    spans: VecDeque<OutSpan>,
    /// Spans let go before the exporter took them.
    pub dropped: u64,
    /// Per warning: when its last span was, and its findings held since.
    last: rustc_hash::FxHashMap<super::WarningGroup, (u64, u64)>,
}

impl Outbox {
    pub fn new(poll_ns: Option<u64>) -> Outbox {
        Outbox {
            poll_ns,
            ..Outbox::default()
        }
    }

    /// Whether a finding of `warning` at `ts` is sent as a span: if so, the
    /// findings it stands for.
    pub(crate) fn admit(&mut self, warning: &super::WarningGroup, ts: u64) -> Option<u64> {
        if self.last.len() >= REMEMBERED && !self.last.contains_key(warning) {
            self.last.clear();
        }
        match self.last.get_mut(warning) {
            Some((at, held)) if ts.saturating_sub(*at) < SPAN_EVERY_NS => {
                *held += 1;
                None
            }
            Some((at, held)) => {
                *at = ts;
                Some(std::mem::take(held) + 1)
            }
            None => {
                self.last.insert(warning.clone(), (ts, 0));
                Some(1)
            }
        }
    }

    pub fn push(&mut self, span: OutSpan) {
        if self.spans.len() >= OUTBOX_MAX {
            self.spans.pop_front();
            self.dropped += 1;
        }
        self.spans.push_back(span);
    }

    /// Everything waiting, and how many were let go since the last take.
    pub fn take(&mut self) -> (Vec<OutSpan>, u64) {
        (
            self.spans.drain(..).collect(),
            std::mem::take(&mut self.dropped),
        )
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// Where a finding of `kind` found at `ts` with `value` lies in time: a
/// blocking poll from its start for its length, a wait for a worker up to the
/// poll that ended it, anything else a moment.
pub fn extent(kind: WarningKind, ts: u64, value: u64) -> (u64, u64) {
    match kind {
        WarningKind::BlockingPoll => (ts, value),
        WarningKind::SchedulingLatency => (ts.saturating_sub(value), value),
        _ => (ts, 0),
    }
}

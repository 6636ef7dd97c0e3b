//! Time windows of a session for viewers: per task state intervals (running,
//! scheduled, idle), per worker which task ran and when it was parked, wake arrows
//! and markers; or, zoomed out, the same aggregated into time buckets.

use super::task::Phase;
use looptrace_wire::{Event, EventKind, TaskId, TaskState, WakeOp, WakeSource};
use rustc_hash::FxHashMap;
use serde::{Serialize, Serializer};

/// A wake source as viewers read it: `task:<id>`, `timer`, `io`, `blocking`,
/// `external`.
fn label<S: Serializer>(by: &WakeSource, s: S) -> Result<S::Ok, S::Error> {
    match by {
        WakeSource::Task(id) => s.collect_str(&format_args!("task:{id}")),
        other => s.serialize_str(match other {
            WakeSource::Timer => "timer",
            WakeSource::Io => "io",
            WakeSource::Blocking => "blocking",
            _ => "external",
        }),
    }
}

fn label_opt<S: Serializer>(by: &Option<WakeSource>, s: S) -> Result<S::Ok, S::Error> {
    match by {
        Some(by) => label(by, s),
        None => s.serialize_none(),
    }
}

/// A stretch of time a task spent in one phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    pub task: TaskId,
    pub start_ns: u64,
    pub end_ns: u64,
    pub phase: Phase,
    /// Running: the thread polling it, and whether the poll returned Ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// Scheduled: who woke it.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "label_opt")]
    pub woken_by: Option<WakeSource>,
}

/// A wake: from its source, at `at_ns`, to the task's next poll.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WakeArrow {
    pub task: TaskId,
    pub at_ns: u64,
    #[serde(serialize_with = "label")]
    pub by: WakeSource,
    pub thread: u32,
    /// When the woken task was next polled.
    pub polled_ns: Option<u64>,
}

/// What a worker did: polled `task`, or was parked (`task` is None).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerSpan {
    pub thread: u32,
    pub start_ns: u64,
    pub end_ns: u64,
    pub task: Option<TaskId>,
}

/// A point event on a task: `spawn`, `terminate`, `timer_armed`, `timer_fired`,
/// `io_ready`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Marker {
    pub task: TaskId,
    pub at_ns: u64,
    pub kind: &'static str,
}

/// Everything in a time window, at full detail.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Window {
    pub start_ns: u64,
    pub end_ns: u64,
    /// Events up to this time are in; phases still open then were closed here.
    pub until_ns: u64,
    pub intervals: Vec<Interval>,
    pub wakes: Vec<WakeArrow>,
    pub workers: Vec<WorkerSpan>,
    pub markers: Vec<Marker>,
}

#[derive(Debug, Default, Clone)]
struct TaskTrack {
    phase: Option<Phase>,
    since: u64,
    thread: Option<u32>,
    woken_by: Option<WakeSource>,
    woken_in_poll: Option<WakeSource>,
    /// Wakes waiting for the task's next poll.
    arrows: Vec<WakeArrow>,
}

/// Where a [`Tracker`] puts what it finds: a [`Window`] keeps everything, an
/// [`Aggregator`] sums it into buckets as it comes, [`Capped`] does the first until
/// there is too much, then the second.
pub trait Out {
    fn interval(&mut self, i: Interval);
    fn wake(&mut self, a: WakeArrow);
    fn worker(&mut self, s: WorkerSpan);
    fn marker(&mut self, m: Marker);
}

impl Out for Window {
    fn interval(&mut self, i: Interval) {
        self.intervals.push(i);
    }
    fn wake(&mut self, a: WakeArrow) {
        self.wakes.push(a);
    }
    fn worker(&mut self, s: WorkerSpan) {
        self.workers.push(s);
    }
    fn marker(&mut self, m: Marker) {
        self.markers.push(m);
    }
}

fn overlaps((start_ns, end_ns): (u64, u64), a: u64, b: u64) -> bool {
    (b > a && b >= start_ns && a < end_ns) || (a == b && a >= start_ns && a < end_ns)
}

/// Follows events and produces what they mean over time, clipped to a window:
/// closed intervals, worker spans, completed wake arrows and markers. Used over a
/// stored range for window queries, and incrementally on live data.
#[derive(Debug, Clone)]
pub struct Tracker {
    start_ns: u64,
    end_ns: u64,
    tasks: FxHashMap<TaskId, TaskTrack>,
    workers: FxHashMap<u32, (u64, Option<TaskId>)>,
    last_ns: u64,
}

impl Tracker {
    /// Keeps what overlaps `[start_ns, end_ns)`.
    pub fn new(start_ns: u64, end_ns: u64) -> Tracker {
        Tracker {
            start_ns,
            end_ns,
            tasks: FxHashMap::default(),
            workers: FxHashMap::default(),
            last_ns: 0,
        }
    }

    /// Approximate bytes held (a checkpoint's cost).
    pub fn memory(&self) -> usize {
        let arrows: usize = self.tasks.values().map(|t| t.arrows.capacity()).sum();
        std::mem::size_of::<Tracker>()
            + self.tasks.capacity() * (std::mem::size_of::<(TaskId, TaskTrack)>() + 1)
            + arrows * std::mem::size_of::<WakeArrow>()
            + self.workers.capacity() * 32
    }

    /// A copy of this tracker's state, keeping from now on what overlaps a new window.
    pub fn for_window(&self, start_ns: u64, end_ns: u64) -> Tracker {
        let mut t = Tracker {
            start_ns,
            end_ns,
            ..self.clone()
        };
        // Wakes from before the window are not drawn in it.
        for task in t.tasks.values_mut() {
            task.arrows
                .retain(|a| a.at_ns >= start_ns && a.at_ns < end_ns);
        }
        t
    }

    /// Time of the latest event followed.
    pub fn last_ns(&self) -> u64 {
        self.last_ns
    }

    fn close(
        (start_ns, end_ns): (u64, u64),
        out: &mut impl Out,
        task: TaskId,
        t: &TaskTrack,
        ts: u64,
        ready: Option<bool>,
    ) {
        let Some(phase) = t.phase else { return };
        if phase == Phase::Done || !overlaps((start_ns, end_ns), t.since, ts) {
            return;
        }
        out.interval(Interval {
            task,
            start_ns: t.since.max(start_ns),
            end_ns: ts.min(end_ns),
            phase,
            thread: if phase == Phase::Running {
                t.thread
            } else {
                None
            },
            ready: if phase == Phase::Running { ready } else { None },
            woken_by: if phase == Phase::Scheduled {
                t.woken_by
            } else {
                None
            },
        });
    }

    fn range(&self) -> (u64, u64) {
        (self.start_ns, self.end_ns)
    }

    fn worker_span(
        &self,
        out: &mut impl Out,
        thread: u32,
        since: u64,
        until: u64,
        task: Option<TaskId>,
    ) {
        if overlaps(self.range(), since, until) {
            out.worker(WorkerSpan {
                thread,
                start_ns: since.max(self.start_ns),
                end_ns: until.min(self.end_ns),
                task,
            });
        }
    }

    /// Follows one event (in time order), adding what it closes to `out`.
    pub fn push(&mut self, e: &Event, out: &mut impl Out) {
        let ts = e.ts_ns;
        self.last_ns = self.last_ns.max(ts);
        let range = self.range();
        let in_window = ts >= self.start_ns && ts < self.end_ns;
        let marker = |out: &mut dyn FnMut(Marker), task: TaskId, kind| {
            if in_window {
                out(Marker {
                    task,
                    at_ns: ts,
                    kind,
                })
            }
        };
        match &e.kind {
            EventKind::TaskState { task, state } => {
                // A stream starting over: where the task stands, from now.
                let t = self.tasks.entry(*task).or_default();
                t.phase = Some(match state {
                    TaskState::Running => Phase::Running,
                    TaskState::Scheduled => Phase::Scheduled,
                    TaskState::Idle => Phase::Idle,
                });
                t.since = ts;
                t.thread = Some(e.thread);
            }
            EventKind::Spawn { task, .. } => {
                let t = self.tasks.entry(*task).or_default();
                t.phase = Some(Phase::Scheduled);
                t.since = ts;
                marker(&mut |m| out.marker(m), *task, "spawn");
            }
            EventKind::PollStart { task } | EventKind::BlockingStart { task } => {
                let t = self.tasks.entry(*task).or_default();
                Self::close(range, out, *task, t, ts, None);
                for mut a in t.arrows.drain(..) {
                    a.polled_ns = Some(ts);
                    out.wake(a);
                }
                t.phase = Some(Phase::Running);
                t.since = ts;
                t.thread = Some(e.thread);
                t.woken_by = None;
                if let Some((since, None)) = self.workers.get(&e.thread).copied() {
                    // A poll on a worker still marked parked: the park ended.
                    self.worker_span(out, e.thread, since, ts, None);
                }
                self.workers.insert(e.thread, (ts, Some(*task)));
            }
            EventKind::PollEnd { task, ready, .. } => {
                self.poll_end(out, *task, *ready, e.thread, ts)
            }
            EventKind::BlockingEnd { task } => self.poll_end(out, *task, true, e.thread, ts),
            EventKind::Waker {
                task,
                op: WakeOp::Wake | WakeOp::WakeByRef,
                by,
            } => {
                let t = self.tasks.entry(*task).or_default();
                if in_window {
                    t.arrows.push(WakeArrow {
                        task: *task,
                        at_ns: ts,
                        by: *by,
                        thread: e.thread,
                        polled_ns: None,
                    });
                    if *by == WakeSource::Io {
                        // tokio reports I/O readiness only as the wake it causes.
                        out.marker(Marker {
                            task: *task,
                            at_ns: ts,
                            kind: "io_ready",
                        });
                    }
                }
                match t.phase {
                    Some(Phase::Running) => {
                        t.woken_in_poll.get_or_insert(*by);
                    }
                    Some(Phase::Idle) | None => {
                        Self::close(range, out, *task, t, ts, None);
                        t.phase = Some(Phase::Scheduled);
                        t.since = ts;
                        t.woken_by = Some(*by);
                    }
                    Some(Phase::Scheduled) | Some(Phase::Done) => {}
                }
            }
            EventKind::Terminate { task, .. } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    // While running, its last poll closes it.
                    if t.phase != Some(Phase::Running) {
                        Self::close(range, out, *task, t, ts, None);
                        // Wakes that will never lead to a poll.
                        for a in t.arrows.drain(..) {
                            out.wake(a);
                        }
                        self.tasks.remove(task);
                    }
                }
                marker(&mut |m| out.marker(m), *task, "terminate");
            }
            EventKind::TimerArmed { task, .. } => {
                marker(&mut |m| out.marker(m), *task, "timer_armed")
            }
            EventKind::TimerFired { task } => marker(&mut |m| out.marker(m), *task, "timer_fired"),
            EventKind::Park => {
                self.workers.insert(e.thread, (ts, None));
            }
            EventKind::Unpark => {
                if let Some((since, None)) = self.workers.get(&e.thread).copied() {
                    self.worker_span(out, e.thread, since, ts, None);
                    self.workers.remove(&e.thread);
                }
            }
            _ => {}
        }
    }

    fn poll_end(&mut self, out: &mut impl Out, task: TaskId, ready: bool, thread: u32, ts: u64) {
        let range = self.range();
        let t = self.tasks.entry(task).or_default();
        if t.phase == Some(Phase::Running) {
            Self::close(range, out, task, t, ts, Some(ready));
        }
        t.since = ts;
        if ready {
            // Finished: wakes of it that never led to a poll end here.
            for a in t.arrows.drain(..) {
                out.wake(a);
            }
            self.tasks.remove(&task);
        } else {
            t.phase = Some(match t.woken_in_poll.take() {
                Some(by) => {
                    t.woken_by = Some(by);
                    Phase::Scheduled
                }
                None => Phase::Idle,
            });
        }
        if let Some((since, Some(_))) = self.workers.get(&thread).copied() {
            self.worker_span(out, thread, since, ts, Some(task));
            self.workers.remove(&thread);
        }
    }

    /// Closes everything still open at `until` (the end of a window).
    pub fn finish(mut self, until: u64, out: &mut impl Out) {
        let range = self.range();
        let mut ids: Vec<_> = self.tasks.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(mut t) = self.tasks.remove(&id) {
                Self::close(range, out, id, &t, until, None);
                for a in t.arrows.drain(..) {
                    out.wake(a);
                }
            }
        }
        let mut open: Vec<_> = self.workers.drain().collect();
        open.sort_unstable_by_key(|(th, _)| *th);
        for (thread, (since, task)) in open {
            self.worker_span(out, thread, since, until, task);
        }
    }
}

/// Replays `events` (in time order) and keeps what overlaps `[start_ns, end_ns)`.
/// Phases open at the end are closed at `end_ns` (or at the last event, if the
/// data ends earlier).
pub fn window(events: &[Event], start_ns: u64, end_ns: u64) -> Window {
    window_from(Tracker::new(start_ns, end_ns), events, start_ns, end_ns)
}

/// Like [`window`], continuing from a tracker that followed the events before
/// `events` (a checkpoint).
pub fn window_from(tracker: Tracker, events: &[Event], start_ns: u64, end_ns: u64) -> Window {
    let mut w = Window {
        start_ns,
        end_ns,
        ..Window::default()
    };
    w.until_ns = follow(tracker, events, start_ns, end_ns, &mut w, |_, _| {});
    w.wakes.sort_by_key(|a| a.at_ns);
    w
}

/// Runs `tracker` over `events` up to `end_ns` and closes what is open; returns
/// the time phases were closed at. `each(k, tracker)` is called before the k-th
/// event (checkpoints are taken there).
pub fn follow(
    tracker: Tracker,
    events: &[Event],
    start_ns: u64,
    end_ns: u64,
    out: &mut impl Out,
    each: impl FnMut(usize, &Tracker),
) -> u64 {
    let mut f = Follow::new(tracker, start_ns, end_ns);
    f.feed(events, out, each);
    f.finish(out)
}

/// [`follow`], fed a run of events at a time (a store's blocks, each in time order).
pub struct Follow {
    tracker: Tracker,
    start_ns: u64,
    end_ns: u64,
    /// Events followed so far.
    k: usize,
    /// An event at or past `end_ns` was seen: the rest is not needed.
    past_end: bool,
}

impl Follow {
    pub fn new(tracker: Tracker, start_ns: u64, end_ns: u64) -> Follow {
        Follow {
            tracker,
            start_ns,
            end_ns,
            k: 0,
            past_end: false,
        }
    }

    /// Follows `events`; false once the window's end is passed (feed no more).
    pub fn feed(
        &mut self,
        events: &[Event],
        out: &mut impl Out,
        mut each: impl FnMut(usize, &Tracker),
    ) -> bool {
        for e in events {
            if e.ts_ns >= self.end_ns {
                self.past_end = true;
                return false;
            }
            each(self.k, &self.tracker);
            self.tracker.push(e, out);
            self.k += 1;
        }
        true
    }

    /// Closes what is open; returns the time phases were closed at.
    pub fn finish(self, out: &mut impl Out) -> u64 {
        let until = if self.past_end {
            self.end_ns
        } else {
            self.end_ns.min(self.tracker.last_ns.max(self.start_ns))
        };
        self.tracker.finish(until, out);
        until
    }
}

/// Keeps nothing: for following events only to reach a tracker's state.
pub struct Discard;

impl Out for Discard {
    fn interval(&mut self, _: Interval) {}
    fn wake(&mut self, _: WakeArrow) {}
    fn worker(&mut self, _: WorkerSpan) {}
    fn marker(&mut self, _: Marker) {}
}

/// Keeps the intervals of one task and nothing else.
pub struct OneTask(pub TaskId, pub Vec<Interval>);

impl Out for OneTask {
    fn interval(&mut self, i: Interval) {
        if i.task == self.0 {
            self.1.push(i);
        }
    }
    fn wake(&mut self, _: WakeArrow) {}
    fn worker(&mut self, _: WorkerSpan) {}
    fn marker(&mut self, _: Marker) {}
}

/// A window at full detail while it has at most `max` intervals, then summed into
/// buckets as the rest comes (so a huge window never holds every interval).
pub enum Capped {
    Full(Window, usize, usize),
    Aggregated(Aggregator),
}

impl Capped {
    /// Full detail up to `max_intervals`, else `buckets` buckets over `[start_ns, end_ns)`.
    pub fn new(start_ns: u64, end_ns: u64, max_intervals: usize, buckets: usize) -> Capped {
        Capped::Full(
            Window {
                start_ns,
                end_ns,
                ..Window::default()
            },
            max_intervals,
            buckets,
        )
    }

    fn spill(&mut self) {
        if let Capped::Full(w, max, buckets) = self {
            if w.intervals.len() > *max {
                let mut a = Aggregator::new(w.start_ns, w.end_ns, *buckets);
                a.absorb(std::mem::take(w));
                *self = Capped::Aggregated(a);
            }
        }
    }
}

impl Out for Capped {
    fn interval(&mut self, i: Interval) {
        match self {
            Capped::Full(w, ..) => {
                w.intervals.push(i);
                self.spill();
            }
            Capped::Aggregated(a) => a.interval(i),
        }
    }
    fn wake(&mut self, x: WakeArrow) {
        match self {
            Capped::Full(w, ..) => w.wakes.push(x),
            Capped::Aggregated(a) => a.wake(x),
        }
    }
    fn worker(&mut self, s: WorkerSpan) {
        match self {
            Capped::Full(w, ..) => w.workers.push(s),
            Capped::Aggregated(a) => a.worker(s),
        }
    }
    fn marker(&mut self, m: Marker) {
        match self {
            Capped::Full(w, ..) => w.markers.push(m),
            Capped::Aggregated(a) => a.marker(m),
        }
    }
}

/// A window summarised into equal time buckets, for zoomed-out views.
#[derive(Debug, Clone, Serialize)]
pub struct Aggregate {
    pub start_ns: u64,
    pub end_ns: u64,
    pub until_ns: u64,
    pub bucket_ns: u64,
    pub tasks: Vec<TaskBuckets>,
    pub workers: Vec<WorkerBuckets>,
    /// Wakes per bucket, by any source.
    pub wakes: Vec<u32>,
}

/// Per bucket: the share of it a task spent running and scheduled, its polls and
/// the wakes it received.
#[derive(Debug, Clone, Serialize)]
pub struct TaskBuckets {
    pub task: TaskId,
    pub running: Vec<f32>,
    pub scheduled: Vec<f32>,
    pub polls: Vec<u32>,
    pub wakes: Vec<u32>,
}

/// Per bucket: the share of it a worker spent polling, and parked.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerBuckets {
    pub thread: u32,
    pub busy: Vec<f32>,
    pub parked: Vec<f32>,
}

fn spread(buckets: &mut [f32], start: u64, end: u64, w0: u64, bucket: u64) {
    if end <= start || buckets.is_empty() {
        return;
    }
    let n = buckets.len();
    let first = ((start - w0) / bucket) as usize;
    let last = (((end - w0).saturating_sub(1)) / bucket) as usize;
    for (i, b) in buckets
        .iter_mut()
        .enumerate()
        .take(last.min(n - 1) + 1)
        .skip(first.min(n - 1))
    {
        let b0 = w0 + i as u64 * bucket;
        let overlap = end.min(b0 + bucket).saturating_sub(start.max(b0));
        *b += overlap as f32 / bucket as f32;
    }
}

/// Sums intervals, worker spans and wakes into equal time buckets as they come.
pub struct Aggregator {
    start_ns: u64,
    end_ns: u64,
    buckets: usize,
    bucket_ns: u64,
    tasks: FxHashMap<TaskId, TaskBuckets>,
    workers: FxHashMap<u32, WorkerBuckets>,
    wakes: Vec<u32>,
}

impl Aggregator {
    /// `buckets` buckets (1 to 10 000) over `[start_ns, end_ns)`.
    pub fn new(start_ns: u64, end_ns: u64, buckets: usize) -> Aggregator {
        let buckets = buckets.clamp(1, 10_000);
        let span = end_ns.saturating_sub(start_ns).max(1);
        Aggregator {
            start_ns,
            end_ns,
            buckets,
            bucket_ns: span.div_ceil(buckets as u64).max(1),
            tasks: FxHashMap::default(),
            workers: FxHashMap::default(),
            wakes: vec![0; buckets],
        }
    }

    fn bucket(&self, at: u64) -> usize {
        ((at.saturating_sub(self.start_ns) / self.bucket_ns) as usize).min(self.buckets - 1)
    }

    fn task(&mut self, task: TaskId) -> &mut TaskBuckets {
        let n = self.buckets;
        self.tasks.entry(task).or_insert_with(|| TaskBuckets {
            task,
            running: vec![0.0; n],
            scheduled: vec![0.0; n],
            polls: vec![0; n],
            wakes: vec![0; n],
        })
    }

    /// Adds everything in `w`.
    pub fn absorb(&mut self, w: Window) {
        for i in w.intervals {
            self.interval(i);
        }
        for s in w.workers {
            self.worker(s);
        }
        for a in w.wakes {
            self.wake(a);
        }
    }

    /// The buckets, their shares rounded, for `until_ns`.
    pub fn finish(self, until_ns: u64) -> Aggregate {
        // Three decimals are plenty for a share of a bucket, and keep replies small; a
        // share too small for them still shows (a 10 µs poll in a 30 ms bucket is a poll).
        let round = |v: &mut Vec<f32>| {
            v.iter_mut().for_each(|x| {
                *x = if *x > 0.0 {
                    ((*x * 1000.0).round() / 1000.0).max(0.001)
                } else {
                    0.0
                }
            })
        };
        let mut tasks: Vec<_> = self.tasks.into_values().collect();
        for t in &mut tasks {
            round(&mut t.running);
            round(&mut t.scheduled);
        }
        let mut workers: Vec<_> = self.workers.into_values().collect();
        for w in &mut workers {
            round(&mut w.busy);
            round(&mut w.parked);
        }
        tasks.sort_unstable_by_key(|t| t.task);
        workers.sort_unstable_by_key(|w| w.thread);
        Aggregate {
            start_ns: self.start_ns,
            end_ns: self.end_ns,
            until_ns,
            bucket_ns: self.bucket_ns,
            tasks,
            workers,
            wakes: self.wakes,
        }
    }
}

impl Out for Aggregator {
    fn interval(&mut self, i: Interval) {
        let (w0, bucket_ns) = (self.start_ns, self.bucket_ns);
        let b = self.bucket(i.start_ns);
        let t = self.task(i.task);
        match i.phase {
            Phase::Running => {
                spread(&mut t.running, i.start_ns, i.end_ns, w0, bucket_ns);
                t.polls[b] += 1;
            }
            Phase::Scheduled => spread(&mut t.scheduled, i.start_ns, i.end_ns, w0, bucket_ns),
            _ => {}
        }
    }
    fn wake(&mut self, a: WakeArrow) {
        let b = self.bucket(a.at_ns);
        self.wakes[b] += 1;
        if let Some(t) = self.tasks.get_mut(&a.task) {
            t.wakes[b] += 1;
        }
    }
    fn worker(&mut self, s: WorkerSpan) {
        let (w0, bucket_ns, n) = (self.start_ns, self.bucket_ns, self.buckets);
        let wb = self
            .workers
            .entry(s.thread)
            .or_insert_with(|| WorkerBuckets {
                thread: s.thread,
                busy: vec![0.0; n],
                parked: vec![0.0; n],
            });
        let target = if s.task.is_some() {
            &mut wb.busy
        } else {
            &mut wb.parked
        };
        spread(target, s.start_ns, s.end_ns, w0, bucket_ns);
    }
    fn marker(&mut self, _: Marker) {}
}

/// Summarises `w` into `buckets` equal buckets.
pub fn aggregate(w: &Window, buckets: usize) -> Aggregate {
    let mut a = Aggregator::new(w.start_ns, w.end_ns, buckets);
    a.absorb(w.clone());
    a.finish(w.until_ns)
}

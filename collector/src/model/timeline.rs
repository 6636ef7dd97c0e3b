//! Time windows of a session for viewers: per task state intervals (running,
//! scheduled, idle), per worker which task ran and when it was parked, wake arrows
//! and markers; or, zoomed out, the same aggregated into time buckets.

pub use looptrace_api::{
    Aggregate, Interval, Marker, MarkerKind, QueueSample, TaskBuckets, WakeArrow, Window,
    WorkerBuckets, WorkerSpan,
};

/// Queue samples a full window keeps at most (the rest are left out: a viewer
/// zoomed out that far sees buckets).
const MAX_QUEUE_SAMPLES: usize = 20_000;
use looptrace_wire::{Event, EventKind, Lifecycle, Stretch, TaskId, TaskState, WakeOp, WakeSource};
use rustc_hash::FxHashMap;

#[derive(Debug, Default, Clone)]
struct TaskTrack {
    life: Lifecycle,
    /// The app's span entered in the current poll (shared, not copied, by checkpoints).
    context: Option<std::sync::Arc<str>>,
    /// The current poll's worker is not its last poll's: that one's thread.
    moved_from: Option<u32>,
    /// Wakes waiting for the task's next poll.
    arrows: Vec<WakeArrow>,
}

/// Where a [`Tracker`] puts what it finds: a [`Window`] keeps everything, an
/// [`Aggregator`] sums it into buckets as it comes, [`Capped`] does the first until
/// there is too much, then the second.
pub trait Out {
    /// False for an output that keeps nothing: the tracker then only follows,
    /// making nothing for it.
    const KEEPS: bool = true;
    fn interval(&mut self, i: Interval);
    fn wake(&mut self, a: WakeArrow);
    fn worker(&mut self, s: WorkerSpan);
    fn marker(&mut self, m: Marker);
    /// A sample of the scheduler's queues (kept by full windows only).
    fn queues(&mut self, _: QueueSample) {}
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
    fn queues(&mut self, q: QueueSample) {
        if self.queues.len() >= MAX_QUEUE_SAMPLES {
            // Thinned evenly rather than cut: the window's end keeps its samples.
            let mut i = 0;
            self.queues.retain(|_| {
                i += 1;
                i % 2 == 0
            });
        }
        self.queues.push(q);
    }
}

fn overlaps((start_ns, end_ns): (u64, u64), a: u64, b: u64) -> bool {
    (b > a && b >= start_ns && a < end_ns) || (a == b && a >= start_ns && a < end_ns)
}

/// What a thread is doing, as a tracker follows it: since when it polls a task
/// (`Some`) or is parked (`None`).
type ThreadAt = (u64, Option<TaskId>);

/// Per-thread state. An app numbers its threads from 0, never reusing a number,
/// so most live in a vector indexed by number (a poll's start and end each look
/// theirs up). A number past the first thousand (a long run's blocking threads
/// come and go; or a broken or hostile app) goes to a map instead: a tracker,
/// cloned into every checkpoint, holds at most 32 KB of the vector.
#[derive(Debug, Clone, Default)]
struct PerThread {
    dense: Vec<Option<ThreadAt>>,
    sparse: FxHashMap<u32, ThreadAt>,
}

const DENSE_THREADS: u32 = 1024;

impl PerThread {
    #[inline]
    fn get(&self, thread: u32) -> Option<ThreadAt> {
        match self.dense.get(thread as usize) {
            Some(at) => *at,
            None if thread < DENSE_THREADS => None,
            None => self.sparse.get(&thread).copied(),
        }
    }

    #[inline]
    fn set(&mut self, thread: u32, at: Option<ThreadAt>) {
        if thread < DENSE_THREADS {
            let i = thread as usize;
            if i >= self.dense.len() {
                if at.is_none() {
                    return;
                }
                self.dense.reserve_exact(i + 1 - self.dense.len());
                self.dense.resize(i + 1, None);
            }
            self.dense[i] = at;
        } else {
            match at {
                Some(at) => self.sparse.insert(thread, at),
                None => self.sparse.remove(&thread),
            };
        }
    }

    /// Every thread's state, by thread number; leaves none.
    fn drain(&mut self) -> Vec<(u32, ThreadAt)> {
        let mut all: Vec<(u32, ThreadAt)> = std::mem::take(&mut self.dense)
            .into_iter()
            .enumerate()
            .filter_map(|(i, at)| Some((i as u32, at?)))
            .chain(self.sparse.drain())
            .collect();
        all.sort_unstable_by_key(|(thread, _)| *thread);
        all
    }

    fn memory(&self) -> usize {
        self.dense.capacity() * std::mem::size_of::<Option<ThreadAt>>()
            + self.sparse.capacity() * 32
    }
}

/// Follows events and produces what they mean over time, clipped to a window:
/// closed intervals, worker spans, completed wake arrows and markers. Used over a
/// stored range for window queries, and incrementally on live data.
#[derive(Debug, Clone)]
pub struct Tracker {
    start_ns: u64,
    end_ns: u64,
    tasks: FxHashMap<TaskId, TaskTrack>,
    workers: PerThread,
    last_ns: u64,
    /// The latest queue sample followed, and whether the window was given the
    /// one in force at its start (samples come only when something changed:
    /// a window starting between two must still say how deep the queues were).
    last_queues: Option<QueueSample>,
    queues_at_start: bool,
}

impl Tracker {
    /// Keeps what overlaps `[start_ns, end_ns)`.
    pub fn new(start_ns: u64, end_ns: u64) -> Tracker {
        Tracker {
            start_ns,
            end_ns,
            tasks: FxHashMap::default(),
            workers: PerThread::default(),
            last_ns: 0,
            last_queues: None,
            queues_at_start: false,
        }
    }

    /// Gives the window the queue sample in force at its start, once.
    fn queues_in_force(&mut self, out: &mut impl Out) {
        if self.queues_at_start {
            return;
        }
        self.queues_at_start = true;
        if let Some(q) = self
            .last_queues
            .as_ref()
            .filter(|q| q.at_ns < self.start_ns)
        {
            out.queues(QueueSample {
                at_ns: self.start_ns,
                ..q.clone()
            });
        }
    }

    /// Approximate bytes held (a checkpoint's cost).
    pub fn memory(&self) -> usize {
        let arrows: usize = self.tasks.values().map(|t| t.arrows.capacity()).sum();
        std::mem::size_of::<Tracker>()
            + self.tasks.capacity() * (std::mem::size_of::<(TaskId, TaskTrack)>() + 1)
            + arrows * std::mem::size_of::<WakeArrow>()
            + self.workers.memory()
    }

    /// A copy of this tracker's state, keeping from now on what overlaps a new window.
    pub fn for_window(&self, start_ns: u64, end_ns: u64) -> Tracker {
        let mut t = Tracker {
            start_ns,
            end_ns,
            queues_at_start: false,
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

    /// Adds what `span` (a stretch `task` closed) shows of the window to `out`.
    fn close<O: Out>(
        (start_ns, end_ns): (u64, u64),
        out: &mut O,
        task: TaskId,
        span: Option<Stretch>,
        context: Option<&std::sync::Arc<str>>,
        moved_from: Option<u32>,
    ) {
        let Some(span) = span.filter(|_| O::KEEPS) else {
            return;
        };
        if !overlaps((start_ns, end_ns), span.start_ns, span.end_ns) {
            return;
        }
        out.interval(Interval {
            task,
            start_ns: span.start_ns.max(start_ns),
            end_ns: span.end_ns.min(end_ns),
            state: span.state,
            thread: span.thread,
            ready: span.ready,
            woken_by: span.woken_by,
            context: context
                .filter(|_| span.state == TaskState::Running)
                .cloned(),
            moved_from: moved_from.filter(|_| span.state == TaskState::Running),
        });
    }

    fn range(&self) -> (u64, u64) {
        (self.start_ns, self.end_ns)
    }

    fn worker_span<O: Out>(
        &self,
        out: &mut O,
        thread: u32,
        since: u64,
        until: u64,
        task: Option<TaskId>,
    ) {
        if O::KEEPS && overlaps(self.range(), since, until) {
            out.worker(WorkerSpan {
                thread,
                start_ns: since.max(self.start_ns),
                end_ns: until.min(self.end_ns),
                task,
            });
        }
    }

    /// Follows one event (in time order), adding what it closes to `out`.
    pub fn push<O: Out>(&mut self, e: &Event, out: &mut O) {
        let ts = e.ts_ns;
        self.last_ns = self.last_ns.max(ts);
        let range = self.range();
        let in_window = ts >= self.start_ns && ts < self.end_ns;
        let marker = |out: &mut dyn FnMut(Marker), task: TaskId, kind| {
            if O::KEEPS && in_window {
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
                if *state == TaskState::Done {
                    self.tasks.remove(task);
                } else {
                    self.tasks.entry(*task).or_default().life.apply(e);
                }
            }
            EventKind::Spawn(spawn) => {
                let task = spawn.task;
                let t = self.tasks.entry(task).or_default();
                Self::close(range, out, task, t.life.apply(e), t.context.as_ref(), None);
                marker(&mut |m| out.marker(m), task, MarkerKind::Spawn);
            }
            EventKind::PollStart { task } | EventKind::BlockingStart { task } => {
                let t = self.tasks.entry(*task).or_default();
                // Polled on another worker than last time: stolen, or moved.
                let moved_from = t
                    .life
                    .moved_from(e.thread)
                    .filter(|_| matches!(e.kind, EventKind::PollStart { .. }));
                Self::close(range, out, *task, t.life.apply(e), None, None);
                t.context = None;
                t.moved_from = moved_from;
                for mut a in t.arrows.drain(..) {
                    a.polled_ns = Some(ts);
                    out.wake(a);
                }
                if let Some((since, None)) = self.workers.get(e.thread) {
                    // A poll on a worker still marked parked: the park ended.
                    self.worker_span(out, e.thread, since, ts, None);
                }
                self.workers.set(e.thread, Some((ts, Some(*task))));
            }
            EventKind::PollEnd { task, .. } | EventKind::BlockingEnd { task } => {
                let t = self.tasks.entry(*task).or_default();
                if let Some((_, label)) = e.kind.context() {
                    // The poll's context, sent with its end.
                    t.context = Some(label.clone());
                }
                Self::close(
                    range,
                    out,
                    *task,
                    t.life.apply(e),
                    t.context.as_ref(),
                    t.moved_from,
                );
                if t.life.state == Some(TaskState::Done) {
                    // Finished: wakes of it that never led to a poll end here.
                    for a in t.arrows.drain(..) {
                        out.wake(a);
                    }
                    self.tasks.remove(task);
                }
                if let Some((since, Some(_))) = self.workers.get(e.thread) {
                    self.worker_span(out, e.thread, since, ts, Some(*task));
                    self.workers.set(e.thread, None);
                }
            }
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
                    if O::KEEPS && *by == WakeSource::Io {
                        // tokio reports I/O readiness only as the wake it causes.
                        out.marker(Marker {
                            task: *task,
                            at_ns: ts,
                            kind: MarkerKind::IoReady,
                        });
                    }
                }
                Self::close(range, out, *task, t.life.apply(e), t.context.as_ref(), None);
            }
            EventKind::Terminate { task, .. } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    Self::close(range, out, *task, t.life.apply(e), t.context.as_ref(), None);
                    // While running, its last poll's end closes it.
                    if t.life.state == Some(TaskState::Done) {
                        // Wakes that will never lead to a poll.
                        for a in t.arrows.drain(..) {
                            out.wake(a);
                        }
                        self.tasks.remove(task);
                    }
                }
                marker(&mut |m| out.marker(m), *task, MarkerKind::Terminate);
            }
            EventKind::TimerArmed { task, .. } => {
                marker(&mut |m| out.marker(m), *task, MarkerKind::TimerArmed)
            }
            EventKind::TimerFired { task } => {
                marker(&mut |m| out.marker(m), *task, MarkerKind::TimerFired)
            }
            EventKind::Context { task, label } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    if t.life.state == Some(TaskState::Running) {
                        t.context = Some(label.clone());
                    }
                }
            }
            EventKind::Queues(queues) => {
                let q = QueueSample {
                    at_ns: ts,
                    local: queues.local.clone(),
                    steals: queues.steals.clone(),
                    injection: queues.injection,
                };
                if in_window {
                    self.queues_in_force(out);
                    if O::KEEPS {
                        out.queues(q.clone());
                    }
                }
                self.last_queues = Some(q);
            }
            EventKind::Park => {
                self.workers.set(e.thread, Some((ts, None)));
            }
            EventKind::Unpark => {
                if let Some((since, None)) = self.workers.get(e.thread) {
                    self.worker_span(out, e.thread, since, ts, None);
                    self.workers.set(e.thread, None);
                }
            }
            _ => {}
        }
    }

    /// Tasks polled at the window's end whose poll's context is not known yet.
    fn running_without_context(&self) -> Vec<TaskId> {
        let mut ids: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.life.state == Some(TaskState::Running) && t.context.is_none())
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Closes everything still open at `until` (the end of a window).
    pub fn finish(mut self, until: u64, out: &mut impl Out) {
        // No sample in the window: the one before it held all through.
        self.queues_in_force(out);
        let range = self.range();
        let mut ids: Vec<_> = self.tasks.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(mut t) = self.tasks.remove(&id) {
                Self::close(
                    range,
                    out,
                    id,
                    t.life.open_stretch(until),
                    t.context.as_ref(),
                    t.moved_from,
                );
                for a in t.arrows.drain(..) {
                    out.wake(a);
                }
            }
        }
        for (thread, (since, task)) in self.workers.drain() {
            self.worker_span(out, thread, since, until, task);
        }
    }
}

/// Replays `events` (in time order) and keeps what overlaps `[start_ns, end_ns)`.
/// States open at the end are closed at `end_ns` (or at the last event, if the
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
/// the time open states were closed at. `each(k, tracker)` is called before the k-th
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
    /// An event at or past `end_ns` was seen: the rest is needed only to learn
    /// what the polls running at the end were doing.
    past_end: bool,
    /// Those polls whose context is still unknown (a poll's end may carry it,
    /// after the window), and how many events more to look through for it.
    unknown: Vec<TaskId>,
    ahead: usize,
}

/// Events looked through past a window's end for the context of the polls
/// running there: a poll's end carries it, or, for a poll running when its app
/// shipped, a `context` event up to a round of shipping after its start (a
/// round of 50 ms, the default, at 5M events a second; apps ship every 100 ms
/// at the most).
const LOOK_AHEAD_EVENTS: usize = 1 << 18;

impl Follow {
    pub fn new(tracker: Tracker, start_ns: u64, end_ns: u64) -> Follow {
        Follow {
            tracker,
            start_ns,
            end_ns,
            k: 0,
            past_end: false,
            unknown: Vec::new(),
            ahead: 0,
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
            if self.past_end || e.ts_ns >= self.end_ns {
                if !self.past_end {
                    self.past_end = true;
                    self.unknown = self.tracker.running_without_context();
                    self.ahead = LOOK_AHEAD_EVENTS;
                }
                if !self.look_ahead(e) {
                    return false;
                }
                continue;
            }
            each(self.k, &self.tracker);
            self.tracker.push(e, out);
            self.k += 1;
        }
        true
    }

    /// Past the window's end: what `e` says of a running poll's context.
    /// False once nothing is left to learn.
    fn look_ahead(&mut self, e: &Event) -> bool {
        if self.unknown.is_empty() || self.ahead == 0 {
            return false;
        }
        self.ahead -= 1;
        let Some(task) = e.kind.task() else {
            return true;
        };
        let Some(i) = self.unknown.iter().position(|&t| t == task) else {
            return true;
        };
        let settled = match e.kind.context() {
            Some((_, label)) => {
                if let Some(t) = self.tracker.tasks.get_mut(&task) {
                    t.context = Some(label.clone());
                }
                true
            }
            // The poll is over (or was): it said nothing.
            None => matches!(
                e.kind,
                EventKind::PollEnd { .. }
                    | EventKind::PollStart { .. }
                    | EventKind::BlockingEnd { .. }
                    | EventKind::Terminate { .. }
            ),
        };
        if settled {
            self.unknown.swap_remove(i);
        }
        !self.unknown.is_empty()
    }

    /// Closes what is open; returns the time open states were closed at.
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
    const KEEPS: bool = false;
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
    fn queues(&mut self, q: QueueSample) {
        match self {
            Capped::Full(w, ..) => w.queues(q),
            Capped::Aggregated(a) => a.queues(q),
        }
    }
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
    queues: QueueAccumulator,
}

/// Queue samples into buckets: per bucket the deepest and the last depth seen
/// (to carry into buckets without a sample), and the steals.
#[derive(Default)]
struct QueueAccumulator {
    /// Per worker: (deepest, last) per bucket, `None` where no sample fell.
    local: Vec<Vec<Option<(u32, u32)>>>,
    steals: Vec<Vec<u32>>,
    injection: Vec<Option<(u32, u32)>>,
    /// Per worker: steals so far at the last sample.
    last_steals: Vec<Option<u64>>,
    seen: bool,
    /// Workers followed at most (what an aggregate holds stays bounded,
    /// whatever worker count a queue event claims).
    max_workers: usize,
}

impl QueueAccumulator {
    fn add(&mut self, b: usize, n: usize, q: &QueueSample) {
        self.seen = true;
        let note = |slot: &mut Option<(u32, u32)>, depth: u32| {
            *slot = Some(slot.map_or((depth, depth), |(deepest, _)| (deepest.max(depth), depth)));
        };
        if self.injection.is_empty() {
            self.injection = vec![None; n];
        }
        note(&mut self.injection[b], q.injection);
        for (i, &depth) in q.local.iter().enumerate().take(self.max_workers) {
            if self.local.len() <= i {
                self.local.resize_with(i + 1, || vec![None; n]);
                self.steals.resize_with(i + 1, || vec![0; n]);
                self.last_steals.resize(i + 1, None);
            }
            note(&mut self.local[i][b], depth);
            let so_far = q.steals.get(i).copied().unwrap_or(0);
            if let Some(before) = self.last_steals[i] {
                let new = so_far.saturating_sub(before).min(u32::MAX as u64) as u32;
                self.steals[i][b] = self.steals[i][b].saturating_add(new);
            }
            self.last_steals[i] = Some(so_far);
        }
    }

    fn finish(self) -> Option<looptrace_api::QueueBuckets> {
        if !self.seen {
            return None;
        }
        // A depth holds until the next sample says otherwise.
        let carry = |v: Vec<Option<(u32, u32)>>| -> Vec<u32> {
            let mut last = 0;
            v.into_iter()
                .map(|slot| match slot {
                    Some((deepest, at_end)) => {
                        last = at_end;
                        deepest
                    }
                    None => last,
                })
                .collect()
        };
        Some(looptrace_api::QueueBuckets {
            local: self.local.into_iter().map(carry).collect(),
            steals: self.steals,
            injection: carry(self.injection),
        })
    }
}

/// Cells (workers times buckets) an aggregate's queues hold at most: some
/// 16 MB; 1000 workers at 1000 buckets, 100 at the most buckets asked.
const MAX_QUEUE_CELLS: usize = 1_000_000;

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
            queues: QueueAccumulator {
                max_workers: (MAX_QUEUE_CELLS / buckets).max(1),
                ..QueueAccumulator::default()
            },
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
        for q in w.queues {
            self.queues(q);
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
            queues: self.queues.finish(),
        }
    }
}

impl Out for Aggregator {
    fn interval(&mut self, i: Interval) {
        let (w0, bucket_ns) = (self.start_ns, self.bucket_ns);
        let b = self.bucket(i.start_ns);
        let t = self.task(i.task);
        match i.state {
            TaskState::Running => {
                spread(&mut t.running, i.start_ns, i.end_ns, w0, bucket_ns);
                t.polls[b] += 1;
            }
            TaskState::Scheduled => spread(&mut t.scheduled, i.start_ns, i.end_ns, w0, bucket_ns),
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
    fn queues(&mut self, q: QueueSample) {
        if q.at_ns < self.start_ns || q.at_ns >= self.end_ns {
            return;
        }
        let (b, n) = (self.bucket(q.at_ns), self.buckets);
        self.queues.add(b, n, &q);
    }
}

/// Summarises `w` into `buckets` equal buckets.
pub fn aggregate(w: &Window, buckets: usize) -> Aggregate {
    let mut a = Aggregator::new(w.start_ns, w.end_ns, buckets);
    a.absorb(w.clone());
    a.finish(w.until_ns)
}

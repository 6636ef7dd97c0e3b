//! The derived model of one session, computed incrementally as events arrive:
//! per task its state (running, scheduled, idle, done), statistics and histograms, per
//! worker its busy and parked time, and warnings.

pub mod groups;
pub mod memory;
pub mod outbox;
pub mod task;
pub mod timeline;
pub mod warning;
pub mod worker;

use looptrace_wire::{Event, EventKind, Header, TaskId, TaskState, ThreadRole, WakeOp, WakeSource};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use task::Task;
use warning::*;
use worker::Worker;

pub use looptrace_api::{Mark, WakeCounts, Warning, WarningKind};
pub use warning::Thresholds;

/// Finished tasks kept with their statistics; older ones are forgotten.
const KEEP_FINISHED: usize = 10_000;
/// Live-task samples kept for the leak detector.
const LIVE_SAMPLES: usize = 64;
/// How often (in trace time) the periodic checks run, at most.
const TICK_NS: u64 = 1_000_000_000;

/// Polls followed at once for the never-yields check: one per thread of the
/// traced process, so far more than a runtime has.
const RUNNING_MAX: usize = 4096;

/// Distinct warnings kept per session (each counts its repeats).
pub const MAX_WARNINGS: usize = 10_000;

/// Longest context kept (a span's label), in bytes.
const MAX_CONTEXT: usize = 200;

use looptrace_wire::units::clip_bytes as clip;

/// Labelled moments kept per session (the newest; older ones are dropped first).
pub const MARKS_MAX: usize = 10_000;

/// Idle tasks remembered while no waker event has been seen (a session without
/// waker events never has them checked, so the list stops growing here).
const EARLY_IDLE_MAX: usize = 4096;

/// One session's derived state.
pub struct Model {
    pub header: Header,
    pub tasks: FxHashMap<TaskId, Task>,
    /// Worker threads by looptrace thread id.
    pub workers: BTreeMap<u32, Worker>,
    /// Tasks in the injection queue (the scheduler's shared one) at the latest sample.
    pub injection_queue: u32,
    pub threads: FxHashMap<u32, (ThreadRole, String)>,
    pub warnings: Vec<Warning>,
    /// Labelled moments, oldest first (at most [`MARKS_MAX`]).
    pub marks: VecDeque<Mark>,
    pub thresholds: Thresholds,
    /// The detectors, built from the thresholds.
    lints: Lints,
    /// Latest event time seen.
    pub now_ns: u64,
    pub events: u64,
    /// Events the traced app reported lost.
    pub dropped: u64,
    /// Data too coarse to follow wakers (tokio-console): no lost-waker checks.
    pub coarse: bool,
    saw_wakers: bool,
    /// Tasks that went idle before any waker event was seen, and when: checked for
    /// a lost waker once the session shows it carries waker events at all.
    idle_unchecked: Vec<(TaskId, u64)>,
    /// Findings are grouped by cause: their kind, their task's name (its spawn
    /// location unless named) and what it was doing. A server's fifty
    /// connections blocked by `GET /blocking` are one warning ×50.
    warning_index: FxHashMap<WarningGroup, usize>,
    /// Per task and kind: the warning its findings went to, and how many.
    by_task: FxHashMap<(WarningKind, TaskId), (usize, u32)>,
    finished: VecDeque<TaskId>,
    live: u64,
    live_history: VecDeque<(u64, u64)>,
    last_tick: u64,
    /// Per task: start of its self-wake window and self-wakes in it.
    storms: FxHashMap<TaskId, (u64, u64)>,
    /// Polls already reported as never yielding.
    flagged_polls: BTreeSet<(TaskId, u64)>,
    /// Tasks idle with no live waker, and since when: reported as lost wakers
    /// only if they stay so past the grace period.
    lost_pending: FxHashMap<TaskId, u64>,
    /// Tasks thought lost (pending, or reported: `None`) that were then woken,
    /// and when: a poll that follows proves they were not (the finding is
    /// withdrawn); an end that follows was the owner's abort (it stands).
    lost_woken: FxHashMap<TaskId, (Option<u64>, u64)>,
    /// The latest blocking polls (start, end): a task kept waiting by one of
    /// them has the same cause, and is not a finding of its own.
    recent_blocking: VecDeque<(u64, u64, u32)>,
    /// The poll running on each thread now: task, start, and whether it was
    /// reported as never yielding; `None` while the thread polls nothing (its
    /// entry stays, so that each poll updates one rather than making and
    /// removing it). A thread polls one task at a time, so this is as small as
    /// the runtime (at most [`RUNNING_MAX`] threads are followed).
    running: FxHashMap<u32, Option<(TaskId, u64, bool)>>,
    /// Events since the periodic check last ran.
    since_tick: u64,
    /// Trace time between periodic checks (from the thresholds).
    tick_every: u64,
    /// Tasks changed since the last [`Model::take_changes`], followed only while
    /// [`Model::track_changes`] is set (someone watches live).
    changed: FxHashSet<TaskId>,
    /// The task last put in `changed` (a wake, the poll's start and its end are
    /// most often one task's, one after another: one insert, not three).
    last_changed: Option<TaskId>,
    pub track_changes: bool,
    /// Tasks holding durations not yet in their histograms (each listed once).
    hist_pending: Vec<TaskId>,
    new_warnings: Vec<usize>,
    new_marks: usize,
    /// Names and locations, shared between tasks.
    pub(crate) names: memory::Interner,
    /// Bytes the tasks' histograms hold, as last counted (see
    /// [`Model::flush_histograms`]).
    pub(crate) histogram_bytes: usize,
    pub(crate) folds: memory::Folds,
    pub(crate) given_up: looptrace_api::GivenUp,
    pub(crate) warning_bytes: usize,
    /// Findings past [`MAX_WARNINGS`], counted only.
    pub warnings_over: u64,
    /// Totals per task group, for the metrics exporters.
    pub groups: groups::Groups,
    /// Whether the app samples its scheduler's queues (queue events seen).
    pub queues_sampled: bool,
    /// Findings and long polls for an exporter to send as spans, when one runs.
    pub outbox: Option<outbox::Outbox>,
}

/// What a finding is about: its task's name, and what the task was doing
/// when that is known (`name (in GET /blocking)`).
fn subject_of(group: &WarningGroup) -> String {
    match (&group.1, &group.2) {
        (Some(name), Some(c)) => format!("{name} (in {c})"),
        (name, _) => name.as_deref().unwrap_or_default().to_string(),
    }
}

/// What findings are grouped by: kind, task name, context.
pub(crate) type WarningGroup = (
    WarningKind,
    Option<std::sync::Arc<str>>,
    Option<std::sync::Arc<str>>,
);

/// What changed since the last [`Model::take_changes`].
#[derive(Debug, Default)]
pub struct Changes {
    pub tasks: Vec<TaskId>,
    pub warnings: Vec<usize>,
    /// Marks added: the last this many of [`Model::marks`].
    pub marks: usize,
}

impl Model {
    pub fn new(header: Header, thresholds: Thresholds) -> Model {
        Model {
            header,
            tasks: FxHashMap::default(),
            workers: BTreeMap::new(),
            injection_queue: 0,
            threads: FxHashMap::default(),
            warnings: Vec::new(),
            marks: VecDeque::new(),
            thresholds,
            lints: Lints::new(&thresholds),
            now_ns: 0,
            events: 0,
            dropped: 0,
            coarse: false,
            saw_wakers: false,
            idle_unchecked: Vec::new(),
            warning_index: FxHashMap::default(),
            by_task: FxHashMap::default(),
            finished: VecDeque::new(),
            live: 0,
            live_history: VecDeque::new(),
            last_tick: 0,
            storms: FxHashMap::default(),
            flagged_polls: BTreeSet::new(),
            lost_pending: FxHashMap::default(),
            lost_woken: FxHashMap::default(),
            recent_blocking: VecDeque::new(),
            running: FxHashMap::default(),
            since_tick: 0,
            // Often enough for the leak detector to sample its window several times.
            tick_every: TICK_NS.min(thresholds.task_leak_window_ns / 5).max(1),
            changed: FxHashSet::default(),
            last_changed: None,
            track_changes: true,
            hist_pending: Vec::new(),
            names: Default::default(),
            histogram_bytes: 0,
            folds: Default::default(),
            given_up: Default::default(),
            warning_bytes: 0,
            warnings_over: 0,
            groups: Default::default(),
            queues_sampled: false,
            outbox: None,
            new_warnings: Vec::new(),
            new_marks: 0,
        }
    }

    /// The model of a whole recording (`events` of the session `header` opens):
    /// its tasks and the warnings that hold once everything is known.
    pub fn from_events(header: Header, thresholds: Thresholds, events: &[Event]) -> Model {
        let mut model = Model::new(header, thresholds);
        model.track_changes = false;
        for e in events {
            model.apply(e);
        }
        model.flush_histograms();
        model.settle(model.now_ns);
        model
    }

    /// Live (not finished) tasks.
    pub fn live_tasks(&self) -> u64 {
        self.live
    }

    /// Raises (or counts again) what lint `w` found, `found` its value.
    /// Whether the finding was recorded (not only counted past the cap).
    /// Asked several times an event, mostly with nothing found: that answer
    /// is inlined.
    #[inline]
    fn warn<W: Warn<T>, T: ?Sized>(
        &mut self,
        w: W,
        found: Option<u64>,
        task: Option<TaskId>,
        ts: u64,
    ) -> bool {
        match found {
            Some(value) => self.raise(w, value, task, ts),
            None => false,
        }
    }

    /// [`Model::warn`] of a finding.
    fn raise<W: Warn<T>, T: ?Sized>(
        &mut self,
        w: W,
        value: u64,
        task: Option<TaskId>,
        ts: u64,
    ) -> bool {
        let kind = W::KIND;
        let t = task.and_then(|t| self.tasks.get(&t));
        let group: WarningGroup = (
            kind,
            t.map(|t| t.name.clone()),
            t.and_then(|t| t.poll_context().cloned()),
        );
        // A poll that never yields is sent when it ends, as the blocking poll
        // it then is (this finding is taken back then).
        if kind != WarningKind::NeverYields {
            let thread = t.and_then(|t| t.life.thread);
            if let Some(findings) = self.outbox.as_mut().and_then(|ob| ob.admit(&group, ts)) {
                let (start_ns, duration_ns) = outbox::extent(kind, ts, value);
                let message = w.format(&subject_of(&group), value);
                if let Some(ob) = self.outbox.as_mut() {
                    ob.push(outbox::OutSpan {
                        kind: Some(kind),
                        task,
                        task_name: group.1.clone(),
                        context: group.2.clone(),
                        start_ns,
                        duration_ns,
                        value,
                        message,
                        thread,
                        findings,
                    });
                }
            }
        }
        let existing = self.warning_index.get(&group).copied();
        if existing.is_none() && self.warnings.len() >= MAX_WARNINGS {
            // Bounded like the rest: further findings are only counted.
            self.warnings_over += 1;
            return false;
        }
        let id = existing.unwrap_or(self.warnings.len());
        if let Some(task) = task {
            let e = self.by_task.entry((kind, task)).or_insert((id, 0));
            if e.1 == 0 {
                // The task's first finding of this kind: task lists count it.
                if let Some(t) = self.tasks.get_mut(&task) {
                    t.warnings += 1;
                }
            }
            *e = (id, e.1 + 1);
        }
        if let Some(i) = existing {
            let w = &mut self.warnings[i];
            if w.withdrawn {
                // Its group found again after all it held was taken back: it
                // holds again, from this finding (its slot is reused).
                w.withdrawn = false;
                w.at_ns = ts;
                w.value = value;
                w.task = task;
            }
            w.count += 1;
            w.last_ns = w.last_ns.max(ts);
            w.value = w.value.max(value);
            self.changed_warning(i);
            return true;
        }
        let (task_name, context) = (
            group.1.as_deref().map(str::to_string),
            group.2.as_deref().map(str::to_string),
        );
        let message = w.format(&subject_of(&group), value);
        self.warning_bytes += std::mem::size_of::<Warning>()
            + message.len()
            + task_name.as_ref().map_or(0, String::len)
            + context.as_ref().map_or(0, String::len)
            + 64;
        self.warnings.push(Warning {
            id,
            kind,
            task,
            task_name,
            at_ns: ts,
            last_ns: ts,
            count: 1,
            value,
            message,
            context,
            why: kind.why().to_string(),
            fix: kind.fix().to_string(),
            withdrawn: false,
        });
        self.warning_index.insert(group, id);
        self.changed_warning(id);
        true
    }

    /// Notes a warning viewers must hear of again (only while someone watches:
    /// a snapshot tells a newcomer).
    fn changed_warning(&mut self, i: usize) {
        if self.track_changes {
            self.new_warnings.push(i);
        }
    }

    /// Takes back one finding of `kind` about `task` that did not hold; its
    /// warning is withdrawn when none is left.
    fn withdraw(&mut self, kind: WarningKind, task: TaskId) {
        let Some(&(i, n)) = self.by_task.get(&(kind, task)) else {
            return;
        };
        if n <= 1 {
            self.by_task.remove(&(kind, task));
            if let Some(t) = self.tasks.get_mut(&task) {
                t.warnings = t.warnings.saturating_sub(1);
            }
        } else {
            self.by_task.insert((kind, task), (i, n - 1));
        }
        let w = &mut self.warnings[i];
        w.count = w.count.saturating_sub(1);
        if w.count == 0 {
            // Kept in its group's place: a later finding of the group revives it.
            w.withdrawn = true;
        }
        // Sent again: viewers replace it by its id.
        self.changed_warning(i);
    }

    /// Warnings that hold (not withdrawn).
    pub fn findings(&self) -> impl Iterator<Item = &Warning> {
        self.warnings.iter().filter(|w| !w.withdrawn)
    }

    /// Raises the lost wakers whose grace period ended by `now`: tasks still
    /// idle, with no waker alive, not woken, polled or ended since.
    pub fn settle(&mut self, now: u64) {
        let grace = self.thresholds.lost_waker_grace_ns;
        let due: Vec<(TaskId, u64)> = self
            .lost_pending
            .iter()
            .filter(|(_, since)| now.saturating_sub(**since) >= grace)
            .map(|(t, s)| (*t, *s))
            .collect();
        // In the order they went idle, whatever the map's.
        let mut due = due;
        due.sort_unstable_by_key(|&(t, s)| (s, t));
        let lost = self.lints.lost_waker;
        for (task, since) in due {
            self.lost_pending.remove(&task);
            let found = self.tasks.get(&task).and_then(|t| lost.check(t));
            self.warn(lost, found, Some(task), since);
        }
    }

    /// When `task` went idle with no waker, if it did and is still pending;
    /// forgets it. (Every poll and wake asks: most often nothing is pending.)
    fn lost_pending_take(&mut self, task: TaskId) -> Option<u64> {
        if self.lost_pending.is_empty() {
            return None;
        }
        self.lost_pending.remove(&task)
    }

    /// Whether `task` has a finding of `kind` standing.
    fn reported(&self, kind: WarningKind, task: TaskId) -> bool {
        !self.by_task.is_empty() && self.by_task.contains_key(&(kind, task))
    }

    /// A task that may have lost its waker: reported if it stays so.
    fn maybe_lost(&mut self, found: Option<u64>, task: TaskId, ts: u64) {
        if found.is_some() {
            self.lost_pending.entry(task).or_insert(ts);
        }
    }

    /// `task` started a poll on `thread` at `ts` (followed for the never-yields
    /// check, on at most [`RUNNING_MAX`] threads at once).
    fn set_running(&mut self, thread: u32, task: TaskId, ts: u64) {
        let poll = Some((task, ts, false));
        if let Some(p) = self.running.get_mut(&thread) {
            *p = poll;
            return;
        }
        if self.running.len() >= RUNNING_MAX {
            // Threads that poll nothing now make room (threads come and go in a
            // long-lived app).
            self.running.retain(|_, p| p.is_some());
        }
        if self.running.len() < RUNNING_MAX {
            self.running.insert(thread, poll);
        }
    }

    fn task(&mut self, id: TaskId, ts: u64) -> &mut Task {
        self.task_entry(id, ts).0
    }

    /// [`Model::task`], and the groups beside it.
    fn task_and_groups(&mut self, id: TaskId, ts: u64) -> (&mut Task, &mut groups::Groups) {
        let (t, groups, _) = self.task_entry(id, ts);
        (t, groups)
    }

    /// The task `id`, made (or unfolded) if unknown, which `made` says; and the
    /// groups beside it. One lookup of the task: this is on every event's path.
    #[inline]
    fn task_entry(&mut self, id: TaskId, ts: u64) -> (&mut Task, &mut groups::Groups, bool) {
        use std::collections::hash_map::Entry;
        let Model {
            tasks,
            folds,
            groups,
            live,
            histogram_bytes,
            ..
        } = self;
        match tasks.entry(id) {
            Entry::Occupied(o) => (o.into_mut(), groups, false),
            Entry::Vacant(v) => {
                let t = Self::new_task(folds, groups, live, histogram_bytes, id, ts);
                (v.insert(t), groups, true)
            }
        }
    }

    /// A task not in the map: unfolded, or made. Out of line: every event but a
    /// task's first finds its task.
    #[cold]
    #[inline(never)]
    fn new_task(
        folds: &mut memory::Folds,
        groups: &mut groups::Groups,
        live: &mut u64,
        histogram_bytes: &mut usize,
        id: TaskId,
        ts: u64,
    ) -> Task {
        match folds.unfold(groups, id, ts) {
            // Folded: still live, counted already.
            Some(t) => t,
            None => {
                *live += 1;
                let t = Task::new(id, ts);
                *histogram_bytes += t.hist.as_ref().map_or(0, |h| h.counted);
                t
            }
        }
    }

    fn finish(&mut self, id: TaskId) {
        self.live = self.live.saturating_sub(1);
        self.finished.push_back(id);
        self.storms.remove(&id);
        while self.finished.len() > KEEP_FINISHED {
            if let Some(old) = self.finished.pop_front() {
                self.remove_task(old);
            }
        }
    }

    /// Applies one event.
    pub fn apply(&mut self, e: &Event) {
        let ts = e.ts_ns;
        self.now_ns = self.now_ns.max(ts);
        self.events += 1;
        match &e.kind {
            EventKind::Thread { role, name } => {
                self.threads.insert(e.thread, (*role, name.clone()));
                if let ThreadRole::Worker(i) = role {
                    self.workers
                        .entry(e.thread)
                        .or_insert_with(|| Worker::new(e.thread, *i, name.clone(), ts));
                }
            }
            EventKind::Spawn(spawn) => {
                let looptrace_wire::Spawn {
                    task,
                    kind,
                    name,
                    location,
                    parent,
                    size_bytes,
                } = &**spawn;
                let lints = self.lints;
                let shown = self
                    .names
                    .get(&crate::session::display_name(name.as_deref(), location));
                let given = name.as_deref().map(|n| self.names.get(n));
                let location = self.names.get(location);
                let group = self.groups.of(&shown);
                self.groups.spawned(group);
                let t = self.task(*task, ts);
                t.group = group;
                t.name = shown;
                t.given_name = given;
                t.location = location;
                t.kind = *kind;
                t.parent = *parent;
                t.size_bytes = *size_bytes;
                t.spawned_ns = ts;
                if let Some(span) = t.life.apply(e) {
                    t.add(&span);
                }
                let found = lints.large_future.check(t);
                self.note_change(*task);
                self.warn(lints.large_future, found, Some(*task), ts);
            }
            EventKind::PollStart { task } | EventKind::BlockingStart { task } => {
                let lints = self.lints;
                // Polled again: it was woken (by a waker the count missed), or is
                // being cancelled (an abort schedules it with no wake at all).
                // The poll's end, or the task's, tells which.
                if let Some(since) = self.lost_pending_take(*task) {
                    self.lost_woken.entry(*task).or_insert((Some(since), ts));
                } else if self.reported(WarningKind::LostWaker, *task) {
                    self.lost_woken.entry(*task).or_insert((None, ts));
                }
                let (t, groups) = self.task_and_groups(*task, ts);
                let moved = t.life.moved_from(e.thread).is_some();
                t.polls += 1;
                t.context_in_poll = false;
                let mut found = None;
                let mut list = false;
                if let Some(span) = t.life.apply(e) {
                    t.add(&span);
                    if span.state == TaskState::Scheduled {
                        let waited = span.duration_ns();
                        list = t.record_scheduled(waited);
                        groups.waited(t.group, waited);
                        // Spawned, not woken: no wake to be late after.
                        if span.woken_by.is_some() {
                            found = lints.scheduling_latency.check(&(&*t, waited));
                        }
                        // Kept waiting by a blocking poll: that poll's finding.
                        // (One on the worker that now polls it, over half the wait.)
                        let (from, to) = (span.start_ns, span.end_ns);
                        if found.is_some()
                            && self.recent_blocking.iter().any(|&(s, end, th)| {
                                th == e.thread
                                    && end.min(to).saturating_sub(s.max(from)).saturating_mul(2)
                                        >= to.saturating_sub(from)
                            })
                        {
                            found = None;
                        }
                    }
                }
                if let Some(w) = self.workers.get_mut(&e.thread) {
                    w.polls += 1;
                    w.migrations += moved as u64;
                    w.running = Some(*task);
                    w.since_ns = ts;
                }
                self.set_running(e.thread, *task, ts);
                if list {
                    self.hist_pending.push(*task);
                }
                self.note_change(*task);
                self.warn(lints.scheduling_latency, found, Some(*task), ts);
            }
            EventKind::PollEnd {
                task,
                clones,
                drops,
                context,
                ..
            } => {
                if let Some(label) = context {
                    // Known (or unfolded) first, as the poll's end would.
                    let t = self.task(*task, ts);
                    if t.context.as_deref() == Some(&**label) {
                        // Its last poll's (most often): nothing to look up.
                        t.context_in_poll = true;
                        self.note_change(*task);
                    } else {
                        self.context(*task, label);
                    }
                }
                // Its own waker's clones and drops during the poll, folded.
                self.poll_end(e, *task, *clones as i64 - *drops as i64)
            }
            EventKind::BlockingEnd { task } => self.poll_end(e, *task, 0),
            EventKind::Waker { task, op, by } => {
                let lints = self.lints;
                if !self.saw_wakers {
                    self.saw_wakers = true;
                    self.check_early_idle();
                }
                let Some(t) = self.tasks.get_mut(task) else {
                    return;
                };
                t.live_wakers += match op {
                    WakeOp::Clone => 1,
                    WakeOp::Drop | WakeOp::Wake => -1,
                    WakeOp::WakeByRef => 0,
                };
                let (mut storm, mut lost) = (None, None);
                let woken = matches!(op, WakeOp::Wake | WakeOp::WakeByRef);
                if woken {
                    t.wakes.count(*task, *by);
                    self.groups.woken(t.group, *task, *by);
                    if let Some(span) = t.life.apply(e) {
                        t.add(&span);
                    }
                    if *by == WakeSource::Task(*task) {
                        let window = self.thresholds.self_wake_storm_window_ns;
                        let s = self.storms.entry(*task).or_insert((ts, 0));
                        if ts.saturating_sub(s.0) > window {
                            *s = (ts, 0);
                        }
                        s.1 += 1;
                        storm = lints.self_wake_storm.check(&s.1);
                    }
                } else if *op == WakeOp::Drop && !self.coarse {
                    lost = lints.lost_waker.check(t);
                }
                self.note_change(*task);
                self.warn(lints.self_wake_storm, storm, Some(*task), ts);
                if woken {
                    // Woken after all: by a waker the count missed, or by its
                    // owner aborting it. What follows tells which.
                    if let Some(since) = self.lost_pending_take(*task) {
                        self.lost_woken.insert(*task, (Some(since), ts));
                    } else if self.reported(WarningKind::LostWaker, *task) {
                        self.lost_woken.insert(*task, (None, ts));
                    }
                }
                self.maybe_lost(lost, *task, ts);
            }
            EventKind::Terminate { task, outcome } => {
                // Ended (cancelled at shutdown, or by its owner) within the grace
                // period: nothing was lost. Idle with no waker for longer, it was.
                let grace = self.thresholds.lost_waker_grace_ns;
                if let Some(since) = self.lost_pending.remove(task) {
                    if ts.saturating_sub(since) >= grace {
                        let lost = self.lints.lost_waker;
                        let found = self.tasks.get(task).and_then(|t| lost.check(t));
                        self.warn(lost, found, Some(*task), since);
                    }
                }
                // Woken only to be aborted: it was lost until then. Woken to run
                // to its end: it was not.
                match self.lost_woken.remove(task) {
                    Some((since, woken)) if *outcome == looptrace_wire::Outcome::Cancelled => {
                        if let Some(since) = since.filter(|s| woken.saturating_sub(*s) >= grace) {
                            self.warn(self.lints.lost_waker, Some(0), Some(*task), since);
                        }
                    }
                    // Ran to its end: a reported finding did not hold.
                    Some((None, _)) => self.withdraw(WarningKind::LostWaker, *task),
                    _ => {}
                }
                let (t, groups) = self.task_and_groups(*task, ts);
                if t.outcome.is_none() {
                    groups.ended(t.group, *outcome);
                }
                t.outcome = Some(*outcome);
                t.ended_ns = Some(ts);
                // Inside its last poll, the poll's end closes it.
                let was = t.life.state;
                if let Some(span) = t.life.apply(e) {
                    t.add(&span);
                }
                if was != Some(TaskState::Done) && t.life.state == Some(TaskState::Done) {
                    self.finish(*task);
                }
                self.note_change(*task);
            }
            EventKind::Park => {
                if let Some(w) = self.workers.get_mut(&e.thread) {
                    w.parks += !w.parked as u64;
                    w.parked = true;
                    w.since_ns = ts;
                }
            }
            EventKind::Unpark => {
                if let Some(w) = self.workers.get_mut(&e.thread) {
                    if w.parked {
                        w.parked_ns += ts.saturating_sub(w.since_ns);
                    }
                    w.parked = false;
                    w.since_ns = ts;
                }
            }
            EventKind::TimerArmed { .. } | EventKind::TimerFired { .. } => {}
            EventKind::TaskState { task, state } => {
                // Where it stands, not a transition: nothing is counted.
                let t = self.task(*task, ts);
                let was = t.life.state;
                t.life.apply(e);
                if was != Some(TaskState::Done) && *state == TaskState::Done {
                    self.finish(*task);
                } else if *state == TaskState::Running {
                    self.set_running(e.thread, *task, ts);
                }
                self.note_change(*task);
            }
            EventKind::Context { task, label } => self.context(*task, label),
            EventKind::Queues(queues) => {
                let looptrace_wire::Queues {
                    local,
                    steals,
                    injection,
                } = &**queues;
                self.injection_queue = *injection;
                self.queues_sampled = true;
                for w in self.workers.values_mut() {
                    let i = w.index as usize;
                    if let Some(&depth) = local.get(i) {
                        w.queue = depth;
                        w.max_queue = w.max_queue.max(depth);
                    }
                    if let Some(&n) = steals.get(i) {
                        w.steals = n;
                    }
                }
            }
            EventKind::Dropped { count } => self.dropped += count,
            EventKind::Mark { label } => {
                if self.marks.len() == MARKS_MAX {
                    self.marks.pop_front();
                }
                self.marks.push_back(Mark {
                    at_ns: ts,
                    thread: e.thread,
                    label: label.clone(),
                });
                self.new_marks = (self.new_marks + 1).min(MARKS_MAX);
            }
        }
        let every = self.tick_every;
        self.since_tick += 1;
        // The check looks at every running poll: never more often than the events
        // pay for (a frame may say minutes pass between any two events).
        if ts >= self.last_tick + every && self.since_tick * 16 >= self.running.len() as u64 {
            self.tick(ts);
        }
    }

    /// The lost-waker check for tasks that went idle before the first waker event:
    /// those still idle since then, with no waker alive, lost theirs.
    fn check_early_idle(&mut self) {
        for (task, at) in std::mem::take(&mut self.idle_unchecked) {
            let lost = self.lints.lost_waker;
            let found = self
                .tasks
                .get(&task)
                .filter(|t| t.since_ns() == at)
                .and_then(|t| lost.check(t));
            self.maybe_lost(found, task, at);
        }
    }

    /// A poll's end: `wakers` more of the task's wakers alive (its own, cloned
    /// and dropped during the poll), if the task was known before it.
    fn poll_end(&mut self, e: &Event, task: TaskId, wakers: i64) {
        let (ts, thread) = (e.ts_ns, e.thread);
        // Polled on and not ended in that poll (an end comes before the poll's
        // end, and takes the entry): it had a waker after all.
        if !self.lost_woken.is_empty() {
            if let Some((None, _)) = self.lost_woken.remove(&task) {
                self.withdraw(WarningKind::LostWaker, task);
            }
        }
        if let Some(poll) = self.running.get_mut(&thread) {
            if poll.is_some_and(|r| r.0 == task) {
                *poll = None;
            }
        }
        let lints = self.lints;
        let check_wakers = self.saw_wakers && !self.coarse;
        let (t, groups, made) = self.task_entry(task, ts);
        if !made {
            t.live_wakers += wakers;
        }
        let started = t.since_ns();
        let was = t.life.state;
        let closed = t.life.apply(e);
        let next = t.state();
        t.last_poll_ns = Some(ts);
        // A poll's end without its start (lost, or before the data begins)
        // measures nothing.
        let mut list = false;
        let poll = closed.map(|span| {
            t.add(&span);
            list = t.record_poll(span.duration_ns());
            groups.polled(t.group, span.duration_ns());
            t.longest_poll_ns = t.longest_poll_ns.max(span.duration_ns());
            span.duration_ns()
        });
        let blocking = poll.and_then(|poll| lints.blocking_poll.check(&(&*t, poll)));
        let never = poll.and_then(|poll| lints.never_yields.check(&(&*t, poll)));
        let lost = if check_wakers && next == TaskState::Idle {
            lints.lost_waker.check(t)
        } else {
            None
        };
        if !self.saw_wakers
            && !self.coarse
            && next == TaskState::Idle
            && self.idle_unchecked.len() < EARLY_IDLE_MAX
        {
            self.idle_unchecked.push((task, ts));
        }
        if list {
            self.hist_pending.push(task);
        }
        if let Some(w) = self.workers.get_mut(&thread) {
            w.busy_ns += ts.saturating_sub(w.since_ns);
            w.running = None;
            w.since_ns = ts;
        }
        if was != Some(TaskState::Done) && next == TaskState::Done {
            self.finish(task);
        }
        self.note_change(task);
        // One finding per poll: once it ended, a poll that never yielded is a
        // blocking poll of its whole length, and the never-yields finding
        // raised while it ran is taken back.
        if let (Some(ob), Some(poll)) = (self.outbox.as_mut(), poll) {
            if ob.poll_ns.is_some_and(|at_least| poll >= at_least) {
                let t = self.tasks.get(&task);
                ob.push(outbox::OutSpan {
                    kind: None,
                    task: Some(task),
                    task_name: t.map(|t| t.name.clone()),
                    context: t.and_then(|t| t.poll_context().cloned()),
                    start_ns: started,
                    duration_ns: poll,
                    value: poll,
                    message: format!(
                        "{} polled for {}",
                        t.map_or("a task", |t| &*t.name),
                        looptrace_wire::units::fmt_duration(poll)
                    ),
                    thread: Some(thread),
                    findings: 1,
                });
            }
        }
        let flagged = !self.flagged_polls.is_empty() && self.flagged_polls.remove(&(task, started));
        if blocking.is_some() {
            if self.recent_blocking.len() == 64 {
                self.recent_blocking.pop_front();
            }
            self.recent_blocking.push_back((started, ts, thread));
            if flagged {
                self.withdraw(WarningKind::NeverYields, task);
            }
            self.warn(lints.blocking_poll, blocking, Some(task), started);
        } else if !flagged {
            self.warn(lints.never_yields, never, Some(task), started);
        }
        self.maybe_lost(lost, task, ts);
    }

    /// Periodic checks: polls running too long, live tasks growing.
    pub fn tick(&mut self, now: u64) {
        self.last_tick = now;
        self.since_tick = 0;
        let lints = self.lints;
        let threshold = self.thresholds.never_yields_ns;
        let due: Vec<(TaskId, u64)> = self
            .running
            .values_mut()
            .filter_map(Option::as_mut)
            .filter(|r| !r.2 && now.saturating_sub(r.1) >= threshold)
            .map(|r| {
                r.2 = true;
                (r.0, r.1)
            })
            .collect();
        for (id, since) in due {
            if self.flagged_polls.contains(&(id, since)) {
                continue;
            }
            let found = self
                .tasks
                .get(&id)
                .and_then(|t| lints.never_yields.check(&(t, now.saturating_sub(since))));
            // Followed (to be taken back when the poll ends) only if recorded.
            if self.warn(lints.never_yields, found, Some(id), since) {
                self.flagged_polls.insert((id, since));
            }
        }
        self.live_history.push_back((now, self.live));
        while self.live_history.len() > LIVE_SAMPLES {
            self.live_history.pop_front();
        }
        let history: Vec<_> = self.live_history.iter().copied().collect();
        let found = lints.task_leak.check(&history);
        self.warn(lints.task_leak, found, None, now);
        self.settle(now);
    }

    /// Puts every task's pending durations into its histograms: after a batch
    /// of events, before anything reads them.
    pub fn flush_histograms(&mut self) {
        for id in std::mem::take(&mut self.hist_pending) {
            if let Some(t) = self.tasks.get_mut(&id) {
                self.histogram_bytes += t.flush_pending();
            }
        }
    }

    /// The poll of `task` running now entered the app's span `label`.
    fn context(&mut self, task: TaskId, label: &str) {
        if let Some(t) = self.tasks.get_mut(&task) {
            if t.context.as_deref() != Some(label) {
                t.context = Some(self.names.get(clip(label, MAX_CONTEXT)));
            }
            t.context_in_poll = true;
            self.note_change(task);
        }
    }

    fn note_change(&mut self, task: TaskId) {
        if self.track_changes && self.last_changed != Some(task) {
            self.changed.insert(task);
            self.last_changed = Some(task);
        }
    }

    /// Puts back changes taken but not sent (they go out with the next ones).
    pub fn requeue(&mut self, changes: Changes) {
        self.changed.extend(changes.tasks);
        self.new_warnings.extend(changes.warnings);
        self.new_marks = (self.new_marks + changes.marks).min(MARKS_MAX);
    }

    /// Tasks and warnings changed since the last call (tasks only while
    /// [`Model::track_changes`] is set).
    pub fn take_changes(&mut self) -> Changes {
        self.last_changed = None;
        let mut tasks: Vec<TaskId> = self.changed.drain().collect();
        tasks.sort_unstable();
        Changes {
            tasks,
            warnings: {
                let mut w = std::mem::take(&mut self.new_warnings);
                w.sort_unstable();
                w.dedup();
                w
            },
            marks: std::mem::take(&mut self.new_marks),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use looptrace_wire::{Flavor, Header};

    fn model() -> Model {
        let header = Header {
            process_name: "t".into(),
            pid: 1,
            flavor: Flavor::CurrentThread,
            workers: 1,
            clock_origin_unix_ns: 0,
        };
        Model::new(header, Thresholds::default())
    }

    #[test]
    fn running_polls_are_followed_on_a_bounded_number_of_threads() {
        let mut m = model();
        let on = |thread: u32, ts: u64, kind: EventKind| Event {
            ts_ns: ts,
            thread,
            kind,
        };
        let end = |task| EventKind::PollEnd {
            task,
            ready: false,
            clones: 0,
            drops: 0,
            context: None,
        };
        // Polls that start and end on one thread keep one entry, emptied between.
        for i in 0..10 {
            m.apply(&on(0, 10 * i, EventKind::PollStart { task: 1 }));
            assert_eq!(m.running[&0].map(|r| r.0), Some(1));
            m.apply(&on(0, 10 * i + 5, end(1)));
            assert_eq!(m.running[&0], None);
        }
        assert_eq!(m.running.len(), 1);
        // Restated running tasks on ever more threads (input a sender controls)
        // are followed on at most RUNNING_MAX of them.
        for thread in 1..(RUNNING_MAX as u32 + 1000) {
            m.apply(&on(
                thread,
                1_000,
                EventKind::TaskState {
                    task: 2,
                    state: TaskState::Running,
                },
            ));
        }
        assert_eq!(m.running.len(), RUNNING_MAX);
        // Threads that stopped polling make room for new ones.
        for thread in 1..2000u32 {
            m.apply(&on(thread, 2_000, end(2)));
        }
        let fresh = RUNNING_MAX as u32 + 5000;
        m.apply(&on(fresh, 3_000, EventKind::PollStart { task: 3 }));
        assert_eq!(
            m.running.get(&fresh).copied().flatten().map(|r| r.0),
            Some(3)
        );
        assert!(m.running.len() <= RUNNING_MAX);
    }
}

//! Turns raw captured facts, merged across threads in time order, into wire events.
//!
//! This is where "who woke it" is decided, off the hot path:
//! * a waker used while a task is polled on that thread: `task:<that task>`;
//! * inside a `spawn_blocking` closure, or on a blocking-pool thread: `blocking`;
//! * on a worker, outside any poll: the driver or tokio's deferred-wake queue.
//!   `timer` if the task waits on a `Sleep` that is due; else `task:<itself>` if the
//!   task cloned its own waker in its last poll on this worker and the worker has
//!   not parked since (tokio defers `yield_now` wakes to the end of the scheduler
//!   tick, and never parks with deferred wakes pending); else `io`;
//! * anywhere else (threads outside the runtime, `block_on`'s own future): `external`.

use crate::buffer::{Raw, SpanInfo, WakeCtx};
use looptrace_wire::{Event, EventKind, EventsWriter, TaskKind, ThreadRole, WakeOp, WakeSource};
use rustc_hash::FxHashMap;

/// A wake this close before a `Sleep`'s deadline still counts as its firing: tokio's
/// timer wheel works in whole milliseconds.
const TIMER_SLACK_NS: u64 = 2_000_000;
/// Deferred self-wakes remembered per worker (a tick defers few).
const MAX_DEFERRED: usize = 256;

#[derive(Default)]
struct ThreadState {
    name: String,
    runtime: bool,
    worker: Option<u32>,
    announced: Option<ThreadRole>,
    in_park: bool,
    /// The task being polled here.
    polling: Option<u64>,
    /// That poll armed or polled a `Sleep` (its task's `polling` list was
    /// started afresh for it).
    timers: bool,
    /// That poll's context, and whether it was sent: it goes out with the
    /// poll's end, or on its own if the poll is still running when a round of
    /// shipping ends (then kept, to restate to a collector met later).
    context: Option<(crate::context::SpanLabel, bool)>,
    /// Tasks that cloned their own waker in their last poll here, since the last park.
    deferred: Deferred,
    /// The last task span created here: tokio creates it just before the
    /// spawn hook runs on the same thread. Spans of runtimes looptrace does not
    /// capture are simply replaced.
    span: Option<SpanInfo>,
}

impl ThreadState {
    fn role(&self) -> ThreadRole {
        match (self.worker, self.runtime) {
            (Some(i), _) => ThreadRole::Worker(i),
            (None, true) => ThreadRole::Blocking,
            (None, false) => ThreadRole::External,
        }
    }
}

/// Tasks that cloned their own waker in their last poll on a worker (a task
/// may be there more than once), the [`MAX_DEFERRED`] latest: looked up by
/// task, not scanned, as a busy worker that does not park keeps it full. A wake
/// takes a task's oldest place; the oldest places make room for new ones.
#[derive(Default)]
struct Deferred {
    /// Places, oldest first, taken ones included until they reach the front.
    order: std::collections::VecDeque<u64>,
    /// Places not taken, per task.
    count: FxHashMap<u64, u32>,
    /// Places taken but still in `order`, per task: always a task's oldest.
    taken: FxHashMap<u64, u32>,
    /// Places not taken.
    live: usize,
}

impl Deferred {
    fn push(&mut self, task: u64) {
        while self.live >= MAX_DEFERRED {
            self.evict_oldest();
        }
        self.order.push_back(task);
        *self.count.entry(task).or_default() += 1;
        self.live += 1;
        if self.order.len() > 4 * MAX_DEFERRED {
            self.compact();
        }
    }

    fn contains(&self, task: u64) -> bool {
        self.count.contains_key(&task)
    }

    /// Takes `task`'s oldest place.
    fn take(&mut self, task: u64) {
        if dec(&mut self.count, task) {
            *self.taken.entry(task).or_default() += 1;
            self.live -= 1;
        }
    }

    /// Drops the oldest place not taken (and the taken ones before it).
    fn evict_oldest(&mut self) {
        while let Some(task) = self.order.pop_front() {
            if !dec(&mut self.taken, task) {
                dec(&mut self.count, task);
                self.live -= 1;
                return;
            }
        }
    }

    /// Drops the taken places: a task's are its oldest, so the first ones met.
    fn compact(&mut self) {
        let taken = &mut self.taken;
        self.order.retain(|&task| !dec(taken, task));
    }

    fn clear(&mut self) {
        self.order.clear();
        self.count.clear();
        self.taken.clear();
        self.live = 0;
    }
}

/// Takes one from `task`'s count in `map`; false if it had none.
fn dec(map: &mut FxHashMap<u64, u32>, task: u64) -> bool {
    match map.entry(task) {
        std::collections::hash_map::Entry::Occupied(mut e) => {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
            true
        }
        std::collections::hash_map::Entry::Vacant(_) => false,
    }
}

#[derive(Default)]
struct LiveTask {
    /// `Sleep`s the task polled (and is waiting on) in its last poll.
    armed: Vec<u64>,
    /// `Sleep`s polled during the current poll.
    polling: Vec<u64>,
    /// How it was spawned, to tell a collector met later (a reconnect).
    spawn: Option<Box<Spawned>>,
    /// Where it stands.
    life: looptrace_wire::Lifecycle,
}

impl LiveTask {
    /// Where the task stands after `kind`, one of its events (the resolver's
    /// `follow`, and a poll's start and end, which look the task up anyway).
    fn follow(&mut self, ts_ns: u64, thread: u32, kind: &EventKind) {
        self.life.apply_at(ts_ns, thread, kind);
    }
}

/// A live task's spawn, kept to restate it when a stream starts over.
struct Spawned {
    ts_ns: u64,
    thread: u32,
    kind: TaskKind,
    name: Option<String>,
    /// Shared: a thousand connections spawned at one place keep one copy.
    location: std::sync::Arc<str>,
    parent: Option<u64>,
    size_bytes: Option<u64>,
}

struct SleepState {
    task: u64,
    deadline_ns: u64,
    fired: bool,
}

/// Per-thread state, indexed by looptrace's dense thread number.
#[derive(Default)]
struct Threads(Vec<ThreadState>);

impl Threads {
    fn get(&mut self, thread: u32) -> &mut ThreadState {
        let i = thread as usize;
        if i >= self.0.len() {
            self.0.resize_with(i + 1, ThreadState::default);
        }
        &mut self.0[i]
    }

    fn peek(&self, thread: u32) -> Option<&ThreadState> {
        self.0.get(thread as usize)
    }
}

#[derive(Default)]
pub(crate) struct Resolver {
    /// Also keep every event emitted, in [`Resolver::kept`] (for an in-process
    /// consumer that would otherwise decode them again).
    pub keep: bool,
    pub kept: Vec<Event>,
    /// Keep each live task's spawn and where it stands, for [`Resolver::resume`]:
    /// only a destination that may start over needs them, and following costs
    /// a lookup of the task per event.
    pub follow: bool,
    threads: Threads,
    tasks: FxHashMap<u64, LiveTask>,
    /// Spawn places as sent (`file:line:col`), by the address of their
    /// `Location` (a program has as many as it has `spawn` calls).
    spawn_sites: FxHashMap<usize, String>,
    /// `spawn_blocking` tasks not yet started, announced when they start on one of
    /// the traced runtime's blocking threads (other runtimes' are dropped then).
    blocking: FxHashMap<u64, SpanInfo>,
    sleeps: FxHashMap<u64, SleepState>,
    /// Spawn locations of live tasks, shared.
    locations: rustc_hash::FxHashSet<std::sync::Arc<str>>,
    /// The last spawn event sent and not kept, written again by the next one: a
    /// spawn per request then allocates nothing for its event.
    spare_spawn: Option<Box<looptrace_wire::Spawn>>,
}

impl Resolver {
    pub(crate) fn thread_name(&mut self, thread: u32, name: &str) {
        self.threads.get(thread).name = name.to_string();
    }

    /// The poll running on `thread` entered the app's span labelled `label`:
    /// kept for the poll's end (the first one a poll enters).
    fn context(&mut self, thread: u32, label: crate::context::SpanLabel) {
        let t = self.threads.get(thread);
        if t.polling.is_some() && t.context.is_none() {
            t.context = Some((label, false));
        }
    }

    /// Sends the context of the poll running on `thread` on its own if it was
    /// not sent yet, at `ts_ns`; `done` if that poll is over (its end lost).
    fn send_context(&mut self, out: &mut EventsWriter<'_>, ts_ns: u64, thread: u32, done: bool) {
        let t = self.threads.get(thread);
        let (Some(task), Some((label, sent))) = (t.polling, t.context.as_mut()) else {
            return;
        };
        let label = (!*sent).then(|| label.clone());
        *sent = true;
        if done {
            t.context = None;
        }
        if let Some(label) = label {
            self.emit(out, ts_ns, thread, EventKind::Context { task, label });
        }
    }

    /// Ends a round of shipping: the context of each poll still running is
    /// sent on its own, so a poll stuck in a request says which while it runs.
    /// It is timed `ts_ns`, the latest event resolved so far (after the span's
    /// entry, before the poll's end, which is not in this round): the stream
    /// stays in time order, which a collector's window queries rely on.
    pub(crate) fn end_round(&mut self, out: &mut EventsWriter<'_>, ts_ns: u64) {
        for thread in 0..self.threads.0.len() as u32 {
            self.send_context(out, ts_ns, thread, false);
        }
    }

    fn emit(&mut self, out: &mut EventsWriter<'_>, ts_ns: u64, thread: u32, kind: EventKind) {
        if self.follow {
            self.follow(ts_ns, thread, &kind);
        }
        self.emit_followed(out, ts_ns, thread, kind)
    }

    /// [`Resolver::emit`] of an event its caller already followed (in the
    /// lookup of its task it made anyway: a poll's start and end).
    fn emit_followed(
        &mut self,
        out: &mut EventsWriter<'_>,
        ts_ns: u64,
        thread: u32,
        kind: EventKind,
    ) {
        let t = self.threads.get(thread);
        let role = t.role();
        if t.announced != Some(role) {
            t.announced = Some(role);
            let e = Event {
                ts_ns,
                thread,
                kind: EventKind::Thread {
                    role,
                    name: t.name.clone(),
                },
            };
            out.push(&e);
            if self.keep {
                self.kept.push(e);
            }
        }
        let e = Event {
            ts_ns,
            thread,
            kind,
        };
        out.push(&e);
        if self.keep {
            self.kept.push(e);
        } else if let EventKind::Spawn(spawn) = e.kind {
            self.spare_spawn = Some(spawn);
        }
    }

    /// Resolves one raw fact at `ts_ns` on `thread`, appending wire events to `out`.
    pub(crate) fn resolve(
        &mut self,
        ts_ns: u64,
        thread: u32,
        raw: Raw,
        out: &mut EventsWriter<'_>,
    ) {
        match raw {
            Raw::RuntimeThread => self.threads.get(thread).runtime = true,
            Raw::Worker(i) => {
                let t = self.threads.get(thread);
                t.worker = Some(i);
                t.runtime = true;
            }
            Raw::TaskSpan {
                task,
                size_bytes,
                local,
            } => {
                self.threads.get(thread).span = Some(SpanInfo {
                    task,
                    kind: if local {
                        TaskKind::Local
                    } else {
                        TaskKind::Task
                    },
                    name: None,
                    location: None,
                    size_bytes: (size_bytes != u64::MAX).then_some(size_bytes),
                    internal: false,
                });
            }
            Raw::Span(info) => {
                if info.kind == TaskKind::Blocking {
                    let parent = self.threads.peek(thread).and_then(|t| t.polling);
                    if parent.is_some() {
                        // Spawned by one of our tasks: ours.
                        self.spawn_blocking(out, ts_ns, thread, *info, parent);
                    } else {
                        self.blocking.insert(info.task, *info);
                    }
                } else {
                    self.threads.get(thread).span = Some(*info);
                }
            }
            Raw::Spawn {
                task,
                location,
                parent_low,
                in_poll,
            } => {
                let t = self.threads.get(thread);
                let info = t.span.take().filter(|i| i.task == task);
                // The task polled here when it spawned this one (unless that
                // poll's start or end was lost: then it is not known).
                let parent = t.polling.filter(|&p| in_poll && p as u32 == parent_low);
                self.tasks.entry(task).or_default();
                let mut spawn = self.spawn_box();
                spawn.task = task;
                spawn.kind = info.as_ref().map_or(TaskKind::Task, |i| i.kind);
                spawn.size_bytes = info.as_ref().and_then(|i| i.size_bytes);
                spawn.name = info.and_then(|i| i.name);
                spawn.parent = parent;
                spawn.location.clear();
                spawn.location.push_str(self.spawn_site(location));
                self.emit(out, ts_ns, thread, EventKind::Spawn(spawn));
            }
            // The merge takes a whole poll in two (see `ship`); whole, its start
            // and end share the end's time.
            Raw::Poll { .. } => {
                if let Some(poll) = raw.whole_poll() {
                    self.resolve(ts_ns, thread, Raw::PollStart(poll.task), out);
                    self.resolve(ts_ns, thread, poll.end(), out);
                }
            }
            Raw::PollStart(task) => {
                // A context still held belongs to a poll whose end was lost.
                self.send_context(out, ts_ns, thread, true);
                let t = self.threads.get(thread);
                t.polling = Some(task);
                t.context = None;
                // The task's list of sleeps polled is started afresh by the
                // poll's first sleep, or its end: no lookup here.
                t.timers = false;
                let kind = EventKind::PollStart { task };
                if self.follow {
                    if let Some(t) = self.tasks.get_mut(&task) {
                        t.follow(ts_ns, thread, &kind);
                    }
                }
                self.emit_followed(out, ts_ns, thread, kind);
            }
            Raw::PollEnd {
                task,
                ready,
                clones,
                drops,
                context,
            } => {
                if clones > 0 {
                    self.cloned_own_waker(thread, task);
                }
                let started_here = self.threads.get(thread).polling == Some(task);
                if !started_here {
                    // The end of another poll (this one's start was lost).
                    self.send_context(out, ts_ns, thread, true);
                }
                if let Some(label) = crate::context::fixed_label(context) {
                    self.context(thread, label.clone());
                }
                let t = self.threads.get(thread);
                t.polling = None;
                let timers = std::mem::take(&mut t.timers);
                let context = t
                    .context
                    .take()
                    .and_then(|(label, sent)| (!sent).then_some(label));
                let kind = EventKind::PollEnd {
                    task,
                    ready,
                    clones,
                    drops,
                    context,
                };
                if let Some(t) = self.tasks.get_mut(&task) {
                    if started_here && !timers {
                        // Left by a poll whose end was lost (as its start
                        // would have cleared it; a poll whose start was lost
                        // keeps what came before, not knowing better).
                        t.polling.clear();
                    }
                    // Sleeps not polled again were dropped (or are no longer awaited).
                    for s in &t.armed {
                        if !t.polling.contains(s) {
                            self.sleeps.remove(s);
                        }
                    }
                    std::mem::swap(&mut t.armed, &mut t.polling);
                    t.polling.clear();
                    if self.follow {
                        t.follow(ts_ns, thread, &kind);
                    }
                }
                self.emit_followed(out, ts_ns, thread, kind);
            }
            Raw::Terminate { task, outcome } => {
                // Tasks never announced (tokio's own worker-launch tasks, or another
                // runtime's) are not reported ending either.
                let Some(t) = self.tasks.remove(&task) else {
                    return;
                };
                for s in t.armed.iter().chain(&t.polling) {
                    self.sleeps.remove(s);
                }
                self.emit(out, ts_ns, thread, EventKind::Terminate { task, outcome });
            }
            Raw::Waker {
                task,
                op,
                current,
                ctx,
            } => {
                if !self.tasks.contains_key(&task) {
                    // A task of another runtime, or one that already ended.
                    return;
                }
                let by = self.source(ts_ns, thread, task, op, current, ctx, out);
                self.emit(out, ts_ns, thread, EventKind::Waker { task, op, by });
            }
            Raw::Park => {
                let t = self.threads.get(thread);
                t.in_park = true;
                t.deferred.clear();
                self.emit(out, ts_ns, thread, EventKind::Park);
            }
            Raw::Unpark => {
                self.threads.get(thread).in_park = false;
                self.emit(out, ts_ns, thread, EventKind::Unpark);
            }
            Raw::BlockingStart(task) => {
                if let Some(info) = self.blocking.remove(&task) {
                    // Spawned from outside any task: ours if it runs on our blocking pool.
                    if self.threads.peek(thread).is_some_and(|t| t.runtime) {
                        self.spawn_blocking(out, ts_ns, thread, info, None);
                    }
                }
                if self.tasks.contains_key(&task) {
                    self.emit(out, ts_ns, thread, EventKind::BlockingStart { task });
                }
            }
            Raw::BlockingEnd(task) => {
                if self.tasks.contains_key(&task) {
                    self.emit(out, ts_ns, thread, EventKind::BlockingEnd { task });
                }
            }
            Raw::SleepArmed { sleep, task, ms } => {
                let deadline_ns = ts_ns + ms as u64 * 1_000_000;
                self.sleeps.insert(
                    sleep,
                    SleepState {
                        task,
                        deadline_ns,
                        fired: false,
                    },
                );
                let fresh = self.polled_a_timer(thread, task);
                if let Some(t) = self.tasks.get_mut(&task) {
                    if fresh {
                        t.polling.clear();
                    }
                    t.polling.push(sleep);
                }
                self.emit(
                    out,
                    ts_ns,
                    thread,
                    EventKind::TimerArmed { task, deadline_ns },
                );
            }
            Raw::Mark(label) => self.emit(
                out,
                ts_ns,
                thread,
                EventKind::Mark {
                    label: label.into(),
                },
            ),
            Raw::Context(label) => self.context(thread, label),
            Raw::FixedContext(label) => self.context(thread, label.clone()),
            Raw::Queues(q) => self.emit(out, ts_ns, thread, EventKind::Queues(q)),
            // Not an event: the shipper sends notes as frames of their own.
            Raw::Note(_) => {}
            Raw::SleepPolled { sleep, task, ready } => {
                if ready {
                    if let Some(s) = self.sleeps.remove(&sleep) {
                        if !s.fired {
                            // Due before anyone had to wake the task.
                            self.emit(out, ts_ns, thread, EventKind::TimerFired { task: s.task });
                        }
                    }
                } else {
                    let fresh = self.polled_a_timer(thread, task);
                    if let Some(t) = self.tasks.get_mut(&task) {
                        if fresh {
                            t.polling.clear();
                        }
                        if !t.polling.contains(&sleep) {
                            t.polling.push(sleep);
                        }
                    }
                }
            }
        }
    }

    /// Notes that the poll of `task` running on `thread` met a `Sleep`; true
    /// the first time in a poll whose start was seen here (its task's list then
    /// starts afresh, as the start would have made it).
    fn polled_a_timer(&mut self, thread: u32, task: u64) -> bool {
        let t = self.threads.get(thread);
        let first = !std::mem::replace(&mut t.timers, true);
        first && t.polling == Some(task)
    }

    /// A box for a spawn event: the last one sent, if it came back.
    fn spawn_box(&mut self) -> Box<looptrace_wire::Spawn> {
        self.spare_spawn.take().unwrap_or_else(|| {
            Box::new(looptrace_wire::Spawn {
                task: 0,
                kind: TaskKind::Task,
                name: None,
                location: String::new(),
                parent: None,
                size_bytes: None,
            })
        })
    }

    /// The place `location` is sent as.
    fn spawn_site(&mut self, location: &'static std::panic::Location<'static>) -> &str {
        let key = location as *const std::panic::Location<'static> as usize;
        self.spawn_sites.entry(key).or_insert_with(|| {
            format!(
                "{}:{}:{}",
                location.file(),
                location.line(),
                location.column()
            )
        })
    }

    fn spawn_blocking(
        &mut self,
        out: &mut EventsWriter<'_>,
        ts_ns: u64,
        thread: u32,
        info: SpanInfo,
        parent: Option<u64>,
    ) {
        self.tasks.entry(info.task).or_default();
        let mut spawn = self.spawn_box();
        *spawn = looptrace_wire::Spawn {
            task: info.task,
            kind: TaskKind::Blocking,
            name: info.name,
            location: info.location.unwrap_or_default(),
            parent,
            size_bytes: info.size_bytes,
        };
        self.emit(out, ts_ns, thread, EventKind::Spawn(spawn));
    }

    /// Keeps each live task's spawn and where it stands, for [`Resolver::resume`].
    fn follow(&mut self, ts_ns: u64, thread: u32, kind: &EventKind) {
        let Some(task) = kind.task() else { return };
        if !matches!(kind, EventKind::Spawn(_)) {
            // Every event but a spawn: one lookup.
            if let Some(t) = self.tasks.get_mut(&task) {
                t.follow(ts_ns, thread, kind);
            }
            return;
        }
        if !self.tasks.contains_key(&task) {
            return;
        }
        if self.locations.len() > 2 * self.tasks.len() + 1024 {
            // Locations no live task holds any more.
            self.locations
                .retain(|l| std::sync::Arc::strong_count(l) > 1);
        }
        if let EventKind::Spawn(s) = kind {
            let location = match self.locations.get(s.location.as_str()) {
                Some(l) => l.clone(),
                None => {
                    let l: std::sync::Arc<str> = s.location.as_str().into();
                    self.locations.insert(l.clone());
                    l
                }
            };
            let Some(t) = self.tasks.get_mut(&task) else {
                return;
            };
            t.spawn = Some(Box::new(Spawned {
                ts_ns,
                thread,
                kind: s.kind,
                name: s.name.clone(),
                location,
                parent: s.parent,
                size_bytes: s.size_bytes,
            }));
        }
        if let Some(t) = self.tasks.get_mut(&task) {
            t.follow(ts_ns, thread, kind);
        }
    }

    /// What a collector met part way through needs to know first: the threads'
    /// roles, every live task's spawn (at its spawn time) and where it stands now,
    /// and how many events earlier connections lost (`undelivered`). In frames of
    /// at most [`looptrace_wire::MAX_FRAME_EVENTS`] events.
    pub(crate) fn resume(&self, now_ns: u64, undelivered: u64) -> Vec<Vec<u8>> {
        let mut events = Vec::new();
        for (i, t) in self.threads.0.iter().enumerate() {
            if let Some(role) = t.announced {
                events.push(Event {
                    ts_ns: now_ns,
                    thread: i as u32,
                    kind: EventKind::Thread {
                        role,
                        name: t.name.clone(),
                    },
                });
            }
        }
        let mut live: Vec<(&u64, &LiveTask)> = self
            .tasks
            .iter()
            // A closure done but not yet reported terminated is not restated: it
            // is over, and a collector of the same wire version may not know
            // the `done` state.
            .filter(|(_, t)| {
                t.spawn.is_some() && t.life.state != Some(looptrace_wire::TaskState::Done)
            })
            .collect();
        live.sort_unstable_by_key(|(id, _)| **id);
        for (&task, t) in live {
            let Some(s) = &t.spawn else { continue };
            events.push(Event {
                ts_ns: s.ts_ns,
                thread: s.thread,
                kind: EventKind::Spawn(Box::new(looptrace_wire::Spawn {
                    task,
                    kind: s.kind,
                    name: s.name.clone(),
                    location: s.location.to_string(),
                    parent: s.parent,
                    size_bytes: s.size_bytes,
                })),
            });
            if let Some(state) = t.life.state {
                events.push(Event {
                    ts_ns: now_ns,
                    thread: t.life.thread.unwrap_or(s.thread),
                    kind: EventKind::TaskState { task, state },
                });
            }
        }
        // What the polls running now are doing, if they said it already.
        for (i, t) in self.threads.0.iter().enumerate() {
            if let (Some(task), Some((label, true))) = (t.polling, &t.context) {
                events.push(Event {
                    ts_ns: now_ns,
                    thread: i as u32,
                    kind: EventKind::Context {
                        task,
                        label: label.clone(),
                    },
                });
            }
        }
        if undelivered > 0 {
            events.push(Event {
                ts_ns: now_ns,
                thread: 0,
                kind: EventKind::Dropped { count: undelivered },
            });
        }
        events
            .chunks(16_384)
            .map(|chunk| {
                let mut frame = Vec::new();
                looptrace_wire::encode_events(chunk, &mut frame);
                frame
            })
            .collect()
    }

    /// `task`, polled on `thread`, cloned its own waker: a wake of it by this worker
    /// outside any poll, before the worker parks, is tokio's deferred wake of it.
    fn cloned_own_waker(&mut self, thread: u32, task: u64) {
        self.threads.get(thread).deferred.push(task);
    }

    #[allow(clippy::too_many_arguments)]
    fn source(
        &mut self,
        ts_ns: u64,
        thread: u32,
        task: u64,
        op: WakeOp,
        current: u64,
        ctx: WakeCtx,
        out: &mut EventsWriter<'_>,
    ) -> WakeSource {
        if current != 0 {
            if op == WakeOp::Clone && current == task {
                self.cloned_own_waker(thread, task);
            }
            return WakeSource::Task(current);
        }
        match ctx {
            WakeCtx::Blocking => return WakeSource::Blocking,
            WakeCtx::BlockOn => return WakeSource::External,
            WakeCtx::Plain => {}
        }
        let t = self.threads.get(thread);
        if t.worker.is_none() {
            // A thread of the runtime that is not a worker is a blocking-pool thread
            // (e.g. completing a `spawn_blocking` task wakes whoever awaits it).
            return if t.runtime {
                WakeSource::Blocking
            } else {
                WakeSource::External
            };
        }
        let waking = matches!(op, WakeOp::Wake | WakeOp::WakeByRef);
        // A due timer?
        let due = self.tasks.get(&task).and_then(|ts| {
            ts.armed.iter().copied().find(|s| {
                self.sleeps
                    .get(s)
                    .is_some_and(|s| !s.fired && s.deadline_ns <= ts_ns + TIMER_SLACK_NS)
            })
        });
        if let Some(sleep) = due {
            if waking {
                if let Some(s) = self.sleeps.get_mut(&sleep) {
                    s.fired = true;
                }
                self.emit(out, ts_ns, thread, EventKind::TimerFired { task });
            }
            return WakeSource::Timer;
        }
        let t = self.threads.get(thread);
        if !t.in_park && t.deferred.contains(task) {
            if waking {
                t.deferred.take(task);
            }
            return WakeSource::Task(task);
        }
        WakeSource::Io
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use looptrace_wire::{decode_frame, Frame};

    /// Resolves `raws` (time, thread, fact) in one round, ended at the last
    /// time; returns the frame's events decoded.
    fn round(r: &mut Resolver, raws: Vec<(u64, u32, Raw)>) -> Vec<Event> {
        let mut frame = Vec::new();
        let mut w = EventsWriter::new(&mut frame);
        let last = raws.last().map_or(0, |x| x.0);
        for (ts, thread, raw) in raws {
            r.resolve(ts, thread, raw, &mut w);
        }
        r.end_round(&mut w, last);
        w.finish();
        match decode_frame(&frame) {
            Ok(Frame::Events(e)) => e,
            other => panic!("{other:?}"),
        }
    }

    /// What `r` restates to a collector met at `now`, decoded.
    fn resumed(r: &Resolver, now: u64) -> Vec<Event> {
        r.resume(now, 0)
            .iter()
            .flat_map(|f| match decode_frame(f) {
                Ok(Frame::Events(e)) => e,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn spawn(task: u64) -> Raw {
        Raw::Spawn {
            task,
            location: std::panic::Location::caller(),
            parent_low: 0,
            in_poll: false,
        }
    }

    fn end(task: u64) -> Raw {
        Raw::PollEnd {
            task,
            ready: false,
            clones: 0,
            drops: 0,
            context: 0,
        }
    }

    /// Each task's polls' contexts: `start`, `ctx L`, `end [L]`.
    fn story(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::PollStart { task } => Some(format!("{task} start")),
                EventKind::Context { task, label } => Some(format!("{task} ctx {label}")),
                EventKind::PollEnd { task, context, .. } => Some(format!(
                    "{task} end{}",
                    context
                        .as_ref()
                        .map(|l| format!(" {l}"))
                        .unwrap_or_default()
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_worker_remembers_its_latest_self_clones_by_task() {
        let mut d = Deferred::default();
        d.push(1);
        d.push(2);
        d.push(1);
        d.take(1);
        assert!(d.contains(1), "once more");
        // The wake took 1's oldest place: its other one is the newest, and
        // outlasts 2 when the oldest make room.
        for t in 10..10 + MAX_DEFERRED as u64 - 2 {
            d.push(t);
        }
        assert!(d.contains(2) && d.contains(1), "full, not over");
        d.push(99);
        assert!(!d.contains(2), "the oldest pushed out");
        assert!(d.contains(1) && d.contains(10) && d.contains(99));
        d.take(1);
        assert!(!d.contains(1));
        assert_eq!(d.live, MAX_DEFERRED - 1);
        assert_eq!(d.count.values().sum::<u32>() as usize, d.live);
        // Pushed and taken over and over without a park: the taken places are
        // dropped, the list stays bounded.
        for t in 0..10 * MAX_DEFERRED as u64 {
            d.push(1000 + t);
            d.take(1000 + t);
        }
        assert!(d.order.len() <= 4 * MAX_DEFERRED + 1);
        assert!(d.contains(10) && d.contains(99), "still there");
        d.clear();
        assert!(!d.contains(10) && d.order.is_empty() && d.live == 0);
    }

    #[test]
    fn live_tasks_are_restated_only_when_followed() {
        for follow in [false, true] {
            let mut r = Resolver {
                follow,
                ..Resolver::default()
            };
            round(
                &mut r,
                vec![
                    (1, 0, Raw::Worker(0)),
                    (2, 0, spawn(1)),
                    (3, 0, spawn(2)),
                    (4, 0, Raw::PollStart(1)),
                    (5, 0, end(1)),
                    (6, 0, Raw::PollStart(2)),
                ],
            );
            let restated: Vec<String> = resumed(&r, 10)
                .into_iter()
                .filter_map(|e| match e.kind {
                    EventKind::Spawn(s) => Some(format!("{} spawned", s.task)),
                    EventKind::TaskState { task, state } => Some(format!("{task} {state:?}")),
                    _ => None,
                })
                .collect();
            if follow {
                assert_eq!(
                    restated,
                    ["1 spawned", "1 Idle", "2 spawned", "2 Running"],
                    "polls followed in the lookup they make"
                );
            } else {
                assert!(restated.is_empty(), "{restated:?}");
            }
        }
    }

    /// Spawn events written into the box of the one before say only their own
    /// task's name, kind, size, place and parent.
    #[test]
    fn each_spawn_says_its_own_task_though_its_event_reuses_the_last_ones() {
        let mut r = Resolver::default();
        let named = |task: u64, name: &str| {
            Raw::Span(Box::new(SpanInfo {
                task,
                kind: TaskKind::Task,
                name: Some(name.into()),
                location: None,
                size_bytes: Some(128),
                internal: false,
            }))
        };
        let elsewhere = |task| Raw::Spawn {
            task,
            location: std::panic::Location::caller(),
            parent_low: 1,
            in_poll: true,
        };
        let local = |task| Raw::TaskSpan {
            task,
            size_bytes: u64::MAX,
            local: true,
        };
        let events = round(
            &mut r,
            vec![
                (1, 0, Raw::Worker(0)),
                (2, 0, named(1, "first")),
                (3, 0, spawn(1)),
                (4, 0, Raw::PollStart(1)),
                (5, 0, local(2)),
                (6, 0, elsewhere(2)),
                (7, 0, end(1)),
                (8, 0, spawn(3)),
            ],
        );
        let spawns: Vec<_> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Spawn(s) => Some((
                    s.task,
                    s.name.clone(),
                    s.kind,
                    s.size_bytes,
                    s.location.clone(),
                    s.parent,
                )),
                _ => None,
            })
            .collect();
        let first_at = spawns[0].4.clone();
        assert_ne!(first_at, spawns[1].4);
        assert_eq!(
            spawns,
            [
                (
                    1,
                    Some("first".into()),
                    TaskKind::Task,
                    Some(128),
                    first_at.clone(),
                    None
                ),
                (2, None, TaskKind::Local, None, spawns[1].4.clone(), Some(1)),
                (3, None, TaskKind::Task, None, first_at, None),
            ]
        );
    }

    #[test]
    fn a_spawn_names_the_task_polled_where_it_was_made_if_known() {
        let mut r = Resolver::default();
        let made_in = |task: u64, parent: u64| Raw::Spawn {
            task,
            location: std::panic::Location::caller(),
            parent_low: parent as u32,
            in_poll: parent != 0,
        };
        let events = round(
            &mut r,
            vec![
                (1, 0, Raw::Worker(0)),
                (2, 0, spawn(1)),
                (3, 0, Raw::PollStart(1)),
                (4, 0, made_in(2, 1)),
                // 1's end was lost: a spawn outside any poll has no parent,
                (5, 0, spawn(3)),
                // nor one in a poll whose start was lost.
                (6, 0, made_in(4, 9)),
            ],
        );
        let parents: Vec<_> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Spawn(s) => Some((s.task, s.parent)),
                _ => None,
            })
            .collect();
        assert_eq!(parents, [(1, None), (2, Some(1)), (3, None), (4, None)]);
    }

    /// A task's next poll tells which of its sleeps it still awaits: a wake
    /// after a due sleep is the timer's only if the task polled that sleep in
    /// its latest poll (a poll whose end was lost tells nothing).
    #[test]
    fn a_wake_is_the_timers_only_if_the_latest_poll_polled_the_sleep() {
        const MS: u64 = 1_000_000;
        let arm = |ts, sleep, ms| (ts, 0, Raw::SleepArmed { sleep, task: 1, ms });
        let armed = |ts| arm(ts, 7, 1);
        let polled = |ts| {
            let raw = Raw::SleepPolled {
                sleep: 7,
                task: 1,
                ready: false,
            };
            (ts, 0, raw)
        };
        let wake = |ts| {
            let raw = Raw::Waker {
                task: 1,
                op: WakeOp::Wake,
                current: 0,
                ctx: WakeCtx::Plain,
            };
            (ts, 0, raw)
        };
        let source_of_wake = |second_poll: Vec<(u64, u32, Raw)>, first_ends: bool| {
            let mut r = Resolver::default();
            let mut raws = vec![
                (1, 0, Raw::Worker(0)),
                (2, 0, spawn(1)),
                (3, 0, Raw::PollStart(1)),
                armed(4),
            ];
            if first_ends {
                raws.push((5, 0, end(1)));
            }
            raws.push((6, 0, Raw::PollStart(1)));
            raws.extend(second_poll);
            raws.push((8, 0, end(1)));
            raws.push(wake(10 * MS));
            round(&mut r, raws).into_iter().find_map(|e| match e.kind {
                EventKind::Waker { by, .. } => Some(by),
                _ => None,
            })
        };
        assert_eq!(
            source_of_wake(vec![polled(7)], true),
            Some(WakeSource::Timer)
        );
        assert_eq!(source_of_wake(vec![], true), Some(WakeSource::Io));
        // The first poll's end was lost: its sleep was not kept by the second.
        assert_eq!(source_of_wake(vec![], false), Some(WakeSource::Io));
        assert_eq!(
            source_of_wake(vec![polled(7)], false),
            Some(WakeSource::Timer)
        );
        // Armed again in the second poll (whose list starts afresh there).
        assert_eq!(
            source_of_wake(vec![armed(7)], false),
            Some(WakeSource::Timer)
        );
        // Another sleep, not due, armed there: the lost poll's is not kept.
        assert_eq!(
            source_of_wake(vec![arm(7, 8, 1000)], false),
            Some(WakeSource::Io)
        );
        // The first poll's end and the next one's start both lost, another
        // task polled between on the same thread: that poll's end says
        // nothing about task 1's sleeps, nor does the end without its start.
        let mut r = Resolver::default();
        let raws = vec![
            (1, 0, Raw::Worker(0)),
            (2, 0, spawn(1)),
            (3, 0, spawn(2)),
            (4, 0, Raw::PollStart(1)),
            armed(5),
            (6, 0, Raw::PollStart(2)),
            (7, 0, end(2)),
            (8, 0, end(1)),
            wake(10 * MS),
        ];
        let by = round(&mut r, raws).into_iter().find_map(|e| match e.kind {
            EventKind::Waker { by, .. } => Some(by),
            _ => None,
        });
        assert_eq!(by, Some(WakeSource::Timer));
    }

    #[test]
    fn a_context_goes_with_its_own_poll_and_only_once() {
        let mut r = Resolver::default();
        let (a, b): (crate::context::SpanLabel, crate::context::SpanLabel) =
            ("GET /a".into(), "GET /b".into());
        let first = round(
            &mut r,
            vec![
                (1, 0, Raw::Worker(0)),
                (2, 0, spawn(1)),
                (3, 0, spawn(2)),
                // Over within the round: the end carries it.
                (4, 0, Raw::PollStart(1)),
                (5, 0, Raw::Context(a.clone())),
                (6, 0, end(1)),
                // Its end lost: sent on its own before the next poll, for its task.
                (7, 0, Raw::PollStart(1)),
                (8, 0, Raw::Context(a.clone())),
                (9, 0, Raw::PollStart(2)),
                (10, 0, end(2)),
                // Its start lost: another task's context is not taken for it.
                (11, 0, Raw::PollStart(1)),
                (12, 0, Raw::Context(a.clone())),
                (13, 0, end(2)),
                // Still running when the round ends: on its own, once.
                (14, 0, Raw::PollStart(2)),
                (15, 0, Raw::Context(b.clone())),
            ],
        );
        assert_eq!(
            story(&first),
            [
                "1 start",
                "1 end GET /a",
                "1 start",
                "1 ctx GET /a",
                "2 start",
                "2 end",
                "1 start",
                "1 ctx GET /a",
                "2 end",
                "2 start",
                "2 ctx GET /b",
            ]
        );
        // A collector met now hears what the running poll is doing.
        assert!(resumed(&r, 20).iter().any(|e| matches!(
            &e.kind,
            EventKind::Context { task: 2, label } if &**label == "GET /b"
        )));
        // Its end does not say it again.
        assert_eq!(story(&round(&mut r, vec![(30, 0, end(2))])), ["2 end"]);
    }
}

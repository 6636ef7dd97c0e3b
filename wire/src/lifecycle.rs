//! How events move a task between states: the one derivation of task states
//! and of the intervals a task spends in each. The collector's model, its
//! timeline windows, the exports and the runtime's restatement after a reconnect
//! all follow tasks with [`Lifecycle`], so they cannot disagree.

use crate::event::{Event, EventKind, TaskState, ThreadId, WakeOp, WakeSource};

/// Where one task stands, followed event by event.
///
/// ```
/// use looptrace_wire::{Event, EventKind, Lifecycle, Spawn, TaskKind, TaskState, WakeOp, WakeSource};
/// let ev = |ts_ns, kind| Event { ts_ns, thread: 0, kind };
/// let mut t = Lifecycle::default();
/// t.apply(&ev(10, EventKind::Spawn(Box::new(Spawn { task: 1, kind: TaskKind::Task, name: None,
///     location: "src/main.rs:3:5".into(), parent: None, size_bytes: None }))));
/// // Scheduled from its spawn until its first poll.
/// let s = t.apply(&ev(25, EventKind::PollStart { task: 1 })).unwrap();
/// assert_eq!((s.state, s.start_ns, s.end_ns), (TaskState::Scheduled, 10, 25));
/// let s = t.apply(&ev(40, EventKind::PollEnd { task: 1, ready: false, clones: 1, drops: 0, context: None })).unwrap();
/// assert_eq!((s.state, s.ready), (TaskState::Running, Some(false)));
/// assert_eq!(t.state, Some(TaskState::Idle));
/// t.apply(&ev(90, EventKind::Waker { task: 1, op: WakeOp::Wake, by: WakeSource::Timer }));
/// assert_eq!((t.state, t.woken_by), (Some(TaskState::Scheduled), Some(WakeSource::Timer)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lifecycle {
    /// `None` until an event says where the task stands.
    pub state: Option<TaskState>,
    /// When the current state began.
    pub since_ns: u64,
    /// The thread of its current (or last) poll.
    pub thread: Option<ThreadId>,
    /// While scheduled: who woke it.
    pub woken_by: Option<WakeSource>,
    /// Woken while being polled: scheduled again when the poll ends.
    pub woken_in_poll: Option<WakeSource>,
    /// Terminated while being polled: done when the poll ends.
    pub ended: bool,
}

/// A stretch of time a task spent in one state, closed by an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stretch {
    /// The state it was in (never `Done`: a finished task spends no time).
    pub state: TaskState,
    /// When it entered the state.
    pub start_ns: u64,
    /// When the event that ended it happened.
    pub end_ns: u64,
    /// Running: the thread polling it.
    pub thread: Option<ThreadId>,
    /// Running: whether the poll returned Ready.
    pub ready: Option<bool>,
    /// Scheduled: who woke it.
    pub woken_by: Option<WakeSource>,
}

impl Stretch {
    /// How long it lasted.
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

impl Lifecycle {
    /// The state open since [`Lifecycle::since_ns`], closed at `end_ns` (a
    /// window's end); nothing once done or while unknown.
    pub fn open_stretch(&self, end_ns: u64) -> Option<Stretch> {
        let state = self.state.filter(|s| *s != TaskState::Done)?;
        Some(Stretch {
            state,
            start_ns: self.since_ns,
            end_ns,
            thread: (state == TaskState::Running)
                .then_some(self.thread)
                .flatten(),
            ready: None,
            woken_by: (state == TaskState::Scheduled)
                .then_some(self.woken_by)
                .flatten(),
        })
    }

    /// Ends the current state at `ts` and enters `next`.
    fn enter(&mut self, next: TaskState, ts: u64) -> Option<Stretch> {
        let closed = self.open_stretch(ts);
        self.state = Some(next);
        self.since_ns = ts;
        closed
    }

    /// Follows one event about this task (the caller picks the events: this
    /// does not look at their task); returns the stretch it closed, if any.
    pub fn apply(&mut self, e: &Event) -> Option<Stretch> {
        self.apply_at(e.ts_ns, e.thread, &e.kind)
    }

    /// The thread of its last poll, if it was not `thread`: a poll starting on
    /// `thread` now is on another thread than the last (stolen or moved).
    pub fn moved_from(&self, thread: ThreadId) -> Option<ThreadId> {
        self.thread.filter(|&last| last != thread)
    }

    /// [`Lifecycle::apply`], for an event in parts: `kind`, at `ts` on `thread`.
    pub fn apply_at(&mut self, ts: u64, thread: ThreadId, kind: &EventKind) -> Option<Stretch> {
        match *kind {
            EventKind::Spawn(_) => {
                self.woken_by = None;
                self.enter(TaskState::Scheduled, ts)
            }
            EventKind::TaskState { state, .. } => {
                // Where it stands, restated: not a transition. Only a running
                // task's restatement says where it runs.
                self.state = Some(state);
                self.since_ns = ts;
                if state == TaskState::Running {
                    self.thread = Some(thread);
                }
                None
            }
            EventKind::PollStart { .. } | EventKind::BlockingStart { .. } => {
                let closed = self.enter(TaskState::Running, ts);
                self.thread = Some(thread);
                self.woken_by = None;
                self.woken_in_poll = None;
                closed
            }
            EventKind::PollEnd { ready, .. } => self.poll_end(ready, ts),
            EventKind::BlockingEnd { .. } => self.poll_end(true, ts),
            EventKind::Waker {
                op: WakeOp::Wake | WakeOp::WakeByRef,
                by,
                ..
            } => match self.state {
                Some(TaskState::Running) => {
                    self.woken_in_poll.get_or_insert(by);
                    None
                }
                Some(TaskState::Idle) | None => {
                    let closed = self.enter(TaskState::Scheduled, ts);
                    self.woken_by = Some(by);
                    closed
                }
                Some(TaskState::Scheduled | TaskState::Done) => None,
            },
            EventKind::Terminate { .. } => match self.state {
                // Inside its last poll: the poll's end closes it.
                Some(TaskState::Running) => {
                    self.ended = true;
                    None
                }
                Some(TaskState::Done) => None,
                _ => self.enter(TaskState::Done, ts),
            },
            _ => None,
        }
    }

    fn poll_end(&mut self, ready: bool, ts: u64) -> Option<Stretch> {
        let was_running = self.state == Some(TaskState::Running);
        let next = if ready || self.ended {
            TaskState::Done
        } else if let Some(by) = self.woken_in_poll.take() {
            self.woken_by = Some(by);
            TaskState::Scheduled
        } else {
            TaskState::Idle
        };
        let closed = self.enter(next, ts);
        // A poll's end without its start (lost, or before the data begins)
        // closes nothing.
        closed.filter(|_| was_running).map(|s| Stretch {
            ready: Some(ready),
            ..s
        })
    }
}

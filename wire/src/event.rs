//! The event model: everything a traced runtime reports, in one enum.

use serde::{Deserialize, Serialize};

/// A task's id: tokio's own task id, unique within a process.
pub type TaskId = u64;

/// looptrace's number for an OS thread of the traced process, dense from 0 in the
/// order threads first reported anything. Its role comes from [`EventKind::Thread`].
pub type ThreadId = u32;

/// Sent once per connection or recording, before any event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Name of the traced process (its executable's file name unless set in code).
    pub process_name: String,
    pub pid: u32,
    pub flavor: Flavor,
    /// Worker threads of the runtime (1 for current_thread).
    pub workers: u32,
    /// Wall-clock time, in ns since the Unix epoch, of `ts_ns == 0`.
    pub clock_origin_unix_ns: u64,
}

/// The tokio scheduler the traced runtime uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    CurrentThread,
    MultiThread,
}

impl Flavor {
    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::CurrentThread => "current_thread",
            Flavor::MultiThread => "multi_thread",
        }
    }
}

/// One thing that happened, when, and on which thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Monotonic nanoseconds since the header's clock origin.
    pub ts_ns: u64,
    pub thread: ThreadId,
    pub kind: EventKind,
}

/// What a thread is to the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThreadRole {
    /// A scheduler worker, with its index (0 for the current_thread scheduler).
    Worker(u32),
    /// A thread of tokio's blocking pool (`spawn_blocking`).
    Blocking,
    /// Any other thread: `main` outside the scheduler, threads the app made itself.
    External,
}

/// Where a waker operation came from. In JSON (viewers, exports) it is spelt
/// `task:<id>`, `timer`, `io`, `blocking` or `external`.
///
/// ```
/// use looptrace_wire::WakeSource;
/// assert_eq!(WakeSource::Task(3).to_string(), "task:3");
/// assert_eq!("io".parse::<WakeSource>(), Ok(WakeSource::Io));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WakeSource {
    /// Done while this task was being polled (a task may wake itself).
    Task(TaskId),
    /// The timer driver fired a deadline the task waited for.
    Timer,
    /// The I/O driver saw a resource the task waited for become ready.
    Io,
    /// A `spawn_blocking` closure.
    Blocking,
    /// A thread outside the runtime, or `block_on`'s own future.
    External,
}

impl std::fmt::Display for WakeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WakeSource::Task(id) => write!(f, "task:{id}"),
            WakeSource::Timer => f.write_str("timer"),
            WakeSource::Io => f.write_str("io"),
            WakeSource::Blocking => f.write_str("blocking"),
            WakeSource::External => f.write_str("external"),
        }
    }
}

/// A string that is not a [`WakeSource`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a wake source (task:<id>, timer, io, blocking or external): {0:?}")]
pub struct NotAWakeSource(pub String);

impl std::str::FromStr for WakeSource {
    type Err = NotAWakeSource;
    fn from_str(s: &str) -> Result<Self, NotAWakeSource> {
        Ok(match s {
            "timer" => WakeSource::Timer,
            "io" => WakeSource::Io,
            "blocking" => WakeSource::Blocking,
            "external" => WakeSource::External,
            _ => WakeSource::Task(
                s.strip_prefix("task:")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| NotAWakeSource(s.chars().take(40).collect()))?,
            ),
        })
    }
}

impl Serialize for WakeSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WakeSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for WakeSource {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "WakeSource".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^(task:[0-9]+|timer|io|blocking|external)$",
            "description": "Who woke a task: task:<id> (a task may wake itself), timer, io, blocking (a spawn_blocking closure) or external (a thread outside the runtime)."
        })
    }
}

/// Which waker operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WakeOp {
    Wake,
    WakeByRef,
    Clone,
    Drop,
}

/// What kind of task tokio spawned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// `tokio::spawn` and friends.
    Task,
    /// `spawn_local` / `LocalSet`.
    Local,
    /// A `spawn_blocking` closure.
    Blocking,
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Its future returned `Ready`.
    Completed,
    /// Aborted, or dropped when the runtime shut down, before completing.
    Cancelled,
    /// Its future panicked.
    Panicked,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Cancelled => "cancelled",
            Outcome::Panicked => "panicked",
        }
    }
}

/// A text a traced program puts beside its session: a demo's "what to watch for"
/// and "what happened". The latest one is shown; recordings keep them all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default)]
pub struct Note {
    pub title: String,
    /// Paragraphs, one per line.
    pub text: String,
}

/// The events themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// Introduces `Event::thread`: sent before the first event of each thread.
    Thread {
        role: ThreadRole,
        name: String,
    },
    /// A task was spawned. Boxed, as the rarest of the large events: every
    /// event is as big as the biggest variant, and the hot ones (a poll's start
    /// and end, a wake) need a third of what a spawn does.
    Spawn(Box<Spawn>),
    /// A task finished and will not be polled again.
    Terminate {
        task: TaskId,
        outcome: Outcome,
    },
    PollStart {
        task: TaskId,
    },
    /// A poll returned: `ready` if the task's future completed.
    ///
    /// `clones` and `drops` count the operations on the task's own waker during
    /// this poll (registering interest in a socket, a channel, a timer). They are
    /// folded into the poll's end rather than sent one event each: they are most
    /// of a busy server's waker traffic and matter only by their count. Waker
    /// operations of other tasks, or outside the task's poll, are still
    /// [`EventKind::Waker`] events.
    ///
    /// `context` is the poll's [`EventKind::Context`] when that was not sent on
    /// its own while the poll ran: a poll whose end is shipped with its context
    /// (in the same round) carries it here, one event fewer; a poll still
    /// running when its context is shipped sends it on its own, so a stuck
    /// poll says what it was doing while it runs.
    PollEnd {
        task: TaskId,
        ready: bool,
        clones: u32,
        drops: u32,
        context: Option<std::sync::Arc<str>>,
    },
    /// An operation on a waker of `task`, done by `by`.
    Waker {
        task: TaskId,
        op: WakeOp,
        by: WakeSource,
    },
    /// The worker thread went to sleep waiting for work, timers or I/O.
    Park,
    /// The worker thread woke up.
    Unpark,
    /// A `spawn_blocking` closure started running.
    BlockingStart {
        task: TaskId,
    },
    /// A `spawn_blocking` closure returned.
    BlockingEnd {
        task: TaskId,
    },
    /// `task` started waiting on a timer (a `Sleep`) due at `deadline_ns`.
    TimerArmed {
        task: TaskId,
        deadline_ns: u64,
    },
    /// A timer `task` waited on fired.
    TimerFired {
        task: TaskId,
    },
    /// `count` events of this thread were lost because its buffer was full.
    Dropped {
        count: u64,
    },
    /// A moment the traced program labelled (`looptrace::mark`): the start of a
    /// phase, a request burst, "part 2: the fix".
    Mark {
        label: String,
    },
    /// Where a task already spawned stands now: sent (after its `Spawn`, which
    /// keeps its spawn time) when a stream starts over after a reconnect, so the
    /// new session knows the tasks that existed before it. Not a transition.
    TaskState {
        task: TaskId,
        state: TaskState,
    },
    /// What the app was doing during the poll of `task` running on this thread:
    /// the first `tracing` span of the app's own entered in that poll (a request
    /// span of tower-http's `TraceLayer` reads `GET /blocking`). At most one per
    /// poll, sent on its own only while the poll still runs (else carried by
    /// the poll's [`EventKind::PollEnd`]). Shared: a label is one allocation
    /// however many polls carry it (and on the wire, said once per frame).
    Context {
        task: TaskId,
        label: std::sync::Arc<str>,
    },
    /// The scheduler's queues, sampled (from tokio's runtime metrics) when they
    /// changed: tasks waiting in each worker's local run queue and in the
    /// injection queue (the shared one), and how many times each worker stole
    /// from another so far.
    ///
    /// Boxed, as [`EventKind::Spawn`] is.
    Queues(Box<Queues>),
}

/// What [`EventKind::Spawn`] says of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spawn {
    /// The task spawned.
    pub task: TaskId,
    /// A task, a local task, or a `spawn_blocking` closure.
    pub kind: TaskKind,
    /// `tokio::task::Builder::name`, if set.
    pub name: Option<String>,
    /// Where it was spawned, `file:line:col`.
    pub location: String,
    /// The task that was being polled on the spawning thread, if any.
    pub parent: Option<TaskId>,
    /// Size in bytes of the spawned future (as tokio reports it).
    pub size_bytes: Option<u64>,
}

/// What [`EventKind::Queues`] says of the scheduler's queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queues {
    /// Per worker, by index: tasks in its local queue.
    pub local: Vec<u32>,
    /// Per worker, by index: steals so far (cumulative).
    pub steals: Vec<u64>,
    /// Tasks in the injection queue.
    pub injection: u32,
}

// Every stage copies events by the million (decoded into chunks, resolved,
// kept for the model): keep the hot ones from paying for the rare big ones.
const _: () = assert!(std::mem::size_of::<Event>() <= 56);

/// Where a task stands: restated by [`EventKind::TaskState`], and what viewers
/// show of each task (a collector derives it from the events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Being polled.
    Running,
    /// Woken (or just spawned), waiting to be polled.
    Scheduled,
    /// Returned Pending, not woken since.
    Idle,
    /// Finished.
    Done,
}

impl TaskState {
    /// Its JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Running => "running",
            TaskState::Scheduled => "scheduled",
            TaskState::Idle => "idle",
            TaskState::Done => "done",
        }
    }
}

impl EventKind {
    /// The task this event is about, if any.
    pub fn task(&self) -> Option<TaskId> {
        match *self {
            EventKind::Spawn(ref s) => Some(s.task),
            EventKind::Terminate { task, .. }
            | EventKind::PollStart { task }
            | EventKind::PollEnd { task, .. }
            | EventKind::Waker { task, .. }
            | EventKind::BlockingStart { task }
            | EventKind::BlockingEnd { task }
            | EventKind::TimerArmed { task, .. }
            | EventKind::TaskState { task, .. }
            | EventKind::Context { task, .. }
            | EventKind::TimerFired { task } => Some(task),
            EventKind::Thread { .. }
            | EventKind::Park
            | EventKind::Unpark
            | EventKind::Dropped { .. }
            | EventKind::Mark { .. }
            | EventKind::Queues(_) => None,
        }
    }

    /// The poll context this event says, if any: a `context` event's, or the
    /// one a poll's end carries.
    ///
    /// ```
    /// use looptrace_wire::EventKind;
    /// let end = EventKind::PollEnd { task: 3, ready: false, clones: 0, drops: 0, context: Some("GET /a".into()) };
    /// assert_eq!(end.context().map(|(t, l)| (t, &**l)), Some((3, "GET /a")));
    /// ```
    pub fn context(&self) -> Option<(TaskId, &std::sync::Arc<str>)> {
        match self {
            EventKind::Context { task, label }
            | EventKind::PollEnd {
                task,
                context: Some(label),
                ..
            } => Some((*task, label)),
            _ => None,
        }
    }

    /// The stable, lower-case name used in JSONL and the viewer API.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Thread { .. } => "thread",
            EventKind::Spawn(_) => "spawn",
            EventKind::Terminate { .. } => "terminate",
            EventKind::PollStart { .. } => "poll_start",
            EventKind::PollEnd { .. } => "poll_end",
            EventKind::Waker {
                op: WakeOp::Wake | WakeOp::WakeByRef,
                ..
            } => "wake",
            EventKind::Waker {
                op: WakeOp::Clone, ..
            } => "waker_clone",
            EventKind::Waker {
                op: WakeOp::Drop, ..
            } => "waker_drop",
            EventKind::Park => "park",
            EventKind::Unpark => "unpark",
            EventKind::BlockingStart { .. } => "blocking_start",
            EventKind::BlockingEnd { .. } => "blocking_end",
            EventKind::TimerArmed { .. } => "timer_armed",
            EventKind::TimerFired { .. } => "timer_fired",
            EventKind::Dropped { .. } => "dropped",
            EventKind::Mark { .. } => "mark",
            EventKind::TaskState { .. } => "task_state",
            EventKind::Context { .. } => "context",
            EventKind::Queues(_) => "queues",
        }
    }
}

/// Their JSON spellings.
macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(Flavor, Outcome, TaskState);

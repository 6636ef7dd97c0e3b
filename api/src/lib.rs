//! looptrace's viewer protocol, defined once (as tokio-console's `console-api`):
//! what a collector sends its viewers (the browser page, the terminal dashboard,
//! anything reading `ws://HOST:PORT/ws/view` or `/api/...`), and what they ask.
//!
//! Messages are JSON, tagged by `type` ([`Message`]); requests by `op`
//! ([`Request`]). [`schema`] is their JSON Schema, checked into the repository's
//! `docs/` and tested against what the collector really sends.
//!
//! ```
//! use looptrace_api::{Message, Request, WakeSource};
//! let r: Request = serde_json::from_str(r#"{"op":"subscribe","session":1}"#).unwrap();
//! assert_eq!(r, Request::Subscribe { session: Some(1) });
//! let m: Message = serde_json::from_str(r#"{"type":"lagged","skipped":3}"#).unwrap();
//! assert_eq!(m, Message::Lagged { skipped: 3 });
//! assert_eq!(serde_json::to_string(&WakeSource::Task(7)).unwrap(), r#""task:7""#);
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The event model's types viewers see too, defined once in `looptrace-wire`.
pub use looptrace_wire::{Flavor, Note, Outcome, TaskId, TaskKind, TaskState, WakeSource};

pub type SessionId = u64;

/// What a viewer asks, on the viewer socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Live updates of one session, or of every session (`session` absent).
    Subscribe {
        #[serde(default)]
        session: Option<SessionId>,
    },
    /// No more live updates.
    Unsubscribe,
    /// A time window, at full detail or aggregated (see [`WindowReply`]).
    Window {
        /// Echoed in the reply, to match it.
        #[serde(default)]
        id: Option<u64>,
        session: SessionId,
        start_ns: u64,
        end_ns: u64,
        /// Full detail up to this many intervals (at most 100 000), else buckets.
        #[serde(default = "default_max_intervals")]
        max_intervals: usize,
        /// Buckets of an aggregated window (at most 10 000).
        #[serde(default = "default_buckets")]
        buckets: usize,
    },
    /// Replay control (replays only).
    Replay {
        action: ReplayAction,
        #[serde(default)]
        speed: Option<f64>,
    },
    /// Everything known about a session now.
    Snapshot { session: SessionId },
    /// One task in detail.
    Task { session: SessionId, task: TaskId },
}

fn default_max_intervals() -> usize {
    20_000
}

fn default_buckets() -> usize {
    1000
}

/// What a replay control request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReplayAction {
    Pause,
    Play,
    /// Sets the speed (with `speed`).
    Speed,
}

/// What a collector sends a viewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Every session: on connect, and whenever one connects, disconnects, changes
    /// its note, or the memory budget takes something.
    Sessions {
        sessions: Vec<SessionSummary>,
        /// The replay's state when the collector serves one.
        replay: Option<ReplayState>,
    },
    Subscribed {
        session: Option<SessionId>,
    },
    Unsubscribed,
    /// What a batch of ingested events changed, for a subscribed viewer.
    Batch(Batch),
    /// The reply to a window request.
    Window(WindowMessage),
    /// The reply to a snapshot request.
    Snapshot(Snapshot),
    /// The reply to a task request.
    Task(TaskMessage),
    /// Every second, for a subscribed viewer.
    Stats(Stats),
    Replay {
        replay: ReplayState,
    },
    /// This viewer read too slowly and missed updates.
    Lagged {
        skipped: u64,
    },
    Error {
        /// The window request's `id`, when it was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        message: String,
    },
}

/// A replay's controls.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReplayState {
    pub paused: bool,
    pub speed: f64,
}

/// Where a session's events come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A traced app streaming live.
    Live,
    /// `looptrace replay`.
    Replay,
    /// The app's own process (embedded collector).
    Embedded,
    /// A tokio-console server (`looptrace attach`): coarser than native capture.
    Console,
}

/// What a session's model gave up to stay within the memory budget (zeros:
/// nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GivenUp {
    /// Finished tasks forgotten to save memory (besides the usual oldest of
    /// 10 000).
    pub finished_tasks: u64,
    /// Live tasks whose histograms were dropped.
    pub histograms: u64,
    /// Live tasks folded into their spawn location.
    pub folded_tasks: u64,
}

/// A session in the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionSummary {
    pub id: SessionId,
    pub process: String,
    pub pid: u32,
    pub flavor: Flavor,
    pub workers: u32,
    /// Unix time (ns) of the session's `ts_ns == 0`.
    pub clock_origin_unix_ns: u64,
    pub source: Source,
    /// `native`, or what a coarser source leaves out.
    pub capture: String,
    pub connected_unix_ns: u64,
    pub disconnected_unix_ns: Option<u64>,
    pub live: bool,
    /// Time of the latest event.
    pub now_ns: u64,
    pub events: u64,
    pub retained_events: u64,
    pub store_bytes: u64,
    pub model_bytes: u64,
    pub evicted_events: u64,
    pub dropped_events: u64,
    pub bad_frames: u64,
    pub tasks: u64,
    pub live_tasks: u64,
    pub folded_tasks: u64,
    pub given_up: GivenUp,
    pub warnings: u64,
    pub warnings_over: u64,
    /// The file this session is recorded to.
    pub recording: Option<String>,
    pub note: Option<Note>,
    /// An earlier session of the same process this one continues.
    pub continues: Option<SessionId>,
}

/// A task's wakes by source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WakeCounts {
    /// By another task.
    pub task: u64,
    /// By itself.
    #[serde(rename = "self")]
    pub own: u64,
    pub timer: u64,
    pub io: u64,
    pub blocking: u64,
    pub external: u64,
}

impl WakeCounts {
    pub fn total(&self) -> u64 {
        self.task + self.own + self.timer + self.io + self.blocking + self.external
    }

    /// Counts a wake of task `woken` by `by`.
    pub fn count(&mut self, woken: TaskId, by: WakeSource) {
        match by {
            WakeSource::Task(t) if t == woken => self.own += 1,
            WakeSource::Task(_) => self.task += 1,
            WakeSource::Timer => self.timer += 1,
            WakeSource::Io => self.io += 1,
            WakeSource::Blocking => self.blocking += 1,
            WakeSource::External => self.external += 1,
        }
    }

    /// Adds `o`'s counts.
    pub fn add(&mut self, o: &WakeCounts) {
        self.task += o.task;
        self.own += o.own;
        self.timer += o.timer;
        self.io += o.io;
        self.blocking += o.blocking;
        self.external += o.external;
    }
}

/// A task's row: who it is, where it stands, what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TaskSummary {
    pub id: TaskId,
    /// Its given name, else where it was spawned.
    pub name: String,
    pub given_name: Option<String>,
    /// Where it was spawned, `file:line:col`.
    pub location: String,
    pub kind: TaskKind,
    pub parent: Option<TaskId>,
    pub state: TaskState,
    pub state_since_ns: u64,
    pub spawned_ns: u64,
    pub ended_ns: Option<u64>,
    pub outcome: Option<Outcome>,
    pub polls: u64,
    /// Time running, scheduled and idle, its current state counted up to
    /// `as_of_ns` (a viewer adds the time since to the current state's).
    pub busy_ns: u64,
    pub scheduled_ns: u64,
    pub idle_ns: u64,
    pub wakes: WakeCounts,
    pub self_wakes: u64,
    pub longest_poll_ns: u64,
    pub last_poll_ns: Option<u64>,
    /// Null once the histograms were given up to save memory.
    pub poll_p50_ns: Option<u64>,
    pub poll_p99_ns: Option<u64>,
    pub scheduled_p50_ns: Option<u64>,
    pub scheduled_p99_ns: Option<u64>,
    pub size_bytes: Option<u64>,
    /// Its wakers alive (clones not yet dropped or consumed).
    pub live_wakers: i64,
    /// The thread of its last poll.
    pub thread: Option<u32>,
    pub warnings: u32,
    pub lifetime_ns: u64,
    /// The session's present when these figures were taken (see [`Stats`]).
    #[serde(default)]
    pub as_of_ns: u64,
    /// What the app was doing in the latest poll that entered one of its
    /// `tracing` spans (e.g. `GET /blocking`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

/// Which detector raised a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    BlockingPoll,
    SchedulingLatency,
    LostWaker,
    NeverYields,
    SelfWakeStorm,
    LargeFuture,
    TaskLeak,
}

impl WarningKind {
    /// Every kind.
    pub const ALL: [WarningKind; 7] = [
        WarningKind::BlockingPoll,
        WarningKind::SchedulingLatency,
        WarningKind::LostWaker,
        WarningKind::NeverYields,
        WarningKind::SelfWakeStorm,
        WarningKind::LargeFuture,
        WarningKind::TaskLeak,
    ];

    /// Why a finding of this kind matters, in plain words.
    pub fn why(self) -> &'static str {
        match self {
            WarningKind::BlockingPoll => "While one poll runs, its worker runs nothing else: every other task on that worker waits, and its timers and I/O are served late.",
            WarningKind::SchedulingLatency => "The task was woken but waited for a worker: whatever it serves (a request, a heartbeat) was late by this much.",
            WarningKind::LostWaker => "The task returned Pending and nothing can wake it: it will never run again, and whatever awaits it hangs.",
            WarningKind::NeverYields => "This poll is still running: its worker is blocked right now, and every task queued on it waits.",
            WarningKind::SelfWakeStorm => "The task wakes itself over and over: it keeps a worker busy without waiting for anything.",
            WarningKind::LargeFuture => "A large future is copied when it is spawned and moved, and holds that much memory for as long as the task lives.",
            WarningKind::TaskLeak => "Tasks are spawned faster than they finish: memory grows until the process fails.",
        }
    }

    /// What to do about a finding of this kind.
    pub fn fix(self) -> &'static str {
        match self {
            WarningKind::BlockingPoll | WarningKind::NeverYields => "Move blocking or CPU-heavy work to tokio::task::spawn_blocking (or a thread of its own), use the async form of blocking calls (tokio::time::sleep, tokio::fs), or break long loops with tokio::task::yield_now().await.",
            WarningKind::SchedulingLatency => "Look at what ran on the workers meanwhile (a blocking or long poll, many ready tasks); move heavy work off the workers or give the runtime more of them.",
            WarningKind::LostWaker => "A hand-written future must keep cx.waker() (cloned) before it returns Pending and call wake() when it can make progress: check every path that returns Pending.",
            WarningKind::SelfWakeStorm => "Wait for the event itself (a channel, a Notify, a timer) rather than waking the task to check again.",
            WarningKind::LargeFuture => "Box the large parts (Box::pin the future, or keep big buffers on the heap).",
            WarningKind::TaskLeak => "Make sure spawned tasks end (timeouts, cancellation when a client goes away) and that their JoinHandles are awaited or aborted.",
        }
    }

    /// Its JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::BlockingPoll => "blocking_poll",
            WarningKind::SchedulingLatency => "scheduling_latency",
            WarningKind::LostWaker => "lost_waker",
            WarningKind::NeverYields => "never_yields",
            WarningKind::SelfWakeStorm => "self_wake_storm",
            WarningKind::LargeFuture => "large_future",
            WarningKind::TaskLeak => "task_leak",
        }
    }
}

/// A string that is not a warning kind's spelling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a warning kind: {0:?} (blocking_poll, scheduling_latency, lost_waker, never_yields, self_wake_storm, large_future, task_leak)")]
pub struct NotAWarningKind(pub String);

impl std::str::FromStr for WarningKind {
    type Err = NotAWarningKind;
    /// Its JSON spelling: `"blocking_poll".parse()`.
    fn from_str(s: &str) -> Result<Self, NotAWarningKind> {
        WarningKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| NotAWarningKind(s.chars().take(40).collect()))
    }
}

/// A warning: a pattern worth a look, with its task and the moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Warning {
    pub id: usize,
    pub kind: WarningKind,
    pub task: Option<TaskId>,
    pub task_name: Option<String>,
    /// When it was first seen.
    pub at_ns: u64,
    /// When it was last seen.
    pub last_ns: u64,
    /// Times seen.
    pub count: u64,
    /// The measured value that crossed the threshold (ns, bytes or tasks).
    pub value: u64,
    pub message: String,
    /// What the task was doing in the poll it is about: the app's `tracing` span
    /// entered in that poll (e.g. `GET /blocking`), when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Why it matters ([`WarningKind::why`]).
    #[serde(default)]
    pub why: String,
    /// What to do about it ([`WarningKind::fix`]).
    #[serde(default)]
    pub fix: String,
    /// Taken back: what it said did not hold (a never-yielding poll that ended is
    /// one blocking poll; a task thought to have lost its waker was woken).
    /// Viewers leave withdrawn warnings out; they keep their id.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
}

/// A moment the traced program labelled (`looptrace::mark`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Mark {
    pub at_ns: u64,
    pub thread: u32,
    pub label: String,
}

/// A stretch of time a task spent in one state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Interval {
    pub task: TaskId,
    pub start_ns: u64,
    pub end_ns: u64,
    pub state: TaskState,
    /// Running: the thread polling it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<u32>,
    /// Running: whether the poll returned Ready (absent while unfinished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// Scheduled: who woke it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub woken_by: Option<WakeSource>,
    /// Running: the app's `tracing` span entered in this poll (e.g. `GET /blocking`).
    // Shared, not copied: a live viewer is sent every poll of every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<std::sync::Arc<str>>,
    /// Running: the thread of the task's previous poll, when that was another
    /// thread (the task was stolen by, or moved to, another worker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<u32>,
}

/// A wake: from its source, at `at_ns`, to the task's next poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WakeArrow {
    pub task: TaskId,
    pub at_ns: u64,
    pub by: WakeSource,
    /// The waking thread.
    pub thread: u32,
    /// When the woken task was next polled.
    pub polled_ns: Option<u64>,
}

/// What a worker did: polled `task`, or was parked (`task` null).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WorkerSpan {
    pub thread: u32,
    pub start_ns: u64,
    pub end_ns: u64,
    pub task: Option<TaskId>,
}

/// A point on a task's lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MarkerKind {
    Spawn,
    Terminate,
    TimerArmed,
    TimerFired,
    /// tokio reports I/O readiness only as the wake it causes.
    IoReady,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
/// A point event on a task's lane, at `at_ns`.
pub struct Marker {
    pub task: TaskId,
    pub at_ns: u64,
    pub kind: MarkerKind,
}

/// Everything in a time window, at full detail.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Window {
    pub start_ns: u64,
    pub end_ns: u64,
    /// Events up to this time are in; states still open then were closed here.
    pub until_ns: u64,
    pub intervals: Vec<Interval>,
    pub wakes: Vec<WakeArrow>,
    pub workers: Vec<WorkerSpan>,
    pub markers: Vec<Marker>,
    /// The scheduler's queues as sampled in the window (when the app samples
    /// them): each worker's local queue and steals so far, the injection queue.
    #[serde(default)]
    pub queues: Vec<QueueSample>,
}

/// The scheduler's queues at a moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct QueueSample {
    pub at_ns: u64,
    /// Per worker, by index: tasks in its local run queue.
    pub local: Vec<u32>,
    /// Per worker, by index: steals so far.
    pub steals: Vec<u64>,
    /// Tasks in the injection queue.
    pub injection: u32,
}

/// A window summarised into equal time buckets, for zoomed-out views.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Aggregate {
    pub start_ns: u64,
    pub end_ns: u64,
    pub until_ns: u64,
    pub bucket_ns: u64,
    pub tasks: Vec<TaskBuckets>,
    pub workers: Vec<WorkerBuckets>,
    /// Wakes per bucket, by any source.
    pub wakes: Vec<u32>,
    /// The scheduler's queues per bucket, when the app samples them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queues: Option<QueueBuckets>,
}

/// Per bucket: the deepest each worker's local run queue was (the depth last
/// sampled carries over buckets without a sample), its steals in the bucket,
/// and the deepest the injection queue was.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct QueueBuckets {
    /// Per worker, by index: per bucket.
    pub local: Vec<Vec<u32>>,
    /// Per worker, by index: steals per bucket.
    pub steals: Vec<Vec<u32>>,
    pub injection: Vec<u32>,
}

/// Per bucket: the share of it a task spent running and scheduled, its polls and
/// the wakes it received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TaskBuckets {
    pub task: TaskId,
    pub running: Vec<f32>,
    pub scheduled: Vec<f32>,
    pub polls: Vec<u32>,
    pub wakes: Vec<u32>,
}

/// Per bucket: the share of it a worker spent polling, and parked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WorkerBuckets {
    pub thread: u32,
    pub busy: Vec<f32>,
    pub parked: Vec<f32>,
}

/// A window at the level of detail it was asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "detail", rename_all = "snake_case")]
pub enum WindowReply {
    Full(Window),
    Aggregate(Aggregate),
}

/// A window reply on the viewer socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WindowMessage {
    /// The request's `id`.
    pub id: Option<u64>,
    pub session: SessionId,
    #[serde(flatten)]
    pub window: WindowReply,
}

/// One event as JSON (the JSONL export's lines): `kind`, `ts_ns`, `thread`,
/// `worker`, `task` where it applies, and the kind's own fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EventLine {
    pub kind: String,
    pub ts_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<u32>,
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// What a batch of ingested events changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Batch {
    pub session: SessionId,
    pub now_ns: u64,
    pub event_count: u64,
    /// Tasks the batch changed, as they stand now.
    pub tasks: Vec<TaskSummary>,
    /// Warnings it raised.
    pub warnings: Vec<Warning>,
    /// Moments it labelled (always sent).
    pub marks: Vec<Mark>,
    /// The events, and what they closed (absent in a batch too big for them:
    /// then `events_skipped` says how many, and a window request fills in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventLine>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervals: Option<Vec<Interval>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<Vec<WorkerSpan>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wakes: Option<Vec<WakeArrow>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markers: Option<Vec<Marker>>,
    /// Samples of the scheduler's queues in the batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queues: Option<Vec<QueueSample>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_skipped: Option<u64>,
}

/// Everything known about a session now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Snapshot {
    pub session: SessionId,
    /// How many tasks the session has (the snapshot carries at most 5000).
    pub tasks_total: u64,
    pub tasks: Vec<TaskSummary>,
    pub warnings: Vec<Warning>,
    pub marks: Vec<Mark>,
    pub stats: Stats,
}

/// One poll in a task's detail, with who woke the task before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Poll {
    pub start_ns: u64,
    pub duration_ns: u64,
    pub ready: Option<bool>,
    pub thread: Option<u32>,
    pub woken_by: Option<WakeSource>,
}

/// One task in detail (`/api/sessions/{id}/tasks/{task}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TaskDetail {
    #[serde(flatten)]
    pub task: TaskSummary,
    /// `[upper bound ns, count]`, log-spaced.
    pub poll_histogram: Vec<(u64, u64)>,
    pub scheduled_histogram: Vec<(u64, u64)>,
    /// The histograms were given up to save memory.
    pub histograms_dropped: bool,
    pub warning_list: Vec<Warning>,
}

/// A task's detail on the viewer socket, with its recent polls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TaskMessage {
    pub session: SessionId,
    #[serde(flatten)]
    pub detail: TaskDetail,
    /// Its last 20 polls.
    pub recent_polls: Vec<Poll>,
}

/// A worker thread's figures, what it is doing now counted up to now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WorkerStats {
    pub thread: u32,
    pub index: u32,
    pub name: String,
    pub busy_ns: u64,
    pub parked_ns: u64,
    pub polls: u64,
    pub migrations: u64,
    /// Busy share of its life so far.
    pub utilization: f64,
    /// The task it polls now.
    pub running: Option<TaskId>,
    /// Parked now.
    pub parked: bool,
    /// Since when it has been polling, parked, or between the two.
    #[serde(default)]
    pub state_since_ns: u64,
    /// Tasks in its local run queue at the latest sample of the scheduler's
    /// queues, and the most seen (0 when the app sends no samples).
    #[serde(default)]
    pub queue_depth: u32,
    #[serde(default)]
    pub max_queue_depth: u32,
    /// Times it stole tasks from another worker so far.
    #[serde(default)]
    pub steals: u64,
}

/// A session's event history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StoreStats {
    pub retained_events: u64,
    pub evicted_events: u64,
    pub memory_bytes: u64,
    pub checkpoint_bytes: u64,
    pub bytes_per_event: f64,
}

/// Where a model's memory goes, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ModelMemory {
    pub tasks: u64,
    pub histograms: u64,
    pub folded: u64,
    pub names: u64,
    pub warnings: u64,
    pub other: u64,
}

impl ModelMemory {
    pub fn total(&self) -> u64 {
        self.tasks + self.histograms + self.folded + self.names + self.warnings + self.other
    }
}

/// Live tasks folded into their spawn location to save memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Folded {
    pub name: String,
    pub location: String,
    pub tasks: u64,
    pub polls: u64,
    pub busy_ns: u64,
    pub scheduled_ns: u64,
    pub idle_ns: u64,
    pub wakes: WakeCounts,
}

/// A session's model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ModelStats {
    pub memory: ModelMemory,
    pub memory_bytes: u64,
    pub given_up: GivenUp,
    pub folded_tasks: u64,
    /// Where folded tasks were spawned, the most first (at most 20).
    pub folded: Vec<Folded>,
}

/// A session's figures (`/api/sessions/{id}/stats`, and every second to
/// subscribed viewers), as of `now_ns`: the latest event, or while a live app is
/// connected its clock now (estimated), so that what goes on is counted up to
/// the present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Stats {
    pub session: SessionId,
    pub now_ns: u64,
    pub events: u64,
    pub dropped_events: u64,
    pub tasks: u64,
    pub live_tasks: u64,
    pub tasks_by_state: BTreeMap<TaskState, u64>,
    pub workers: Vec<WorkerStats>,
    /// Tasks in the injection queue (the scheduler's shared one) at the latest
    /// sample of its queues.
    #[serde(default)]
    pub injection_queue_depth: u32,
    pub warnings: u64,
    pub store: StoreStats,
    pub model: ModelStats,
}

/// The collector's own counters (`/api/sessions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Counters {
    pub frames: u64,
    pub events: u64,
    /// Encoded bytes of the event frames ingested.
    pub bytes: u64,
    pub bad_frames: u64,
    pub rejected_connections: u64,
    pub evicted_events: u64,
    /// Updates viewers missed by reading too slowly.
    pub viewer_lagged: u64,
}

/// `/api/sessions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionList {
    pub sessions: Vec<SessionSummary>,
    pub counters: Counters,
}

/// `/api/sessions/{id}/tasks`: a page of the tasks (by id), and how many match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TaskPage {
    pub session: SessionId,
    pub total: u64,
    pub offset: u64,
    pub tasks: Vec<TaskSummary>,
}

/// `/api/sessions/{id}/warnings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WarningList {
    pub session: SessionId,
    pub warnings: Vec<Warning>,
}

/// `/api/sessions/{id}/marks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MarkList {
    pub session: SessionId,
    pub marks: Vec<Mark>,
}

/// `/api/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Health {
    pub ok: bool,
}

/// Every API error's body, with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErrorBody {
    pub error: String,
}

/// The JSON Schema of the viewer protocol: what the viewer socket carries
/// (`Message`, `Request`) and what the REST API answers, as one document.
///
/// ```
/// let schema = looptrace_api::schema();
/// assert!(schema["properties"]["message"].is_object());
/// ```
#[cfg(feature = "schema")]
pub fn schema() -> serde_json::Value {
    /// Not a message: the document's root, naming each part.
    #[derive(schemars::JsonSchema)]
    #[allow(dead_code)]
    struct ViewerProtocol {
        /// On `/ws/view`, from the collector.
        message: Message,
        /// On `/ws/view`, from a viewer.
        request: Request,
        /// `/api/sessions`.
        sessions: SessionList,
        /// `/api/sessions/{id}/tasks`.
        tasks: TaskPage,
        /// `/api/sessions/{id}/tasks/{task}`.
        task: TaskDetail,
        /// `/api/sessions/{id}/warnings`.
        warnings: WarningList,
        /// `/api/sessions/{id}/marks`.
        marks: MarkList,
        /// `/api/sessions/{id}/stats`.
        stats: Stats,
        /// `/api/sessions/{id}/window`.
        window: WindowReply,
        /// `/api/health`.
        health: Health,
        /// Any error reply.
        error: ErrorBody,
    }
    let mut s =
        serde_json::to_value(schemars::schema_for!(ViewerProtocol)).expect("a schema is JSON");
    s["title"] = "looptrace viewer protocol".into();
    s["description"] = "What a looptrace collector sends its viewers on /ws/view (messages, tagged by type), what they ask (requests, tagged by op), and what the REST API answers. Each property of this document's root names one of them.".into();
    s
}

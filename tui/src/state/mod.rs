//! What the terminal UI knows, built from the collector's viewer messages.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A session as the collector lists it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SessionInfo {
    pub id: u64,
    pub process: String,
    pub pid: u32,
    pub flavor: String,
    pub workers: u32,
    pub live: bool,
    pub source: String,
    pub capture: String,
    pub now_ns: u64,
    /// A text the traced program put beside its session (a demo's lesson).
    pub note: Option<Note>,
}

/// A moment the traced program labelled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Mark {
    pub at_ns: u64,
    pub label: String,
}

pub use looptrace_wire::Note;

/// Wakes of a task by source.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Wakes {
    pub task: u64,
    #[serde(rename = "self")]
    pub own: u64,
    pub timer: u64,
    pub io: u64,
    pub blocking: u64,
    pub external: u64,
}

impl Wakes {
    pub fn total(&self) -> u64 {
        self.task + self.own + self.timer + self.io + self.blocking + self.external
    }
}

/// A task's row.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Task {
    pub id: u64,
    pub name: String,
    pub location: String,
    pub state: String,
    pub state_since_ns: u64,
    pub spawned_ns: u64,
    pub ended_ns: Option<u64>,
    pub outcome: Option<String>,
    pub polls: u64,
    pub busy_ns: u64,
    pub scheduled_ns: u64,
    pub idle_ns: u64,
    pub wakes: Wakes,
    pub longest_poll_ns: u64,
    pub last_poll_ns: Option<u64>,
    pub warnings: u64,
    pub lifetime_ns: u64,
    pub size_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Warning {
    pub id: u64,
    pub kind: String,
    pub task: Option<u64>,
    pub task_name: Option<String>,
    pub at_ns: u64,
    pub count: u64,
    pub message: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Worker {
    pub thread: u32,
    pub index: u32,
    pub busy_ns: u64,
    pub parked_ns: u64,
    pub polls: u64,
    pub migrations: u64,
    pub utilization: f64,
    pub running: Option<u64>,
    pub parked: bool,
}

/// One poll in a task's detail.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Poll {
    pub start_ns: u64,
    pub duration_ns: u64,
    pub ready: Option<bool>,
    pub woken_by: Option<String>,
}

/// A task in detail.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Detail {
    #[serde(flatten)]
    pub task: Task,
    pub poll_histogram: Vec<(u64, u64)>,
    pub scheduled_histogram: Vec<(u64, u64)>,
    pub recent_polls: Vec<Poll>,
}

/// Per bucket shares of a task's time, from an aggregated window.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TaskBuckets {
    pub task: u64,
    pub running: Vec<f32>,
    pub scheduled: Vec<f32>,
    pub wakes: Vec<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WorkerBuckets {
    pub thread: u32,
    pub busy: Vec<f32>,
    pub parked: Vec<f32>,
}

/// A time window summarised into one bucket per terminal column.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Timeline {
    pub start_ns: u64,
    pub end_ns: u64,
    pub until_ns: u64,
    pub bucket_ns: u64,
    pub tasks: Vec<TaskBuckets>,
    pub workers: Vec<WorkerBuckets>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Replay {
    pub paused: bool,
    pub speed: f64,
}

/// Everything, as of the last message.
#[derive(Debug, Default)]
pub struct State {
    pub sessions: Vec<SessionInfo>,
    pub session: Option<u64>,
    pub tasks: BTreeMap<u64, Task>,
    pub warnings: Vec<Warning>,
    /// Moments the program labelled (`looptrace::mark`), in time order.
    pub marks: Vec<Mark>,
    pub workers: Vec<Worker>,
    pub now_ns: u64,
    pub replay: Option<Replay>,
    pub timeline: Option<Timeline>,
    pub detail: Option<Detail>,
    pub connected: bool,
    /// Updates missed because this viewer fell behind.
    pub lagged: u64,
}

impl State {
    /// The session shown.
    pub fn current(&self) -> Option<&SessionInfo> {
        self.sessions.iter().find(|s| Some(s.id) == self.session)
    }

    /// Applies one message from the collector. Returns the session to subscribe
    /// to, when one is chosen.
    pub fn apply(&mut self, msg: &Value) -> Option<u64> {
        match msg["type"].as_str()? {
            "sessions" => {
                self.sessions = serde_json::from_value(msg["sessions"].clone()).unwrap_or_default();
                if let Some(r) = msg.get("replay") {
                    self.replay = serde_json::from_value(r.clone()).ok();
                }
                let still_there = self
                    .session
                    .is_some_and(|id| self.sessions.iter().any(|s| s.id == id));
                if !still_there {
                    let pick = self
                        .sessions
                        .iter()
                        .rev()
                        .find(|s| s.live)
                        .or_else(|| self.sessions.last())?
                        .id;
                    self.choose(pick);
                    return Some(pick);
                }
                if let Some(s) = self.current() {
                    self.now_ns = self.now_ns.max(s.now_ns);
                }
            }
            "snapshot" if msg["session"].as_u64() == self.session => {
                self.tasks.clear();
                for t in msg["tasks"].as_array()? {
                    if let Ok(t) = serde_json::from_value::<Task>(t.clone()) {
                        self.tasks.insert(t.id, t);
                    }
                }
                self.warnings = serde_json::from_value(msg["warnings"].clone()).unwrap_or_default();
                self.marks = serde_json::from_value(msg["marks"].clone()).unwrap_or_default();
                self.apply_stats(&msg["stats"]);
            }
            "batch" if msg["session"].as_u64() == self.session => {
                self.now_ns = self.now_ns.max(msg["now_ns"].as_u64().unwrap_or(0));
                for t in msg["tasks"].as_array()? {
                    if let Ok(t) = serde_json::from_value::<Task>(t.clone()) {
                        self.tasks.insert(t.id, t);
                    }
                }
                if let Ok(marks) = serde_json::from_value::<Vec<Mark>>(msg["marks"].clone()) {
                    self.marks.extend(marks);
                }
                for w in msg["warnings"].as_array().into_iter().flatten() {
                    if let Ok(w) = serde_json::from_value::<Warning>(w.clone()) {
                        match self.warnings.iter_mut().find(|x| x.id == w.id) {
                            Some(x) => *x = w,
                            None => self.warnings.push(w),
                        }
                    }
                }
            }
            "stats" if msg["session"].as_u64() == self.session => self.apply_stats(msg),
            "window" if msg["session"].as_u64() == self.session && msg["detail"] == "aggregate" => {
                self.timeline = serde_json::from_value(msg.clone()).ok();
            }
            "task" if msg["session"].as_u64() == self.session => {
                self.detail = serde_json::from_value(msg.clone()).ok();
            }
            "replay" => self.replay = serde_json::from_value(msg["replay"].clone()).ok(),
            "lagged" => self.lagged += msg["skipped"].as_u64().unwrap_or(0),
            _ => {}
        }
        None
    }

    fn apply_stats(&mut self, s: &Value) {
        self.now_ns = self.now_ns.max(s["now_ns"].as_u64().unwrap_or(0));
        if let Ok(w) = serde_json::from_value(s["workers"].clone()) {
            self.workers = w;
        }
    }

    /// Switches to another session: what was known of the last one goes.
    pub fn choose(&mut self, id: u64) {
        if self.session != Some(id) {
            self.session = Some(id);
            self.tasks.clear();
            self.warnings.clear();
            self.marks.clear();
            self.workers.clear();
            self.timeline = None;
            self.detail = None;
            self.now_ns = 0;
        }
    }
}

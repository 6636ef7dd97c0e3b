//! What the terminal UI knows, built from the collector's viewer messages (the
//! typed protocol of [`looptrace_api`]: a renamed field fails to parse, it does
//! not show as zeros).

use looptrace_api::{
    Aggregate, Mark, Message, ReplayState, SessionId, SessionSummary, TaskId, TaskMessage,
    TaskSummary, Warning, WindowReply, WorkerStats,
};
use std::collections::BTreeMap;

/// Everything, as of the last message.
#[derive(Debug, Default)]
pub struct State {
    pub sessions: Vec<SessionSummary>,
    pub session: Option<SessionId>,
    pub tasks: BTreeMap<TaskId, TaskSummary>,
    pub warnings: Vec<Warning>,
    /// Moments the program labelled (`looptrace::mark`), in time order.
    pub marks: Vec<Mark>,
    pub workers: Vec<WorkerStats>,
    pub now_ns: u64,
    pub replay: Option<ReplayState>,
    /// The timeline, one bucket per terminal column.
    pub timeline: Option<Aggregate>,
    pub detail: Option<TaskMessage>,
    pub connected: bool,
    /// Updates missed because this viewer fell behind.
    pub lagged: u64,
    /// The last error the collector reported, and when (shown for a while).
    pub error: Option<(String, std::time::Instant)>,
}

impl State {
    /// The session shown.
    pub fn current(&self) -> Option<&SessionSummary> {
        self.sessions.iter().find(|s| Some(s.id) == self.session)
    }

    /// Applies one message from the collector. Returns the session to subscribe
    /// to, when one is chosen.
    pub fn apply(&mut self, msg: Message) -> Option<SessionId> {
        let mine = |s: SessionId| Some(s) == self.session;
        match msg {
            Message::Sessions { sessions, replay } => {
                self.sessions = sessions;
                self.replay = replay;
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
            Message::Snapshot(snap) if mine(snap.session) => {
                self.tasks = snap.tasks.into_iter().map(|t| (t.id, t)).collect();
                self.warnings = snap.warnings;
                self.marks = snap.marks;
                self.now_ns = self.now_ns.max(snap.stats.now_ns);
                self.workers = snap.stats.workers;
            }
            Message::Batch(batch) if mine(batch.session) => {
                self.now_ns = self.now_ns.max(batch.now_ns);
                self.tasks
                    .extend(batch.tasks.into_iter().map(|t| (t.id, t)));
                self.marks.extend(batch.marks);
                for w in batch.warnings {
                    if w.withdrawn {
                        // Taken back (it did not hold): no longer shown.
                        self.warnings.retain(|x| x.id != w.id);
                        continue;
                    }
                    match self.warnings.iter_mut().find(|x| x.id == w.id) {
                        Some(x) => *x = w,
                        None => self.warnings.push(w),
                    }
                }
            }
            Message::Stats(stats) if mine(stats.session) => {
                self.now_ns = self.now_ns.max(stats.now_ns);
                self.workers = stats.workers;
            }
            Message::Window(w) if mine(w.session) => {
                // The terminal asks for aggregated windows only (one bucket per column).
                if let WindowReply::Aggregate(a) = w.window {
                    self.timeline = Some(a);
                }
            }
            Message::Task(t) if mine(t.session) => self.detail = Some(t),
            Message::Replay { replay } => self.replay = Some(replay),
            Message::Lagged { skipped } => self.lagged += skipped,
            Message::Error { message, .. } => self.report(message),
            // Another session's, or acknowledgements that change nothing shown.
            Message::Snapshot(_)
            | Message::Batch(_)
            | Message::Stats(_)
            | Message::Window(_)
            | Message::Task(_)
            | Message::Subscribed { .. }
            | Message::Unsubscribed => {}
        }
        None
    }

    /// Shows an error in the status line for a while.
    pub fn report(&mut self, error: String) {
        self.error = Some((error, std::time::Instant::now()));
    }

    /// The error to show now: reported in the last ten seconds.
    pub fn recent_error(&self) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|(_, at)| at.elapsed().as_secs() < 10)
            .map(|(e, _)| e.as_str())
    }

    /// Switches to another session: what was known of the last one goes.
    pub fn choose(&mut self, id: SessionId) {
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

/// A task's time running, scheduled and idle as of `now`: the figures were taken
/// at `as_of_ns`, and its current state has gone on since (a task asleep for a
/// second shows a second idle, not the moment it went idle).
pub fn totals(t: &TaskSummary, now: u64) -> (u64, u64, u64) {
    let more = if t.ended_ns.is_some() {
        0
    } else {
        now.saturating_sub(t.as_of_ns.max(t.state_since_ns))
    };
    let (mut busy, mut scheduled, mut idle) = (t.busy_ns, t.scheduled_ns, t.idle_ns);
    match t.state {
        looptrace_api::TaskState::Running => busy += more,
        looptrace_api::TaskState::Scheduled => scheduled += more,
        looptrace_api::TaskState::Idle => idle += more,
        looptrace_api::TaskState::Done => {}
    }
    (busy, scheduled, idle)
}

//! A readable account of what the event loop does, one line per step:
//! spawns, polls and their outcome, who woke whom, timers, parking, and the
//! warnings where they are found.

use crate::model::{Model, Thresholds};
use crate::session::{display_name, short_location};
use looptrace_wire::{
    Event, EventKind, Header, Outcome, TaskId, ThreadId, ThreadRole, WakeOp, WakeSource,
};
use std::collections::HashMap;

/// Turns events into lines. Keeps the little state it needs (names, poll starts).
#[derive(Default)]
pub struct LiveLog {
    names: HashMap<TaskId, String>,
    roles: HashMap<ThreadId, ThreadRole>,
    poll_started: HashMap<TaskId, u64>,
    /// Also show waker clones and drops.
    pub verbose: bool,
    /// The session's warnings that hold, by when they were found, still to tell.
    findings: std::collections::VecDeque<crate::model::Warning>,
}

impl LiveLog {
    pub fn new() -> LiveLog {
        LiveLog::default()
    }

    /// A log of a whole recording (`events`) that also tells each of its
    /// warnings (with the default thresholds) at the moment it is about: only
    /// those that hold once everything is known (not a never-yielding poll that
    /// then ended, nor a task thought to have lost its waker that was woken).
    pub fn with_warnings(header: Header, events: &[Event]) -> LiveLog {
        let model = Model::from_events(header, Thresholds::default(), events);
        let mut findings: Vec<_> = model.findings().cloned().collect();
        findings.sort_by_key(|w| (w.at_ns, w.id));
        LiveLog {
            findings: findings.into(),
            ..LiveLog::default()
        }
    }

    /// The lines for `e`: its own, if it deserves one, then the warnings about
    /// the moments up to it.
    pub fn lines(&mut self, e: &Event) -> Vec<String> {
        let mut out: Vec<String> = self.line(e).into_iter().collect();
        while self.findings.front().is_some_and(|w| w.at_ns <= e.ts_ns) {
            if let Some(w) = self.findings.pop_front() {
                out.push(warning_line(&w));
            }
        }
        out
    }

    /// Warnings not told yet (about moments after the last event).
    pub fn rest(&mut self) -> Vec<String> {
        self.findings.drain(..).map(|w| warning_line(&w)).collect()
    }

    fn name(&self, task: TaskId) -> String {
        self.names
            .get(&task)
            .cloned()
            .unwrap_or_else(|| format!("task {task}"))
    }

    fn thread(&self, thread: ThreadId) -> String {
        match self.roles.get(&thread) {
            Some(ThreadRole::Worker(i)) => format!("worker {i}"),
            Some(ThreadRole::Blocking) => format!("blocking thread {thread}"),
            _ => format!("thread {thread}"),
        }
    }

    fn by(&self, by: WakeSource) -> String {
        match by {
            WakeSource::Task(t) => self.name(t),
            WakeSource::Timer => "the timer".into(),
            WakeSource::Io => "the I/O driver".into(),
            WakeSource::Blocking => "a spawn_blocking thread".into(),
            WakeSource::External => "a thread outside the runtime".into(),
        }
    }

    /// The line for `e`, if it deserves one.
    pub fn line(&mut self, e: &Event) -> Option<String> {
        let what = match &e.kind {
            EventKind::Thread { role, .. } => {
                self.roles.insert(e.thread, *role);
                return None;
            }
            EventKind::Spawn(spawn) => {
                let looptrace_wire::Spawn {
                    task,
                    name,
                    location,
                    parent,
                    ..
                } = &**spawn;
                let n = display_name(name.as_deref(), location);
                // Tasks named by where they were spawned share names (a server's
                // connections): their lines carry their id.
                let n = if name.is_some() {
                    n
                } else {
                    format!("{n} #{task}")
                };
                self.names.insert(*task, n.clone());
                let from = parent
                    .map(|p| format!(" by {}", self.name(p)))
                    .unwrap_or_default();
                // Unnamed, it is named by where it was spawned already.
                let at = match name {
                    Some(_) => format!(" at {}", short_location(location)),
                    None => String::new(),
                };
                let id = if name.is_some() {
                    format!(" (task {task})")
                } else {
                    String::new()
                };
                format!("spawn    {n}{id}{at}{from}")
            }
            EventKind::PollStart { task } => {
                self.poll_started.insert(*task, e.ts_ns);
                format!("poll     {} on {}", self.name(*task), self.thread(e.thread))
            }
            EventKind::PollEnd {
                task,
                ready,
                clones,
                drops,
                context,
            } => {
                let took = self
                    .poll_started
                    .remove(task)
                    .map(|s| fmt_dur(e.ts_ns.saturating_sub(s)))
                    .unwrap_or_default();
                let wakers = if self.verbose && (*clones > 0 || *drops > 0) {
                    format!(" (cloned its waker {clones}x, dropped {drops})")
                } else {
                    String::new()
                };
                // The poll's context, when it came with the poll's end.
                let within = context
                    .as_ref()
                    .map(|l| format!(" in {l}"))
                    .unwrap_or_default();
                if *ready {
                    format!(
                        "ready    {} returned Ready after {took}{within}{wakers}",
                        self.name(*task)
                    )
                } else {
                    format!(
                        "pending  {} returned Pending after {took}{within}, yielding to the loop{wakers}",
                        self.name(*task)
                    )
                }
            }
            EventKind::Waker { task, op, by } => match op {
                WakeOp::Wake | WakeOp::WakeByRef => {
                    if *by == WakeSource::Task(*task) {
                        format!("wake     {} woke itself", self.name(*task))
                    } else {
                        format!("wake     {} woken by {}", self.name(*task), self.by(*by))
                    }
                }
                WakeOp::Clone if self.verbose => format!(
                    "clone    waker of {} cloned by {}",
                    self.name(*task),
                    self.by(*by)
                ),
                WakeOp::Drop if self.verbose => format!(
                    "drop     waker of {} dropped by {}",
                    self.name(*task),
                    self.by(*by)
                ),
                _ => return None,
            },
            EventKind::Terminate { task, outcome } => match outcome {
                Outcome::Completed => format!("done     {} completed", self.name(*task)),
                Outcome::Cancelled => format!("done     {} was cancelled", self.name(*task)),
                Outcome::Panicked => format!("done     {} panicked", self.name(*task)),
            },
            EventKind::Park => format!("park     {} sleeps: nothing to run", self.thread(e.thread)),
            EventKind::Unpark => format!("unpark   {} wakes up", self.thread(e.thread)),
            EventKind::BlockingStart { task } => format!(
                "blocking {} starts on {}",
                self.name(*task),
                self.thread(e.thread)
            ),
            EventKind::BlockingEnd { task } => format!("blocking {} returns", self.name(*task)),
            EventKind::TimerArmed { task, deadline_ns } => {
                format!(
                    "timer    {} sleeps until {}",
                    self.name(*task),
                    fmt_ts(*deadline_ns)
                )
            }
            EventKind::TimerFired { task } => {
                format!("timer    {}'s timer fires", self.name(*task))
            }
            EventKind::Dropped { count } => format!(
                "dropped  {count} events lost on {} (buffer full)",
                self.thread(e.thread)
            ),
            EventKind::Mark { label } => format!("mark     {label}"),
            EventKind::Queues(q) => {
                if !self.verbose {
                    return None;
                }
                format!("queues   local {:?}, injection {}", q.local, q.injection)
            }
            EventKind::Context { task, label } => {
                format!("context  {} works in {label}", self.name(*task))
            }
            EventKind::TaskState { task, state } => format!(
                "resume   {} is {} (the stream starts over here)",
                self.name(*task),
                state.as_str()
            ),
        };
        Some(format!("{:>10}  {what}", fmt_ts(e.ts_ns)))
    }
}

/// A warning's line: when, its kind, what it says, and what to do.
fn warning_line(w: &crate::model::Warning) -> String {
    let count = if w.count > 1 {
        format!(" (×{})", w.count)
    } else {
        String::new()
    };
    format!(
        "{:>10}  warning  {}{count}: {}\n{:>10}           what to do: {}",
        fmt_ts(w.at_ns),
        w.kind.as_str(),
        w.message,
        "",
        w.fix
    )
}

pub use looptrace_wire::units::{fmt_duration as fmt_dur, fmt_moment as fmt_ts};

//! What a demo's trace says, in the terms its summary needs: tasks by name, when
//! they started and ended relative to the run, how long they waited, what warned.

use looptrace_collector::model::task::Task;
use looptrace_collector::model::Model;
use looptrace_collector::model::{Thresholds, WarningKind};
use looptrace_wire::{Event, Header, Outcome};

/// The derived model of a run, read the way a demo's summary reads it.
pub struct Trace<'a> {
    pub model: &'a Model,
    /// The first spawn: the moment the demo's tasks began.
    pub start_ns: u64,
}

/// The model of a recorded run: every event applied, then the periodic checks at
/// the last moment.
pub fn model_of(header: Header, events: &[Event]) -> Model {
    let mut model = Model::new(header, Thresholds::default());
    for e in events {
        model.apply(e);
    }
    if let Some(last) = events.last() {
        model.tick(last.ts_ns);
    }
    model
}

impl<'a> Trace<'a> {
    pub fn new(model: &'a Model) -> Trace<'a> {
        let start_ns = model
            .tasks
            .values()
            .map(|t| t.spawned_ns)
            .min()
            .unwrap_or(0);
        Trace { model, start_ns }
    }

    /// The task with this name (the first spawned, if several).
    pub fn task(&self, name: &str) -> Option<&'a Task> {
        self.model
            .tasks
            .values()
            .filter(|t| &*t.name == name)
            .min_by_key(|t| (t.spawned_ns, t.id))
    }

    /// Tasks whose name starts with `prefix`, in spawn order.
    pub fn tasks(&self, prefix: &str) -> Vec<&'a Task> {
        let mut v: Vec<&Task> = self
            .model
            .tasks
            .values()
            .filter(|t| t.name.starts_with(prefix))
            .collect();
        v.sort_by_key(|t| (t.spawned_ns, t.id));
        v
    }

    /// Seconds from the start of the run to `ns`.
    pub fn at(&self, ns: u64) -> f64 {
        ns.saturating_sub(self.start_ns) as f64 / 1e9
    }

    /// Seconds from the start of the run to when `t` ended (or to now, if it has not).
    pub fn ended(&self, t: &Task) -> f64 {
        self.at(t.ended_ns.unwrap_or(self.model.now_ns))
    }

    /// Seconds `t` lived, from spawn to end (or to now).
    pub fn lifetime(&self, t: &Task) -> f64 {
        t.ended_ns
            .unwrap_or(self.model.now_ns)
            .saturating_sub(t.spawned_ns) as f64
            / 1e9
    }

    /// Seconds from the first of `tasks` spawned to the last one ended.
    pub fn span(&self, tasks: &[&Task]) -> f64 {
        let start = tasks.iter().map(|t| t.spawned_ns).min().unwrap_or(0);
        let end = tasks
            .iter()
            .map(|t| t.ended_ns.unwrap_or(self.model.now_ns))
            .max()
            .unwrap_or(start);
        end.saturating_sub(start) as f64 / 1e9
    }

    /// The longest a task waited between being woken (or spawned) and being polled, in seconds.
    pub fn longest_wait(&self, t: &Task) -> f64 {
        t.histograms().map_or(0, |h| h.sched.max()) as f64 / 1e9
    }

    /// Its longest single poll, in seconds.
    pub fn longest_poll(&self, t: &Task) -> f64 {
        t.longest_poll_ns as f64 / 1e9
    }

    /// Warnings of this kind raised about `t`.
    pub fn warned(&self, t: &Task, kind: WarningKind) -> usize {
        self.model
            .findings()
            .filter(|w| w.kind == kind && w.task == Some(t.id))
            .count()
    }

    /// All warnings of this kind.
    pub fn warnings(&self, kind: WarningKind) -> usize {
        self.model.findings().filter(|w| w.kind == kind).count()
    }

    /// Whether `t` ended cancelled (aborted, or dropped unfinished).
    pub fn cancelled(&self, t: &Task) -> bool {
        t.outcome == Some(Outcome::Cancelled)
    }

    /// How many worker threads polled anything, and how often a task moved between workers.
    pub fn workers_used(&self) -> (usize, u64) {
        let used = self.model.workers.values().filter(|w| w.polls > 0).count();
        let moves = self.model.workers.values().map(|w| w.migrations).sum();
        (used, moves)
    }
}

/// Seconds, to one decimal (ms below 0.1 s, µs below 1 ms).
pub fn secs(s: f64) -> String {
    if s >= 0.1 {
        format!("{s:.1} s")
    } else if s >= 0.001 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

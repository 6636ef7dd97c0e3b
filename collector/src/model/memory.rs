//! What a session's model costs, and how it gives up detail to stay within the
//! collector's memory budget: oldest detail first.
//!
//! 1. Finished tasks are forgotten, oldest first.
//! 2. The longest-idle live tasks lose their histograms (p50/p99 and the charts);
//!    their counters stay.
//! 3. The longest-idle live tasks are folded into one record per spawn location
//!    (how many, and their summed counters), keeping only which location each
//!    belongs to; one that runs again gets a task record back, counting afresh.
//!
//! A task leak (the very thing the leak warning is for) then costs a few dozen
//! bytes per leaked task, not kilobytes.

use super::task::Task;
use super::Model;
use looptrace_api::{GivenUp, ModelMemory, WakeCounts};
use looptrace_wire::{Lifecycle, TaskId, TaskState};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

/// Strings tasks share: names and spawn locations (a thousand connection tasks
/// spawned at one place hold one copy).
#[derive(Default)]
pub(crate) struct Interner {
    set: FxHashSet<Arc<str>>,
    bytes: usize,
    /// Size at the last sweep: strings no task holds any more are dropped when the
    /// set has doubled since.
    swept: usize,
}

impl Interner {
    pub(crate) fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.set.get(s) {
            return a.clone();
        }
        if self.set.len() >= 2 * self.swept.max(1024) {
            self.set.retain(|a| Arc::strong_count(a) > 1);
            self.bytes = self.set.iter().map(|a| a.len() + STRING_OVERHEAD).sum();
            self.swept = self.set.len();
        }
        let a: Arc<str> = s.into();
        self.bytes += a.len() + STRING_OVERHEAD;
        self.set.insert(a.clone());
        a
    }
}

const STRING_OVERHEAD: usize = 48;
/// A task record and its place in the task map.
const TASK_BYTES: usize = std::mem::size_of::<Task>() + 16;
/// A folded task's entry (its id and its location).
const FOLDED_BYTES: usize = 40;

/// Live tasks folded into their spawn location, to save memory.
#[derive(Debug, Clone)]
pub struct Folded {
    pub name: Arc<str>,
    pub location: Arc<str>,
    /// Tasks folded here and not run since.
    pub tasks: u64,
    pub polls: u64,
    pub busy_ns: u64,
    pub scheduled_ns: u64,
    /// Idle time up to when each was folded.
    pub idle_ns: u64,
    pub wakes: WakeCounts,
}

/// The folded tasks of a model.
#[derive(Default)]
pub(crate) struct Folds {
    pub(crate) by_location: FxHashMap<Arc<str>, Folded>,
    pub(crate) of_task: FxHashMap<TaskId, Arc<str>>,
}

impl Model {
    /// Where this model's memory goes.
    pub fn memory(&self) -> ModelMemory {
        let other = self.marks.len() * (std::mem::size_of::<super::Mark>() + 32)
            + (self.storms.len() + self.flagged_polls.len() + self.running.len()) * 32
            + self.finished.len() * 8
            + self.idle_unchecked.len() * 16;
        ModelMemory {
            tasks: (self.tasks.len() * TASK_BYTES) as u64,
            histograms: self.histogram_bytes as u64,
            folded: (self.folds.of_task.len() * FOLDED_BYTES
                + self.folds.by_location.len() * std::mem::size_of::<Folded>())
                as u64,
            names: self.names.bytes as u64,
            warnings: self.warning_bytes as u64,
            other: other as u64,
        }
    }

    /// Folded tasks, by spawn location.
    pub fn folded(&self) -> impl Iterator<Item = &Folded> {
        self.folds.by_location.values()
    }

    /// How many live tasks are folded.
    pub fn folded_tasks(&self) -> u64 {
        self.folds.of_task.len() as u64
    }

    /// What was given up so far.
    pub fn given_up(&self) -> GivenUp {
        self.given_up
    }

    /// Gives up detail, oldest first (see the module), until the model holds at
    /// most `target` bytes or nothing is left to give up.
    pub fn shrink_to(&mut self, target: usize) {
        let target = target as u64;
        while self.memory().total() > target {
            let Some(old) = self.finished.pop_front() else {
                break;
            };
            if self.remove_task(old).is_some() {
                self.given_up.finished_tasks += 1;
            }
        }
        if self.memory().total() <= target {
            return;
        }
        // Live tasks, longest idle first (idle, then scheduled: running ones are
        // being watched right now).
        let mut idle: Vec<(u8, u64, TaskId)> = self
            .tasks
            .values()
            .filter(|t| t.state() != TaskState::Done && t.state() != TaskState::Running)
            .map(|t| ((t.state() != TaskState::Idle) as u8, t.since_ns(), t.id))
            .collect();
        idle.sort_unstable();
        for &(_, _, id) in &idle {
            if self.memory().total() <= target {
                return;
            }
            if let Some(t) = self.tasks.get_mut(&id) {
                if let Some(h) = t.hist.take() {
                    debug_assert!(self.histogram_bytes >= h.counted);
                    self.histogram_bytes = self.histogram_bytes.saturating_sub(h.counted);
                    self.given_up.histograms += 1;
                }
            }
        }
        for &(_, _, id) in &idle {
            if self.memory().total() <= target {
                return;
            }
            self.fold(id);
        }
    }

    /// Forgets a task's record (it finished, or is being folded).
    pub(crate) fn remove_task(&mut self, id: TaskId) -> Option<Task> {
        let t = self.tasks.remove(&id)?;
        if let Some(h) = &t.hist {
            debug_assert!(self.histogram_bytes >= h.counted);
            self.histogram_bytes = self.histogram_bytes.saturating_sub(h.counted);
        }
        self.storms.remove(&id);
        self.changed.remove(&id);
        self.last_changed = None;
        // A task gone from the model takes its pending findings with it.
        self.lost_pending.remove(&id);
        self.lost_woken.remove(&id);
        for kind in looptrace_api::WarningKind::ALL {
            self.by_task.remove(&(kind, id));
        }
        Some(t)
    }

    /// Folds a live task into its spawn location's record.
    fn fold(&mut self, id: TaskId) {
        let Some(t) = self.remove_task(id) else {
            return;
        };
        let (busy, scheduled, idle) = t.totals_at(self.now_ns);
        let f = self
            .folds
            .by_location
            .entry(t.location.clone())
            .or_insert_with(|| Folded {
                name: t.name.clone(),
                location: t.location.clone(),
                tasks: 0,
                polls: 0,
                busy_ns: 0,
                scheduled_ns: 0,
                idle_ns: 0,
                wakes: WakeCounts::default(),
            });
        f.tasks += 1;
        f.polls += t.polls;
        f.busy_ns += busy;
        f.scheduled_ns += scheduled;
        f.idle_ns += idle;
        f.wakes.add(&t.wakes);
        self.folds.of_task.insert(id, t.location);
        self.given_up.folded_tasks += 1;
    }
}

impl Folds {
    /// A task record for a folded task that does something again: its name and
    /// location back, its counters starting afresh (the old ones stay folded).
    /// `None` if `id` was not folded. Takes the groups rather than the model, so
    /// that a caller may hold the task map meanwhile.
    pub(crate) fn unfold(
        &mut self,
        groups: &mut super::groups::Groups,
        id: TaskId,
        ts: u64,
    ) -> Option<Task> {
        if self.of_task.is_empty() {
            return None;
        }
        let location = self.of_task.remove(&id)?;
        let f = self.by_location.get_mut(&location)?;
        f.tasks = f.tasks.saturating_sub(1);
        let mut t = Task::new(id, ts);
        t.group = groups.of(&f.name);
        t.name = f.name.clone();
        t.location = location;
        t.hist = None;
        t.life = Lifecycle {
            state: Some(TaskState::Idle),
            since_ns: ts,
            ..Lifecycle::default()
        };
        Some(t)
    }
}

//! Totals per task group (a task's name, else its short spawn location) that
//! only ever grow: what the metrics exporters publish. A task's own counters go
//! when it ends or is folded away; a group's stay, so a rate over them is
//! right however short-lived the tasks are.

use looptrace_api::WakeCounts;
use looptrace_wire::{Outcome, TaskId, WakeSource};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Distinct groups followed per session; tasks of any group past these are
/// counted in [`Groups::overflow`] (shown as `other`).
pub const MAX_GROUPS: usize = 1024;

/// Upper bounds of the duration buckets, in seconds (Prometheus' `le`), for
/// poll times and scheduling delays: 10 µs to 1 s, then `+Inf`.
pub const BUCKET_BOUNDS_S: [f64; 11] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
];
const BUCKET_BOUNDS_NS: [u64; 11] = [
    10_000,
    50_000,
    100_000,
    500_000,
    1_000_000,
    5_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
    500_000_000,
    1_000_000_000,
];

/// A histogram of durations over [`BUCKET_BOUNDS_S`]: counts per bucket (not
/// cumulative; the last is `+Inf`) and their sum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets {
    pub counts: [u64; BUCKET_BOUNDS_NS.len() + 1],
    pub sum_ns: u64,
}

impl Buckets {
    pub fn observe(&mut self, ns: u64) {
        // `le`: a value on a bound counts in that bound's bucket.
        let i = BUCKET_BOUNDS_NS.partition_point(|&b| b < ns);
        self.counts[i] += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn add(&mut self, o: &Buckets) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
        self.sum_ns = self.sum_ns.saturating_add(o.sum_ns);
    }
}

/// One group's totals.
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub name: Arc<str>,
    pub spawned: u64,
    pub completed: u64,
    pub cancelled: u64,
    pub panicked: u64,
    /// Polls that ended (with their durations in `poll`).
    pub polls: u64,
    pub busy_ns: u64,
    pub poll: Buckets,
    /// Wake-to-poll delays.
    pub sched: Buckets,
    pub wakes: WakeCounts,
}

impl Group {
    fn named(name: Arc<str>) -> Group {
        Group {
            name,
            ..Group::default()
        }
    }

    /// Adds `o`'s totals (to show several groups as one).
    pub fn add(&mut self, o: &Group) {
        self.spawned += o.spawned;
        self.completed += o.completed;
        self.cancelled += o.cancelled;
        self.panicked += o.panicked;
        self.polls += o.polls;
        self.busy_ns += o.busy_ns;
        self.poll.add(&o.poll);
        self.sched.add(&o.sched);
        self.wakes.add(&o.wakes);
    }
}

/// A session's groups.
#[derive(Debug, Default)]
pub struct Groups {
    list: Vec<Group>,
    index: FxHashMap<Arc<str>, u32>,
    /// Tasks of groups past [`MAX_GROUPS`], and tasks never seen spawned.
    pub overflow: Group,
}

/// The group of tasks not followed by a group of their own.
pub const OTHER: u32 = u32::MAX;

impl Groups {
    /// The group of tasks named `name`, made if new and there is room.
    pub fn of(&mut self, name: &Arc<str>) -> u32 {
        if let Some(&g) = self.index.get(name) {
            return g;
        }
        if self.list.len() >= MAX_GROUPS {
            return OTHER;
        }
        let g = self.list.len() as u32;
        self.list.push(Group::named(name.clone()));
        self.index.insert(name.clone(), g);
        g
    }

    fn get(&mut self, g: u32) -> &mut Group {
        match self.list.get_mut(g as usize) {
            Some(group) => group,
            None => &mut self.overflow,
        }
    }

    pub fn spawned(&mut self, g: u32) {
        self.get(g).spawned += 1;
    }

    pub fn ended(&mut self, g: u32, outcome: Outcome) {
        let group = self.get(g);
        match outcome {
            Outcome::Completed => group.completed += 1,
            Outcome::Cancelled => group.cancelled += 1,
            Outcome::Panicked => group.panicked += 1,
        }
    }

    pub fn polled(&mut self, g: u32, ns: u64) {
        let group = self.get(g);
        group.polls += 1;
        group.busy_ns = group.busy_ns.saturating_add(ns);
        group.poll.observe(ns);
    }

    pub fn waited(&mut self, g: u32, ns: u64) {
        self.get(g).sched.observe(ns);
    }

    pub fn woken(&mut self, g: u32, task: TaskId, by: WakeSource) {
        self.get(g).wakes.count(task, by);
    }

    /// Groups followed (at most [`MAX_GROUPS`]).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The `n` groups with the most busy time, and the rest (overflow included)
    /// summed as one named `other`: at most `n + 1` groups, whatever the number
    /// of task names.
    pub fn top(&self, n: usize) -> (Vec<&Group>, Group) {
        let mut all: Vec<&Group> = self.list.iter().collect();
        all.sort_by(|a, b| b.busy_ns.cmp(&a.busy_ns).then_with(|| a.name.cmp(&b.name)));
        let mut rest = Group::named("other".into());
        rest.add(&self.overflow);
        for g in all.iter().skip(n) {
            rest.add(g);
        }
        all.truncate(n);
        (all, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_count_a_value_on_a_bound_in_that_bucket() {
        let mut b = Buckets::default();
        for ns in [1, 10_000, 10_001, 1_000_000_000, 2_000_000_000] {
            b.observe(ns);
        }
        assert_eq!(b.counts[0], 2, "1 ns and exactly 10 us");
        assert_eq!(b.counts[1], 1);
        assert_eq!(b.counts[10], 1, "exactly 1 s");
        assert_eq!(b.counts[11], 1, "+Inf");
        assert_eq!(b.count(), 5);
    }

    #[test]
    fn ten_thousand_names_make_at_most_n_plus_one_groups() {
        let mut groups = Groups::default();
        for i in 0..10_000u64 {
            let g = groups.of(&format!("task-{i}").into());
            groups.spawned(g);
            groups.polled(g, i);
        }
        assert_eq!(groups.len(), MAX_GROUPS);
        let (top, rest) = groups.top(20);
        assert_eq!(top.len(), 20);
        // The busiest followed group first; nothing lost in the sum.
        assert_eq!(&*top[0].name, format!("task-{}", MAX_GROUPS - 1));
        let shown: u64 = top.iter().map(|g| g.spawned).sum::<u64>() + rest.spawned;
        assert_eq!(shown, 10_000);
        assert_eq!(&*rest.name, "other");
    }
}

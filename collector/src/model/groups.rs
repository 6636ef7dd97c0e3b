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

    /// These counts less `o`'s (counted up to then).
    pub fn since(&self, o: &Buckets) -> Buckets {
        let mut out = self.clone();
        for (a, b) in out.counts.iter_mut().zip(o.counts) {
            *a = a.saturating_sub(b);
        }
        out.sum_ns = out.sum_ns.saturating_sub(o.sum_ns);
        out
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

    /// These totals less `o`'s (the same group's, earlier).
    pub fn since(&self, o: &Group) -> Group {
        let w = |a: u64, b: u64| a.saturating_sub(b);
        let (x, y) = (&self.wakes, &o.wakes);
        Group {
            name: self.name.clone(),
            spawned: w(self.spawned, o.spawned),
            completed: w(self.completed, o.completed),
            cancelled: w(self.cancelled, o.cancelled),
            panicked: w(self.panicked, o.panicked),
            polls: w(self.polls, o.polls),
            busy_ns: w(self.busy_ns, o.busy_ns),
            poll: self.poll.since(&o.poll),
            sched: self.sched.since(&o.sched),
            wakes: WakeCounts {
                task: w(x.task, y.task),
                own: w(x.own, y.own),
                timer: w(x.timer, y.timer),
                io: w(x.io, y.io),
                blocking: w(x.blocking, y.blocking),
                external: w(x.external, y.external),
            },
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
    /// Groups shown as series of their own, for good, each with its totals
    /// last shown within `other` (those stay counted there).
    shown: Vec<(u32, Group)>,
    /// Per group (by index): its totals when `other` last showed them, for
    /// groups not shown on their own.
    in_other: Vec<Option<Group>>,
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

    /// The groups shown as series of their own, and the rest (overflow
    /// included) summed as one named `other`: at most `n + 1` groups, however
    /// many task names. While fewer than `n` are shown, the busiest of the rest
    /// are given series of their own, for good; what `other` already showed of
    /// a group stays counted there, so every total shown only grows (a group
    /// given its series at the first look counts from its start).
    pub fn shown(&mut self, n: usize) -> (Vec<Group>, Group) {
        if self.shown.len() < n {
            let mut rest: Vec<u32> = (0..self.list.len() as u32)
                .filter(|g| !self.shown.iter().any(|(s, _)| s == g))
                .collect();
            rest.sort_by(|&a, &b| {
                let (a, b) = (&self.list[a as usize], &self.list[b as usize]);
                b.busy_ns.cmp(&a.busy_ns).then_with(|| a.name.cmp(&b.name))
            });
            for g in rest.into_iter().take(n - self.shown.len()) {
                let before = self
                    .in_other
                    .get_mut(g as usize)
                    .and_then(Option::take)
                    .unwrap_or_else(|| Group::named(self.list[g as usize].name.clone()));
                self.shown.push((g, before));
            }
        }
        self.in_other.resize(self.list.len(), None);
        let mut other = Group::named(OTHER_NAME.into());
        other.add(&self.overflow);
        let mut out = Vec::new();
        for (i, g) in self.list.iter().enumerate() {
            match self.shown.iter().find(|(s, _)| *s as usize == i) {
                Some((_, before)) => {
                    other.add(before);
                    let mut since = g.since(before);
                    if &*since.name == OTHER_NAME {
                        // A task named so would read as the rest.
                        since.name = format!("{OTHER_NAME} (a task's name)").into();
                    }
                    out.push(since);
                }
                None => {
                    other.add(g);
                    self.in_other[i] = Some(g.clone());
                }
            }
        }
        (out, other)
    }
}

/// The name the groups not shown on their own are summed under.
pub const OTHER_NAME: &str = "other";

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
        let (top, rest) = groups.shown(20);
        assert_eq!(top.len(), 20);
        // The busiest followed groups are shown; nothing lost in the sum.
        assert!(top
            .iter()
            .any(|g| *g.name == *format!("task-{}", MAX_GROUPS - 1)));
        let shown: u64 = top.iter().map(|g| g.spawned).sum::<u64>() + rest.spawned;
        assert_eq!(shown, 10_000);
        assert_eq!(&*rest.name, "other");
    }

    #[test]
    fn shown_totals_only_grow_whatever_becomes_busiest() {
        let mut groups = Groups::default();
        let (a, b, c) = (
            groups.of(&"a".into()),
            groups.of(&"b".into()),
            groups.of(&"c".into()),
        );
        groups.polled(a, 100);
        groups.polled(b, 10);
        let (first, other1) = groups.shown(1);
        assert_eq!(first.len(), 1);
        assert_eq!(
            (&*first[0].name, first[0].busy_ns),
            ("a", 100),
            "first look: from its start"
        );
        assert_eq!(other1.busy_ns, 10);
        // b and c become far busier than a: a keeps its series, they stay in other.
        groups.polled(b, 1000);
        groups.polled(c, 500);
        groups.polled(a, 1);
        let (second, other2) = groups.shown(1);
        assert_eq!((&*second[0].name, second[0].busy_ns), ("a", 101));
        assert_eq!(other2.busy_ns, 1510);
        // With room for one more, the busiest of the rest (b) gets its series:
        // what other showed of it stays there, other does not go down.
        groups.polled(b, 5);
        let (third, other3) = groups.shown(2);
        let b3 = third.iter().find(|g| &*g.name == "b").expect("b shown");
        assert_eq!(b3.busy_ns, 5, "b counts from what other last showed of it");
        assert_eq!(other3.busy_ns, 1510);
        assert!(other3.polls >= other2.polls && other2.polls >= other1.polls);
    }
}

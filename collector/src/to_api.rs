//! The model as viewers read it: one conversion trait into the viewer protocol
//! ([`looptrace_api`]), as console-subscriber's `ToProto` is for console-api.
//! Everything the collector sends a viewer is built here, from a typed message,
//! never by hand.

use crate::hub::SessionState;
use crate::model::memory::Folded;
use crate::model::task::Task;
use crate::model::worker::Worker;
use crate::model::Model;
use crate::store::Store;
use looptrace_api as api;
use looptrace_api::{Source, TaskState};
use std::collections::BTreeMap;

/// Converts a part of the model into its viewer-protocol form, as of `now_ns`
/// (the session's latest event: states still open count up to it).
pub trait ToApi {
    type Output;
    fn to_api(&self, now_ns: u64) -> Self::Output;
}

fn percentile(h: &hdrhistogram::Histogram<u32>, q: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(q)
    }
}

/// Log-spaced buckets of a histogram: `[upper bound ns, count]`.
pub fn histogram_buckets(h: &hdrhistogram::Histogram<u32>) -> Vec<(u64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_log(1000, 2.0)
        .map(|v| (v.value_iterated_to(), v.count_since_last_iteration()))
        .filter(|(_, c)| *c > 0)
        .collect()
}

impl ToApi for Task {
    type Output = api::TaskSummary;
    fn to_api(&self, now: u64) -> api::TaskSummary {
        let (busy, scheduled, idle) = self.totals_at(now);
        let hist = self.histograms();
        let hist = hist.as_deref();
        api::TaskSummary {
            id: self.id,
            name: self.name.to_string(),
            given_name: self.given_name.as_deref().map(str::to_string),
            location: self.location.to_string(),
            kind: self.kind,
            parent: self.parent,
            state: self.state(),
            state_since_ns: self.since_ns(),
            spawned_ns: self.spawned_ns,
            ended_ns: self.ended_ns,
            outcome: self.outcome,
            polls: self.polls,
            busy_ns: busy,
            scheduled_ns: scheduled,
            idle_ns: idle,
            wakes: self.wakes,
            self_wakes: self.wakes.own,
            longest_poll_ns: self.longest_poll_ns,
            last_poll_ns: self.last_poll_ns,
            poll_p50_ns: hist.map(|h| percentile(&h.poll, 0.5)),
            poll_p99_ns: hist.map(|h| percentile(&h.poll, 0.99)),
            scheduled_p50_ns: hist.map(|h| percentile(&h.sched, 0.5)),
            scheduled_p99_ns: hist.map(|h| percentile(&h.sched, 0.99)),
            size_bytes: self.size_bytes,
            live_wakers: self.live_wakers,
            thread: self.life.thread,
            warnings: self.warnings,
            lifetime_ns: self.ended_ns.unwrap_or(now).saturating_sub(self.spawned_ns),
            as_of_ns: now,
            context: self.context.as_deref().map(str::to_owned),
        }
    }
}

impl ToApi for Worker {
    type Output = api::WorkerStats;
    fn to_api(&self, now: u64) -> api::WorkerStats {
        let open = now.saturating_sub(self.since_ns);
        api::WorkerStats {
            thread: self.thread,
            index: self.index,
            name: self.name.clone(),
            // What it is doing now counts, up to now.
            busy_ns: self.busy_ns + self.running.map_or(0, |_| open),
            parked_ns: self.parked_ns + if self.parked { open } else { 0 },
            polls: self.polls,
            migrations: self.migrations,
            utilization: self.utilization(now),
            running: self.running,
            parked: self.parked,
            state_since_ns: self.since_ns,
            queue_depth: self.queue,
            max_queue_depth: self.max_queue,
            steals: self.steals,
        }
    }
}

impl ToApi for Folded {
    type Output = api::Folded;
    fn to_api(&self, _: u64) -> api::Folded {
        api::Folded {
            name: self.name.to_string(),
            location: self.location.to_string(),
            tasks: self.tasks,
            polls: self.polls,
            busy_ns: self.busy_ns,
            scheduled_ns: self.scheduled_ns,
            idle_ns: self.idle_ns,
            wakes: self.wakes,
        }
    }
}

impl ToApi for Store {
    type Output = api::StoreStats;
    fn to_api(&self, _: u64) -> api::StoreStats {
        api::StoreStats {
            retained_events: self.retained(),
            evicted_events: self.evicted_events,
            memory_bytes: self.memory() as u64,
            checkpoint_bytes: self.checkpoint_bytes() as u64,
            bytes_per_event: self.bytes_per_event(),
        }
    }
}

/// Folded spawn locations a model's figures list, the most tasks first.
const FOLDED_LISTED: usize = 20;

impl ToApi for Model {
    type Output = api::ModelStats;
    fn to_api(&self, now: u64) -> api::ModelStats {
        let mut folded: Vec<_> = self.folded().filter(|f| f.tasks > 0).collect();
        folded.sort_by_key(|f| std::cmp::Reverse(f.tasks));
        folded.truncate(FOLDED_LISTED);
        let memory = self.memory();
        api::ModelStats {
            memory,
            memory_bytes: memory.total(),
            given_up: self.given_up(),
            folded_tasks: self.folded_tasks(),
            folded: folded.iter().map(|f| f.to_api(now)).collect(),
        }
    }
}

/// How detailed a source's data is, for viewers to say.
pub fn capture(source: Source) -> &'static str {
    match source {
        Source::Console => {
            "console (coarse: tokio-console's per-interval task statistics; polls between updates are \
             spread evenly, wake sources other than self-wakes are unknown, no workers or timers)"
        }
        _ => "native",
    }
}

impl ToApi for SessionState {
    type Output = api::SessionSummary;
    fn to_api(&self, _: u64) -> api::SessionSummary {
        let h = &self.model.header;
        api::SessionSummary {
            id: self.id,
            process: h.process_name.clone(),
            pid: h.pid,
            flavor: h.flavor,
            workers: h.workers,
            clock_origin_unix_ns: h.clock_origin_unix_ns,
            source: self.source,
            capture: capture(self.source).into(),
            connected_unix_ns: self.connected_unix_ns,
            disconnected_unix_ns: self.disconnected_unix_ns,
            live: self.disconnected_unix_ns.is_none(),
            now_ns: self.model.now_ns,
            events: self.store.events,
            retained_events: self.store.retained(),
            store_bytes: self.store.memory() as u64,
            model_bytes: self.model.memory().total(),
            evicted_events: self.store.evicted_events,
            dropped_events: self.model.dropped,
            bad_frames: self.bad_frames,
            tasks: self.model.tasks.len() as u64,
            live_tasks: self.model.live_tasks(),
            folded_tasks: self.model.folded_tasks(),
            given_up: self.model.given_up(),
            warnings: self.model.findings().count() as u64,
            warnings_over: self.model.warnings_over,
            recording: self.recording.as_ref().map(|p| p.display().to_string()),
            note: self.note.clone(),
            continues: self.continues,
        }
    }
}

/// A task in detail (`/api/sessions/{id}/tasks/{task}`), as of `now`.
pub fn task_detail(t: &Task, model: &Model, now: u64) -> api::TaskDetail {
    let (poll_histogram, scheduled_histogram) = t
        .histograms()
        .map(|h| (histogram_buckets(&h.poll), histogram_buckets(&h.sched)))
        .unwrap_or_default();
    api::TaskDetail {
        task: t.to_api(now),
        poll_histogram,
        scheduled_histogram,
        histograms_dropped: t.hist.is_none(),
        warning_list: model
            .findings()
            .filter(|w| w.task == Some(t.id))
            .cloned()
            .collect(),
    }
}

/// A session's figures (`/api/sessions/{id}/stats`, and the `stats` message).
pub fn session_stats(s: &SessionState) -> api::Stats {
    let m = &s.model;
    let now = s.now_ns();
    let mut tasks_by_state = BTreeMap::new();
    for t in m.tasks.values() {
        *tasks_by_state.entry(t.state()).or_insert(0) += 1;
    }
    api::Stats {
        session: s.id,
        now_ns: now,
        events: m.events,
        dropped_events: m.dropped,
        tasks: m.tasks.len() as u64,
        live_tasks: m.live_tasks(),
        tasks_by_state,
        workers: m.workers.values().map(|w| w.to_api(now)).collect(),
        injection_queue_depth: m.injection_queue,
        warnings: m.findings().count() as u64,
        store: s.store.to_api(now),
        model: m.to_api(now),
    }
}

/// The order a snapshot keeps tasks in when it cannot carry them all: running,
/// then scheduled, idle and done, the most recently changed first.
pub fn snapshot_rank(t: &Task) -> (u8, std::cmp::Reverse<u64>) {
    let rank = match t.state() {
        TaskState::Running => 0,
        TaskState::Scheduled => 1,
        TaskState::Idle => 2,
        TaskState::Done => 3,
    };
    (rank, std::cmp::Reverse(t.since_ns()))
}

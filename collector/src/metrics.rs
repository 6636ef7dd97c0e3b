//! What the collector knows, as metrics: the Prometheus (OpenMetrics) text a
//! scrape of `/metrics` gets, and the plain figures other exporters publish.
//!
//! Per session (labels `session`, `process`, `pid`, `host`): per task group (the
//! task's name, else its short spawn location; the `n` busiest groups, the rest
//! as `other`) polls, busy seconds, poll-time and scheduling-delay histograms,
//! wakes by source, spawns and ends; per worker busy and parked seconds, parks,
//! polls, busy ratio, queue depth and steals (when the app samples its queues);
//! standing warnings by kind; events received, dropped by the app, evicted here.

use crate::hub::{Hub, SessionId, SessionState};
use crate::model::groups::{Group, BUCKET_BOUNDS_S};
use looptrace_api::WarningKind;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Task groups shown per session unless configured: the rest are `other`.
pub const DEFAULT_GROUPS: usize = 20;

/// The content type of [`encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One worker's figures.
#[derive(Debug, Clone)]
pub struct WorkerFigures {
    pub index: u32,
    pub busy_ns: u64,
    pub parked_ns: u64,
    pub parks: u64,
    pub polls: u64,
    pub busy_ratio: f64,
    pub queue_depth: u32,
    pub steals: u64,
}

/// One session's figures, taken under its lock and encoded outside it.
#[derive(Debug, Clone)]
pub struct SessionFigures {
    pub id: SessionId,
    pub process: String,
    pub pid: u32,
    pub host: String,
    pub groups: Vec<Group>,
    pub live_tasks: u64,
    pub workers: Vec<WorkerFigures>,
    /// Whether the app samples its scheduler's queues (else depths are unknown).
    pub queues_known: bool,
    pub injection_queue: u32,
    /// Standing findings (withdrawn ones left out), by kind, every kind listed.
    pub warnings: Vec<(WarningKind, u64)>,
    pub events: u64,
    pub dropped: u64,
    pub evicted: u64,
    pub retained: u64,
}

impl SessionFigures {
    /// The figures of `s`, with its `n` busiest task groups and `other`.
    pub fn of(s: &SessionState, n: usize) -> SessionFigures {
        let m = &s.model;
        let now = s.now_ns();
        let (top, rest) = m.groups.top(n);
        let mut groups: Vec<Group> = top.into_iter().cloned().collect();
        if rest.spawned > 0 || rest.polls > 0 || rest.wakes.total() > 0 {
            groups.push(rest);
        }
        let workers = m
            .workers
            .values()
            .map(|w| WorkerFigures {
                index: w.index,
                busy_ns: w.busy_ns,
                parked_ns: w.parked_ns,
                parks: w.parks,
                polls: w.polls,
                busy_ratio: w.utilization(now),
                queue_depth: w.queue,
                steals: w.steals,
            })
            .collect();
        let warnings = WarningKind::ALL
            .iter()
            .map(|&k| {
                let standing = m
                    .warnings
                    .iter()
                    .filter(|w| w.kind == k && !w.withdrawn)
                    .map(|w| w.count)
                    .sum();
                (k, standing)
            })
            .collect();
        SessionFigures {
            id: s.id,
            process: m.header.process_name.clone(),
            pid: m.header.pid,
            host: s.peer.clone().unwrap_or_default(),
            groups,
            live_tasks: m.live_tasks(),
            workers,
            queues_known: m.queues_sampled,
            injection_queue: m.injection_queue,
            warnings,
            events: m.events,
            dropped: m.dropped,
            evicted: s.store.evicted_events,
            retained: s.store.retained(),
        }
    }
}

/// The collector's own figures.
#[derive(Debug, Clone, Default)]
pub struct CollectorFigures {
    pub memory_bytes: u64,
    pub bad_frames: u64,
    pub rejected_connections: u64,
    pub viewer_lagged: u64,
}

/// Everything a scrape shows.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub sessions: Vec<SessionFigures>,
    pub collector: CollectorFigures,
}

impl Figures {
    /// Takes the figures of every session of `hub`, one session locked at a time.
    pub fn of(hub: &Hub, groups: usize) -> Figures {
        let sessions = hub
            .session_ids()
            .into_iter()
            .filter_map(|id| hub.with_session(id, |s| SessionFigures::of(s, groups)))
            .collect();
        let c = &hub.counters;
        Figures {
            sessions,
            collector: CollectorFigures {
                memory_bytes: hub.memory_used() as u64,
                bad_frames: c.bad_frames.load(Ordering::Relaxed),
                rejected_connections: c.rejected_connections.load(Ordering::Relaxed),
                viewer_lagged: c.viewer_lagged.load(Ordering::Relaxed),
            },
        }
    }
}

/// The Prometheus text (OpenMetrics) of what `hub` knows, `groups` task groups
/// per session.
pub fn encode(hub: &Hub, groups: usize) -> String {
    let figures = Figures::of(hub, groups);
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(Scrape(Arc::new(figures))));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// The figures of one scrape, as a prometheus-client collector.
#[derive(Debug)]
struct Scrape(Arc<Figures>);

type Labels = Vec<(&'static str, String)>;

fn session_labels(s: &SessionFigures) -> Labels {
    vec![
        ("session", s.id.to_string()),
        ("process", s.process.clone()),
        ("pid", s.pid.to_string()),
        ("host", s.host.clone()),
    ]
}

fn with(mut labels: Labels, more: &[(&'static str, &str)]) -> Labels {
    labels.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
    labels
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Each task group of `s` with its labels.
fn groups(s: &SessionFigures) -> Vec<(Labels, &Group)> {
    s.groups
        .iter()
        .map(|g| (with(session_labels(s), &[("group", &g.name)]), g))
        .collect()
}

/// Each worker of `s` with its labels.
fn workers(s: &SessionFigures) -> Vec<(Labels, &WorkerFigures)> {
    s.workers
        .iter()
        .map(|w| {
            (
                with(session_labels(s), &[("worker", &w.index.to_string())]),
                w,
            )
        })
        .collect()
}

/// One metric family: its descriptor, then a sample per label set.
struct Family<'e> {
    enc: MetricEncoder<'e>,
}

impl Family<'_> {
    fn counter(&mut self, labels: &Labels, v: f64) -> Result<(), std::fmt::Error> {
        ConstCounter::new(v).encode(self.enc.encode_family(labels)?)
    }

    fn counter_u(&mut self, labels: &Labels, v: u64) -> Result<(), std::fmt::Error> {
        ConstCounter::new(v).encode(self.enc.encode_family(labels)?)
    }

    fn gauge(&mut self, labels: &Labels, v: f64) -> Result<(), std::fmt::Error> {
        ConstGauge::new(v).encode(self.enc.encode_family(labels)?)
    }

    fn histogram(
        &mut self,
        labels: &Labels,
        b: &crate::model::groups::Buckets,
    ) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = BUCKET_BOUNDS_S
            .iter()
            .copied()
            .chain([f64::MAX])
            .zip(b.counts)
            .collect();
        self.enc.encode_family(labels)?.encode_histogram::<Labels>(
            seconds(b.sum_ns),
            b.count(),
            &buckets,
            None,
        )
    }
}

fn family<'e>(
    enc: &'e mut DescriptorEncoder<'_>,
    name: &'e str,
    help: &str,
    unit: Option<&'e Unit>,
    kind: MetricType,
) -> Result<Family<'e>, std::fmt::Error> {
    Ok(Family {
        enc: enc.encode_descriptor(name, help, unit, kind)?,
    })
}

const SECONDS: Unit = Unit::Seconds;
const BYTES: Unit = Unit::Bytes;

impl prometheus_client::collector::Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use MetricType::{Counter, Gauge, Histogram};
        let f = &self.0;

        let mut m = family(
            &mut enc,
            "looptrace_task_polls",
            "Polls of the group's tasks that ended.",
            None,
            Counter,
        )?;
        for s in &f.sessions {
            for (l, g) in groups(s) {
                m.counter_u(&l, g.polls)?;
            }
        }
        let mut m = family(
            &mut enc,
            "looptrace_task_busy",
            "Time the group's tasks spent being polled.",
            Some(&SECONDS),
            Counter,
        )?;
        for s in &f.sessions {
            for (l, g) in groups(s) {
                m.counter(&l, seconds(g.busy_ns))?;
            }
        }
        let mut m = family(
            &mut enc,
            "looptrace_task_poll_duration",
            "How long each poll of the group's tasks ran.",
            Some(&SECONDS),
            Histogram,
        )?;
        for s in &f.sessions {
            for (l, g) in groups(s) {
                m.histogram(&l, &g.poll)?;
            }
        }
        let mut m = family(
            &mut enc,
            "looptrace_task_scheduling_delay",
            "How long the group's tasks waited for a worker once spawned or woken.",
            Some(&SECONDS),
            Histogram,
        )?;
        for s in &f.sessions {
            for (l, g) in groups(s) {
                m.histogram(&l, &g.sched)?;
            }
        }
        let mut m = family(
            &mut enc,
            "looptrace_task_wakes",
            "Wakes of the group's tasks, by what woke them.",
            None,
            Counter,
        )?;
        for s in &f.sessions {
            for (l, g) in groups(s) {
                let w = &g.wakes;
                for (source, n) in [
                    ("task", w.task),
                    ("self", w.own),
                    ("timer", w.timer),
                    ("io", w.io),
                    ("blocking", w.blocking),
                    ("external", w.external),
                ] {
                    m.counter_u(&with(l.clone(), &[("source", source)]), n)?;
                }
            }
        }
        let mut m = family(
            &mut enc,
            "looptrace_tasks_spawned",
            "Tasks of the group spawned.",
            None,
            Counter,
        )?;
        for s in &f.sessions {
            for (l, g) in groups(s) {
                m.counter_u(&l, g.spawned)?;
            }
        }
        let mut m = family(
            &mut enc,
            "looptrace_tasks_ended",
            "Tasks of the group that ended, by how.",
            None,
            Counter,
        )?;
        for s in &f.sessions {
            for (l, g) in groups(s) {
                for (outcome, n) in [
                    ("completed", g.completed),
                    ("cancelled", g.cancelled),
                    ("panicked", g.panicked),
                ] {
                    m.counter_u(&with(l.clone(), &[("outcome", outcome)]), n)?;
                }
            }
        }
        let mut m = family(
            &mut enc,
            "looptrace_tasks_live",
            "Tasks spawned and not ended.",
            None,
            Gauge,
        )?;
        for s in &f.sessions {
            m.gauge(&session_labels(s), s.live_tasks as f64)?;
        }

        type Get = fn(&WorkerFigures) -> f64;
        let worker_families: [(&str, &str, Option<&Unit>, MetricType, Get); 5] = [
            (
                "looptrace_worker_busy",
                "Time the worker spent polling tasks.",
                Some(&SECONDS),
                Counter,
                |w| seconds(w.busy_ns),
            ),
            (
                "looptrace_worker_parked",
                "Time the worker spent parked, waiting for work.",
                Some(&SECONDS),
                Counter,
                |w| seconds(w.parked_ns),
            ),
            (
                "looptrace_worker_parks",
                "Times the worker parked.",
                None,
                Counter,
                |w| w.parks as f64,
            ),
            (
                "looptrace_worker_polls",
                "Polls the worker ran.",
                None,
                Counter,
                |w| w.polls as f64,
            ),
            (
                "looptrace_worker_busy_ratio",
                "Share of the time since the worker started spent polling (for a recent share, rate(looptrace_worker_busy_seconds_total)).",
                None,
                Gauge,
                |w| w.busy_ratio,
            ),
        ];
        for (name, help, unit, kind, get) in worker_families {
            let mut m = family(&mut enc, name, help, unit, kind)?;
            for s in &f.sessions {
                for (l, w) in workers(s) {
                    match kind {
                        Counter => m.counter(&l, get(w))?,
                        _ => m.gauge(&l, get(w))?,
                    }
                }
            }
        }
        let mut m = family(
            &mut enc,
            "looptrace_worker_queue_depth",
            "Tasks in the worker's local run queue at the latest sample (apps that sample their queues).",
            None,
            Gauge,
        )?;
        for s in f.sessions.iter().filter(|s| s.queues_known) {
            for (l, w) in workers(s) {
                m.gauge(&l, w.queue_depth as f64)?;
            }
        }
        let mut m = family(
            &mut enc,
            "looptrace_worker_steals",
            "Times the worker stole tasks from another (apps that sample their queues).",
            None,
            Counter,
        )?;
        for s in f.sessions.iter().filter(|s| s.queues_known) {
            for (l, w) in workers(s) {
                m.counter_u(&l, w.steals)?;
            }
        }
        let mut m = family(
            &mut enc,
            "looptrace_injection_queue_depth",
            "Tasks in the runtime's shared (injection) queue at the latest sample.",
            None,
            Gauge,
        )?;
        for s in f.sessions.iter().filter(|s| s.queues_known) {
            m.gauge(&session_labels(s), s.injection_queue as f64)?;
        }

        let mut m = family(
            &mut enc,
            "looptrace_warnings",
            "Findings standing (withdrawn ones left out), by kind; a grouped warning counts each finding.",
            None,
            Gauge,
        )?;
        for s in &f.sessions {
            for (kind, n) in &s.warnings {
                let l = with(session_labels(s), &[("kind", kind.as_str())]);
                m.gauge(&l, *n as f64)?;
            }
        }
        type GetS = fn(&SessionFigures) -> u64;
        let event_families: [(&str, &str, MetricType, GetS); 4] = [
            (
                "looptrace_events_received",
                "Events the collector received from the app.",
                Counter,
                |s| s.events,
            ),
            (
                "looptrace_events_dropped",
                "Events the app lost (its buffers were full, or a collector was away).",
                Counter,
                |s| s.dropped,
            ),
            (
                "looptrace_events_evicted",
                "Events the collector let go of to stay within its memory budget.",
                Counter,
                |s| s.evicted,
            ),
            (
                "looptrace_events_retained",
                "Events the collector holds now.",
                Gauge,
                |s| s.retained,
            ),
        ];
        for (name, help, kind, get) in event_families {
            let mut m = family(&mut enc, name, help, None, kind)?;
            for s in &f.sessions {
                match kind {
                    Counter => m.counter_u(&session_labels(s), get(s))?,
                    _ => m.gauge(&session_labels(s), get(s) as f64)?,
                }
            }
        }

        let c = &f.collector;
        let gauges: [(&str, &str, Option<&Unit>, f64); 2] = [
            (
                "looptrace_collector_sessions",
                "Sessions the collector holds.",
                None,
                f.sessions.len() as f64,
            ),
            (
                "looptrace_collector_memory",
                "Memory the collector's history and models hold.",
                Some(&BYTES),
                c.memory_bytes as f64,
            ),
        ];
        for (name, help, unit, v) in gauges {
            ConstGauge::new(v).encode(enc.encode_descriptor(name, help, unit, Gauge)?)?;
        }
        let counters: [(&str, &str, u64); 3] = [
            (
                "looptrace_collector_bad_frames",
                "Frames refused as malformed.",
                c.bad_frames,
            ),
            (
                "looptrace_collector_rejected_connections",
                "Requests and connections refused (token, Host or Origin).",
                c.rejected_connections,
            ),
            (
                "looptrace_collector_viewer_lagged",
                "Live updates a slow viewer missed.",
                c.viewer_lagged,
            ),
        ];
        for (name, help, v) in counters {
            ConstCounter::new(v).encode(enc.encode_descriptor(name, help, None, Counter)?)?;
        }
        Ok(())
    }
}

//! What the collector knows, as metrics: the Prometheus (OpenMetrics) text a
//! scrape of `/metrics` gets, and the plain figures other exporters publish.
//!
//! Per session (labels `session`, `process`, `pid`, `host`): per task group (the
//! task's name, else its short spawn location; the `n` busiest groups, the rest
//! as `other`) polls, busy seconds, poll-time and scheduling-delay histograms,
//! wakes by source, spawns and ends; per worker busy and parked seconds, parks,
//! polls, busy ratio, queue depth and steals (when the app samples its queues);
//! standing warnings by kind; events received, dropped by the app, evicted here.

use crate::hub::{unix_ns, Hub, SessionId, SessionState};
use crate::model::groups::{Buckets, Group, BUCKET_BOUNDS_S};
use looptrace_api::WarningKind;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How long a session is still shown once its app went away: long enough for
/// a scrape (or a push) to see its last figures.
pub const LINGER_NS: u64 = 5 * 60 * 1_000_000_000;

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
    /// When the app's clock began (Unix ns): what its totals count from.
    pub origin_unix_ns: u64,
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
    /// The figures of `s`, with the task groups shown on their own (`n` at
    /// most, see [`crate::model::groups::Groups::shown`]) and `other`.
    pub fn of(s: &mut SessionState, n: usize) -> SessionFigures {
        let now = s.now_ns();
        let (mut groups, rest) = s.model.groups.shown(n);
        let m = &s.model;
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
            origin_unix_ns: m.header.clock_origin_unix_ns,
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
    /// Frames, events, refusals... as `/api/sessions` reports them.
    pub counters: looptrace_api::Counters,
    pub otlp: OtlpFigures,
}

/// What the OpenTelemetry exporter sent and dropped (zero without one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtlpFigures {
    pub spans_exported: u64,
    pub spans_dropped: u64,
    pub metrics_exported: u64,
    pub metrics_dropped: u64,
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
            .filter_map(|id| {
                hub.with_session_mut(id, |s| {
                    // An app gone long ago is no longer shown: its gauges would
                    // stand frozen and its series pile up.
                    let gone = s
                        .disconnected_unix_ns
                        .is_some_and(|at| unix_ns().saturating_sub(at) > LINGER_NS);
                    (!gone).then(|| SessionFigures::of(s, groups))
                })
                .flatten()
            })
            .collect();
        let c = &hub.counters;
        Figures {
            sessions,
            collector: CollectorFigures {
                memory_bytes: hub.memory_used() as u64,
                counters: hub.counters(),
                otlp: OtlpFigures {
                    spans_exported: c.otlp_spans_exported.load(Ordering::Relaxed),
                    spans_dropped: c.otlp_spans_dropped.load(Ordering::Relaxed),
                    metrics_exported: c.otlp_metrics_exported.load(Ordering::Relaxed),
                    metrics_dropped: c.otlp_metrics_dropped.load(Ordering::Relaxed),
                },
            },
        }
    }
}

/// What a metric counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricUnit {
    Seconds,
    Bytes,
}

/// A metric's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only grows (cumulative since the session began).
    Counter,
    Gauge,
    /// Durations over [`BUCKET_BOUNDS_S`], cumulative.
    Histogram,
}

/// One sample's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
    Histogram(Buckets),
}

/// One sample: its session (an index into [`Figures::sessions`], or none for
/// the collector's own), its other labels, its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub session: Option<usize>,
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

/// One metric and its samples: the one definition both exporters publish
/// (Prometheus names; OpenTelemetry gets the same names and units).
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Without the unit or `_total` suffix (Prometheus adds them).
    pub name: &'static str,
    pub help: &'static str,
    pub unit: Option<MetricUnit>,
    pub kind: MetricKind,
    pub points: Vec<Point>,
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

type GroupGet = fn(&Group) -> Value;
type WorkerGet = fn(&WorkerFigures) -> Value;
type SessionGet = fn(&SessionFigures) -> Value;

impl Figures {
    /// Every metric, with its samples.
    pub fn families(&self) -> Vec<Family> {
        use MetricKind::{Counter, Gauge, Histogram};
        use MetricUnit::{Bytes, Seconds};
        let mut out = Vec::new();
        let mut family = |name, help, unit, kind, points| {
            out.push(Family {
                name,
                help,
                unit,
                kind,
                points,
            })
        };
        let per_group: [(
            &'static str,
            &'static str,
            Option<MetricUnit>,
            MetricKind,
            GroupGet,
        ); 5] = [
            (
                "looptrace_task_polls",
                "Polls of the group's tasks that ended.",
                None,
                Counter,
                |g| Value::Int(g.polls),
            ),
            (
                "looptrace_task_busy",
                "Time the group's tasks spent being polled.",
                Some(Seconds),
                Counter,
                |g| Value::Float(seconds(g.busy_ns)),
            ),
            (
                "looptrace_task_poll_duration",
                "How long each poll of the group's tasks ran.",
                Some(Seconds),
                Histogram,
                |g| Value::Histogram(g.poll.clone()),
            ),
            (
                "looptrace_task_scheduling_delay",
                "How long the group's tasks waited for a worker once spawned or woken.",
                Some(Seconds),
                Histogram,
                |g| Value::Histogram(g.sched.clone()),
            ),
            (
                "looptrace_tasks_spawned",
                "Tasks of the group spawned.",
                None,
                Counter,
                |g| Value::Int(g.spawned),
            ),
        ];
        for (name, help, unit, kind, get) in per_group {
            let points = self.each_group(|_, g| vec![(vec![], get(g))]);
            family(name, help, unit, kind, points);
        }
        family(
            "looptrace_task_wakes",
            "Wakes of the group's tasks, by what woke them.",
            None,
            Counter,
            self.each_group(|_, g| {
                let w = &g.wakes;
                [
                    ("task", w.task),
                    ("self", w.own),
                    ("timer", w.timer),
                    ("io", w.io),
                    ("blocking", w.blocking),
                    ("external", w.external),
                ]
                .into_iter()
                .map(|(source, n)| (vec![("source", source.to_string())], Value::Int(n)))
                .collect()
            }),
        );
        family(
            "looptrace_tasks_ended",
            "Tasks of the group that ended, by how.",
            None,
            Counter,
            self.each_group(|_, g| {
                [
                    ("completed", g.completed),
                    ("cancelled", g.cancelled),
                    ("panicked", g.panicked),
                ]
                .into_iter()
                .map(|(outcome, n)| (vec![("outcome", outcome.to_string())], Value::Int(n)))
                .collect()
            }),
        );
        family(
            "looptrace_tasks_live",
            "Tasks spawned and not ended.",
            None,
            Gauge,
            self.each_session(|s| Value::Int(s.live_tasks)),
        );
        let per_worker: [(&'static str, &'static str, Option<MetricUnit>, MetricKind, WorkerGet); 5] = [
            ("looptrace_worker_busy", "Time the worker spent polling tasks.", Some(Seconds), Counter, |w| Value::Float(seconds(w.busy_ns))),
            ("looptrace_worker_parked", "Time the worker spent parked, waiting for work.", Some(Seconds), Counter, |w| Value::Float(seconds(w.parked_ns))),
            ("looptrace_worker_parks", "Times the worker parked.", None, Counter, |w| Value::Int(w.parks)),
            ("looptrace_worker_polls", "Polls the worker ran.", None, Counter, |w| Value::Int(w.polls)),
            ("looptrace_worker_busy_ratio", "Share of the time since the worker started spent polling (for a recent share, the rate of looptrace_worker_busy_seconds_total).", None, Gauge, |w| Value::Float(w.busy_ratio)),
        ];
        for (name, help, unit, kind, get) in per_worker {
            family(name, help, unit, kind, self.each_worker(false, get));
        }
        family(
            "looptrace_worker_queue_depth",
            "Tasks in the worker's local run queue at the latest sample (apps that sample their queues).",
            None,
            Gauge,
            self.each_worker(true, |w| Value::Int(w.queue_depth as u64)),
        );
        family(
            "looptrace_worker_steals",
            "Times the worker stole tasks from another (apps that sample their queues).",
            None,
            Counter,
            self.each_worker(true, |w| Value::Int(w.steals)),
        );
        family(
            "looptrace_injection_queue_depth",
            "Tasks in the runtime's shared (injection) queue at the latest sample.",
            None,
            Gauge,
            self.sessions
                .iter()
                .enumerate()
                .filter(|(_, s)| s.queues_known)
                .map(|(i, s)| Point {
                    session: Some(i),
                    labels: vec![],
                    value: Value::Int(s.injection_queue as u64),
                })
                .collect(),
        );
        family(
            "looptrace_warnings",
            "Findings standing (withdrawn ones left out), by kind; a grouped warning counts each finding.",
            None,
            Gauge,
            self.sessions
                .iter()
                .enumerate()
                .flat_map(|(i, s)| {
                    s.warnings.iter().map(move |(kind, n)| Point {
                        session: Some(i),
                        labels: vec![("kind", kind.as_str().to_string())],
                        value: Value::Int(*n),
                    })
                })
                .collect(),
        );
        let per_session: [(&'static str, &'static str, MetricKind, SessionGet); 4] = [
            (
                "looptrace_events_received",
                "Events the collector received from the app.",
                Counter,
                |s| Value::Int(s.events),
            ),
            (
                "looptrace_events_dropped",
                "Events the app lost (its buffers were full, or a collector was away).",
                Counter,
                |s| Value::Int(s.dropped),
            ),
            (
                "looptrace_events_evicted",
                "Events the collector let go of to stay within its memory budget.",
                Counter,
                |s| Value::Int(s.evicted),
            ),
            (
                "looptrace_events_retained",
                "Events the collector holds now.",
                Gauge,
                |s| Value::Int(s.retained),
            ),
        ];
        for (name, help, kind, get) in per_session {
            family(name, help, None, kind, self.each_session(get));
        }
        let c = &self.collector;
        let own = |v: Value| {
            vec![Point {
                session: None,
                labels: vec![],
                value: v,
            }]
        };
        let collector: [(
            &'static str,
            &'static str,
            Option<MetricUnit>,
            MetricKind,
            u64,
        ); 9] = [
            (
                "looptrace_collector_sessions",
                "Sessions the collector holds.",
                None,
                Gauge,
                self.sessions.len() as u64,
            ),
            (
                "looptrace_collector_memory",
                "Memory the collector's history and models hold.",
                Some(Bytes),
                Gauge,
                c.memory_bytes,
            ),
            (
                "looptrace_collector_bad_frames",
                "Frames refused as malformed.",
                None,
                Counter,
                c.counters.bad_frames,
            ),
            (
                "looptrace_collector_rejected_connections",
                "Requests and connections refused (token, Host or Origin).",
                None,
                Counter,
                c.counters.rejected_connections,
            ),
            (
                "looptrace_collector_viewer_lagged",
                "Live updates a slow viewer missed.",
                None,
                Counter,
                c.counters.viewer_lagged,
            ),
            (
                "looptrace_otlp_spans_exported",
                "Spans (findings, long polls) sent over OTLP.",
                None,
                Counter,
                c.otlp.spans_exported,
            ),
            (
                "looptrace_otlp_spans_dropped",
                "Spans not sent over OTLP: the queue was full (the receiver away or slow).",
                None,
                Counter,
                c.otlp.spans_dropped,
            ),
            (
                "looptrace_otlp_metrics_exported",
                "Metric pushes sent over OTLP.",
                None,
                Counter,
                c.otlp.metrics_exported,
            ),
            (
                "looptrace_otlp_metrics_dropped",
                "Metric pushes that failed (the next push restates every total).",
                None,
                Counter,
                c.otlp.metrics_dropped,
            ),
        ];
        for (name, help, unit, kind, v) in collector {
            family(name, help, unit, kind, own(Value::Int(v)));
        }
        out
    }

    /// A sample per session.
    fn each_session(&self, get: SessionGet) -> Vec<Point> {
        self.sessions
            .iter()
            .enumerate()
            .map(|(i, s)| Point {
                session: Some(i),
                labels: vec![],
                value: get(s),
            })
            .collect()
    }

    /// Samples per task group, each labelled with its group.
    fn each_group(
        &self,
        get: impl Fn(&SessionFigures, &Group) -> Vec<(Vec<(&'static str, String)>, Value)>,
    ) -> Vec<Point> {
        let mut out = Vec::new();
        for (i, s) in self.sessions.iter().enumerate() {
            for g in &s.groups {
                for (more, value) in get(s, g) {
                    let mut labels = vec![("group", g.name.to_string())];
                    labels.extend(more);
                    out.push(Point {
                        session: Some(i),
                        labels,
                        value,
                    });
                }
            }
        }
        out
    }

    /// A sample per worker (of sessions that sample their queues, if `queues`).
    fn each_worker(&self, queues: bool, get: WorkerGet) -> Vec<Point> {
        let mut out = Vec::new();
        for (i, s) in self.sessions.iter().enumerate() {
            if queues && !s.queues_known {
                continue;
            }
            for w in &s.workers {
                out.push(Point {
                    session: Some(i),
                    labels: vec![("worker", w.index.to_string())],
                    value: get(w),
                });
            }
        }
        out
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

/// The labels a session's samples carry.
pub fn session_labels(s: &SessionFigures) -> Vec<(&'static str, String)> {
    vec![
        ("session", s.id.to_string()),
        ("process", s.process.clone()),
        ("pid", s.pid.to_string()),
        ("host", s.host.clone()),
    ]
}

/// Label values as the text format needs them: prometheus-client writes them
/// as they are, and a task's name (or an app's process name) may hold a quote,
/// a backslash or a line break that would break the whole scrape.
fn escaped(labels: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    labels
        .into_iter()
        .map(|(k, v)| {
            let v = if v.contains(['\\', '"', '\n']) {
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            } else {
                v
            };
            (k, v)
        })
        .collect()
}

fn encode_value(
    enc: &mut MetricEncoder<'_>,
    kind: MetricKind,
    value: &Value,
) -> Result<(), std::fmt::Error> {
    match (kind, value) {
        (MetricKind::Counter, Value::Int(v)) => enc.encode_counter::<NoLabelSet, u64, u64>(v, None),
        (MetricKind::Counter, Value::Float(v)) => {
            enc.encode_counter::<NoLabelSet, f64, f64>(v, None)
        }
        (_, Value::Int(v)) => enc.encode_gauge(v),
        (_, Value::Float(v)) => enc.encode_gauge(v),
        (_, Value::Histogram(b)) => {
            let buckets: Vec<(f64, u64)> = BUCKET_BOUNDS_S
                .iter()
                .copied()
                .chain([f64::MAX])
                .zip(b.counts)
                .collect();
            enc.encode_histogram::<NoLabelSet>(seconds(b.sum_ns), b.count(), &buckets, None)
        }
    }
}

impl prometheus_client::collector::Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let f = &self.0;
        let sessions: Vec<_> = f
            .sessions
            .iter()
            .map(|s| escaped(session_labels(s)))
            .collect();
        for family in f.families() {
            let unit = family.unit.map(|u| match u {
                MetricUnit::Seconds => Unit::Seconds,
                MetricUnit::Bytes => Unit::Bytes,
            });
            let kind = match family.kind {
                MetricKind::Counter => MetricType::Counter,
                MetricKind::Gauge => MetricType::Gauge,
                MetricKind::Histogram => MetricType::Histogram,
            };
            let mut m = enc.encode_descriptor(family.name, family.help, unit.as_ref(), kind)?;
            for p in &family.points {
                let mut labels = p.session.map(|i| sessions[i].clone()).unwrap_or_default();
                labels.extend(escaped(p.labels.clone()));
                if labels.is_empty() {
                    // No braces for a metric without labels.
                    encode_value(&mut m, family.kind, &p.value)?;
                } else {
                    encode_value(&mut m.encode_family(&labels)?, family.kind, &p.value)?;
                }
            }
        }
        Ok(())
    }
}

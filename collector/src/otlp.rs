//! OpenTelemetry export (feature `otlp`): pushes what `/metrics` shows to an
//! OTLP/gRPC endpoint (an OpenTelemetry Collector, Tempo, Jaeger...), and each
//! finding (and, if asked, each poll longer than a threshold) as a span.
//!
//! Metrics are cumulative totals, pushed every [`OtlpConfig::metrics_every`]:
//! a push that fails is counted and not retried (the next one restates every
//! total). Spans wait in a bounded queue ([`OtlpConfig::queue`]) and go in
//! batches; a batch that fails is retried with exponential backoff while new
//! spans queue behind it, and spans that find the queue full are dropped and
//! counted (`looptrace_otlp_spans_dropped_total` on `/metrics`). Each session
//! is a resource whose `service.name` is the app's process name.
//!
//! The messages are built with `opentelemetry-proto`'s types and sent with its
//! gRPC clients: the collector's totals and histograms are already aggregated,
//! which the SDK's instruments cannot take as they are (it has no asynchronous
//! histogram), and the drops must be counted here.

use crate::hub::{unix_ns, Hub, SessionId};
use crate::metrics::{Family, Figures, MetricKind, MetricUnit, Value};
use crate::model::groups::BUCKET_BOUNDS_S;
use crate::model::outbox::OutSpan;
use looptrace_api::WarningKind;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1 as pm;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as pt;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tonic::transport::{Channel, Endpoint};

/// Spans per export request.
const BATCH: usize = 512;
/// Longest wait before retrying a failed batch.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often the exporter takes the sessions' new spans.
const TICK: Duration = Duration::from_millis(200);
/// Longest an export request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest the last sends may take when the exporter stops.
const FINAL_FLUSH: Duration = Duration::from_secs(2);

/// Where and how to export.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// The OTLP/gRPC endpoint, e.g. `http://127.0.0.1:4317`.
    pub endpoint: String,
    /// How often metrics are pushed.
    pub metrics_every: Duration,
    /// Spans waiting at most; past this, new spans are dropped (counted).
    pub queue: usize,
    /// Task groups per session (the busiest; the rest as `other`).
    pub groups: usize,
}

impl OtlpConfig {
    /// Defaults: metrics every 10 s, 2048 spans queued, 20 groups.
    pub fn new(endpoint: impl Into<String>) -> OtlpConfig {
        OtlpConfig {
            endpoint: endpoint.into(),
            metrics_every: Duration::from_secs(10),
            queue: 2048,
            groups: crate::metrics::DEFAULT_GROUPS,
        }
    }
}

#[derive(Debug, Error)]
pub enum OtlpError {
    #[error("not an OTLP endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("cannot start the OTLP exporter: {0}")]
    Start(#[from] std::io::Error),
}

/// The running exporter; stops (sending what it can, briefly) when dropped.
pub struct Exporter {
    stop: Arc<tokio::sync::Notify>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        // A permit, if the exporter is not waiting yet: it stops at once
        // either way, whatever request is in flight.
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts exporting what `hub` knows to `config.endpoint`, on a thread of its
/// own. The receiver need not be up: the exporter connects when it sends.
pub fn start(hub: Arc<Hub>, config: OtlpConfig) -> Result<Exporter, OtlpError> {
    let endpoint = Endpoint::from_shared(config.endpoint.clone())
        .map_err(|e| OtlpError::Endpoint {
            endpoint: config.endpoint.clone(),
            reason: e.to_string(),
        })?
        .connect_timeout(Duration::from_secs(2))
        .timeout(REQUEST_TIMEOUT);
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopping = stop.clone();
    // Its own runtime, on its own thread: built here, so that a failure is
    // the caller's to report.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name("looptrace-otlp".into())
        .spawn(move || {
            rt.block_on(async move {
                let channel = endpoint.connect_lazy();
                let mut run = Run::new(hub, config, channel);
                run.until(&stopping).await;
            });
        })?;
    Ok(Exporter {
        stop,
        thread: Some(thread),
    })
}

/// A session as a resource.
#[derive(Debug, Clone)]
struct Source {
    session: SessionId,
    attributes: Vec<KeyValue>,
}

struct Run {
    hub: Arc<Hub>,
    config: OtlpConfig,
    traces: TraceServiceClient<Channel>,
    metrics: MetricsServiceClient<Channel>,
    queue: VecDeque<(Arc<Source>, pt::Span)>,
    sources: Vec<Arc<Source>>,
    backoff: Duration,
    retry_at: Instant,
    metrics_at: Instant,
    ids: std::collections::hash_map::RandomState,
    next_id: u64,
}

impl Run {
    fn new(hub: Arc<Hub>, config: OtlpConfig, channel: Channel) -> Run {
        let now = Instant::now();
        Run {
            hub,
            metrics_at: now + config.metrics_every,
            config,
            traces: TraceServiceClient::new(channel.clone()),
            metrics: MetricsServiceClient::new(channel),
            queue: VecDeque::new(),
            sources: Vec::new(),
            backoff: Duration::ZERO,
            retry_at: now,
            ids: Default::default(),
            next_id: 0,
        }
    }

    async fn until(&mut self, stop: &tokio::sync::Notify) {
        let work = async {
            loop {
                self.collect();
                self.send_spans().await;
                if Instant::now() >= self.metrics_at {
                    self.send_metrics().await;
                    self.metrics_at = Instant::now() + self.config.metrics_every;
                }
                tokio::time::sleep(TICK).await;
            }
        };
        // Stopping drops whatever send is in flight (a batch leaves the queue
        // only once sent).
        tokio::select! {
            _ = stop.notified() => {}
            _ = work => {}
        }
        // What is waiting, and the totals, once more; briefly (a receiver that
        // is away must not hold up the exit).
        self.collect();
        self.retry_at = Instant::now();
        let last = async {
            self.send_spans().await;
            self.send_metrics().await;
        };
        let _ = tokio::time::timeout(FINAL_FLUSH, last).await;
        // Whatever is still queued will not be sent.
        let left = self.queue.len() as u64;
        self.hub
            .counters
            .otlp_spans_dropped
            .fetch_add(left, Ordering::Relaxed);
    }

    /// Takes the sessions' new spans into the queue.
    fn collect(&mut self) {
        let hub = self.hub.clone();
        let counters = &hub.counters;
        for id in hub.session_ids() {
            let taken = hub.with_session_mut(id, |s| {
                let ob = s.model.outbox.as_mut()?;
                if ob.is_empty() && ob.dropped == 0 {
                    return None;
                }
                let (spans, dropped) = ob.take();
                let h = &s.model.header;
                Some((
                    spans,
                    dropped,
                    h.clock_origin_unix_ns,
                    h.process_name.clone(),
                    h.pid,
                    s.peer.clone(),
                ))
            });
            let Some(Some((spans, dropped, origin, process, pid, peer))) = taken else {
                continue;
            };
            counters
                .otlp_spans_dropped
                .fetch_add(dropped, Ordering::Relaxed);
            let source = self.source(id, &process, pid, peer.as_deref());
            for span in spans {
                if self.queue.len() >= self.config.queue {
                    counters.otlp_spans_dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let span = self.span(&span, origin, id);
                self.queue.push_back((source.clone(), span));
            }
        }
    }

    fn source(
        &mut self,
        session: SessionId,
        process: &str,
        pid: u32,
        peer: Option<&str>,
    ) -> Arc<Source> {
        if let Some(s) = self.sources.iter().find(|s| s.session == session) {
            return s.clone();
        }
        let s = Arc::new(Source {
            session,
            attributes: resource(process, pid, session, peer),
        });
        // A handful of sessions: the oldest go past a few hundred.
        if self.sources.len() >= 256 {
            self.sources.remove(0);
        }
        self.sources.push(s.clone());
        s
    }

    fn id(&mut self) -> u64 {
        let mut h = self.ids.build_hasher();
        h.write_u64(self.next_id);
        self.next_id += 1;
        // Never all zeros (an invalid id).
        h.finish() | 1
    }

    fn span(&mut self, s: &OutSpan, origin: u64, session: SessionId) -> pt::Span {
        let start = origin.saturating_add(s.start_ns);
        let end = start.saturating_add(s.duration_ns);
        let mut attributes = vec![kv("looptrace.message", text(&s.message))];
        if let Some(kind) = s.kind {
            attributes.push(kv("looptrace.warning.kind", text(kind.as_str())));
        }
        if let Some(task) = s.task {
            attributes.push(kv("looptrace.task.id", int(task as i64)));
        }
        if let Some(name) = &s.task_name {
            attributes.push(kv("looptrace.task.name", text(name)));
        }
        if let Some(context) = &s.context {
            attributes.push(kv("looptrace.context", text(context)));
        }
        if let Some(thread) = s.thread {
            attributes.push(kv("looptrace.thread", int(thread as i64)));
        }
        attributes.push(kv("looptrace.value", uint(s.value)));
        if s.kind.is_some() {
            attributes.push(kv("looptrace.findings", uint(s.findings)));
        }
        attributes.push(kv("looptrace.session", int(session as i64)));
        let (name, events, status) = match s.kind {
            Some(kind) => (
                kind.as_str().to_string(),
                vec![finding_event(kind, start, &s.message)],
                Some(pt::Status {
                    message: s.message.clone(),
                    code: pt::status::StatusCode::Error as i32,
                }),
            ),
            None => ("poll".to_string(), Vec::new(), None),
        };
        let trace = ((self.id() as u128) << 64) | self.id() as u128;
        pt::Span {
            trace_id: trace.to_be_bytes().to_vec(),
            span_id: self.id().to_be_bytes().to_vec(),
            name,
            kind: pt::span::SpanKind::Internal as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes,
            events,
            status,
            ..Default::default()
        }
    }

    /// Sends queued spans, a batch at a time, unless backing off.
    async fn send_spans(&mut self) {
        while !self.queue.is_empty() && Instant::now() >= self.retry_at {
            let n = self.queue.len().min(BATCH);
            let request = spans_request(self.queue.iter().take(n));
            let counters = &self.hub.counters;
            match self.traces.export(request).await {
                Ok(reply) => {
                    self.queue.drain(..n);
                    self.backoff = Duration::ZERO;
                    // The receiver may take a batch but refuse some of it.
                    let refused = reply
                        .into_inner()
                        .partial_success
                        .map_or(0, |p| p.rejected_spans.clamp(0, n as i64) as u64);
                    counters
                        .otlp_spans_exported
                        .fetch_add(n as u64 - refused, Ordering::Relaxed);
                    counters
                        .otlp_spans_dropped
                        .fetch_add(refused, Ordering::Relaxed);
                }
                Err(status) if !retryable(status.code()) => {
                    // Refused for good (malformed, too large, not served):
                    // sending it again would block the queue behind it.
                    self.queue.drain(..n);
                    counters
                        .otlp_spans_dropped
                        .fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(_) => {
                    self.backoff = (self.backoff * 2)
                        .max(Duration::from_millis(500))
                        .min(MAX_BACKOFF);
                    self.retry_at = Instant::now() + self.backoff;
                }
            }
        }
    }

    async fn send_metrics(&mut self) {
        let figures = Figures::of(&self.hub, self.config.groups);
        let request = metrics_request(&figures, unix_ns());
        let counter = match self.metrics.export(request).await {
            Ok(_) => &self.hub.counters.otlp_metrics_exported,
            Err(_) => &self.hub.counters.otlp_metrics_dropped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether an export that failed with `code` may succeed if sent again (the
/// codes OTLP says a client retries).
fn retryable(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        Cancelled
            | DeadlineExceeded
            | ResourceExhausted
            | Aborted
            | OutOfRange
            | Unavailable
            | DataLoss
    )
}

fn finding_event(kind: WarningKind, at: u64, message: &str) -> pt::span::Event {
    pt::span::Event {
        time_unix_nano: at,
        name: "looptrace.finding".into(),
        attributes: vec![
            kv("message", text(message)),
            kv("why", text(kind.why())),
            kv("fix", text(kind.fix())),
        ],
        ..Default::default()
    }
}

fn spans_request<'a>(
    spans: impl Iterator<Item = &'a (Arc<Source>, pt::Span)>,
) -> ExportTraceServiceRequest {
    let mut resources: Vec<pt::ResourceSpans> = Vec::new();
    let mut of: Vec<SessionId> = Vec::new();
    for (source, span) in spans {
        let i = match of.iter().position(|&s| s == source.session) {
            Some(i) => i,
            None => {
                of.push(source.session);
                resources.push(pt::ResourceSpans {
                    resource: Some(Resource {
                        attributes: source.attributes.clone(),
                        ..Default::default()
                    }),
                    scope_spans: vec![pt::ScopeSpans {
                        scope: Some(scope()),
                        ..Default::default()
                    }],
                    ..Default::default()
                });
                resources.len() - 1
            }
        };
        resources[i].scope_spans[0].spans.push(span.clone());
    }
    ExportTraceServiceRequest {
        resource_spans: resources,
    }
}

/// The metrics of `f` as an OTLP request at `now` (Unix ns): a resource per
/// session (its totals counted from the app's start), one for the collector.
pub fn metrics_request(f: &Figures, now: u64) -> ExportMetricsServiceRequest {
    let families = f.families();
    let mut resources = Vec::new();
    let scopes: Vec<Option<usize>> = (0..f.sessions.len()).map(Some).chain([None]).collect();
    for session in scopes {
        let (attributes, start) = match session {
            Some(i) => {
                let s = &f.sessions[i];
                let peer = Some(s.host.as_str()).filter(|h| !h.is_empty());
                (resource(&s.process, s.pid, s.id, peer), s.origin_unix_ns)
            }
            None => (vec![kv("service.name", text("looptrace-collector"))], 0),
        };
        let metrics: Vec<pm::Metric> = families
            .iter()
            .filter_map(|family| metric(family, session, start, now))
            .collect();
        if metrics.is_empty() {
            continue;
        }
        resources.push(pm::ResourceMetrics {
            resource: Some(Resource {
                attributes,
                ..Default::default()
            }),
            scope_metrics: vec![pm::ScopeMetrics {
                scope: Some(scope()),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    ExportMetricsServiceRequest {
        resource_metrics: resources,
    }
}

/// `family`'s samples of `session` as one OTLP metric, if it has any.
fn metric(family: &Family, session: Option<usize>, start: u64, now: u64) -> Option<pm::Metric> {
    let points: Vec<_> = family
        .points
        .iter()
        .filter(|p| p.session == session)
        .collect();
    if points.is_empty() {
        return None;
    }
    let attributes = |p: &crate::metrics::Point| -> Vec<KeyValue> {
        p.labels.iter().map(|(k, v)| kv(k, text(v))).collect()
    };
    let number = |p: &crate::metrics::Point| pm::NumberDataPoint {
        attributes: attributes(p),
        start_time_unix_nano: start,
        time_unix_nano: now,
        value: Some(match &p.value {
            Value::Int(v) => pm::number_data_point::Value::AsInt(saturating_i64(*v)),
            Value::Float(v) => pm::number_data_point::Value::AsDouble(*v),
            Value::Histogram(_) => pm::number_data_point::Value::AsInt(0),
        }),
        ..Default::default()
    };
    let cumulative = pm::AggregationTemporality::Cumulative as i32;
    let data = match family.kind {
        MetricKind::Counter => pm::metric::Data::Sum(pm::Sum {
            data_points: points.iter().map(|p| number(p)).collect(),
            aggregation_temporality: cumulative,
            is_monotonic: true,
        }),
        MetricKind::Gauge => pm::metric::Data::Gauge(pm::Gauge {
            data_points: points.iter().map(|p| number(p)).collect(),
        }),
        MetricKind::Histogram => pm::metric::Data::Histogram(pm::Histogram {
            data_points: points
                .iter()
                .filter_map(|p| match &p.value {
                    Value::Histogram(b) => Some(pm::HistogramDataPoint {
                        attributes: attributes(p),
                        start_time_unix_nano: start,
                        time_unix_nano: now,
                        count: b.count(),
                        sum: Some(b.sum_ns as f64 / 1e9),
                        bucket_counts: b.counts.to_vec(),
                        explicit_bounds: BUCKET_BOUNDS_S.to_vec(),
                        ..Default::default()
                    }),
                    _ => None,
                })
                .collect(),
            aggregation_temporality: cumulative,
        }),
    };
    Some(pm::Metric {
        name: family.name.to_string(),
        description: family.help.to_string(),
        unit: match family.unit {
            Some(MetricUnit::Seconds) => "s",
            Some(MetricUnit::Bytes) => "By",
            None => "1",
        }
        .to_string(),
        data: Some(data),
        ..Default::default()
    })
}

/// A session as an OpenTelemetry resource: the app's process name as its
/// service, its pid, the session, where it connected from.
fn resource(process: &str, pid: u32, session: SessionId, peer: Option<&str>) -> Vec<KeyValue> {
    let mut attributes = vec![
        kv("service.name", text(process)),
        kv("process.pid", int(pid as i64)),
        kv("looptrace.session", int(session as i64)),
    ];
    if let Some(peer) = peer {
        attributes.push(kv("looptrace.peer", text(peer)));
    }
    attributes
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "looptrace".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

fn kv(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(value),
        ..Default::default()
    }
}

fn text(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.to_string())),
    }
}

fn int(v: i64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::IntValue(v)),
    }
}

/// OTLP integers are signed: a count past `i64::MAX` reads as that.
fn saturating_i64(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

fn uint(v: u64) -> AnyValue {
    int(saturating_i64(v))
}

//! OpenTelemetry export: `looptrace serve --otlp` pushes the attach example's
//! `/blocking` finding as a span (its task, its route, the poll's length) and
//! the session's metrics to an OTLP receiver built from `opentelemetry-proto`'s
//! gRPC services; with the receiver down, the collector keeps working and counts
//! what it could not send.

mod support;

use looptrace_test_support::{get, http_get};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point;
use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{looptrace_serve, Service};

/// What the receiver was sent.
#[derive(Default)]
struct Received {
    traces: Mutex<Vec<ExportTraceServiceRequest>>,
    metrics: Mutex<Vec<ExportMetricsServiceRequest>>,
}

#[derive(Clone, Default)]
struct Receiver(Arc<Received>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.traces.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.0.metrics.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// An OTLP/gRPC receiver on 127.0.0.1, on a thread of its own.
fn receiver() -> (SocketAddr, Arc<Received>) {
    receiver_on("127.0.0.1:0".parse().unwrap())
}

/// An OTLP/gRPC receiver listening on `addr`.
fn receiver_on(addr: SocketAddr) -> (SocketAddr, Arc<Received>) {
    let r = Receiver::default();
    let got = r.0.clone();
    let listener = std::net::TcpListener::bind(addr).unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(r.clone()))
                .add_service(MetricsServiceServer::new(r))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(l))
                .await
                .unwrap();
        });
    });
    (addr, got)
}

/// The attach example streaming to `collector`, asked `/` and `/blocking`
/// `blocking` times, then stopped.
fn run_service(collector: SocketAddr, blocking: usize) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_http-service"));
    cmd.env("LOOPTRACE_ADDR", collector.to_string());
    drive_service(cmd, blocking);
}

/// Runs the attach example `cmd`, asks it `/` and `/blocking` `blocking`
/// times, then stops it (Ctrl-C).
fn drive_service(mut cmd: Command, blocking: usize) {
    cmd.env_remove("LOOPTRACE_RECORD").stderr(Stdio::null());
    let app = Service::start(cmd);
    assert!(http_get(&app.addr, "/").contains("hello from a traced service"));
    for _ in 0..blocking {
        assert!(http_get(&app.addr, "/blocking").contains("blocked a worker"));
    }
    app.stop();
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn text<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attrs, key)? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

/// A sample of `/metrics` (first line starting with `name`).
fn scrape(addr: SocketAddr, name: &str) -> Option<f64> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    use std::io::Write;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines()
        .find(|l| l.starts_with(name))?
        .rsplit_once(' ')?
        .1
        .parse()
        .ok()
}

#[test]
fn the_blocking_finding_and_the_metrics_reach_an_otlp_receiver() {
    let (otlp, got) = receiver();
    let (_collector, addr) =
        looptrace_serve(&["--otlp", &format!("http://{otlp}"), "--otlp-every", "0.2"]);
    run_service(addr, 1);

    // The finding, as a span of the blocking poll's length, with its task,
    // route and the app's name as the service.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (resource, span) = loop {
        let found = got.traces.lock().unwrap().iter().find_map(|r| {
            r.resource_spans.iter().find_map(|rs| {
                let span = rs
                    .scope_spans
                    .iter()
                    .flat_map(|s| &s.spans)
                    .find(|s| s.name == "blocking_poll")?;
                Some((rs.resource.clone()?, span.clone()))
            })
        });
        if let Some(f) = found {
            break f;
        }
        assert!(Instant::now() < deadline, "no blocking_poll span received");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        text(&resource.attributes, "service.name"),
        Some("http-service")
    );
    assert_eq!(
        text(&span.attributes, "looptrace.context"),
        Some("GET /blocking")
    );
    assert_eq!(
        text(&span.attributes, "looptrace.warning.kind"),
        Some("blocking_poll")
    );
    let task = text(&span.attributes, "looptrace.task.name").unwrap_or_default();
    assert!(task.starts_with("axum-"), "{task}");
    let message = text(&span.attributes, "looptrace.message").unwrap_or_default();
    assert!(message.contains("blocked its worker"), "{message}");
    // The route blocks for 50 ms: the span is the poll, at least that long.
    let length = span.end_time_unix_nano - span.start_time_unix_nano;
    assert!(
        (50_000_000..1_000_000_000).contains(&length),
        "span of {length} ns"
    );
    let Some(any_value::Value::IntValue(value)) = attr(&span.attributes, "looptrace.value") else {
        panic!("no value")
    };
    assert_eq!(*value as u64, length, "the span is the poll it is about");
    assert_eq!(span.trace_id.len(), 16);
    assert_eq!(span.span_id.len(), 8);
    assert_eq!(
        span.events.first().map(|e| e.name.as_str()),
        Some("looptrace.finding")
    );
    // Now in Unix time, not session time.
    let year_2020 = 1_577_836_800_000_000_000u64;
    assert!(span.start_time_unix_nano > year_2020);

    // The metrics: the session's standing blocking finding and its poll counts.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (warned, polls) = {
            let metrics = got.metrics.lock().unwrap();
            let last = metrics.last();
            let ours = last
                .into_iter()
                .flat_map(|r| &r.resource_metrics)
                .find(|rm| {
                    rm.resource.as_ref().is_some_and(|r| {
                        text(&r.attributes, "service.name") == Some("http-service")
                    })
                });
            let metric = |name: &str| {
                ours.into_iter()
                    .flat_map(|rm| &rm.scope_metrics)
                    .flat_map(|s| &s.metrics)
                    .find(|m| m.name == name)
                    .cloned()
            };
            let warned = metric("looptrace_warnings").and_then(|m| match m.data? {
                Data::Gauge(g) => g.data_points.iter().find_map(|p| {
                    (text(&p.attributes, "kind") == Some("blocking_poll")).then_some(p.value)
                })?,
                _ => None,
            });
            let polls: i64 = metric("looptrace_task_polls")
                .and_then(|m| match m.data? {
                    Data::Sum(s) if s.is_monotonic => Some(
                        s.data_points
                            .iter()
                            .filter_map(|p| match p.value {
                                Some(number_data_point::Value::AsInt(n)) => Some(n),
                                _ => None,
                            })
                            .sum(),
                    ),
                    _ => None,
                })
                .unwrap_or(0);
            (warned, polls)
        };
        if warned == Some(number_data_point::Value::AsInt(1)) && polls >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metrics pushed: warnings {warned:?}, polls {polls}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // And the collector says what it sent.
    assert!(scrape(addr, "looptrace_otlp_spans_exported_total").unwrap_or(0.0) >= 1.0);
    assert_eq!(
        scrape(addr, "looptrace_otlp_spans_dropped_total"),
        Some(0.0)
    );
}

#[test]
fn with_the_receiver_down_the_collector_keeps_working_and_counts_drops() {
    // A port nothing listens on.
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (_collector, addr) = looptrace_serve(&[
        "--otlp",
        &format!("http://{down}"),
        "--otlp-every",
        "0.2",
        "--otlp-queue",
        "1",
        "--otlp-polls-ms",
        "0",
    ]);
    run_service(addr, 2);
    // Every poll is a span, the queue holds one: drops, counted; metric pushes
    // fail, counted; the API answers and has the whole session.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let spans = scrape(addr, "looptrace_otlp_spans_dropped_total").unwrap_or(0.0);
        let pushes = scrape(addr, "looptrace_otlp_metrics_dropped_total").unwrap_or(0.0);
        if spans >= 2.0 && pushes >= 2.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "drops counted: spans {spans}, metric pushes {pushes}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        scrape(addr, "looptrace_otlp_spans_exported_total"),
        Some(0.0)
    );
    let (status, sessions) = get(addr, "/api/sessions");
    assert_eq!(status, 200);
    let s = &sessions["sessions"][0];
    assert_eq!(s["process"], "http-service");
    let (_, warnings) = get(addr, &format!("/api/sessions/{}/warnings", s["id"]));
    let blocking: u64 = warnings["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["kind"] == "blocking_poll")
        .map(|w| w["count"].as_u64().unwrap())
        .sum();
    assert_eq!(blocking, 2, "{warnings}");
    // The receiver comes up: what waited in the queue is sent, retried with
    // backoff meanwhile.
    let (_, got) = receiver_on(down);
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.traces.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the queued span was not sent once the receiver was up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(scrape(addr, "looptrace_otlp_spans_exported_total").unwrap_or(0.0) >= 1.0);
}

/// The embedded collector (an app with no destination) exports too, with
/// `LOOPTRACE_OTLP`; what is left is sent when the app stops.
#[test]
fn an_app_s_embedded_collector_exports_with_looptrace_otlp() {
    let (otlp, got) = receiver();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_http-service"));
    cmd.env("LOOPTRACE_OTLP", format!("http://{otlp}"))
        .env_remove("LOOPTRACE_ADDR");
    drive_service(cmd, 1);
    // Sent by the time the app has exited.
    let traces = got.traces.lock().unwrap();
    let span = traces
        .iter()
        .flat_map(|r| &r.resource_spans)
        .filter(|rs| {
            rs.resource
                .as_ref()
                .is_some_and(|r| text(&r.attributes, "service.name") == Some("http-service"))
        })
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|s| &s.spans)
        .find(|s| s.name == "blocking_poll")
        .expect("the blocking poll, as a span");
    assert_eq!(
        text(&span.attributes, "looptrace.context"),
        Some("GET /blocking")
    );
    assert!(
        !got.metrics.lock().unwrap().is_empty(),
        "the totals, pushed at the end"
    );
}

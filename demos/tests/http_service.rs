//! The attach example: an axum service with `#[looptrace::main]`, driven over
//! HTTP, stopped with Ctrl-C (SIGINT); its recording shows its connections woken
//! by I/O, a timer, the blocking pool, and the handler that blocks its worker.
//! With `--console` it runs beside tokio-console and still captures wakes.

mod support;

use demos::trace::{model_of, Trace};
use looptrace_collector::model::WarningKind;
use looptrace_wire::{EventKind, Recording, WakeOp, WakeSource};
use support::record_service;

fn check(rec: &Recording) {
    let wakes: Vec<WakeSource> = rec
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Waker {
                op: WakeOp::Wake | WakeOp::WakeByRef,
                by,
                ..
            } => Some(by),
            _ => None,
        })
        .collect();
    assert!(
        wakes.contains(&WakeSource::Io),
        "requests arrive as I/O wakes: {wakes:?}"
    );
    assert!(
        wakes.contains(&WakeSource::Timer),
        "/slow is woken by its timer"
    );
    assert!(
        wakes.contains(&WakeSource::Blocking),
        "/compute is woken by the blocking pool"
    );
    assert!(rec
        .events
        .iter()
        .any(|e| matches!(e.kind, EventKind::BlockingStart { .. })));
    let model = model_of(rec.header.clone(), &rec.events);
    let t = Trace::new(&model);
    // A task per connection (7 requests) plus the server's.
    assert!(model.tasks.len() >= 7, "{} tasks", model.tasks.len());
    assert!(
        t.warnings(WarningKind::BlockingPoll) >= 1,
        "/blocking is caught: {:?}",
        model.warnings
    );
    // Each request's span (tower-http's TraceLayer) is the context of the polls
    // that served it, and the warning says which request blocked. A poll that
    // ends before the app ships its events carries its context in its end; one
    // still running then (the 50 ms blocking one) sends it on its own.
    let (mut alone, mut folded) = (Vec::new(), Vec::new());
    for e in &rec.events {
        if let Some((_, label)) = e.kind.context() {
            match e.kind {
                EventKind::Context { .. } => alone.push(&**label),
                _ => folded.push(&**label),
            }
        }
    }
    let contexts: Vec<&str> = alone.iter().chain(&folded).copied().collect();
    for route in ["GET /", "GET /slow", "GET /compute", "GET /blocking"] {
        assert!(contexts.contains(&route), "{route} in {contexts:?}");
    }
    assert!(!folded.is_empty(), "polls' ends carry their context");
    let blocking = model
        .warnings
        .iter()
        .find(|w| w.kind == WarningKind::BlockingPoll)
        .expect("the blocking warning");
    assert_eq!(blocking.context.as_deref(), Some("GET /blocking"));
    assert!(
        blocking
            .message
            .contains("(in GET /blocking) blocked its worker"),
        "{}",
        blocking.message
    );
    // `looptrace log` tells the warning, with the route, after the poll.
    let mut log = looptrace_collector::LiveLog::with_warnings(rec.header.clone(), &rec.events);
    let lines: Vec<String> = rec.events.iter().flat_map(|e| log.lines(e)).collect();
    let at = lines
        .iter()
        .position(|l| l.contains("warning  blocking_poll:") && l.contains("GET /blocking"))
        .unwrap_or_else(|| panic!("no warning line in the log"));
    assert!(
        lines[at..].iter().any(
            |l| (l.contains("context") && l.contains("works in GET /blocking"))
                || (l.contains("returned") && l.contains("in GET /blocking"))
        ),
        "the warning comes at the poll's start, the context in or at the end of the poll"
    );
    for l in &lines {
        assert!(!l.contains("registry"), "{l}");
    }
    // Tasks spawned inside dependencies read as `crate-version/src/...`, never
    // as a path into cargo's registry.
    for task in model.tasks.values() {
        assert!(
            !task.name.contains("registry") && !task.name.starts_with('/'),
            "{}",
            task.name
        );
    }
    assert!(
        model
            .tasks
            .values()
            .any(|t| t.name.starts_with("hyper-") || t.name.starts_with("axum-")),
        "a dependency's task by its crate: {:?}",
        model.tasks.values().map(|t| &*t.name).collect::<Vec<_>>()
    );
}

#[test]
fn the_service_is_traced_with_one_line() {
    check(&record_service(false));
}

#[test]
fn the_service_is_traced_beside_tokio_console() {
    check(&record_service(true));
}

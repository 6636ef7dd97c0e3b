//! A poll's request context: carried by the poll's end when the poll ends before
//! the app ships its events, sent on its own while a poll is still running (so
//! a stuck poll says what it was doing), and the same label shared by every
//! span of a callsite with no fields.

mod common;
use common::*;
use looptrace::wire::EventKind;
use std::time::Duration;
use tracing::Instrument;

fn spawn<F>(name: &str, f: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::task::Builder::new().name(name).spawn(f).unwrap()
}

/// A task's story with contexts: `poll`, `context L`, `pending [in L]`,
/// `ready [in L]`.
fn contexts(trace: &Trace, task: u64) -> Vec<String> {
    trace
        .of(task)
        .into_iter()
        .filter_map(|e| match &e.kind {
            EventKind::PollStart { .. } => Some("poll".to_string()),
            EventKind::Context { label, .. } => Some(format!("context {label}")),
            EventKind::PollEnd { ready, context, .. } => Some(format!(
                "{}{}",
                if *ready { "ready" } else { "pending" },
                context.as_ref().map(|l| format!(" in {l}")).unwrap_or_default()
            )),
            _ => None,
        })
        .collect()
}

#[tracing::instrument(skip_all)]
async fn handler() {
    tokio::task::yield_now().await;
}

#[test]
fn a_polls_context_rides_on_its_end_unless_the_poll_is_still_running_when_shipped() {
    let _g = serial();
    let (trace, ()) = run(
        looptrace::Builder::new_current_thread().flush_interval(Duration::from_millis(5)),
        || async {
            // Two polls inside a span with no fields, each over in microseconds.
            spawn("quick", handler()).await.unwrap();
            // One poll of 60 ms inside a span with a field: still running when the
            // shipper ships, twelve times over.
            spawn(
                "stuck",
                async { std::thread::sleep(Duration::from_millis(60)) }
                    .instrument(tracing::info_span!("report", id = 7)),
            )
            .await
            .unwrap();
            // Outside any span of the app: no context at all.
            spawn("plain", tokio::task::yield_now()).await.unwrap();
        },
    );
    assert_eq!(
        contexts(&trace, trace.task("quick")),
        ["poll", "pending in handler", "poll", "ready in handler"]
    );
    assert_eq!(
        contexts(&trace, trace.task("stuck")),
        ["poll", "context report{id=7}", "ready"]
    );
    // The standalone context went out while the poll ran: before its end by
    // most of the poll.
    let stuck = trace.task("stuck");
    let at = |p: fn(&EventKind) -> bool| trace.ts_of(stuck, p)[0];
    let (ctx, end) = (
        at(|k| matches!(k, EventKind::Context { .. })),
        at(|k| matches!(k, EventKind::PollEnd { .. })),
    );
    assert!(end - ctx > 30_000_000, "context {ctx} ns, end {end} ns");
    assert_eq!(
        contexts(&trace, trace.task("plain")),
        ["poll", "pending", "poll", "ready"]
    );
}

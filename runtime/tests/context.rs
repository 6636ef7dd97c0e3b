//! A poll's request context: carried by the poll's end when the poll ends before
//! the app ships its events, sent on its own while a poll is still running (so
//! a stuck poll says what it was doing).

mod common;
use common::*;
use looptrace::wire::{Event, EventKind};
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
    story(trace.of(task))
}

/// The same story of these events.
fn story<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<String> {
    events
        .into_iter()
        .filter_map(|e| match &e.kind {
            EventKind::PollStart { .. } => Some("poll".to_string()),
            EventKind::Context { label, .. } => Some(format!("context {label}")),
            EventKind::PollEnd { ready, context, .. } => Some(format!(
                "{}{}",
                if *ready { "ready" } else { "pending" },
                context
                    .as_ref()
                    .map(|l| format!(" in {l}"))
                    .unwrap_or_default()
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
fn a_poll_over_before_its_app_ships_carries_its_context_in_its_end() {
    let _g = serial();
    // Shipped only when the runtime stops: every poll is over by then.
    let (trace, ()) = run(
        looptrace::Builder::new_current_thread().flush_interval(Duration::from_secs(600)),
        || async {
            // Two polls inside a span with no fields, twice.
            spawn("quick", async {
                handler().await;
                handler().await;
            })
            .await
            .unwrap();
            // Outside any span of the app: no context at all.
            spawn("plain", tokio::task::yield_now()).await.unwrap();
        },
    );
    assert_eq!(
        contexts(&trace, trace.task("quick")),
        [
            "poll",
            "pending in handler",
            "poll",
            "pending in handler",
            "poll",
            "ready in handler"
        ]
    );
    assert_eq!(
        contexts(&trace, trace.task("plain")),
        ["poll", "pending", "poll", "ready"]
    );
}

#[test]
fn a_poll_still_running_when_its_app_ships_sends_its_context_on_its_own() {
    let _g = serial();
    // A label of the span's own (it has a field), and its callsite's (none: the
    // poll's start and context wait in the polling thread, and the shipper
    // sends them from there).
    type MakeSpan = fn() -> tracing::Span;
    let spans: [(MakeSpan, &str); 2] = [
        (|| tracing::info_span!("report", id = 7), "report{id=7}"),
        (|| tracing::info_span!("report"), "report"),
    ];
    for (span, label) in spans {
        let (rt, mem) = in_memory(
            looptrace::Builder::new_current_thread().flush_interval(Duration::from_millis(5)),
        );
        let frames_during = rt.block_on(async {
            let mem = mem.clone();
            // One poll of 60 ms inside the span: still running when the app
            // ships, a dozen times over. It reads what was shipped meanwhile.
            spawn(
                "stuck",
                async move {
                    std::thread::sleep(Duration::from_millis(60));
                    mem.frames()
                }
                .instrument(span()),
            )
            .await
            .unwrap()
        });
        rt.shutdown();
        let shipped = mem.events();
        let during = shipped
            .iter()
            .filter(|(f, _)| *f < frames_during)
            .map(|(_, e)| e);
        let all = shipped.iter().map(|(_, e)| e);
        // Sent while the poll ran, once, and not again with its end.
        assert_eq!(
            story(during),
            ["poll".to_string(), format!("context {label}")]
        );
        assert_eq!(
            story(all),
            [
                "poll".to_string(),
                format!("context {label}"),
                "ready".into()
            ]
        );
    }
}

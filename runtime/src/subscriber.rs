//! The standalone tracing subscriber looptrace installs when the app has none.
//!
//! It is interested only in tokio's task and `Sleep` spans and in waker and `Sleep`
//! events; every other callsite is disabled once, at registration. It keeps no span
//! registry: a span's id *is* looptrace's key for it (tokio task id and a tag), so a
//! waker event names its task with no lookup.

use crate::callsite::{classify, dispatch_event, lookup, register, Kind, TaskFields};
use crate::capture;
use crate::context;
use tracing_core::span::{Attributes, Current, Id, Record};
use tracing_core::subscriber::{Interest, Subscriber};
use tracing_core::{Event, LevelFilter, Metadata};

/// A minimal [`Subscriber`] that feeds looptrace and nothing else.
///
/// [`crate::Builder::build`] installs it as the global default if the app has not
/// set one. To combine looptrace with other subscribers (tokio-console, logging),
/// use [`crate::layer`] instead.
#[derive(Debug, Default)]
pub struct LooptraceSubscriber {
    _private: (),
}

impl LooptraceSubscriber {
    /// The subscriber; install it with `tracing::dispatcher::set_global_default`
    /// (which [`crate::Builder::build`] does when the app has none).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = std::env::temp_dir().join("looptrace-subscriber.ltrace");
    /// tracing::dispatcher::set_global_default(tracing::Dispatch::new(looptrace::LooptraceSubscriber::new()))?;
    /// let rt = looptrace::Builder::new_current_thread().record(&path).build()?;
    /// rt.block_on(async {
    ///     let (tx, rx) = tokio::sync::oneshot::channel();
    ///     let waiter = tokio::spawn(async move { rx.await.unwrap() });
    ///     tokio::task::yield_now().await;
    ///     tx.send(()).unwrap();
    ///     waiter.await.unwrap();
    /// });
    /// rt.shutdown();
    /// // Through the subscriber, wakes are captured with who did them.
    /// let rec = looptrace::wire::Recording::open(&path)?;
    /// assert!(rec.events.iter().any(|e| matches!(e.kind, looptrace::wire::EventKind::Waker { .. })));
    /// # Ok(()) }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

impl Subscriber for LooptraceSubscriber {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if register(meta).is_some() || context::is_context(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        // Asked per event only when another dispatcher disagrees about a callsite.
        lookup(meta).is_some() || context::is_context(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let key = match classify(span.metadata()) {
            Some(Kind::TaskSpan) => {
                let mut f = TaskFields::default();
                span.record(&mut f);
                capture::on_task_span(f.into_info())
            }
            Some(_) => capture::on_sleep_span(),
            None => context::open(context::Held::of(span)).unwrap_or_else(capture::on_sleep_span),
        };
        Id::from_u64(key)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        dispatch_event(event, Some);
    }

    fn enter(&self, span: &Id) {
        capture::on_enter(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        capture::on_exit(span.into_u64());
    }

    fn clone_span(&self, id: &Id) -> Id {
        if id.into_u64() & context::CONTEXT_BIT != 0 {
            context::clone(id.into_u64());
        }
        id.clone()
    }

    fn try_close(&self, id: Id) -> bool {
        id.into_u64() & context::CONTEXT_BIT != 0 && context::close(id.into_u64())
    }

    fn current_span(&self) -> Current {
        Current::none()
    }
}

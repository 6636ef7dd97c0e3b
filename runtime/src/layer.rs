//! looptrace as a `tracing_subscriber` [`Layer`], for apps that already compose
//! subscribers (tokio-console's `console_subscriber`, logging, ...).

use crate::callsite::{classify, dispatch_event, register, Kind, TaskFields};
use crate::capture;
use crate::context;
use tracing_core::span::{Attributes, Id};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::filter::{filter_fn, FilterFn, Filtered};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The layer itself; [`layer`] wraps it in the per-layer filter it needs (use
/// that: unfiltered, this layer would make every other layer see tokio's internal
/// spans and events).
#[derive(Debug, Default)]
pub struct LooptraceLayer {
    _private: (),
}

/// looptrace's key for a registry span, kept in the span's extensions.
struct Key(u64);

/// The label of one of the app's spans (a context), kept in its extensions.
struct Label(context::Held);

/// A [`Layer`] that feeds looptrace, filtered to the few tokio callsites it reads
/// so that it changes nothing for the other layers.
///
/// Beside tokio-console, for instance: `tracing_subscriber::registry()
/// .with(console_subscriber::spawn()).with(looptrace::layer()).init()`.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let path = std::env::temp_dir().join("looptrace-layer.ltrace");
/// tracing_subscriber::registry().with(looptrace::layer()).init();
/// let rt = looptrace::Builder::new_current_thread().record(&path).build()?;
/// rt.block_on(async {
///     tokio::spawn(async { tokio::task::yield_now().await }).await.unwrap();
/// });
/// rt.shutdown();
/// let rec = looptrace::wire::Recording::open(&path)?;
/// assert!(rec.events.iter().any(|e| matches!(e.kind, looptrace::wire::EventKind::Waker { .. })));
/// # Ok(()) }
/// ```
pub fn layer<S>() -> Filtered<LooptraceLayer, FilterFn, S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    crate::builder::note_layer();
    LooptraceLayer::default().with_filter(filter_fn(|m| {
        classify(m).is_some() || context::is_context(m)
    }))
}

impl<S> Layer<S> for LooptraceLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let key = match classify(attrs.metadata()) {
            Some(Kind::TaskSpan) => {
                let mut f = TaskFields::default();
                attrs.record(&mut f);
                capture::on_task_span(f.into_info())
            }
            Some(Kind::SleepSpan) => capture::on_sleep_span(),
            Some(_) => return,
            None => {
                if context::is_context(attrs.metadata()) {
                    let label = context::Held::of(attrs);
                    if let Some(span) = ctx.span(id) {
                        span.extensions_mut().insert(Label(label));
                    }
                }
                return;
            }
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Key(key));
        }
    }

    fn register_callsite(
        &self,
        meta: &'static tracing_core::Metadata<'static>,
    ) -> tracing_core::subscriber::Interest {
        register(meta);
        tracing_core::subscriber::Interest::always()
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        dispatch_event(event, |span_id| {
            let span = ctx.span(&Id::from_u64(span_id))?;
            let key = span.extensions().get::<Key>().map(|k| k.0);
            key
        });
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let ext = span.extensions();
        if let Some(key) = ext.get::<Key>() {
            capture::on_enter(key.0);
        } else if capture::wants_context() {
            if let Some(c) = ext.get::<Label>() {
                capture::on_context(c.0.as_ref());
            }
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(key) = key_of(id, &ctx) {
            capture::on_exit(key);
        }
    }
}

fn key_of<S>(id: &Id, ctx: &Context<'_, S>) -> Option<u64>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let span = ctx.span(id)?;
    let key = span.extensions().get::<Key>().map(|k| k.0);
    key
}

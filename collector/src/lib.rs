//! The looptrace collector: where traced apps' events go.
//!
//! * [`embedded`]: the collector running inside a traced process, on its own
//!   threads, fed frames through [`looptrace_wire::FrameSink`].
//! * [`session`]: one traced process's events as the collector holds them.
//! * [`model`]: what the events mean: task states, statistics, workers, warnings,
//!   and time windows for viewers.
//! * [`livelog`]: a readable, line-per-event account of what the loop does.
//! * [`to_api`]: the model as the viewer protocol ([`looptrace_api`]) spells it.
//! * [`export`]: recordings to Chrome Trace Event JSON (Perfetto) and JSONL.
//! * [`metrics`]: what it knows as metrics (Prometheus' `/metrics`);
//!   `otlp` (feature `otlp`) pushes them and its findings over OpenTelemetry.
//!
//! * [`web`]: the browser timeline, embedded and served at `/`.
//!
//! The `looptrace` command-line tool (`looptrace-cli`) is built on it; an app's
//! embedded collector is this library alone.

pub mod embedded;
pub mod export;
pub mod hub;
pub mod livelog;
pub mod metrics;
pub mod model;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod replay;
pub mod server;
pub mod session;
pub mod store;
pub mod to_api;
pub mod web;

pub use embedded::{Embedded, EmbeddedHandle};
pub use livelog::LiveLog;
pub use session::Session;

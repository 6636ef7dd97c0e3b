//! # looptrace
//!
//! An instrumented tokio runtime: every task spawn, poll, waker operation (and who
//! did it), worker park and unpark, `spawn_blocking` run and timer, captured at a
//! few nanoseconds each and shipped off the runtime's threads to a collector, a
//! recording file or an in-process consumer.
//!
//! Attach with one line: replace `#[tokio::main]` with `#[looptrace::main]`. By
//! default the collector then runs inside the app and serves its viewer API on a
//! local port it prints; set `LOOPTRACE_ADDR=127.0.0.1:7878` to stream to a
//! running `looptrace serve` instead, or `LOOPTRACE_RECORD=trace.ltrace` to write a
//! recording. Or build the runtime yourself with [`Builder`].
//! tokio's hooks need `--cfg tokio_unstable` (see the README).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let path = std::env::temp_dir().join("looptrace-lib-example.ltrace");
//! let rt = looptrace::Builder::new_multi_thread().worker_threads(2).record(&path).build()?;
//! rt.block_on(async {
//!     let t = tokio::spawn(async { tokio::time::sleep(std::time::Duration::from_millis(5)).await });
//!     t.await.unwrap();
//! });
//! assert!(rt.shutdown().events > 0);
//! # Ok(()) }
//! ```
//!
//! Apps that already install a tracing subscriber (tokio-console's
//! `console_subscriber`, logging) add [`layer()`] to it so wakes are captured too.

#![warn(missing_docs)]

mod background;
mod buffer;
mod builder;
mod callsite;
mod capture;
mod clock;
mod context;
mod destination;
mod layer;
mod mark;
mod queues;
mod resolve;
mod ship;
mod subscriber;

pub use builder::{
    Builder, Error, Report, Runtime, ENV_ADDR, ENV_CONTEXT, ENV_EVERY_WAKER_OP, ENV_FLUSH_MS,
    ENV_OTLP, ENV_OTLP_POLL_MS, ENV_QUEUES_MS, ENV_RECORD, ENV_TOKEN, ENV_VIEW,
};
pub use destination::{collector_url, Destination};
pub use layer::{layer, LooptraceLayer};
pub use looptrace_macros::main;
pub use looptrace_wire as wire;
pub use mark::{mark, note};
pub use subscriber::LooptraceSubscriber;

#[doc(hidden)]
pub mod __private {
    pub use tokio;
}

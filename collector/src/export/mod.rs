//! Exports a session to formats other tools read.
//!
//! * [`chrome`]: Chrome Trace Event JSON, opened by Perfetto UI and `chrome://tracing`.
//! * [`jsonl`]: one JSON object per event, for scripts.

pub mod chrome;
pub mod jsonl;

pub use chrome::write_chrome;
pub use jsonl::write_jsonl;

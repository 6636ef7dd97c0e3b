//! The `looptrace` command's library part: what the command does beyond the
//! collector's library, shared with its tests.
//!
//! * [`attach`]: a tokio-console (console-subscriber) gRPC server as a session.

#[cfg(feature = "attach")]
pub mod attach;

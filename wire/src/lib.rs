//! The data looptrace moves around, defined once.
//!
//! * [`event`]: what a traced runtime reports (spawns, polls, wakes, parks, timers, ...).
//! * [`codec`]: the compact, versioned binary encoding of those events, used on the
//!   wire between a traced app and a collector.
//! * [`recording`]: the crash-safe recording file, a header and checksummed chunks of
//!   codec frames.
//! * [`lifecycle`]: how those events move a task between states (running,
//!   scheduled, idle, done), derived once for everyone who needs it.
//! * [`units`]: durations and moments written for people.
//! * [`sink`]: the trait through which frames reach an in-process consumer.
//!
//! Producers (the `looptrace` runtime crate) and consumers (the collector, its
//! viewers, the exporters) all go through these types.

pub mod codec;
pub mod event;
pub mod lifecycle;
pub mod recording;
pub mod sink;
pub mod units;

pub use codec::{
    decode_frame, encode_events, encode_header, encode_note, frame_type, DecodeError, EventsReader,
    EventsWriter, Frame, FrameType, RunState, MAX_FRAME_EVENTS, MAX_RUN_LABELS,
    OLDEST_WIRE_VERSION, WIRE_VERSION,
};
pub use event::{
    Event, EventKind, Flavor, Header, NotAWakeSource, Note, Outcome, Queues, Spawn, TaskId,
    TaskKind, TaskState, ThreadId, ThreadRole, WakeOp, WakeSource,
};
pub use lifecycle::{Lifecycle, Stretch};
pub use recording::{
    append_note, Damage, DamageKind, RawRecording, Recording, RecordingError, RecordingReader,
    RecordingWriter,
};
pub use sink::FrameSink;

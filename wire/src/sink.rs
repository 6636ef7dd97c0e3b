//! Where encoded frames go: the seam between a producer and any consumer.

/// Receives encoded frames (see [`crate::codec`]) in order: a header frame first,
/// then events frames. Implemented by the collector's embedded mode and by anything
/// else that wants a traced process's events in-process.
///
/// Called from looptrace's shipping thread, never from the traced runtime: a sink
/// may take its time, at the cost of the capture buffers filling (and counting
/// drops) if it takes too long.
pub trait FrameSink: Send + 'static {
    /// One encoded frame.
    fn frame(&mut self, frame: &[u8]);

    /// Whether this sink takes events frames with their events already decoded
    /// ([`FrameSink::events`]): an in-process consumer then decodes nothing.
    fn wants_events(&self) -> bool {
        false
    }

    /// An events frame and the events it encodes, for sinks that
    /// [want them](FrameSink::wants_events); by default, just the frame.
    fn events(&mut self, frame: &[u8], events: &[crate::Event]) {
        let _ = events;
        self.frame(frame)
    }

    /// The traced process stopped capturing; no more frames follow.
    fn close(&mut self) {}
}

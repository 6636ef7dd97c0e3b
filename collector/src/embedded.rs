//! The collector inside a traced process.
//!
//! [`Embedded`] is the [`FrameSink`] handed to the runtime; it decodes frames on the
//! runtime's shipping thread (never on the traced runtime) and passes them on to
//! whoever holds an [`EmbeddedHandle`]: the session so far, and live updates.

use crate::session::Session;
use looptrace_wire::{decode_frame, Event, Frame, FrameSink, Header};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

/// A live update from the embedded collector.
#[derive(Debug, Clone)]
pub enum Update {
    /// A session started (the traced runtime was built).
    Header(Header),
    /// Events, in time order per batch.
    Events(Vec<Event>),
    /// The traced runtime stopped capturing.
    Closed,
}

#[derive(Default)]
struct Shared {
    session: Mutex<Option<Session>>,
    subscribers: Mutex<Vec<Sender<Update>>>,
    bad_frames: AtomicU64,
    keep_history: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn broadcast(&self, u: Update) {
        lock(&self.subscribers).retain(|s| s.send(u.clone()).is_ok());
    }
}

/// The sink end: give it to `looptrace::Builder::sink`.
pub struct Embedded {
    shared: Arc<Shared>,
}

/// The viewing end: the session so far and live updates.
#[derive(Clone)]
pub struct EmbeddedHandle {
    shared: Arc<Shared>,
}

impl Embedded {
    /// A new embedded collector that keeps the whole session in memory.
    pub fn new() -> (Embedded, EmbeddedHandle) {
        Embedded::with_history(true)
    }

    /// With `keep_history: false` events only go to subscribers.
    pub fn with_history(keep_history: bool) -> (Embedded, EmbeddedHandle) {
        let shared = Arc::new(Shared { keep_history, ..Shared::default() });
        (Embedded { shared: shared.clone() }, EmbeddedHandle { shared })
    }
}

impl FrameSink for Embedded {
    fn frame(&mut self, frame: &[u8]) {
        match decode_frame(frame) {
            Ok(Frame::Header(h)) => {
                *lock(&self.shared.session) = Some(Session::new(h.clone()));
                self.shared.broadcast(Update::Header(h));
            }
            Ok(Frame::Events(events)) => {
                if self.shared.keep_history {
                    if let Some(s) = lock(&self.shared.session).as_mut() {
                        s.extend(events.iter().cloned());
                    }
                }
                self.shared.broadcast(Update::Events(events));
            }
            Err(e) => {
                self.shared.bad_frames.fetch_add(1, Ordering::Relaxed);
                eprintln!("looptrace collector: dropped a malformed frame: {e}");
            }
        }
    }

    fn close(&mut self) {
        self.shared.broadcast(Update::Closed);
    }
}

impl EmbeddedHandle {
    /// Live updates from now on.
    pub fn subscribe(&self) -> Receiver<Update> {
        let (tx, rx) = channel();
        lock(&self.shared.subscribers).push(tx);
        rx
    }

    /// A copy of the session so far (None before the runtime started).
    pub fn session(&self) -> Option<Session> {
        lock(&self.shared.session).clone()
    }

    /// Frames that failed to decode.
    pub fn bad_frames(&self) -> u64 {
        self.shared.bad_frames.load(Ordering::Relaxed)
    }
}

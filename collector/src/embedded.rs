//! The collector inside a traced process.
//!
//! [`Embedded`] is the [`FrameSink`] handed to the runtime; it decodes frames on the
//! runtime's shipping thread (never on the traced runtime) and passes them on to
//! whoever holds an [`EmbeddedHandle`]: the session so far, and live updates.

use crate::hub::{Hub, HubConfig, SessionId, Source};
use crate::server::{serve, AppState, ServerConfig};
use crate::session::Session;
use std::net::SocketAddr;
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
    /// The collector's hub and the traced process's session in it, when serving.
    hub: Option<Arc<Hub>>,
    hub_session: Mutex<Option<SessionId>>,
    addr: Option<SocketAddr>,
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

    /// The full collector in this process: a hub and the viewer API served on
    /// `addr` (port 0 picks one; [`EmbeddedHandle::addr`] says which), on a thread
    /// and runtime of its own, outside the traced runtime.
    pub fn serve(addr: SocketAddr, config: HubConfig) -> std::io::Result<(Embedded, EmbeddedHandle)> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let hub = Hub::new(config);
        let state = AppState { hub: hub.clone(), config: Arc::new(ServerConfig::default()), replay: None };
        std::thread::Builder::new().name("looptrace-collector".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return eprintln!("looptrace collector: cannot start its runtime: {e}"),
            };
            rt.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => {
                        if let Err(e) = serve(l, state).await {
                            eprintln!("looptrace collector: server stopped: {e}");
                        }
                    }
                    Err(e) => eprintln!("looptrace collector: cannot listen: {e}"),
                }
            });
        })?;
        let shared = Arc::new(Shared { keep_history: false, hub: Some(hub), addr: Some(local), ..Shared::default() });
        Ok((Embedded { shared: shared.clone() }, EmbeddedHandle { shared }))
    }
}

impl FrameSink for Embedded {
    fn frame(&mut self, frame: &[u8]) {
        match decode_frame(frame) {
            Ok(Frame::Header(h)) => {
                if let Some(hub) = &self.shared.hub {
                    *lock(&self.shared.hub_session) = Some(hub.open(h.clone(), frame, Source::Embedded));
                }
                *lock(&self.shared.session) = Some(Session::new(h.clone()));
                self.shared.broadcast(Update::Header(h));
            }
            Ok(Frame::Events(events)) => {
                if let (Some(hub), Some(id)) = (&self.shared.hub, *lock(&self.shared.hub_session)) {
                    hub.ingest(id, events.clone(), Some(frame));
                }
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
        if let (Some(hub), Some(id)) = (&self.shared.hub, *lock(&self.shared.hub_session)) {
            hub.close(id);
        }
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

    /// Where the viewer API is served, if it is.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.shared.addr
    }

    /// The hub, if serving.
    pub fn hub(&self) -> Option<&Arc<Hub>> {
        self.shared.hub.as_ref()
    }

    /// Frames that failed to decode.
    pub fn bad_frames(&self) -> u64 {
        self.shared.bad_frames.load(Ordering::Relaxed)
    }
}

//! The collector inside a traced process.
//!
//! [`Embedded`] is the [`FrameSink`] handed to the runtime; it decodes frames on the
//! runtime's shipping thread (never on the traced runtime), feeds them to the
//! collector's hub, whose viewer API it serves on a thread of its own, and passes
//! them on to whoever subscribed through the [`EmbeddedHandle`] (the demos' live log).

use crate::hub::{Hub, HubConfig, Note, SessionId, Source};
use crate::server::{serve, AppState, ServerConfig};
use looptrace_wire::{decode_frame, frame_type, Event, Frame, FrameSink, FrameType, Header};
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

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

struct Shared {
    subscribers: Mutex<Vec<Sender<Update>>>,
    /// The collector's hub, and the traced process's session in it once it started.
    hub: Arc<Hub>,
    session: Mutex<Option<SessionId>>,
    /// The note for the session, kept for when it opens.
    note: Mutex<Option<Note>>,
    /// Where the viewer API is served.
    addr: SocketAddr,
    /// The OpenTelemetry exporter, if one was started: it sends what is left
    /// when the collector goes.
    #[cfg(feature = "otlp")]
    exporter: Mutex<Option<crate::otlp::Exporter>>,
}

impl Shared {
    fn broadcast(&self, u: Update) {
        self.subscribers
            .lock()
            .retain(|s| s.send(u.clone()).is_ok());
    }

    /// Keeps `note` for the session, and gives it to the hub if the session is open.
    fn set_note(&self, note: Note) {
        // The session is read under the note's lock (as the header sets it), so a
        // note set while the session opens is not missed.
        let mut kept = self.note.lock();
        *kept = Some(note.clone());
        if let Some(id) = *self.session.lock() {
            self.hub.set_note(id, note);
        }
    }
}

/// The sink end: give it to `looptrace::Builder::sink`.
pub struct Embedded {
    shared: Arc<Shared>,
}

/// The viewing end: where the viewer API is, the hub, and live updates.
#[derive(Clone)]
pub struct EmbeddedHandle {
    shared: Arc<Shared>,
}

impl Embedded {
    /// Pushes this collector's metrics and findings over OpenTelemetry (see
    /// [`crate::otlp`]) for as long as it runs. Findings are sent as spans only
    /// if the hub keeps them ([`HubConfig::outbox`]).
    #[cfg(feature = "otlp")]
    pub fn export_otlp(
        &self,
        config: crate::otlp::OtlpConfig,
    ) -> Result<(), crate::otlp::OtlpError> {
        let exporter = crate::otlp::start(self.shared.hub.clone(), config)?;
        *self.shared.exporter.lock() = Some(exporter);
        Ok(())
    }

    /// The full collector in this process: a hub and the viewer API served on
    /// `addr` (port 0 picks one; [`EmbeddedHandle::addr`] says which), on a thread
    /// and runtime of its own, outside the traced runtime. No token: `addr` must
    /// be loopback (see [`Embedded::serve_with`]).
    pub fn serve(
        addr: SocketAddr,
        config: HubConfig,
    ) -> std::io::Result<(Embedded, EmbeddedHandle)> {
        Embedded::serve_with(addr, config, ServerConfig::default())
    }

    /// [`Embedded::serve`] with the server's access rules (a token, host names);
    /// like `looptrace serve`, it refuses to listen off loopback without a token.
    pub fn serve_with(
        addr: SocketAddr,
        config: HubConfig,
        server: ServerConfig,
    ) -> std::io::Result<(Embedded, EmbeddedHandle)> {
        server
            .check(addr)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let hub = Hub::new(config);
        let state = AppState {
            hub: hub.clone(),
            config: Arc::new(server),
            replay: None,
        };
        // Its own runtime, on its own thread: built here, so that a failure is
        // the caller's to report.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("looptrace-collector".into())
            .spawn(move || {
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
        let shared = Arc::new(Shared {
            subscribers: Mutex::new(Vec::new()),
            hub,
            session: Mutex::new(None),
            note: Mutex::new(None),
            addr: local,
            #[cfg(feature = "otlp")]
            exporter: Mutex::new(None),
        });
        Ok((
            Embedded {
                shared: shared.clone(),
            },
            EmbeddedHandle { shared },
        ))
    }
}

impl FrameSink for Embedded {
    fn wants_events(&self) -> bool {
        true
    }

    fn events(&mut self, frame: &[u8], events: &[Event]) {
        if let Some(id) = *self.shared.session.lock() {
            self.shared.hub.ingest_decoded(id, frame, events);
        }
        if !self.shared.subscribers.lock().is_empty() {
            self.shared.broadcast(Update::Events(events.to_vec()));
        }
    }

    fn frame(&mut self, frame: &[u8]) {
        if frame_type(frame) == Ok(FrameType::Events) {
            // The hub decodes as it applies; events are decoded for the live log
            // only when someone follows it.
            if let Some(id) = *self.shared.session.lock() {
                if let Err(e) = self.shared.hub.ingest_frame(id, frame) {
                    eprintln!("looptrace collector: dropped a malformed frame: {e}");
                }
            }
            if !self.shared.subscribers.lock().is_empty() {
                if let Ok(Frame::Events(events)) = decode_frame(frame) {
                    self.shared.broadcast(Update::Events(events));
                }
            }
            return;
        }
        match decode_frame(frame) {
            Ok(Frame::Header(h)) => {
                let id = self.shared.hub.open(h.clone(), frame, Source::Embedded);
                // Under the note's lock, so a note set meanwhile is not missed.
                let note = self.shared.note.lock();
                *self.shared.session.lock() = Some(id);
                if let Some(n) = note.clone() {
                    self.shared.hub.set_note(id, n);
                }
                drop(note);
                self.shared.broadcast(Update::Header(h));
            }
            Ok(Frame::Events(_)) => {}
            Ok(Frame::Note(note)) => self.shared.set_note(note),
            Err(e) => {
                self.shared.hub.bad_frame(*self.shared.session.lock());
                eprintln!("looptrace collector: dropped a malformed frame: {e}");
            }
        }
    }

    fn close(&mut self) {
        if let Some(id) = *self.shared.session.lock() {
            self.shared.hub.close(id);
        }
        self.shared.broadcast(Update::Closed);
    }
}

impl EmbeddedHandle {
    /// Live updates from now on.
    pub fn subscribe(&self) -> Receiver<Update> {
        let (tx, rx) = channel();
        self.shared.subscribers.lock().push(tx);
        rx
    }

    /// Where the viewer API is served.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Sets the note viewers show beside the traced process's session (the browser
    /// timeline shows it in a panel); set before the runtime starts, it applies
    /// once the session opens.
    pub fn set_note(&self, title: impl Into<String>, text: impl Into<String>) {
        self.shared.set_note(Note {
            title: title.into(),
            text: text.into(),
        });
    }

    /// The hub the traced process's session is in.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.shared.hub
    }
}

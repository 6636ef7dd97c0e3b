//! Where captured events go: a collector over WebSocket, a recording file, or an
//! in-process [`FrameSink`] (the embedded collector).

use looptrace_wire::{Event, FrameSink, RecordingWriter};
use std::collections::VecDeque;
use std::fs::File;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// Where a traced process sends its events. Several may be used at once.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let path = std::env::temp_dir().join("looptrace-destinations.ltrace");
/// let rt = looptrace::Builder::new_current_thread()
///     .destination(looptrace::Destination::File(path.clone()))
///     .destination(looptrace::Destination::Collector("127.0.0.1:1".into()))
///     .build()?;
/// rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
/// let report = rt.shutdown();
/// // The file got everything; the unreachable collector's share is counted as undelivered.
/// assert_eq!(looptrace::wire::Recording::open(&path)?.events.len() as u64, report.events);
/// assert!(report.dropped_unsent > 0);
/// # Ok(()) }
/// ```
pub enum Destination {
    /// A collector (`looptrace serve`), as `HOST:PORT` or a `ws://` URL.
    Collector(String),
    /// A recording file, for `looptrace export` and `looptrace replay`.
    File(PathBuf),
    /// An in-process consumer, such as the collector's embedded mode.
    Sink(Box<dyn FrameSink>),
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Collector(a) => f.debug_tuple("Collector").field(a).finish(),
            Destination::File(p) => f.debug_tuple("File").field(p).finish(),
            Destination::Sink(_) => f.write_str("Sink(..)"),
        }
    }
}

/// The URL a collector address stands for: `HOST:PORT` means `ws://HOST:PORT/ingest`.
///
/// ```
/// assert_eq!(looptrace::collector_url("127.0.0.1:7878"), "ws://127.0.0.1:7878/ingest");
/// assert_eq!(looptrace::collector_url("ws://collector:80/ingest"), "ws://collector:80/ingest");
/// ```
pub fn collector_url(addr: &str) -> String {
    if addr.starts_with("ws://") || addr.starts_with("wss://") {
        addr.to_string()
    } else {
        format!("ws://{addr}/ingest")
    }
}

pub(crate) enum Dest {
    Ws(Box<WsSink>),
    File {
        path: PathBuf,
        writer: Option<RecordingWriter<File>>,
    },
    Sink(Box<dyn FrameSink>),
}

impl Dest {
    pub(crate) fn new(d: Destination, backlog_limit: usize) -> Dest {
        match d {
            Destination::Collector(addr) => {
                Dest::Ws(Box::new(WsSink::new(collector_url(&addr), backlog_limit)))
            }
            Destination::File(path) => Dest::File { path, writer: None },
            Destination::Sink(s) => Dest::Sink(s),
        }
    }

    pub(crate) fn header(&mut self, frame: &[u8]) {
        match self {
            Dest::Ws(ws) => {
                ws.header = frame.to_vec();
                ws.flush(false);
            }
            Dest::File { path, writer } => {
                // The file's first chunk is the header: write it raw.
                match File::create(&*path).and_then(|f| RecordingWriter::new_raw(f, frame)) {
                    Ok(w) => *writer = Some(w),
                    Err(e) => {
                        eprintln!("looptrace: cannot write recording {}: {e}", path.display())
                    }
                }
            }
            Dest::Sink(s) => s.frame(frame),
        }
    }

    /// Whether this destination takes decoded events with each events frame.
    pub(crate) fn wants_events(&self) -> bool {
        matches!(self, Dest::Sink(s) if s.wants_events())
    }

    /// Whether this destination may start over part way through (a collector
    /// connection) and then needs the live tasks restated.
    pub(crate) fn may_resume(&self) -> bool {
        matches!(self, Dest::Ws(_))
    }

    /// An events frame holding `count` events (`events`, if they were kept), or
    /// a note frame (`count` 0).
    pub(crate) fn events(&mut self, frame: &[u8], count: u64, events: &[Event]) {
        match self {
            Dest::Ws(ws) => ws.send(frame, count),
            Dest::File { path, writer } => {
                if let Some(w) = writer {
                    if let Err(e) = w.write_frame(frame) {
                        eprintln!("looptrace: recording {} stopped: {e}", path.display());
                        *writer = None;
                    }
                }
            }
            Dest::Sink(s) if count > 0 && s.wants_events() => s.events(frame, events),
            Dest::Sink(s) => s.frame(frame),
        }
    }

    /// Called when there was nothing to send: lets a collector connection retry.
    pub(crate) fn tick(&mut self) {
        if let Dest::Ws(ws) = self {
            ws.flush(false);
        }
    }

    /// A collector connection waiting to be told the threads and live tasks
    /// (after a reconnect), and the events to report lost.
    pub(crate) fn needs_resume(&self) -> Option<u64> {
        match self {
            Dest::Ws(ws) if ws.needs_resume => Some(ws.unreported()),
            _ => None,
        }
    }

    /// Gives a collector connection what it waits for ([`Dest::needs_resume`]).
    pub(crate) fn resume(&mut self, frames: Vec<Vec<u8>>) {
        if let Dest::Ws(ws) = self {
            ws.resume(frames);
        }
    }

    /// Flushes and closes; returns how many events could not be delivered.
    pub(crate) fn close(&mut self) -> u64 {
        match self {
            Dest::Ws(ws) => ws.close(),
            Dest::File { .. } => 0,
            Dest::Sink(s) => {
                s.close();
                0
            }
        }
    }
}

/// A WebSocket connection to a collector that survives the collector.
///
/// Frames wait in a bounded backlog while it is unreachable; reconnects back off
/// from 100 ms to 5 s. A collector that acknowledges (it says so in its handshake
/// response, `looptrace-ack: 1`) tells how many frames of this connection it has
/// taken; frames sent but not acknowledged are kept (within the same bound) and
/// sent again on the next connection, after a restatement of the threads and live
/// tasks so that the new session stands on its own. What overflows the bound is
/// dropped, counted, reported in the next session and when the runtime shuts down.
pub(crate) struct WsSink {
    url: String,
    header: Vec<u8>,
    conn: Option<WebSocket<TcpStream>>,
    /// The collector on this connection acknowledges frames.
    acks: bool,
    /// Not sent yet on this connection, oldest first.
    backlog: VecDeque<(Vec<u8>, u64)>,
    /// Sent on this connection and not acknowledged, oldest first.
    unacked: VecDeque<(Vec<u8>, u64)>,
    /// Frames of this connection acknowledged so far.
    acked: u64,
    /// Bytes held in `backlog` and `unacked`.
    bytes: usize,
    limit: usize,
    next_try: Instant,
    backoff: Duration,
    /// Events never delivered, in all.
    dropped: u64,
    /// Of those, not yet reported to a collector.
    unreported: u64,
    /// Connections made so far.
    connections: u64,
    /// This connection waits for the restatement of threads and tasks before
    /// anything else ([`WsSink::resume`]).
    pub(crate) needs_resume: bool,
    warned: bool,
}

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a closing runtime waits for a collector to acknowledge the last frames.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

impl WsSink {
    fn new(url: String, limit: usize) -> WsSink {
        WsSink {
            url,
            header: Vec::new(),
            conn: None,
            acks: false,
            backlog: VecDeque::new(),
            unacked: VecDeque::new(),
            acked: 0,
            bytes: 0,
            limit,
            next_try: Instant::now(),
            backoff: MIN_BACKOFF,
            dropped: 0,
            unreported: 0,
            connections: 0,
            needs_resume: false,
            warned: false,
        }
    }

    fn connect(&self) -> Result<(WebSocket<TcpStream>, bool), String> {
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("bad collector URL: {e}"))?;
        if let Some(token) = std::env::var(crate::ENV_TOKEN)
            .ok()
            .filter(|t| !t.is_empty())
        {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| "the token is not a valid header value".to_string())?;
            request.headers_mut().insert("authorization", value);
        }
        let uri = request.uri();
        let host = uri.host().ok_or("collector URL has no host")?;
        let port = uri.port_u16().unwrap_or(80);
        let addr = (host.trim_start_matches('[').trim_end_matches(']'), port)
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .next()
            .ok_or("collector address resolves to nothing")?;
        let stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        // A collector that stops reading must not stall the shipper for long.
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let (mut ws, response) = tungstenite::client(request, stream).map_err(|e| e.to_string())?;
        let acks = response
            .headers()
            .get("looptrace-ack")
            .is_some_and(|v| v == "1");
        ws.send(Message::Binary(self.header.clone().into()))
            .map_err(|e| e.to_string())?;
        Ok((ws, acks))
    }

    fn send(&mut self, frame: &[u8], count: u64) {
        self.backlog.push_back((frame.to_vec(), count));
        self.bytes += frame.len();
        self.bound();
        self.flush(false);
    }

    /// Keeps within the bound: first lets go of the bytes of the oldest frames
    /// sent but not yet acknowledged (they are probably delivered: lost only if
    /// the connection fails before their acknowledgement), then drops the oldest
    /// frames not sent at all, counting their events.
    fn bound(&mut self) {
        for (f, _) in self.unacked.iter_mut() {
            if self.bytes <= self.limit {
                return;
            }
            self.bytes -= f.len();
            *f = Vec::new();
        }
        while self.bytes > self.limit {
            let Some((f, n)) = self.backlog.pop_front() else {
                break;
            };
            self.bytes -= f.len();
            self.dropped += n;
            self.unreported += n;
        }
    }

    /// Frames sent but not acknowledged go back to the front of the backlog, to be
    /// sent again on the next connection.
    fn lost(&mut self, why: &str) {
        if !self.warned {
            eprintln!(
                "looptrace: lost the collector at {} ({why}); reconnecting",
                self.url
            );
        }
        self.warned = true;
        self.conn = None;
        while let Some((f, n)) = self.unacked.pop_back() {
            if f.is_empty() {
                // Let go of (for room) or a restatement: not to be sent again.
                self.dropped += n;
                self.unreported += n;
            } else {
                self.backlog.push_front((f, n));
            }
        }
        self.next_try = Instant::now() + self.backoff;
    }

    /// The restatement a new connection sends first (see [`Resolver::resume`]);
    /// how many events to report lost is [`WsSink::unreported`].
    ///
    /// [`Resolver::resume`]: crate::resolve::Resolver::resume
    pub(crate) fn resume(&mut self, frames: Vec<Vec<u8>>) {
        self.needs_resume = false;
        self.unreported = 0;
        let Some(ws) = self.conn.as_mut() else { return };
        for f in frames {
            if let Err(e) = ws.send(Message::Binary(f.into())) {
                return self.lost(&e.to_string());
            }
            // Acknowledged like any frame; nothing to send again if it is not.
            if self.acks {
                self.unacked.push_back((Vec::new(), 0));
            }
        }
        self.flush(false);
    }

    /// Events lost so far and not yet reported to a collector.
    pub(crate) fn unreported(&self) -> u64 {
        self.unreported
    }

    fn flush(&mut self, force: bool) {
        if self.conn.is_none() {
            if !force && Instant::now() < self.next_try {
                return;
            }
            match self.connect() {
                Ok((ws, acks)) => {
                    if self.warned {
                        eprintln!("looptrace: connected to collector at {}", self.url);
                    }
                    // A new session: it needs the threads and live tasks first, unless
                    // it will get everything from the very start.
                    self.needs_resume = self.connections > 0 || self.dropped > 0;
                    self.connections += 1;
                    self.conn = Some(ws);
                    self.acks = acks;
                    self.acked = 0;
                    self.backoff = MIN_BACKOFF;
                    self.warned = false;
                }
                Err(e) => {
                    if !self.warned {
                        eprintln!(
                            "looptrace: collector at {} unreachable ({e}); buffering events and retrying",
                            self.url
                        );
                        self.warned = true;
                    }
                    self.next_try = Instant::now() + self.backoff;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    return;
                }
            }
        }
        if self.needs_resume {
            // The shipper restates first (it knows the threads and tasks).
            return;
        }
        self.read_acks();
        while let Some(ws) = self.conn.as_mut() {
            let Some((f, n)) = self.backlog.pop_front() else {
                break;
            };
            if let Err(e) = ws.send(Message::Binary(f.clone().into())) {
                self.backlog.push_front((f, n));
                return self.lost(&e.to_string());
            }
            if self.acks {
                self.unacked.push_back((f, n));
            } else {
                self.bytes -= f.len();
            }
        }
        self.read_acks();
    }

    /// Takes the acknowledgements that have come (`{"ack":N}`: the first N frames
    /// of this connection are the collector's).
    ///
    /// Read as they come, without waiting: the socket is non-blocking for the
    /// reads only (a read that waits, even briefly, puts the shipping thread to
    /// sleep and wakes it again, twice a frame), and blocking, with its timeout,
    /// for the writes.
    fn read_acks(&mut self) {
        let Some(ws) = self.conn.as_mut() else { return };
        if let Err(e) = ws.get_ref().set_nonblocking(true) {
            return self.lost(&e.to_string());
        }
        self.read_ready_acks();
        if let Some(ws) = self.conn.as_mut() {
            if let Err(e) = ws.get_ref().set_nonblocking(false) {
                self.lost(&e.to_string());
            }
        }
    }

    fn read_ready_acks(&mut self) {
        loop {
            let Some(ws) = self.conn.as_mut() else { return };
            match ws.read() {
                Ok(Message::Text(t)) => {
                    let n = t
                        .strip_prefix("{\"ack\":")
                        .and_then(|r| r.strip_suffix('}'))
                        .and_then(|n| n.parse::<u64>().ok());
                    if let Some(n) = n {
                        while self.acked < n {
                            let Some((f, _)) = self.unacked.pop_front() else {
                                break;
                            };
                            self.bytes -= f.len();
                            self.acked += 1;
                        }
                    }
                }
                Ok(Message::Close(_)) => return self.lost("it closed the connection"),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return
                }
                Err(e) => return self.lost(&e.to_string()),
            }
        }
    }

    /// Sends what is left, waits a little for the acknowledgements, closes; returns
    /// the events never delivered.
    fn close(&mut self) -> u64 {
        if !self.backlog.is_empty() || !self.unacked.is_empty() {
            self.flush(true);
        }
        let deadline = Instant::now() + CLOSE_WAIT;
        while self.conn.is_some() && !self.unacked.is_empty() && Instant::now() < deadline {
            self.read_acks();
            std::thread::sleep(Duration::from_millis(2));
        }
        if let Some(mut ws) = self.conn.take() {
            let _ = ws.close(None);
            let _ = ws.flush();
        }
        let lost: u64 = self
            .backlog
            .drain(..)
            .chain(self.unacked.drain(..))
            .map(|(_, n)| n)
            .sum();
        self.dropped += lost;
        self.dropped
    }
}

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

/// A WebSocket connection to a collector that survives the collector: frames wait in
/// a bounded backlog while it is unreachable, reconnects back off from 100 ms to 5 s,
/// and what overflows the backlog is dropped and counted.
pub(crate) struct WsSink {
    url: String,
    header: Vec<u8>,
    conn: Option<WebSocket<TcpStream>>,
    backlog: VecDeque<(Vec<u8>, u64)>,
    backlog_bytes: usize,
    limit: usize,
    next_try: Instant,
    backoff: Duration,
    dropped: u64,
    warned: bool,
}

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl WsSink {
    fn new(url: String, limit: usize) -> WsSink {
        WsSink {
            url,
            header: Vec::new(),
            conn: None,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            limit,
            next_try: Instant::now(),
            backoff: MIN_BACKOFF,
            dropped: 0,
            warned: false,
        }
    }

    fn connect(&self) -> Result<WebSocket<TcpStream>, String> {
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
        let (mut ws, _) = tungstenite::client(request, stream).map_err(|e| e.to_string())?;
        ws.send(Message::Binary(self.header.clone().into()))
            .map_err(|e| e.to_string())?;
        Ok(ws)
    }

    fn send(&mut self, frame: &[u8], count: u64) {
        self.backlog.push_back((frame.to_vec(), count));
        self.backlog_bytes += frame.len();
        while self.backlog_bytes > self.limit {
            let Some((f, n)) = self.backlog.pop_front() else {
                break;
            };
            self.backlog_bytes -= f.len();
            self.dropped += n;
        }
        self.flush(false);
    }

    fn flush(&mut self, force: bool) {
        if self.conn.is_none() {
            if !force && Instant::now() < self.next_try {
                return;
            }
            match self.connect() {
                Ok(ws) => {
                    if self.warned {
                        eprintln!("looptrace: connected to collector at {}", self.url);
                    }
                    self.conn = Some(ws);
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
        let Some(ws) = self.conn.as_mut() else { return };
        while let Some((f, _)) = self.backlog.front() {
            if let Err(e) = ws.send(Message::Binary(f.clone().into())) {
                eprintln!(
                    "looptrace: lost the collector at {} ({e}); reconnecting",
                    self.url
                );
                self.warned = true;
                self.conn = None;
                self.next_try = Instant::now() + self.backoff;
                return;
            }
            if let Some((f, _)) = self.backlog.pop_front() {
                self.backlog_bytes -= f.len();
            }
        }
    }

    fn close(&mut self) -> u64 {
        if !self.backlog.is_empty() {
            self.flush(true);
        }
        if let Some(mut ws) = self.conn.take() {
            let _ = ws.close(None);
            let _ = ws.flush();
        }
        self.dropped + self.backlog.drain(..).map(|(_, n)| n).sum::<u64>()
    }
}

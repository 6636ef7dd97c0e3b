//! What looptrace's tests share (as console-subscriber's `tests/support`): a
//! collector served on a thread of its own or as a `looptrace serve` process,
//! HTTP and WebSocket clients speaking its API, frames of the wire codec, a
//! terminal driven through tmux, and readings of event lists.

use futures_util::{SinkExt, StreamExt};
use looptrace_collector::hub::{Hub, HubConfig};
use looptrace_collector::server::{AppState, ServerConfig};
use looptrace_wire::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// `looptrace serve --addr ADDR ARGS`, run from the binary `bin`: the process,
/// once it listens (what it prints after that is drained).
pub fn looptrace_serve<A: AsRef<std::ffi::OsStr>>(
    bin: &std::path::Path,
    addr: SocketAddr,
    args: impl IntoIterator<Item = A>,
) -> std::process::Child {
    use std::io::BufRead;
    let mut child = std::process::Command::new(bin)
        .args(["serve", "--addr", &addr.to_string()])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("looptrace serve starts");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("its output"));
    let mut line = String::new();
    out.read_line(&mut line).expect("its first line");
    assert!(line.contains("listening"), "{line}");
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    child
}

/// Starts a collector on 127.0.0.1:0 on its own thread.
pub fn start(hub: HubConfig, server: ServerConfig) -> (SocketAddr, Arc<Hub>) {
    let hub = Hub::new(hub);
    let addr = serve(AppState {
        hub: hub.clone(),
        config: Arc::new(server),
        replay: None,
    });
    (addr, hub)
}

/// Serves `hub` on 127.0.0.1:0 as [`serve`] does, replaying `rec` into it under
/// `control` (as `looptrace replay`).
pub fn serve_replay(
    hub: Arc<Hub>,
    rec: looptrace_wire::RawRecording,
    control: Arc<looptrace_collector::replay::ReplayControl>,
) -> SocketAddr {
    let fed = hub.clone();
    let ctl = control.clone();
    serve_with(
        AppState {
            hub,
            config: Arc::new(ServerConfig::default()),
            replay: Some(control),
        },
        move || {
            tokio::spawn(looptrace_collector::replay::replay(fed, rec, ctl));
        },
    )
}

/// Serves `state` on 127.0.0.1:0 on a thread and runtime of its own (two
/// workers, as `looptrace serve`); returns the address.
pub fn serve(state: AppState) -> SocketAddr {
    serve_with(state, || {})
}

/// [`serve`], running `also` in the server's runtime first.
fn serve_with(state: AppState, also: impl FnOnce() + Send + 'static) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            also();
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            looptrace_collector::server::serve(l, state).await.unwrap();
        });
    });
    addr
}

/// GET `path`: (status, JSON body).
pub fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    // Chunked bodies: take the JSON between the first '{' and the last '}'.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) => &body[a..=b],
        _ => "null",
    };
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

pub fn header(name: &str) -> Header {
    Header {
        process_name: name.into(),
        pid: 42,
        flavor: Flavor::CurrentThread,
        workers: 1,
        clock_origin_unix_ns: 0,
    }
}

pub fn header_frame(name: &str) -> Vec<u8> {
    let mut f = Vec::new();
    encode_header(&header(name), &mut f);
    f
}

pub fn events_frame(events: &[Event]) -> Vec<u8> {
    let mut f = Vec::new();
    encode_events(events, &mut f);
    f
}

pub fn spawn_ev(ts: u64, task: u64, name: &str) -> Event {
    Event {
        ts_ns: ts,
        thread: 0,
        kind: EventKind::Spawn(Box::new(looptrace_wire::Spawn {
            task,
            kind: TaskKind::Task,
            name: Some(name.into()),
            location: "x.rs:1:1".into(),
            parent: None,
            size_bytes: None,
        })),
    }
}

pub fn poll_evs(ts: u64, task: u64) -> [Event; 2] {
    [
        Event {
            ts_ns: ts,
            thread: 0,
            kind: EventKind::PollStart { task },
        },
        Event {
            ts_ns: ts + 100,
            thread: 0,
            kind: EventKind::PollEnd {
                task,
                ready: false,
                clones: 0,
                drops: 0,
                context: None,
            },
        },
    ]
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(addr: SocketAddr, path: &str) -> Ws {
    tokio_tungstenite::connect_async(format!("ws://{addr}{path}"))
        .await
        .expect("websocket connects")
        .0
}

pub async fn send_bin(ws: &mut Ws, bytes: Vec<u8>) {
    ws.send(Message::Binary(bytes.into())).await.unwrap();
}

/// Closes an app's connection the way an app does: a close frame, then whatever
/// the collector still sends (its acknowledgements) until it closes too. (Dropping
/// a socket with unread acknowledgements resets it, and the collector loses the
/// frames it had not read yet.)
pub async fn finish(mut ws: Ws) {
    let _ = ws.close(None).await;
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(30), ws.next()).await {}
}

pub async fn send_json(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next JSON message of `kind` (skipping others), within `within`.
pub async fn next_of(ws: &mut Ws, kind: &str, within: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .ok()??
            .ok()?;
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).ok()?;
            if v["type"] == kind {
                return Some(v);
            }
        }
    }
}

/// Reads until the server closes: the close frame's (code, reason).
pub async fn closed(ws: &mut Ws) -> Option<(u16, String)> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .ok()?
        {
            Some(Ok(Message::Close(Some(f)))) => {
                return Some((f.code.into(), f.reason.to_string()))
            }
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// A raw HTTP/1.1 GET with the given headers (Host included, if wanted): the
/// status and the body as text.
pub fn request(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

/// A WebSocket handshake to `path` with the given headers: the socket, or the
/// HTTP status it was refused with.
pub async fn connect_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("handshake failed otherwise: {e}"),
    }
}

/// The body of an HTTP response.
pub fn body(response: &str) -> &str {
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default()
}

/// `GET path` over HTTP/1.1 on `addr`: the whole response, status line first.
pub fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("the server accepts");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A terminal in tmux.
pub mod tmux {
    use std::process::Command;
    use std::time::{Duration, Instant};

    /// Runs tmux with `args`; its output.
    pub fn tmux(args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(args)
            .output()
            .expect("tmux runs (apt-get install -y tmux, as scripts/test does)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen of `session` once it shows `needle` (or after `within`).
    pub fn wait_for(session: &str, needle: &str, within: Duration) -> String {
        wait_until(session, within, |screen| screen.contains(needle))
    }

    /// The screen of `session` once `done` holds of it (or after `within`).
    pub fn wait_until(session: &str, within: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let screen = tmux(&["capture-pane", "-p", "-t", session]);
            if done(&screen) || Instant::now() > deadline {
                return screen;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Wakes (wake or wake_by_ref) of `task` in `events`, with who did them.
pub fn wakes_of(events: &[Event], task: TaskId) -> Vec<WakeSource> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Waker {
                task: t,
                op: WakeOp::Wake | WakeOp::WakeByRef,
                by,
            } if t == task => Some(by),
            _ => None,
        })
        .collect()
}

/// The path of example `name` of the package under test: tests start examples
/// as the programs they watch (`cargo test` builds them).
pub fn example(name: &str) -> std::path::PathBuf {
    // A test runs from target/<profile>/deps; examples are in target/<profile>/examples.
    let exe = std::env::current_exe().expect("the test binary");
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target directory");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "example {name} is built by `cargo test` (missing at {})",
        path.display()
    );
    path
}

/// A task's row as a viewer gets it: idle, `polls` polls, the rest zero.
pub fn task_summary(id: TaskId, name: &str, polls: u64) -> looptrace_api::TaskSummary {
    looptrace_api::TaskSummary {
        id,
        name: name.into(),
        given_name: Some(name.into()),
        location: "src/main.rs:1:1".into(),
        kind: TaskKind::Task,
        parent: None,
        state: TaskState::Idle,
        state_since_ns: 0,
        spawned_ns: 0,
        ended_ns: None,
        outcome: None,
        polls,
        busy_ns: 0,
        scheduled_ns: 0,
        idle_ns: 0,
        wakes: Default::default(),
        self_wakes: 0,
        longest_poll_ns: 0,
        last_poll_ns: None,
        poll_p50_ns: None,
        poll_p99_ns: None,
        scheduled_p50_ns: None,
        scheduled_p99_ns: None,
        size_bytes: None,
        live_wakers: 0,
        thread: None,
        warnings: 0,
        lifetime_ns: 0,
        as_of_ns: 0,
        context: None,
    }
}

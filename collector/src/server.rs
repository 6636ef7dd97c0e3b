//! The collector's HTTP face (axum): ingest from traced apps, the viewer WebSocket,
//! and the REST API. See `docs/api.md`.

use crate::hub::{session_stats, task_detail, task_summary, Hub, SessionId, Source, Update};
use crate::replay::ReplayControl;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use looptrace_wire::{decode_frame, DecodeError, Frame};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Limits and access rules of a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Required (as `Authorization: Bearer T` or `?token=T`) when set.
    pub token: Option<String>,
    /// Largest WebSocket message accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Malformed frames a connection may send before it is closed.
    pub max_bad_frames: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            token: None,
            max_frame_bytes: 16 << 20,
            max_bad_frames: 10,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<Hub>,
    pub config: Arc<ServerConfig>,
    /// Set when serving a replay: viewers may pause it and change its speed.
    pub replay: Option<Arc<ReplayControl>>,
}

/// The router: `/ingest`, `/ws/view` and `/api/...` (behind the token, if one is
/// set), and the browser timeline's files.
pub fn router(state: AppState) -> Router {
    let guarded = Router::new()
        .route("/ingest", get(ingest))
        .route("/ws/view", get(view))
        .route("/api/health", get(|| async { Json(json!({"ok": true})) }))
        .route("/api/sessions", get(sessions))
        .route("/api/sessions/{id}/tasks", get(tasks))
        .route("/api/sessions/{id}/tasks/{task}", get(task))
        .route("/api/sessions/{id}/warnings", get(warnings))
        .route("/api/sessions/{id}/marks", get(marks))
        .route("/api/sessions/{id}/stats", get(stats))
        .route("/api/sessions/{id}/window", get(window))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/", get(crate::web::index))
        .route("/{*path}", get(crate::web::file))
        .merge(guarded)
        .with_state(state)
}

/// Refuses requests without the token, when one is required.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let query = Query::<HashMap<String, String>>::try_from_uri(req.uri())
        .map(|q| q.0)
        .unwrap_or_default();
    if !authorized(&state, req.headers(), &query) {
        return reject(&state, "missing or wrong token");
    }
    next.run(req).await
}

/// Serves the collector on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// Checks the token, if one is required.
fn authorized(state: &AppState, headers: &HeaderMap, query: &HashMap<String, String>) -> bool {
    let Some(token) = &state.config.token else {
        return true;
    };
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer == Some(token.as_str()) || query.get("token") == Some(token)
}

/// A browser page may only open a viewer socket if it was served by this host.
fn origin_allowed(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .split_once("://")
        .map(|(_, h)| h)
        .unwrap_or(origin)
        .trim_end_matches('/');
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

fn reject(state: &AppState, message: &str) -> Response {
    state
        .hub
        .counters
        .rejected_connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    error(StatusCode::UNAUTHORIZED, message)
}

async fn ingest(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let max = state.config.max_frame_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| ingest_socket(state, socket))
}

async fn close_with(mut socket: WebSocket, code: u16, reason: String) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

async fn ingest_socket(state: AppState, mut socket: WebSocket) {
    let hub = state.hub.clone();
    let mut session: Option<SessionId> = None;
    let mut bad = 0u32;
    while let Some(msg) = socket.recv().await {
        let bytes = match msg {
            Ok(Message::Binary(b)) => b,
            Ok(Message::Close(_)) => break,
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Text(_)) => {
                hub.bad_frame(session);
                bad += 1;
                if bad > state.config.max_bad_frames {
                    close_with(
                        socket,
                        1003,
                        "looptrace ingest takes binary frames only".into(),
                    )
                    .await;
                    break;
                }
                continue;
            }
            Err(e) => {
                // Oversize messages and protocol errors end the connection.
                hub.bad_frame(session);
                eprintln!("looptrace collector: ingest connection dropped: {e}");
                break;
            }
        };
        match session {
            None => match decode_frame(&bytes) {
                Ok(Frame::Header(h)) => session = Some(hub.open(h, &bytes, Source::Live)),
                Ok(Frame::Events(_) | Frame::Note(_)) => {
                    hub.bad_frame(None);
                    close_with(socket, 1008, "the first frame must be a header".into()).await;
                    return;
                }
                Err(e) => {
                    hub.bad_frame(None);
                    close_with(socket, close_code(&e), format!("bad header frame: {e}")).await;
                    return;
                }
            },
            Some(id) => match ingest_off_loop(&hub, id, bytes).await {
                Ok(_) => {}
                Err(e @ DecodeError::Version { .. }) => {
                    close_with(socket, 1008, e.to_string()).await;
                    break;
                }
                Err(e) => {
                    bad += 1;
                    if bad > state.config.max_bad_frames {
                        close_with(
                            socket,
                            1007,
                            format!("too many malformed frames (last: {e})"),
                        )
                        .await;
                        break;
                    }
                }
            },
        }
    }
    if let Some(id) = session {
        hub.close(id);
    }
}

/// Frames larger than this are ingested on a blocking thread, so that a huge one
/// never holds up the server's other connections.
const INLINE_FRAME_BYTES: usize = 256 << 10;

async fn ingest_off_loop(
    hub: &Arc<Hub>,
    id: SessionId,
    bytes: axum::body::Bytes,
) -> Result<usize, DecodeError> {
    if bytes.len() <= INLINE_FRAME_BYTES {
        return hub.ingest_frame(id, &bytes);
    }
    let hub = hub.clone();
    tokio::task::spawn_blocking(move || hub.ingest_frame(id, &bytes))
        .await
        .unwrap_or(Ok(0))
}

fn close_code(e: &DecodeError) -> u16 {
    match e {
        DecodeError::Version { .. } => 1008,
        _ => 1007,
    }
}

async fn view(State(state): State<AppState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    if !origin_allowed(&headers) {
        return reject(&state, "origin not allowed");
    }
    ws.on_upgrade(move |socket| view_socket(state, socket))
}

/// What a viewer asks for.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum ViewRequest {
    /// Live updates of one session, or of all (`session` absent).
    Subscribe {
        session: Option<SessionId>,
    },
    Unsubscribe,
    /// A time window, full or aggregated.
    Window {
        id: Option<u64>,
        session: SessionId,
        start_ns: u64,
        end_ns: u64,
        #[serde(default = "default_max_intervals")]
        max_intervals: usize,
        #[serde(default = "default_buckets")]
        buckets: usize,
    },
    /// Replay control: `pause`, `play`, or `speed` with `speed`.
    Replay {
        action: String,
        speed: Option<f64>,
    },
    /// Everything known about a session now: tasks, warnings, stats.
    Snapshot {
        session: SessionId,
    },
    /// One task in detail, with its recent polls and who woke each.
    Task {
        session: SessionId,
        task: u64,
    },
}

fn default_max_intervals() -> usize {
    20_000
}
fn default_buckets() -> usize {
    1000
}

async fn view_socket(state: AppState, mut socket: WebSocket) {
    let hub = state.hub.clone();
    let mut updates = hub.subscribe();
    // None: not subscribed; Some(None): all sessions.
    let mut subscribed: Option<Option<SessionId>> = None;
    // Tells the hub someone watches, for as long as the subscription lasts.
    let mut _watch = None;
    let hello = json!({"type": "sessions", "sessions": hub.sessions(), "replay": state.replay.as_ref().map(|r| r.state())});
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut stats_tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            msg = socket.recv() => {
                let Some(Ok(msg)) = msg else { break };
                let text = match msg {
                    Message::Text(t) => t.to_string(),
                    Message::Close(_) => break,
                    _ => continue,
                };
                let reply = match serde_json::from_str::<ViewRequest>(&text) {
                    Ok(ViewRequest::Subscribe { session }) => {
                        subscribed = Some(session);
                        _watch = Some(hub.watch(session));
                        json!({"type": "subscribed", "session": session})
                    }
                    Ok(ViewRequest::Unsubscribe) => {
                        subscribed = None;
                        _watch = None;
                        json!({"type": "unsubscribed"})
                    }
                    Ok(ViewRequest::Window { id, session, start_ns, end_ns, max_intervals, buckets }) => {
                        let hub = hub.clone();
                        let w = tokio::task::spawn_blocking(move || hub.window(session, start_ns, end_ns, max_intervals, buckets)).await.ok().flatten();
                        match w {
                            Some(w) => {
                                let mut v = serde_json::to_value(&w).unwrap_or(Value::Null);
                                v["type"] = json!("window");
                                v["id"] = json!(id);
                                v["session"] = json!(session);
                                v
                            }
                            None => json!({"type": "error", "id": id, "message": format!("no session {session}")}),
                        }
                    }
                    Ok(ViewRequest::Snapshot { session }) => {
                        hub.snapshot(session).unwrap_or_else(|| json!({"type": "error", "message": format!("no session {session}")}))
                    }
                    Ok(ViewRequest::Task { session, task }) => {
                        let hub = hub.clone();
                        tokio::task::spawn_blocking(move || hub.task_json(session, task))
                            .await
                            .ok()
                            .flatten()
                            .unwrap_or_else(|| json!({"type": "error", "message": format!("no task {task} in session {session}")}))
                    }
                    Ok(ViewRequest::Replay { action, speed }) => match &state.replay {
                        Some(r) => match r.apply(&action, speed) {
                            Ok(()) => json!({"type": "replay", "replay": r.state()}),
                            Err(e) => json!({"type": "error", "message": e}),
                        },
                        None => json!({"type": "error", "message": "not a replay"}),
                    },
                    Err(e) => json!({"type": "error", "message": format!("bad request: {e}")}),
                };
                if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                    break;
                }
            }
            update = updates.recv() => {
                let text = match update {
                    Ok(Update::Sessions) => json!({"type": "sessions", "sessions": hub.sessions()}).to_string(),
                    Ok(Update::Batch { session, message }) => match subscribed {
                        Some(None) => message.to_string(),
                        Some(Some(s)) if s == session => message.to_string(),
                        _ => continue,
                    },
                    Err(RecvError::Lagged(n)) => {
                        // This viewer fell behind: tell it, carry on from the newest.
                        hub.record_lag(n);
                        json!({"type": "lagged", "skipped": n}).to_string()
                    }
                    Err(RecvError::Closed) => break,
                };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            _ = stats_tick.tick() => {
                let Some(which) = subscribed else { continue };
                let ids = match which { Some(s) => vec![s], None => hub.session_ids() };
                for id in ids {
                    if let Some(mut s) = hub.with_session(id, session_stats) {
                        s["type"] = json!("stats");
                        if socket.send(Message::Text(s.to_string().into())).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}

async fn sessions(State(state): State<AppState>) -> Response {
    Json(json!({"sessions": state.hub.sessions(), "counters": counters(&state.hub)}))
        .into_response()
}

fn counters(hub: &Hub) -> Value {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &hub.counters;
    json!({
        "frames": c.frames.load(Relaxed),
        "events": c.events.load(Relaxed),
        "bytes": c.bytes.load(Relaxed),
        "bad_frames": c.bad_frames.load(Relaxed),
        "rejected_connections": c.rejected_connections.load(Relaxed),
        "evicted_events": c.evicted_events.load(Relaxed),
        "viewer_lagged": c.viewer_lagged.load(Relaxed),
    })
}

async fn tasks(
    State(state): State<AppState>,
    Path(id): Path<SessionId>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let state_filter = q.get("state").cloned();
    let name_filter = q.get("name").map(|n| n.to_lowercase());
    let list = state.hub.with_session(id, |s| {
        let mut ts: Vec<_> = s.model.tasks.values().collect();
        ts.sort_by_key(|t| t.id);
        ts.into_iter()
            .filter(|t| {
                state_filter
                    .as_deref()
                    .is_none_or(|f| t.phase.as_str() == f)
            })
            .filter(|t| {
                name_filter
                    .as_deref()
                    .is_none_or(|f| t.name.to_lowercase().contains(f))
            })
            .map(|t| task_summary(t, s.model.now_ns))
            .collect::<Vec<_>>()
    });
    match list {
        Some(l) => Json(json!({"session": id, "tasks": l})).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no session {id}")),
    }
}

async fn task(State(state): State<AppState>, Path((id, task)): Path<(SessionId, u64)>) -> Response {
    match state.hub.with_session(id, |s| {
        s.model.tasks.get(&task).map(|t| task_detail(t, &s.model))
    }) {
        Some(Some(t)) => Json(t).into_response(),
        Some(None) => error(
            StatusCode::NOT_FOUND,
            format!("no task {task} in session {id}"),
        ),
        None => error(StatusCode::NOT_FOUND, format!("no session {id}")),
    }
}

async fn warnings(State(state): State<AppState>, Path(id): Path<SessionId>) -> Response {
    match state
        .hub
        .with_session(id, |s| json!({"session": id, "warnings": s.model.warnings}))
    {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no session {id}")),
    }
}

async fn marks(State(state): State<AppState>, Path(id): Path<SessionId>) -> Response {
    match state
        .hub
        .with_session(id, |s| json!({"session": id, "marks": s.model.marks}))
    {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no session {id}")),
    }
}

async fn stats(State(state): State<AppState>, Path(id): Path<SessionId>) -> Response {
    match state.hub.with_session(id, session_stats) {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no session {id}")),
    }
}

async fn window(
    State(state): State<AppState>,
    Path(id): Path<SessionId>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let num = |k: &str, d: u64| q.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(d);
    let (start, end) = (num("start_ns", 0), num("end_ns", u64::MAX));
    let (max_intervals, buckets) = (
        num("max_intervals", 20_000) as usize,
        num("buckets", 1000) as usize,
    );
    let hub = state.hub.clone();
    match tokio::task::spawn_blocking(move || hub.window(id, start, end, max_intervals, buckets))
        .await
    {
        Ok(Some(w)) => Json(w).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no session {id}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

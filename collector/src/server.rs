//! The collector's HTTP face (axum): ingest from traced apps, the viewer WebSocket,
//! and the REST API. See `docs/api.md`.

use crate::hub::{message_text, Hub, SessionId, Source, Update};
use crate::replay::ReplayControl;
use crate::to_api::{session_stats, task_detail, ToApi};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use looptrace_api as api;
use looptrace_wire::{decode_frame, DecodeError, Frame};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Limits and access rules of a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Required (as `Authorization: Bearer T` or `?token=T`) when set.
    pub token: Option<String>,
    /// Host names (besides loopback ones) requests may be addressed to when no
    /// token is set: a page from another site that rebinds its own name to this
    /// machine's address is refused.
    pub allow_hosts: Vec<String>,
    /// Largest WebSocket message accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Malformed frames a connection may send; the last of them closes it.
    pub max_bad_frames: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            token: None,
            allow_hosts: Vec::new(),
            max_frame_bytes: 16 << 20,
            max_bad_frames: 10,
        }
    }
}

/// Why a server's access rules cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessError {
    #[error("an empty token protects nothing: give a real one")]
    EmptyToken,
    #[error(
        "listening on {0} (not loopback) needs a token, which apps and viewers must then present"
    )]
    NeedsToken(std::net::SocketAddr),
}

impl ServerConfig {
    /// Checks the rules for a server listening on `addr`: tokens are never empty,
    /// and anything but loopback needs one.
    pub fn check(&self, addr: std::net::SocketAddr) -> Result<(), AccessError> {
        match &self.token {
            Some(t) if t.trim().is_empty() => Err(AccessError::EmptyToken),
            None if !addr.ip().is_loopback() => Err(AccessError::NeedsToken(addr)),
            _ => Ok(()),
        }
    }
}

/// Tasks a task list gives by default, and at most (`?limit=`, `?offset=`).
pub const TASKS_PAGE: usize = 5000;
pub const MAX_TASKS_PAGE: usize = 50_000;

/// Largest `max_intervals` a window query may ask for: beyond it, windows come
/// aggregated.
pub const MAX_WINDOW_INTERVALS: usize = 100_000;
/// Most task x bucket cells an aggregated window holds: the buckets are fewer
/// when a window has many tasks.
pub const MAX_WINDOW_CELLS: usize = 2_000_000;

/// The API's errors: a status and a JSON body `{"error": "..."}`.
#[derive(Debug)]
pub enum ApiError {
    NotFound(String),
    BadRequest(String),
    Forbidden(String),
    Unauthorized(String),
    Internal(String),
}

impl ApiError {
    /// A message quoting at most the first 80 characters of what was sent.
    pub fn bad(what: &str, input: &str) -> ApiError {
        ApiError::BadRequest(format!("{what}: {:?}", clip(input)))
    }
}

/// At most 80 characters of `s`: error replies never echo a large input back.
pub fn clip(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
        };
        (status, Json(api::ErrorBody { error: message })).into_response()
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::BadRequest(clip(&r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::BadRequest(clip(&r.body_text()))
    }
}

fn no_session(id: SessionId) -> ApiError {
    ApiError::NotFound(format!("no session {id}"))
}

#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<Hub>,
    pub config: Arc<ServerConfig>,
    /// Set when serving a replay: viewers may pause it and change its speed.
    pub replay: Option<Arc<ReplayControl>>,
}

/// The router: `/ingest`, `/ws/view` and `/api/...` (behind the token, if one is
/// set), and the browser timeline's files; every route behind the Host and
/// Origin checks.
pub fn router(state: AppState) -> Router {
    let guarded = Router::new()
        .route("/ingest", get(ingest))
        .route("/ws/view", get(view))
        .route(
            "/api/health",
            get(|| async { Json(api::Health { ok: true }) }),
        )
        .route("/api/sessions", get(sessions))
        .route("/api/sessions/{id}/tasks", get(tasks))
        .route("/api/sessions/{id}/tasks/{task}", get(task))
        .route("/api/sessions/{id}/warnings", get(warnings))
        .route("/api/sessions/{id}/marks", get(marks))
        .route("/api/sessions/{id}/stats", get(stats))
        .route("/api/sessions/{id}/window", get(window))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/", get(crate::web::index))
        .route("/{*path}", get(crate::web::file))
        .merge(guarded)
        .layer(middleware::from_fn_with_state(state.clone(), same_origin))
        .with_state(state)
}

/// `/metrics`: what the collector knows, in the Prometheus text format
/// (OpenMetrics), taken off the async workers (a scrape locks each session in
/// turn).
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let hub = state.hub.clone();
    let groups = hub.config.metrics_groups;
    let text = tokio::task::spawn_blocking(move || crate::metrics::encode(&hub, groups))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        text,
    )
        .into_response())
}

/// Refuses requests without the token, when one is required.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let query = Query::<HashMap<String, String>>::try_from_uri(req.uri())
        .map(|q| q.0)
        .unwrap_or_default();
    if !authorized(&state, req.headers(), &query) {
        return reject(
            &state,
            ApiError::Unauthorized("missing or wrong token".into()),
        );
    }
    next.run(req).await
}

/// Refuses requests addressed to a host name that is not this collector's (DNS
/// rebinding), and requests from a browser page of another origin. Apps send no
/// Origin and pass.
async fn same_origin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Err(why) = check_origin(&state.config, req.headers()) {
        return reject(&state, ApiError::Forbidden(why));
    }
    next.run(req).await
}

/// The host part of `authority` (`host`, `host:port`, `[v6]:port`), lower case.
fn host_of(authority: &str) -> String {
    let a = authority.trim();
    let host = if let Some(rest) = a.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        a.rsplit_once(':').map_or(a, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                a
            }
        })
    };
    host.to_ascii_lowercase()
}

fn loopback_host(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The Host and Origin rules every route is behind (DNS rebinding, other
/// sites' pages).
pub fn check_origin(config: &ServerConfig, headers: &HeaderMap) -> Result<(), String> {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let host_name = host_of(host);
    let allowed = loopback_host(&host_name)
        || config
            .allow_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&host_name));
    if config.token.is_none() && !allowed {
        return Err(format!(
            "host {:?} is not this collector's (use --allow-host, or a token)",
            clip(host)
        ));
    }
    let Some(origin) = headers.get("origin") else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .map(|a| a.trim_end_matches('/'));
    match authority {
        Some(a) if !host.is_empty() && a.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(format!(
            "origin {:?} is not this collector's page",
            clip(origin)
        )),
    }
}

/// Serves the collector on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

/// Checks the token, if one is required.
fn authorized(state: &AppState, headers: &HeaderMap, query: &HashMap<String, String>) -> bool {
    let Some(token) = &state.config.token else {
        return true;
    };
    // The scheme is case-insensitive (RFC 7235).
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    bearer == Some(token.as_str()) || query.get("token") == Some(token)
}

fn reject(state: &AppState, e: ApiError) -> Response {
    state
        .hub
        .counters
        .rejected_connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    e.into_response()
}

async fn ingest(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    ws: WebSocketUpgrade,
) -> Response {
    let max = state.config.max_frame_bytes;
    let peer = peer.map(|Extension(ConnectInfo(a))| a.ip().to_string());
    let mut response = ws
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| ingest_socket(state, socket, peer));
    // This collector acknowledges frames: apps keep what is not acknowledged and
    // send it again after a reconnect.
    response
        .headers_mut()
        .insert("looptrace-ack", axum::http::HeaderValue::from_static("1"));
    response
}

async fn close_with(mut socket: WebSocket, code: u16, reason: String) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

async fn ingest_socket(state: AppState, mut socket: WebSocket, peer: Option<String>) {
    let hub = state.hub.clone();
    let mut session: Option<SessionId> = None;
    let mut bad = 0u32;
    // Frames taken after the header, acknowledged as each is ingested (recorded,
    // when recording): the app lets go of them then.
    let mut taken = 0u64;
    while let Some(msg) = socket.recv().await {
        let bytes = match msg {
            Ok(Message::Binary(b)) => b,
            Ok(Message::Close(_)) => break,
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Text(_)) => {
                hub.bad_frame(session);
                bad += 1;
                if bad >= state.config.max_bad_frames {
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
                let text = e.to_string();
                if text.contains("too long") || text.contains("Space limit") {
                    let max = state.config.max_frame_bytes;
                    close_with(socket, 1009, format!("frames are at most {max} bytes")).await;
                } else {
                    eprintln!("looptrace collector: ingest connection dropped: {e}");
                }
                break;
            }
        };
        match session {
            None => match decode_frame(&bytes) {
                Ok(Frame::Header(h)) => {
                    let id = hub.open(h, &bytes, Source::Live);
                    if let Some(peer) = peer.clone() {
                        hub.set_peer(id, peer);
                    }
                    session = Some(id);
                }
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
                Ok(_) => {
                    taken += 1;
                    let ack = format!("{{\"ack\":{taken}}}");
                    if socket.send(Message::Text(ack.into())).await.is_err() {
                        break;
                    }
                }
                Err(e @ DecodeError::Version { .. }) => {
                    close_with(socket, 1008, e.to_string()).await;
                    break;
                }
                Err(e) => {
                    // Taken (and counted as malformed): not to be sent again.
                    taken += 1;
                    let ack = format!("{{\"ack\":{taken}}}");
                    let _ = socket.send(Message::Text(ack.into())).await;
                    bad += 1;
                    if bad >= state.config.max_bad_frames {
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

/// Ingests a frame on a blocking thread: ingest (and the memory budget's work
/// after it) never holds up the server's workers, so the API answers meanwhile.
async fn ingest_off_loop(
    hub: &Arc<Hub>,
    id: SessionId,
    bytes: axum::body::Bytes,
) -> Result<usize, DecodeError> {
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

async fn view(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| view_socket(state, socket))
}

async fn view_socket(state: AppState, mut socket: WebSocket) {
    let hub = state.hub.clone();
    let mut updates = hub.subscribe();
    // None: not subscribed; Some(None): all sessions.
    let mut subscribed: Option<Option<SessionId>> = None;
    // Tells the hub someone watches, for as long as the subscription lasts.
    let mut _watch = None;
    let sessions = |hub: &Hub| api::Message::Sessions {
        sessions: hub.sessions(),
        replay: state.replay.as_ref().map(|r| r.state()),
    };
    if send(&mut socket, &sessions(&hub)).await.is_err() {
        return;
    }
    let mut stats_tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            msg = socket.recv() => {
                let Some(Ok(msg)) = msg else { break };
                let text = match msg {
                    Message::Text(t) => t,
                    Message::Close(_) => break,
                    _ => continue,
                };
                let reply = match serde_json::from_str::<api::Request>(&text) {
                    Ok(request) => answer(&state, request, &mut subscribed, &mut _watch).await,
                    Err(e) => error(None, format!("bad request: {}", clip(&e.to_string()))),
                };
                if send(&mut socket, &reply).await.is_err() {
                    break;
                }
            }
            update = updates.recv() => {
                let text = match update {
                    Ok(Update::Sessions) => message_text(&sessions(&hub)),
                    Ok(Update::Batch { session, message }) => match subscribed {
                        Some(None) => message.to_string(),
                        Some(Some(s)) if s == session => message.to_string(),
                        _ => continue,
                    },
                    Err(RecvError::Lagged(n)) => {
                        // This viewer fell behind: tell it, carry on from the newest.
                        hub.record_lag(n);
                        message_text(&api::Message::Lagged { skipped: n })
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
                    // A quiet app's silence may prove a lost waker by now.
                    hub.settle(id);
                    if let Some(s) = hub.with_session(id, session_stats) {
                        if send(&mut socket, &api::Message::Stats(s)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}

async fn send(socket: &mut WebSocket, m: &api::Message) -> Result<(), axum::Error> {
    socket.send(Message::Text(message_text(m).into())).await
}

fn error(id: Option<u64>, message: String) -> api::Message {
    api::Message::Error { id, message }
}

/// A viewer's request answered.
async fn answer(
    state: &AppState,
    request: api::Request,
    subscribed: &mut Option<Option<SessionId>>,
    watch: &mut Option<crate::hub::Watch>,
) -> api::Message {
    let hub = &state.hub;
    match request {
        api::Request::Subscribe { session: Some(id) } if hub.with_session(id, |_| ()).is_none() => {
            error(None, format!("no session {id}"))
        }
        api::Request::Subscribe { session } => {
            *subscribed = Some(session);
            *watch = Some(hub.watch(session));
            api::Message::Subscribed { session }
        }
        api::Request::Unsubscribe => {
            *subscribed = None;
            *watch = None;
            api::Message::Unsubscribed
        }
        api::Request::Window {
            id,
            session,
            start_ns,
            end_ns,
            max_intervals,
            buckets,
        } => {
            let hub = hub.clone();
            let w = tokio::task::spawn_blocking(move || {
                bounded_window(&hub, session, start_ns, end_ns, max_intervals, buckets)
            })
            .await
            .ok()
            .flatten();
            match w {
                Some(window) => api::Message::Window(api::WindowMessage {
                    id,
                    session,
                    window,
                }),
                None => error(id, format!("no session {session}")),
            }
        }
        api::Request::Snapshot { session } => hub
            .snapshot(session)
            .map(api::Message::Snapshot)
            .unwrap_or_else(|| error(None, format!("no session {session}"))),
        api::Request::Task { session, task } => {
            let hub = hub.clone();
            tokio::task::spawn_blocking(move || hub.task_message(session, task))
                .await
                .ok()
                .flatten()
                .map(api::Message::Task)
                .unwrap_or_else(|| error(None, format!("no task {task} in session {session}")))
        }
        api::Request::Replay { action, speed } => match &state.replay {
            Some(r) => match r.apply(action, speed) {
                Ok(()) => api::Message::Replay { replay: r.state() },
                Err(e) => error(None, e),
            },
            None => error(None, "not a replay".into()),
        },
    }
}

async fn sessions(State(state): State<AppState>) -> Json<api::SessionList> {
    Json(api::SessionList {
        sessions: state.hub.sessions(),
        counters: state.hub.counters(),
    })
}

type Api<T> = Result<Json<T>, ApiError>;

async fn tasks(
    State(state): State<AppState>,
    id: Result<Path<SessionId>, PathRejection>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Api<api::TaskPage> {
    let Path(id) = id?;
    let Query(q) = q?;
    let state_filter = q.get("state").cloned();
    let name_filter = q.get("name").map(|n| n.to_lowercase());
    let number = |k: &str, d: usize| -> Result<usize, ApiError> {
        q.get(k).map_or(Ok(d), |v| {
            v.parse()
                .map_err(|_| ApiError::bad(&format!("{k} must be a whole number"), v))
        })
    };
    let limit = number("limit", TASKS_PAGE)?.min(MAX_TASKS_PAGE);
    let offset = number("offset", 0)?;
    let list = state.hub.with_session(id, |s| {
        let mut ts: Vec<_> = s
            .model
            .tasks
            .values()
            .filter(|t| {
                state_filter
                    .as_deref()
                    .is_none_or(|f| t.state().as_str() == f)
            })
            .filter(|t| {
                name_filter
                    .as_deref()
                    .is_none_or(|f| t.name.to_lowercase().contains(f))
            })
            .collect();
        ts.sort_by_key(|t| t.id);
        let total = ts.len();
        let page: Vec<_> = ts
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|t| t.to_api(s.now_ns()))
            .collect();
        (total, page)
    });
    let (total, tasks) = list.ok_or_else(|| no_session(id))?;
    Ok(Json(api::TaskPage {
        session: id,
        total: total as u64,
        offset: offset as u64,
        tasks,
    }))
}

async fn task(
    State(state): State<AppState>,
    ids: Result<Path<(SessionId, u64)>, PathRejection>,
) -> Api<api::TaskDetail> {
    let Path((id, task)) = ids?;
    state
        .hub
        .with_session(id, |s| {
            s.model
                .tasks
                .get(&task)
                .map(|t| task_detail(t, &s.model, s.now_ns()))
        })
        .ok_or_else(|| no_session(id))?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no task {task} in session {id}")))
}

async fn warnings(
    State(state): State<AppState>,
    id: Result<Path<SessionId>, PathRejection>,
) -> Api<api::WarningList> {
    let Path(id) = id?;
    state
        .hub
        .with_session(id, |s| api::WarningList {
            session: id,
            warnings: s.model.findings().cloned().collect(),
        })
        .map(Json)
        .ok_or_else(|| no_session(id))
}

async fn marks(
    State(state): State<AppState>,
    id: Result<Path<SessionId>, PathRejection>,
) -> Api<api::MarkList> {
    let Path(id) = id?;
    state
        .hub
        .with_session(id, |s| api::MarkList {
            session: id,
            marks: s.model.marks.iter().cloned().collect(),
        })
        .map(Json)
        .ok_or_else(|| no_session(id))
}

async fn stats(
    State(state): State<AppState>,
    id: Result<Path<SessionId>, PathRejection>,
) -> Api<api::Stats> {
    let Path(id) = id?;
    state
        .hub
        .with_session(id, session_stats)
        .map(Json)
        .ok_or_else(|| no_session(id))
}

/// A window's parameters as a query gives them: numbers, or an error naming the
/// one that is not.
fn window_params(q: &HashMap<String, String>) -> Result<(u64, u64, usize, usize), ApiError> {
    let num = |k: &str, d: u64| -> Result<u64, ApiError> {
        match q.get(k) {
            None => Ok(d),
            Some(v) => v.parse::<u64>().map_err(|_| {
                ApiError::bad(
                    &format!("{k} must be a whole number of nanoseconds or items"),
                    v,
                )
            }),
        }
    };
    let (start, end) = (num("start_ns", 0)?, num("end_ns", u64::MAX)?);
    if end <= start {
        return Err(ApiError::BadRequest(format!(
            "end_ns ({end}) must be after start_ns ({start})"
        )));
    }
    Ok((
        start,
        end,
        num("max_intervals", 20_000)? as usize,
        num("buckets", 1000)? as usize,
    ))
}

async fn window(
    State(state): State<AppState>,
    id: Result<Path<SessionId>, PathRejection>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let Query(q) = q?;
    let (start, end, max_intervals, buckets) = window_params(&q)?;
    let hub = state.hub.clone();
    match tokio::task::spawn_blocking(move || {
        bounded_window(&hub, id, start, end, max_intervals, buckets)
    })
    .await
    {
        Ok(Some(w)) => Ok(Json(w).into_response()),
        Ok(None) => Err(no_session(id)),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

/// A window whose size is bounded whatever was asked: at most
/// [`MAX_WINDOW_INTERVALS`] intervals at full detail, and aggregated into at most
/// [`MAX_WINDOW_CELLS`] task buckets.
fn bounded_window(
    hub: &Hub,
    id: SessionId,
    start: u64,
    end: u64,
    max_intervals: usize,
    buckets: usize,
) -> Option<api::WindowReply> {
    let tasks = hub.with_session(id, |s| s.model.tasks.len())?.max(1);
    let buckets = buckets.clamp(1, (MAX_WINDOW_CELLS / tasks).max(1));
    hub.window(
        id,
        start,
        end,
        max_intervals.min(MAX_WINDOW_INTERVALS),
        buckets,
    )
}

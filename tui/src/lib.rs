//! looptrace's terminal UI: the live dashboard in the terminal.
//!
//! A ratatui application that connects to a collector's viewer socket (live or
//! replay) with tokio-tungstenite and shows the task table, a timeline, task
//! details, warnings and workers. [`state`] holds what the collector said, [`app`]
//! what the user is looking at and what keys do, [`view`] one file per screen.
//! It runs on its own (untraced) runtime and thread.

pub mod app;
pub mod lesson;
pub mod state;
pub mod theme;
pub mod view;

pub use app::{Action, App, View};
pub use lesson::Lesson;
pub use state::State;
pub use theme::Theme;

use futures_util::{SinkExt, StreamExt};
use looptrace_api::{Message as ApiMessage, Request};
use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind,
};
use ratatui::crossterm::execute;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Why the terminal UI stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("terminal: {0}")]
    Io(#[from] std::io::Error),
}

/// How to run the terminal UI.
pub struct Options {
    /// The collector: `HOST:PORT`, `http://HOST:PORT` or a `ws://` URL.
    pub addr: String,
    pub theme: Theme,
    /// A token the collector requires.
    pub token: Option<String>,
    /// Quit by itself once this is set (the demo is over, with `--exit`).
    pub stop: Option<Arc<AtomicBool>>,
    /// A line shown at the top right (the demo puts the browser timeline's address there).
    pub note: Option<String>,
    /// A text shown in a panel at start and whenever it changes (`i` reopens it).
    pub lesson: Option<Arc<Lesson>>,
}

/// The viewer socket's URL for a collector address.
pub fn view_url(addr: &str, token: Option<&str>) -> String {
    let base = if let Some(rest) = addr.strip_prefix("http://") {
        format!("ws://{}", rest.trim_end_matches('/'))
    } else if addr.starts_with("ws://") || addr.starts_with("wss://") {
        addr.trim_end_matches('/')
            .trim_end_matches("/ws/view")
            .to_string()
    } else {
        format!("ws://{}", addr.trim_end_matches('/'))
    };
    match token {
        Some(t) => format!("{base}/ws/view?token={t}"),
        None => format!("{base}/ws/view"),
    }
}

enum Incoming {
    Connected,
    Disconnected,
    Message(Box<ApiMessage>),
    /// A message this viewer cannot read (a collector of another version).
    Unreadable(String),
}

/// Keeps a connection to the collector, reconnecting with backoff.
async fn connection(
    url: String,
    tx: mpsc::UnboundedSender<Incoming>,
    mut out: mpsc::UnboundedReceiver<String>,
) {
    let mut backoff = Duration::from_millis(250);
    loop {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await {
            backoff = Duration::from_millis(250);
            if tx.send(Incoming::Connected).is_err() {
                return;
            }
            let (mut write, mut read) = ws.split();
            loop {
                tokio::select! {
                    msg = read.next() => match msg {
                        Some(Ok(Message::Text(t))) => {
                            let incoming = match serde_json::from_str(&t) {
                                Ok(m) => Incoming::Message(Box::new(m)),
                                Err(e) => Incoming::Unreadable(e.to_string()),
                            };
                            if tx.send(incoming).is_err() {
                                return;
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    req = out.recv() => match req {
                        Some(r) => {
                            if write.send(Message::Text(r.into())).await.is_err() {
                                break;
                            }
                        }
                        None => return,
                    },
                }
            }
        }
        if tx.send(Incoming::Disconnected).is_err() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Runs the terminal UI until the user quits (or `stop` is set). Restores the
/// terminal on the way out, and on panic.
pub fn run(opts: Options) -> Result<(), TuiError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(std::io::stdout(), DisableMouseCapture);
        ratatui::restore();
        previous(info);
    }));
    let mut terminal = ratatui::try_init()?;
    let _ = execute!(std::io::stdout(), EnableMouseCapture);
    let result = rt.block_on(event_loop(&mut terminal, opts));
    let _ = execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    result
}

fn send(out: &mpsc::UnboundedSender<String>, r: Request) {
    if let Ok(text) = serde_json::to_string(&r) {
        let _ = out.send(text);
    }
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    opts: Options,
) -> Result<(), TuiError> {
    let (in_tx, mut in_rx) = mpsc::unbounded_channel();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    tokio::spawn(connection(
        view_url(&opts.addr, opts.token.as_deref()),
        in_tx,
        out_rx,
    ));
    let (key_tx, mut key_rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("looptrace-tui-input".into())
        .spawn(move || {
            while let Ok(ev) = event::read() {
                if key_tx.send(ev).is_err() {
                    break;
                }
            }
        })?;
    let mut app = App {
        note: opts.note.clone(),
        ..App::default()
    };
    let mut lesson_seen = 0;
    let theme = opts.theme;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut ticks = 0u64;
    loop {
        terminal.draw(|f| view::render(&mut app, &theme, f))?;
        let width = terminal.size()?.width;
        let mut actions = Vec::new();
        tokio::select! {
            Some(inc) = in_rx.recv() => match inc {
                Incoming::Connected => {
                    app.state.connected = true;
                    if let Some(id) = app.state.session {
                        actions.push(Action::Session(id));
                    }
                }
                Incoming::Disconnected => app.state.connected = false,
                Incoming::Message(m) => {
                    if let Some(id) = app.state.apply(*m) {
                        actions.push(Action::Session(id));
                    }
                }
                Incoming::Unreadable(e) => {
                    app.state.report(format!("unreadable message from the collector: {e}"));
                }
            },
            Some(ev) = key_rx.recv() => match ev {
                Event::Key(k) if k.kind == KeyEventKind::Press => actions = app.on_key(k),
                Event::Mouse(m) => actions = app.on_mouse(m),
                _ => {}
            },
            _ = tick.tick() => {
                ticks += 1;
                if let Some(lesson) = &opts.lesson {
                    let (version, note) = lesson.read();
                    if version != lesson_seen {
                        lesson_seen = version;
                        app.lesson = Some(note);
                        app.lesson_open = true;
                    }
                } else if let Some(note) = app.state.current().and_then(|s| s.note.clone()) {
                    // A note the traced program put beside its session: shown like a lesson, again when it changes.
                    if app.lesson.as_ref() != Some(&note) {
                        app.lesson = Some(note);
                        app.lesson_open = true;
                    }
                }
                if opts.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                    return Ok(());
                }
                match app.view {
                    View::Timeline | View::Workers if app.follow || ticks.is_multiple_of(4) => actions.push(Action::Window),
                    View::Detail if ticks.is_multiple_of(4) => {
                        if let Some(id) = app.selected_task() {
                            actions.push(Action::Task(id));
                        }
                    }
                    _ => {}
                }
            }
        }
        for a in actions {
            let Some(session) = app.state.session else {
                if a == Action::Quit {
                    return Ok(());
                }
                continue;
            };
            match a {
                Action::Quit => return Ok(()),
                Action::Window => {
                    let (start, end) = app.range();
                    let buckets = view::timeline_columns(width);
                    // Aggregated always: one bucket per column.
                    send(
                        &out_tx,
                        Request::Window {
                            id: Some(0),
                            session,
                            start_ns: start,
                            end_ns: end,
                            max_intervals: 0,
                            buckets: buckets.into(),
                        },
                    );
                }
                Action::Task(task) => send(&out_tx, Request::Task { session, task }),
                Action::Replay(action, speed) => send(&out_tx, Request::Replay { action, speed }),
                Action::Session(id) => {
                    app.state.choose(id);
                    send(&out_tx, Request::Subscribe { session: Some(id) });
                    send(&out_tx, Request::Snapshot { session: id });
                }
            }
        }
    }
}

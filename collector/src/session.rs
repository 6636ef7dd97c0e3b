//! One traced process's events and what identifies it.

use looptrace_wire::{Event, EventKind, Header, TaskId};
use std::collections::HashMap;

/// A traced process's header and events, with its tasks' names.
#[derive(Debug, Clone)]
pub struct Session {
    pub header: Header,
    pub events: Vec<Event>,
    names: HashMap<TaskId, String>,
}

impl Session {
    pub fn new(header: Header) -> Session {
        Session {
            header,
            events: Vec::new(),
            names: HashMap::new(),
        }
    }

    /// Builds a session from a header and its events.
    pub fn from_events(header: Header, events: Vec<Event>) -> Session {
        let mut s = Session::new(header);
        s.extend(events);
        s
    }

    /// Appends events, learning task and thread names as they go by.
    pub fn extend(&mut self, events: impl IntoIterator<Item = Event>) {
        for e in events {
            self.learn(&e);
            self.events.push(e);
        }
    }

    pub(crate) fn learn(&mut self, e: &Event) {
        if let EventKind::Spawn(s) = &e.kind {
            self.names
                .insert(s.task, display_name(s.name.as_deref(), &s.location));
        }
    }

    /// A task's name: its given name, else its spawn location.
    pub fn task_name(&self, task: TaskId) -> String {
        self.names
            .get(&task)
            .cloned()
            .unwrap_or_else(|| format!("task {task}"))
    }
}

/// The name shown for a task: the name it was given, else where it was spawned,
/// as [`short_location`] writes it, without the column.
///
/// ```
/// use looptrace_collector::session::display_name;
/// assert_eq!(display_name(Some("Alice"), "src/main.rs:9:5"), "Alice");
/// assert_eq!(display_name(None, "src/main.rs:9:5"), "src/main.rs:9");
/// ```
pub fn display_name(name: Option<&str>, location: &str) -> String {
    if let Some(n) = name {
        return n.to_string();
    }
    let short = short_location(location);
    // `file:line:col` -> `file:line`
    match short.rsplit_once(':') {
        Some((head, col)) if head.contains(':') && col.chars().all(|c| c.is_ascii_digit()) => {
            head.to_string()
        }
        _ => short,
    }
}

/// A spawn location a developer can read: code in a dependency as
/// `crate-version/src/file.rs` rather than its absolute path in cargo's
/// registry, a git dependency as `repo/src/file.rs`, the standard library as
/// `std/src/file.rs`, and any other absolute path from the directory that holds
/// its `src/` (the crate's). Relative paths (the app's own crates) stay as they
/// are.
///
/// ```
/// use looptrace_collector::session::short_location;
/// let registry = "/home/me/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/axum-0.8.9/src/serve/mod.rs:389:21";
/// assert_eq!(short_location(registry), "axum-0.8.9/src/serve/mod.rs:389:21");
/// let git = "/home/me/.cargo/git/checkouts/hyper-5d1a2f7c9e3b4a60/0a1b2c3/src/server/conn.rs:12:1";
/// assert_eq!(short_location(git), "hyper/src/server/conn.rs:12:1");
/// let std = "/rustc/4eb161250e340c8f48f66e2b929ef4a5bed7c181/library/std/src/thread/mod.rs:5:9";
/// assert_eq!(short_location(std), "std/src/thread/mod.rs:5:9");
/// assert_eq!(short_location("/work/shop/orders/src/lib.rs:40:13"), "orders/src/lib.rs:40:13");
/// assert_eq!(short_location("src/main.rs:9:5"), "src/main.rs:9:5");
/// ```
pub fn short_location(location: &str) -> String {
    let unix = location.replace('\\', "/");
    let absolute = unix.starts_with('/') || unix.get(1..3) == Some(":/");
    if !absolute {
        return location.to_string();
    }
    let parts: Vec<&str> = unix.split('/').collect();
    // A git dependency: checkouts/<repo>-<hash>/<revision>/...
    if let Some(i) = parts.iter().position(|p| *p == "checkouts") {
        if let (Some(repo), Some(_rev)) = (parts.get(i + 1), parts.get(i + 2)) {
            let name = repo.rsplit_once('-').map_or(*repo, |(n, _)| n);
            return format!("{name}/{}", parts[i + 3..].join("/"));
        }
    }
    // The standard library: /rustc/<hash>/library/<crate>/...
    if let Some(i) = parts.iter().position(|p| *p == "library") {
        if parts.get(1) == Some(&"rustc") && i + 1 < parts.len() {
            return parts[i + 1..].join("/");
        }
    }
    // Anything else: from the directory holding the last `src/`.
    match parts.iter().rposition(|p| *p == "src") {
        Some(i) if i >= 1 => parts[i - 1..].join("/"),
        _ => location.to_string(),
    }
}

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
        if let EventKind::Spawn {
            task,
            name,
            location,
            ..
        } = &e.kind
        {
            self.names
                .insert(*task, display_name(name.as_deref(), location));
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

/// The name shown for a task: the name it was given, else `file:line` of its spawn.
pub fn display_name(name: Option<&str>, location: &str) -> String {
    match name {
        Some(n) => n.to_string(),
        None => {
            // `file:line:col` -> `file:line`
            match location.rsplit_once(':') {
                Some((head, col))
                    if head.contains(':') && col.chars().all(|c| c.is_ascii_digit()) =>
                {
                    head.to_string()
                }
                _ => location.to_string(),
            }
        }
    }
}

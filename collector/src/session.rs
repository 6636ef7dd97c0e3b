//! One traced process's events and what identifies it.

use looptrace_wire::{Event, EventKind, Header, TaskId, ThreadId, ThreadRole};
use std::collections::HashMap;

/// A traced process's header and events, with the names needed to show them.
#[derive(Debug, Clone)]
pub struct Session {
    pub header: Header,
    pub events: Vec<Event>,
    names: HashMap<TaskId, String>,
    threads: HashMap<ThreadId, (ThreadRole, String)>,
}

impl Session {
    pub fn new(header: Header) -> Session {
        Session {
            header,
            events: Vec::new(),
            names: HashMap::new(),
            threads: HashMap::new(),
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
        match &e.kind {
            EventKind::Spawn {
                task,
                name,
                location,
                ..
            } => {
                self.names
                    .insert(*task, display_name(name.as_deref(), location));
            }
            EventKind::Thread { role, name } => {
                self.threads.insert(e.thread, (*role, name.clone()));
            }
            _ => {}
        }
    }

    /// A task's name: its given name, else its spawn location.
    pub fn task_name(&self, task: TaskId) -> String {
        self.names
            .get(&task)
            .cloned()
            .unwrap_or_else(|| format!("task {task}"))
    }

    /// A thread's role, if it was announced.
    pub fn thread_role(&self, thread: ThreadId) -> Option<ThreadRole> {
        self.threads.get(&thread).map(|t| t.0)
    }

    /// A thread's OS name, if it was announced.
    pub fn thread_name(&self, thread: ThreadId) -> Option<&str> {
        self.threads.get(&thread).map(|t| t.1.as_str())
    }

    /// All threads announced, with their role and name.
    pub fn threads(&self) -> impl Iterator<Item = (ThreadId, ThreadRole, &str)> {
        self.threads
            .iter()
            .map(|(id, (role, name))| (*id, *role, name.as_str()))
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

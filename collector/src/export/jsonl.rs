//! JSON Lines: one event per line.
//!
//! Contract (fields are added, never renamed): every line has `kind` and `ts_ns`;
//! `task` (a number; for waker lines the task whose waker it is) and `worker` (the
//! worker index, or null off the workers) where they apply; `spawn` lines carry
//! `name` (given name, else `file:line` of the spawn); `poll_end` lines carry
//! `ready`; `wake` lines (a wake or wake_by_ref) carry `by`: `task:<id>`, `timer`,
//! `io`, `blocking` or `external`. The first line, `kind: "header"`, describes the
//! process.

use crate::session::{display_name, Session};
use looptrace_api::EventLine;
use looptrace_wire::{EventKind, ThreadRole, WakeOp};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::{self, Write};

/// Writes `session` as JSON Lines.
pub fn write_jsonl(session: &Session, out: &mut impl Write) -> io::Result<()> {
    let h = &session.header;
    let header = json!({
        "kind": "header",
        "ts_ns": 0,
        "process": h.process_name,
        "pid": h.pid,
        "flavor": h.flavor,
        "workers": h.workers,
        "clock_origin_unix_ns": h.clock_origin_unix_ns,
    });
    writeln!(out, "{header}")?;
    let mut roles: HashMap<u32, ThreadRole> = HashMap::new();
    for e in &session.events {
        if let EventKind::Thread { role, .. } = e.kind {
            roles.insert(e.thread, role);
        }
        let mut line = event_json(e);
        let worker = match roles.get(&e.thread) {
            Some(ThreadRole::Worker(i)) => Value::from(*i),
            _ => Value::Null,
        };
        line.fields.insert("worker".into(), worker);
        // (`From` keeps an I/O error as it was: a closed pipe stays one.)
        serde_json::to_writer(&mut *out, &line).map_err(io::Error::from)?;
        writeln!(out)?;
    }
    Ok(())
}

/// One event as JSON (the JSONL line without `worker`, which needs the thread's
/// role): what live batches carry too.
pub fn event_json(e: &looptrace_wire::Event) -> EventLine {
    let mut m = Map::new();
    if let Some(task) = e.kind.task() {
        m.insert("task".into(), task.into());
    }
    match &e.kind {
        EventKind::Thread { role, name } => {
            let (role, index) = match role {
                ThreadRole::Worker(i) => ("worker", Some(*i)),
                ThreadRole::Blocking => ("blocking", None),
                ThreadRole::External => ("external", None),
            };
            m.insert("role".into(), role.into());
            m.insert("worker_index".into(), index.into());
            m.insert("name".into(), name.clone().into());
        }
        EventKind::Spawn(spawn) => {
            let looptrace_wire::Spawn {
                name,
                location,
                parent,
                size_bytes,
                kind,
                ..
            } = &**spawn;
            m.insert(
                "name".into(),
                display_name(name.as_deref(), location).into(),
            );
            m.insert("given_name".into(), name.clone().into());
            m.insert("location".into(), location.clone().into());
            m.insert("parent".into(), (*parent).into());
            m.insert("size_bytes".into(), (*size_bytes).into());
            m.insert("task_kind".into(), json!(kind));
        }
        EventKind::Terminate { outcome, .. } => {
            m.insert("outcome".into(), outcome.as_str().into());
        }
        EventKind::PollEnd {
            ready,
            clones,
            drops,
            context,
            ..
        } => {
            m.insert("ready".into(), (*ready).into());
            m.insert("waker_clones".into(), (*clones).into());
            m.insert("waker_drops".into(), (*drops).into());
            if let Some(label) = context {
                m.insert("context".into(), (&**label).into());
            }
        }
        EventKind::Waker { op, by, .. } => {
            m.insert("by".into(), by.to_string().into());
            if matches!(op, WakeOp::Wake | WakeOp::WakeByRef) {
                m.insert(
                    "op".into(),
                    if *op == WakeOp::Wake {
                        "wake"
                    } else {
                        "wake_by_ref"
                    }
                    .into(),
                );
            }
        }
        EventKind::TimerArmed { deadline_ns, .. } => {
            m.insert("deadline_ns".into(), (*deadline_ns).into());
        }
        EventKind::Dropped { count } => {
            m.insert("count".into(), (*count).into());
        }
        EventKind::Mark { label } => {
            m.insert("label".into(), label.as_str().into());
        }
        EventKind::TaskState { state, .. } => {
            m.insert("state".into(), state.as_str().into());
        }
        EventKind::Context { label, .. } => {
            m.insert("label".into(), (&**label).into());
        }
        EventKind::Queues(q) => {
            m.insert("local".into(), q.local.clone().into());
            m.insert("steals".into(), q.steals.clone().into());
            m.insert("injection".into(), q.injection.into());
        }
        _ => {}
    }
    EventLine {
        kind: e.kind.name().into(),
        ts_ns: e.ts_ns,
        thread: Some(e.thread),
        fields: m,
    }
}

//! Which of tokio's tracing spans and events looptrace reads, and how it reads their
//! fields. Shared by the standalone subscriber and the composable layer.

use crate::buffer::SpanInfo;
use looptrace_wire::{TaskKind, WakeOp};
use std::fmt;
use tracing_core::field::{Field, Visit};
use tracing_core::Metadata;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `runtime.spawn`: one per task, entered on each poll.
    TaskSpan,
    /// `runtime.resource` of a `Sleep`: entered while the `Sleep` is polled.
    SleepSpan,
    /// `tokio::task::waker`: clone, wake, wake_by_ref, drop.
    Waker,
    /// A `Sleep` registering its deadline.
    SleepState,
    /// A `Sleep` polled.
    SleepPoll,
}

fn in_time_module(m: &Metadata<'_>) -> bool {
    m.module_path().is_some_and(|p| p.starts_with("tokio::time"))
}

pub(crate) fn classify(m: &Metadata<'_>) -> Option<Kind> {
    if m.is_span() {
        if m.name() == "runtime.spawn" && m.target().starts_with("tokio::task") {
            return Some(Kind::TaskSpan);
        }
        if m.name() == "runtime.resource" && in_time_module(m) {
            return Some(Kind::SleepSpan);
        }
        return None;
    }
    match m.target() {
        "tokio::task::waker" => Some(Kind::Waker),
        "runtime::resource::state_update" if in_time_module(m) => Some(Kind::SleepState),
        "runtime::resource::poll_op" if in_time_module(m) => Some(Kind::SleepPoll),
        _ => None,
    }
}

/// Reads a `runtime.spawn` span's fields.
#[derive(Default)]
pub(crate) struct TaskFields {
    kind: Option<String>,
    name: Option<String>,
    task: u64,
    size: Option<u64>,
    original_size: Option<u64>,
    file: Option<String>,
    line: Option<u64>,
    col: Option<u64>,
    func: Option<String>,
}

impl Visit for TaskFields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "task.id" => self.task = value,
            "size.bytes" => self.size = Some(value),
            "original_size.bytes" => self.original_size = Some(value),
            "loc.line" => self.line = Some(value),
            "loc.col" => self.col = Some(value),
            _ => {}
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, value.max(0) as u64)
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "loc.file" => self.file = Some(value.to_string()),
            "kind" => self.kind = Some(value.to_string()),
            "task.name" => self.name = Some(value.to_string()),
            "fn" => self.func = Some(value.to_string()),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%`-formatted fields arrive here.
        match field.name() {
            "kind" | "task.name" | "fn" | "loc.file" => self.record_str(field, &format!("{value:?}")),
            _ => {}
        }
    }
}

impl TaskFields {
    pub(crate) fn into_info(self) -> SpanInfo {
        let kind = match self.kind.as_deref() {
            Some("blocking") => TaskKind::Blocking,
            Some("local") => TaskKind::Local,
            _ => TaskKind::Task,
        };
        let location = self.file.map(|f| match (self.line, self.col) {
            (Some(l), Some(c)) => format!("{f}:{l}:{c}"),
            (Some(l), None) => format!("{f}:{l}"),
            _ => f,
        });
        // The multi-thread scheduler starts its workers as blocking tasks.
        let internal = kind == TaskKind::Blocking
            && self.func.as_deref().is_some_and(|f| f.starts_with("tokio::runtime::scheduler"));
        SpanInfo {
            task: self.task,
            kind,
            name: self.name.filter(|n| !n.is_empty()),
            location,
            size_bytes: self.original_size.or(self.size),
            internal,
        }
    }
}

/// Reads a waker event's fields.
#[derive(Default)]
pub(crate) struct WakerFields {
    pub op: Option<WakeOp>,
    pub task: u64,
}

impl Visit for WakerFields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "task.id" {
            self.task = value;
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "op" {
            self.op = match value {
                "waker.wake" => Some(WakeOp::Wake),
                "waker.wake_by_ref" => Some(WakeOp::WakeByRef),
                "waker.clone" => Some(WakeOp::Clone),
                "waker.drop" => Some(WakeOp::Drop),
                _ => None,
            };
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn fmt::Debug) {}
}

/// Reads a `Sleep`'s state update or poll event.
#[derive(Default)]
pub(crate) struct SleepFields {
    pub duration_ms: Option<u64>,
    pub ready: Option<bool>,
}

impl Visit for SleepFields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "duration" {
            self.duration_ms = Some(value);
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "is_ready" {
            self.ready = Some(value);
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn fmt::Debug) {}
}

/// Runs the capture handler for an event of `kind`.
pub(crate) fn dispatch_event(kind: Kind, event: &tracing_core::Event<'_>, task_key: impl FnOnce(u64) -> Option<u64>) {
    match kind {
        Kind::Waker => {
            let mut f = WakerFields::default();
            event.record(&mut f);
            if let (Some(op), Some(key)) = (f.op, task_key(f.task)) {
                crate::capture::on_waker(key, op);
            }
        }
        Kind::SleepState => {
            let mut f = SleepFields::default();
            event.record(&mut f);
            if let Some(ms) = f.duration_ms {
                crate::capture::on_sleep_armed(ms);
            }
        }
        Kind::SleepPoll => {
            let mut f = SleepFields::default();
            event.record(&mut f);
            if let Some(ready) = f.ready {
                crate::capture::on_sleep_polled(ready);
            }
        }
        Kind::TaskSpan | Kind::SleepSpan => {}
    }
}

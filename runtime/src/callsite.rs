//! Which of tokio's tracing spans and events looptrace reads, and how it reads their
//! fields. Shared by the standalone subscriber and the composable layer.

use crate::buffer::SpanInfo;
use looptrace_wire::{TaskKind, WakeOp};
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
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
    m.module_path()
        .is_some_and(|p| p.starts_with("tokio::time"))
}

/// Callsites looptrace is interested in, by the address of their (static) metadata,
/// so the hot path compares a pointer instead of strings. Waker callsites also learn
/// their operation (each op has its own callsite) the first time they fire.
const SLOTS: usize = 32;
static ADDRS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static CODES: [AtomicU8; SLOTS] = [const { AtomicU8::new(0) }; SLOTS];
static USED: AtomicUsize = AtomicUsize::new(0);

const WAKER_UNKNOWN: u8 = 3;

fn encode(k: Kind) -> u8 {
    match k {
        Kind::TaskSpan => 1,
        Kind::SleepSpan => 2,
        Kind::Waker => WAKER_UNKNOWN,
        Kind::SleepState => 8,
        Kind::SleepPoll => 9,
    }
}

fn decode(c: u8) -> Option<(Kind, Option<WakeOp>)> {
    Some(match c {
        1 => (Kind::TaskSpan, None),
        2 => (Kind::SleepSpan, None),
        WAKER_UNKNOWN => (Kind::Waker, None),
        4 => (Kind::Waker, Some(WakeOp::Wake)),
        5 => (Kind::Waker, Some(WakeOp::WakeByRef)),
        6 => (Kind::Waker, Some(WakeOp::Clone)),
        7 => (Kind::Waker, Some(WakeOp::Drop)),
        8 => (Kind::SleepState, None),
        9 => (Kind::SleepPoll, None),
        _ => return None,
    })
}

fn op_code(op: WakeOp) -> u8 {
    match op {
        WakeOp::Wake => 4,
        WakeOp::WakeByRef => 5,
        WakeOp::Clone => 6,
        WakeOp::Drop => 7,
    }
}

/// Classifies a callsite at registration and remembers it.
pub(crate) fn register(m: &'static Metadata<'static>) -> Option<Kind> {
    let kind = classify(m)?;
    let addr = m as *const Metadata<'static> as usize;
    let used = USED.load(Ordering::Acquire).min(SLOTS);
    if ADDRS[..used]
        .iter()
        .any(|a| a.load(Ordering::Relaxed) == addr)
    {
        return Some(kind);
    }
    let i = USED.fetch_add(1, Ordering::AcqRel);
    if i < SLOTS {
        CODES[i].store(encode(kind), Ordering::Relaxed);
        ADDRS[i].store(addr, Ordering::Release);
    }
    Some(kind)
}

/// The kind (and, for a waker callsite, the op if known) of a callsite.
#[inline]
pub(crate) fn lookup(m: &Metadata<'_>) -> Option<(Kind, Option<WakeOp>, usize)> {
    let addr = m as *const Metadata<'_> as usize;
    let used = USED.load(Ordering::Acquire).min(SLOTS);
    for i in 0..used {
        if ADDRS[i].load(Ordering::Acquire) == addr {
            let (k, op) = decode(CODES[i].load(Ordering::Relaxed))?;
            return Some((k, op, i));
        }
    }
    classify(m).map(|k| (k, None, usize::MAX))
}

/// The four waker callsites by op (wake, wake_by_ref, clone, drop), learned the
/// first time each fires: the hot path checks these before anything else.
static WAKER_SITES: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];
const SITE_OPS: [WakeOp; 4] = [WakeOp::Wake, WakeOp::WakeByRef, WakeOp::Clone, WakeOp::Drop];

fn learn_op(slot: usize, op: WakeOp, addr: usize) {
    if slot < SLOTS {
        CODES[slot].store(op_code(op), Ordering::Relaxed);
    }
    WAKER_SITES[op_code(op) as usize - 4].store(addr, Ordering::Relaxed);
}

#[inline(always)]
fn waker_site(addr: usize) -> Option<WakeOp> {
    (0..4)
        .find(|&i| WAKER_SITES[i].load(Ordering::Relaxed) == addr)
        .map(|i| SITE_OPS[i])
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

/// Reads a `runtime.spawn` span's fields, allocating only for what a task has
/// of its own: a name, if it was given one. A task's spawn location comes from
/// the spawn hook (a `&'static` place); only a blocking task's, which has no
/// hook, is read here. (Nor do a `LocalSet`'s tasks get hooks from tokio: they
/// are not captured, their spans go unpaired.)
#[derive(Default)]
pub(crate) struct TaskFields {
    kind: Option<TaskKind>,
    name: Option<String>,
    task: u64,
    size: Option<u64>,
    original_size: Option<u64>,
    file: Option<String>,
    line: Option<u64>,
    col: Option<u64>,
    /// The blocking closure is one of tokio's scheduler's (`fn` field).
    scheduler_fn: bool,
}

/// tokio's own functions: the multi-thread scheduler starts its workers as
/// blocking tasks of this module.
const SCHEDULER_FN: &str = "tokio::runtime::scheduler";

fn kind_of(s: &str) -> TaskKind {
    match s {
        "blocking" => TaskKind::Blocking,
        "local" => TaskKind::Local,
        _ => TaskKind::Task,
    }
}

/// Whether a formatted value starts with `prefix`, read without keeping it.
struct StartsWith {
    prefix: &'static str,
    seen: usize,
    failed: bool,
}

impl fmt::Write for StartsWith {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let rest = &self.prefix.as_bytes()[self.seen..];
        let n = rest.len().min(s.len());
        if self.failed || s.as_bytes()[..n] != rest[..n] {
            self.failed = true;
            // Nothing more to read.
            return Err(fmt::Error);
        }
        self.seen += n;
        Ok(())
    }
}

fn starts_with(value: &dyn fmt::Debug, prefix: &'static str) -> bool {
    use fmt::Write as _;
    let mut w = StartsWith {
        prefix,
        seen: 0,
        failed: false,
    };
    let _ = write!(w, "{value:?}");
    !w.failed && w.seen == prefix.len()
}

/// A formatted value, allocated only if it is not empty.
#[derive(Default)]
struct NonEmpty(Option<String>);

impl fmt::Write for NonEmpty {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if !s.is_empty() {
            self.0.get_or_insert_with(String::new).push_str(s);
        }
        Ok(())
    }
}

impl TaskFields {
    /// Whether the span's location is read: a blocking task's (or one whose
    /// kind is not known yet; tokio records the kind first).
    fn wants_location(&self) -> bool {
        self.kind.is_none_or(|k| k == TaskKind::Blocking)
    }
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
            "loc.file" if self.wants_location() => self.file = Some(value.to_string()),
            "kind" => self.kind = Some(kind_of(value)),
            "task.name" if !value.is_empty() => self.name = Some(value.to_string()),
            "fn" => self.scheduler_fn = value.starts_with(SCHEDULER_FN),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        use fmt::Write as _;
        // `%`-formatted fields arrive here.
        match field.name() {
            "kind" => {
                let mut k = crate::context::Short::default();
                let _ = write!(k, "{value:?}");
                self.kind = Some(kind_of(k.as_str().unwrap_or_default()));
            }
            "task.name" => {
                let mut n = NonEmpty::default();
                let _ = write!(n, "{value:?}");
                self.name = n.0;
            }
            "fn" => self.scheduler_fn = starts_with(value, SCHEDULER_FN),
            "loc.file" if self.wants_location() => self.file = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

impl TaskFields {
    pub(crate) fn into_info(self) -> SpanInfo {
        let kind = self.kind.unwrap_or(TaskKind::Task);
        let location = self.file.map(|f| match (self.line, self.col) {
            (Some(l), Some(c)) => format!("{f}:{l}:{c}"),
            (Some(l), None) => format!("{f}:{l}"),
            _ => f,
        });
        SpanInfo {
            task: self.task,
            kind,
            name: self.name,
            location,
            size_bytes: self.original_size.or(self.size),
            internal: kind == TaskKind::Blocking && self.scheduler_fn,
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

/// Reads only the task of a waker event whose op is already known: its one
/// integer field.
#[derive(Default)]
struct WakerTask(u64);

impl Visit for WakerTask {
    #[inline]
    fn record_u64(&mut self, _: &Field, value: u64) {
        self.0 = value;
    }
    fn record_str(&mut self, _: &Field, _: &str) {}
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

/// Runs the capture handler for `event`, if looptrace reads its callsite.
/// `task_key` maps the event's `task.id` (a span id) to looptrace's key.
#[inline]
pub(crate) fn dispatch_event(
    event: &tracing_core::Event<'_>,
    task_key: impl FnOnce(u64) -> Option<u64>,
) {
    let meta = event.metadata();
    if let Some(op) = waker_site(meta as *const Metadata<'_> as usize) {
        let mut t = WakerTask::default();
        event.record(&mut t);
        if let Some(key) = task_key(t.0) {
            crate::capture::on_waker(key, op);
        }
        return;
    }
    dispatch_other(event, task_key);
}

/// [`dispatch_event`] of any event but a known waker op's: out of line, so that
/// the waker ops (several a request on a server) pay for none of it.
#[inline(never)]
fn dispatch_other(event: &tracing_core::Event<'_>, task_key: impl FnOnce(u64) -> Option<u64>) {
    let meta = event.metadata();
    let Some((kind, op, slot)) = lookup(meta) else {
        return;
    };
    match kind {
        Kind::Waker => {
            let (op, task) = match op {
                Some(op) => {
                    let mut t = WakerTask::default();
                    event.record(&mut t);
                    (op, t.0)
                }
                None => {
                    let mut f = WakerFields::default();
                    event.record(&mut f);
                    let Some(op) = f.op else { return };
                    learn_op(slot, op, meta as *const Metadata<'_> as usize);
                    (op, f.task)
                }
            };
            if let Some(key) = task_key(task) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests::seen;

    fn info(f: impl FnOnce() -> tracing::Span) -> SpanInfo {
        seen(f, |a| {
            let mut t = TaskFields::default();
            a.record(&mut t);
            t.into_info()
        })
    }

    #[test]
    fn a_task_span_is_read_as_tokio_makes_it() {
        // The fields of tokio's `runtime.spawn` spans, as `util/trace.rs` writes them.
        let task = info(|| {
            tracing::trace_span!(target: "tokio::task", parent: None, "runtime.spawn",
                kind = %"task", task.name = %"", task.id = 7u64,
                original_size.bytes = None::<usize>, size.bytes = 64usize,
                loc.file = "src/main.rs", loc.line = 3u32, loc.col = 9u32)
        });
        assert_eq!(
            (task.task, task.kind, task.size_bytes),
            (7, TaskKind::Task, Some(64))
        );
        // Unnamed; its place comes from the spawn hook.
        assert_eq!(
            (task.name, task.location, task.internal),
            (None, None, false)
        );

        let local = info(|| {
            tracing::trace_span!(target: "tokio::task", parent: None, "runtime.spawn",
                kind = %"local", task.name = %"db", task.id = 8u64,
                loc.file = "src/main.rs", loc.line = 4u32, loc.col = 1u32)
        });
        assert_eq!(
            (local.kind, local.name.as_deref()),
            (TaskKind::Local, Some("db"))
        );

        let blocking = |f: &'static str| {
            info(move || {
                tracing::trace_span!(target: "tokio::task::blocking", "runtime.spawn",
                    kind = %"blocking", task.name = %"", task.id = 9u64, "fn" = %f,
                    size.bytes = 8usize,
                    loc.file = "src/lib.rs", loc.line = 12u32, loc.col = 5u32)
            })
        };
        let worker = blocking(
            "tokio::runtime::scheduler::multi_thread::worker::Launch::launch::{{closure}}",
        );
        assert_eq!(worker.kind, TaskKind::Blocking);
        assert!(worker.internal, "tokio's own worker");
        let app = blocking("app::load");
        assert!(!app.internal);
        // A blocking task has no spawn hook: its place is read from the span.
        assert_eq!(app.location.as_deref(), Some("src/lib.rs:12:5"));
        assert!(
            !blocking("tokio::runtime").internal,
            "a shorter name is no prefix match"
        );
    }
}

//! The capture hot path: tokio's runtime hooks and the handlers the tracing
//! subscriber (or layer) calls for spans and waker events. Each handler is one
//! thread-local access, one clock read and one ring push, except a poll's start
//! (and a fixed-label context), which wait in the thread for the next push: a
//! poll with nothing else in it is one slot.

use crate::buffer::{active, record, Local, Raw, Slot, SpanInfo, WakeCtx, LOCAL};
use crate::clock;
use looptrace_wire::{Outcome, WakeOp};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Once;
use tokio::runtime::TaskMeta;

/// Set once a subscriber delivered a task span: poll outcomes can then tell a
/// completed task (its span entered to poll, then again to drop the future) from a
/// cancelled one (entered only to drop).
pub(crate) static SPANS_SEEN: AtomicBool = AtomicBool::new(false);

/// tokio's task id as a number. `Id` has no public accessor, but it hashes exactly
/// its inner `NonZeroU64`.
#[inline]
pub(crate) fn task_id(id: tokio::task::Id) -> u64 {
    struct Grab(u64);
    impl Hasher for Grab {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.0 = self.0 << 8 | b as u64;
            }
        }
        fn write_u64(&mut self, v: u64) {
            self.0 = v;
        }
    }
    let mut h = Grab(0);
    id.hash(&mut h);
    h.0
}

/// Adds looptrace's hooks to a tokio runtime builder.
pub(crate) fn install_hooks(b: &mut tokio::runtime::Builder) {
    install_panic_hook();
    b.on_thread_start(|| record(Raw::RuntimeThread))
        .on_thread_park(|| worker_event(Raw::Park))
        .on_thread_unpark(|| worker_event(Raw::Unpark))
        .on_task_spawn(on_spawn)
        .on_before_task_poll(on_poll_start)
        .on_after_task_poll(on_poll_end)
        .on_task_terminate(on_terminate);
}

/// Runs `f` with this thread's state, the session's generation and the time, if a
/// session is capturing: the shape of every hook.
#[inline(always)]
fn timed(f: impl FnOnce(&Local, u64, u64)) {
    let gen = active();
    if gen == 0 {
        return;
    }
    let tsc = clock::raw();
    LOCAL.with(|l| f(l, gen, tsc));
}

fn on_spawn(meta: &TaskMeta<'_>) {
    let task = task_id(meta.id());
    let location = meta.spawned_at();
    timed(|l, gen, tsc| {
        let parent = l.current.get();
        let raw = Raw::Spawn {
            task,
            location,
            parent_low: parent as u32,
            in_poll: parent != 0,
        };
        l.push(gen, Slot { tsc, raw })
    });
}

/// A park or unpark; the first event of a worker also reports its index.
#[inline]
fn worker_event(raw: Raw) {
    timed(|l, gen, tsc| {
        note_worker(l, gen, tsc);
        l.push(gen, Slot { tsc, raw });
    });
}

#[inline]
fn note_worker(l: &Local, gen: u64, tsc: u64) {
    if l.worker_gen.get() != gen {
        l.worker_gen.set(gen);
        if let Some(i) = tokio::runtime::worker_index() {
            l.push(
                gen,
                Slot {
                    tsc,
                    raw: Raw::Worker(i as u32),
                },
            );
        }
    }
}

#[inline]
fn on_poll_start(meta: &TaskMeta<'_>) {
    let task = task_id(meta.id());
    timed(|l, gen, tsc| {
        note_worker(l, gen, tsc);
        l.current.set(task);
        l.own_clones.set(0);
        l.own_drops.set(0);
        l.enters.set(0);
        l.context_sent.set(false);
        l.terminated.set(false);
        l.panicked.set(false);
        l.start_poll(gen, tsc, task);
    });
}

#[inline]
fn on_poll_end(meta: &TaskMeta<'_>) {
    let task = task_id(meta.id());
    timed(|l, gen, tsc| {
        l.current.set(0);
        l.end_poll(
            gen,
            tsc,
            task,
            l.terminated.get(),
            l.own_clones.get(),
            l.own_drops.get(),
        );
    });
}

fn on_terminate(meta: &TaskMeta<'_>) {
    let task = task_id(meta.id());
    timed(|l, gen, tsc| {
        let outcome = if l.current.get() != task {
            // Not inside its own poll: dropped at shutdown, or a blocking task.
            if l.blocking_done.get() == task || l.blocking.get() == task {
                Outcome::Completed
            } else {
                Outcome::Cancelled
            }
        } else {
            l.terminated.set(true);
            if l.panicked.get() {
                Outcome::Panicked
            } else if l.enters.get() >= 2 || !SPANS_SEEN.load(Relaxed) {
                Outcome::Completed
            } else {
                Outcome::Cancelled
            }
        };
        l.push(
            gen,
            Slot {
                tsc,
                raw: Raw::Terminate { task, outcome },
            },
        );
    });
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            LOCAL.with(|l| {
                if l.current.get() != 0 {
                    l.panicked.set(true);
                }
            });
            previous(info)
        }));
    });
}

/// How looptrace keys the spans it cares about: the low two bits say what the span is.
pub(crate) const TAG_TASK: u64 = 0;
pub(crate) const TAG_BLOCKING: u64 = 1;
pub(crate) const TAG_INTERNAL: u64 = 2;
pub(crate) const TAG_SLEEP: u64 = 3;

/// A task span was created (on the spawning thread, just before the spawn hook).
/// Returns its key.
pub(crate) fn on_task_span(info: SpanInfo) -> u64 {
    SPANS_SEEN.store(true, Relaxed);
    let tag = match (info.kind, info.internal) {
        (_, true) => TAG_INTERNAL,
        (looptrace_wire::TaskKind::Blocking, false) => TAG_BLOCKING,
        _ => TAG_TASK,
    };
    let key = info.task << 2 | tag;
    if tag == TAG_INTERNAL {
        return key;
    }
    let plain = info.name.is_none() && info.location.is_none();
    record(match info.kind {
        looptrace_wire::TaskKind::Task | looptrace_wire::TaskKind::Local if plain => {
            Raw::TaskSpan {
                task: info.task,
                size_bytes: info.size_bytes.unwrap_or(u64::MAX),
                local: info.kind == looptrace_wire::TaskKind::Local,
            }
        }
        _ => Raw::Span(Box::new(info)),
    });
    key
}

/// A new `Sleep`'s span. Returns its key.
pub(crate) fn on_sleep_span() -> u64 {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Relaxed) << 2 | TAG_SLEEP
}

#[inline]
pub(crate) fn on_enter(key: u64) {
    if key & crate::context::CONTEXT_BIT != 0 {
        return crate::context::enter(key);
    }
    let (tag, id) = (key & 3, key >> 2);
    LOCAL.with(|l| match tag {
        TAG_TASK if l.current.get() == id => l.enters.set(l.enters.get() + 1),
        TAG_BLOCKING if l.blocking.get() == 0 && l.blocking_done.get() != id => {
            l.blocking.set(id);
            let gen = active();
            if gen != 0 {
                l.push(
                    gen,
                    Slot {
                        tsc: clock::raw(),
                        raw: Raw::BlockingStart(id),
                    },
                );
            }
        }
        TAG_SLEEP => l.sleep.set(key),
        _ => {}
    });
}

#[inline]
pub(crate) fn on_exit(key: u64) {
    let (tag, id) = (key & 3, key >> 2);
    if tag == TAG_TASK || tag == TAG_INTERNAL || key & crate::context::CONTEXT_BIT != 0 {
        return;
    }
    LOCAL.with(|l| match tag {
        TAG_BLOCKING if l.blocking.get() == id => {
            l.blocking.set(0);
            l.blocking_done.set(id);
            let gen = active();
            if gen != 0 {
                l.push(
                    gen,
                    Slot {
                        tsc: clock::raw(),
                        raw: Raw::BlockingEnd(id),
                    },
                );
            }
        }
        TAG_SLEEP => l.sleep.set(0),
        _ => {}
    });
}

/// Whether a context entered now would be sent: a session captures and this
/// thread polls a task that has not sent one yet (so the label need not be
/// looked up otherwise).
#[inline]
pub(crate) fn wants_context() -> bool {
    active() != 0 && LOCAL.with(|l| l.current.get() != 0 && !l.context_sent.get())
}

/// The app's span labelled `label` was entered: the current poll's context, if
/// it has none yet.
pub(crate) fn on_context(label: crate::context::LabelRef<'_>) {
    let gen = active();
    if gen == 0 {
        return;
    }
    LOCAL.with(|l| {
        if l.current.get() == 0 || l.context_sent.replace(true) {
            return;
        }
        l.context(gen, label);
    });
}

/// Whether a task's clones and drops of its own waker during its poll are folded
/// into the poll's end (the default) rather than recorded one event each.
pub(crate) static FOLD_OWN_WAKER_OPS: AtomicBool = AtomicBool::new(true);

/// A waker operation on the task keyed `key`.
///
/// A task cloning or dropping its own waker while it is polled (registering
/// interest in a socket, a channel, a timer) is only counted: the count goes out
/// with the poll's end. Those are most of a busy server's waker operations, and
/// matter only by their number (how many wakers of the task are alive).
///
/// Wakes are timed. Other clones and drops during a poll take the time of the
/// thread's last timed event (inside that same poll): they matter for their order
/// and count, and not reading the clock for them halves their cost.
#[inline]
pub(crate) fn on_waker(key: u64, op: WakeOp) {
    if key & 3 != TAG_TASK {
        return;
    }
    let gen = active();
    if gen == 0 {
        return;
    }
    LOCAL.with(|l| {
        let current = l.current.get();
        if current == key >> 2 && FOLD_OWN_WAKER_OPS.load(Relaxed) {
            match op {
                WakeOp::Clone => return l.own_clones.set(l.own_clones.get().saturating_add(1)),
                WakeOp::Drop => return l.own_drops.set(l.own_drops.get().saturating_add(1)),
                WakeOp::Wake | WakeOp::WakeByRef => {}
            }
        }
        record_waker(l, gen, key, op, current);
    });
}

/// [`on_waker`] of an operation that is recorded: out of line, so that the
/// counted ones (most of them) pay for none of it.
#[inline(never)]
fn record_waker(l: &crate::buffer::Local, gen: u64, key: u64, op: WakeOp, current: u64) {
    let tsc = if current != 0 && matches!(op, WakeOp::Clone | WakeOp::Drop) {
        l.last_tsc.get()
    } else {
        clock::raw()
    };
    let ctx = if l.blocking.get() != 0 {
        WakeCtx::Blocking
    } else if l.block_on.get() {
        WakeCtx::BlockOn
    } else {
        WakeCtx::Plain
    };
    l.push(
        gen,
        Slot {
            tsc,
            raw: Raw::Waker {
                task: key >> 2,
                op,
                current,
                ctx,
            },
        },
    );
}

/// A `Sleep` being polled registered its deadline, `ms` from now.
pub(crate) fn on_sleep_armed(ms: u64) {
    let ms = ms.min(u32::MAX as u64) as u32;
    LOCAL.with(|l| {
        let (sleep, task) = (l.sleep.get(), l.current.get());
        if sleep != 0 && task != 0 {
            record_in(l, Raw::SleepArmed { sleep, task, ms });
        }
    });
}

/// A `Sleep` was polled; `ready` if it had elapsed.
pub(crate) fn on_sleep_polled(ready: bool) {
    LOCAL.with(|l| {
        let (sleep, task) = (l.sleep.get(), l.current.get());
        if sleep != 0 && task != 0 {
            record_in(l, Raw::SleepPolled { sleep, task, ready });
        }
    });
}

fn record_in(l: &Local, raw: Raw) {
    let gen = active();
    if gen != 0 {
        l.push(
            gen,
            Slot {
                tsc: clock::raw(),
                raw,
            },
        );
    }
}

/// Marks this thread as polling `block_on`'s future while `f` runs.
pub(crate) fn in_block_on<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            LOCAL.with(|l| l.block_on.set(self.0));
        }
    }
    let prev = LOCAL.with(|l| l.block_on.replace(true));
    let _reset = Reset(prev);
    f()
}

//! Serving a recording as if it were live, at any speed, pausable.

use crate::hub::{Hub, Source};
use looptrace_wire::{encode_header, Recording};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Slowest and fastest replay speeds.
pub const MIN_SPEED: f64 = 0.01;
pub const MAX_SPEED: f64 = 100.0;

/// Play, pause and speed of a replay, shared with viewers.
pub struct ReplayControl {
    state: Mutex<(bool, f64)>,
    changed: Notify,
}

impl ReplayControl {
    pub fn new(speed: f64, paused: bool) -> Arc<ReplayControl> {
        Arc::new(ReplayControl {
            state: Mutex::new((paused, speed.clamp(MIN_SPEED, MAX_SPEED))),
            changed: Notify::new(),
        })
    }

    fn get(&self) -> (bool, f64) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> Value {
        let (paused, speed) = self.get();
        json!({"paused": paused, "speed": speed})
    }

    /// `pause`, `play`, or `speed` (with `speed`).
    pub fn apply(&self, action: &str, speed: Option<f64>) -> Result<(), String> {
        {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            match (action, speed) {
                ("pause", _) => s.0 = true,
                ("play", _) => s.0 = false,
                ("speed", Some(v)) if v.is_finite() && v > 0.0 => {
                    s.1 = v.clamp(MIN_SPEED, MAX_SPEED)
                }
                ("speed", _) => return Err("speed needs a positive number".into()),
                _ => return Err(format!("unknown replay action {action:?}")),
            }
        }
        self.changed.notify_waiters();
        Ok(())
    }
}

/// Feeds `rec` into `hub` as a session, paced by its timestamps and `ctl`.
/// Returns when the recording is exhausted.
pub async fn replay(hub: Arc<Hub>, mut rec: Recording, ctl: Arc<ReplayControl>) {
    let mut header_frame = Vec::new();
    encode_header(&rec.header, &mut header_frame);
    let id = hub.open(rec.header.clone(), &header_frame, Source::Replay);
    // The recording's first note (a demo's "what to watch for") from the start, its
    // last ("what happened") once everything has been replayed.
    let notes = std::mem::take(&mut rec.notes);
    if let Some(n) = notes.first() {
        hub.set_note(id, n.clone());
    }
    let finish = |hub: &Hub| {
        if notes.len() > 1 {
            if let Some(n) = notes.last() {
                hub.set_note(id, n.clone());
            }
        }
        hub.close(id);
    };
    rec.events.sort_by_key(|e| e.ts_ns);
    let Some(first) = rec.events.first().map(|e| e.ts_ns) else {
        finish(&hub);
        return;
    };
    // Trace time reached so far, advanced by wall time times the speed.
    let mut trace_ns = 0f64;
    let mut last = Instant::now();
    let mut i = 0;
    let events = rec.events;
    while i < events.len() {
        let (paused, speed) = ctl.get();
        let now = Instant::now();
        if !paused {
            trace_ns += (now - last).as_nanos() as f64 * speed;
        }
        last = now;
        let due = first + trace_ns as u64;
        let start = i;
        while !paused && i < events.len() && events[i].ts_ns <= due {
            i += 1;
        }
        if i > start {
            hub.ingest(id, &events[start..i]);
        }
        if i >= events.len() {
            break;
        }
        // Sleep until the next event is due (at most 50 ms, to notice changes).
        let wait = if paused {
            Duration::from_millis(50)
        } else {
            let gap = (events[i].ts_ns - due) as f64 / speed;
            Duration::from_nanos(gap.min(50e6) as u64)
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = ctl.changed.notified() => {}
        }
    }
    finish(&hub);
}

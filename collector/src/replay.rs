//! Serving a recording as if it were live, at any speed, pausable.

use crate::hub::{Hub, Source};
use looptrace_api::{ReplayAction, ReplayState};
use looptrace_wire::{decode_frame, Frame, RawRecording};
use parking_lot::Mutex;
use std::sync::Arc;
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
        *self.state.lock()
    }

    pub fn state(&self) -> ReplayState {
        let (paused, speed) = self.get();
        ReplayState { paused, speed }
    }

    /// Pauses, plays, or sets the speed (with `speed`).
    pub fn apply(&self, action: ReplayAction, speed: Option<f64>) -> Result<(), String> {
        {
            let mut s = self.state.lock();
            match (action, speed) {
                (ReplayAction::Pause, _) => s.0 = true,
                (ReplayAction::Play, _) => s.0 = false,
                (ReplayAction::Speed, Some(v)) if v.is_finite() && v > 0.0 => {
                    s.1 = v.clamp(MIN_SPEED, MAX_SPEED)
                }
                (ReplayAction::Speed, _) => return Err("speed needs a positive number".into()),
            }
        }
        self.changed.notify_waiters();
        Ok(())
    }
}

/// Feeds `rec` into `hub` as a session, paced by its timestamps and `ctl`.
/// Returns when the recording is exhausted.
///
/// Frames are taken as they are in the file: one whose events are all due goes
/// to the hub whole (decoded as it is applied, kept as it came); one that is due
/// only in part (slow speeds, pauses) is decoded and fed as its events fall due.
pub async fn replay(hub: Arc<Hub>, rec: RawRecording, ctl: Arc<ReplayControl>) {
    let id = hub.open(rec.header.clone(), &rec.header_frame, Source::Replay);
    // The recording's first note (a demo's "what to watch for") from the start, its
    // last ("what happened") once everything has been replayed.
    let notes = rec.notes;
    if let Some(n) = notes.first() {
        hub.set_note(id, n.clone());
    }
    let mut pace = Pace::new(ctl);
    for frame in &rec.frames {
        let Ok(Frame::Events(events)) = decode_frame(frame) else {
            // Checked when read: cannot happen short of a bug; count it.
            hub.bad_frame(Some(id));
            continue;
        };
        let mut i = 0;
        while i < events.len() {
            let j = match pace.due(events[i].ts_ns) {
                Some(due) => i + events[i..].partition_point(|e| e.ts_ns <= due),
                None => i,
            };
            if i == 0 && j == events.len() {
                let _ = hub.ingest_frame(id, frame);
            } else if j > i {
                hub.ingest(id, &events[i..j]);
            }
            i = j;
            if i < events.len() {
                pace.wait_for(events[i].ts_ns).await;
            }
        }
        // Let the server answer between frames, whatever the speed.
        tokio::task::yield_now().await;
    }
    if notes.len() > 1 {
        if let Some(n) = notes.last() {
            hub.set_note(id, n.clone());
        }
    }
    hub.close(id);
}

/// Trace time against wall time, at the replay's speed, paused or not.
struct Pace {
    ctl: Arc<ReplayControl>,
    /// Trace time of the first event.
    first: Option<u64>,
    /// Trace time reached so far, advanced by wall time times the speed.
    trace_ns: f64,
    last: Instant,
}

impl Pace {
    fn new(ctl: Arc<ReplayControl>) -> Pace {
        Pace {
            ctl,
            first: None,
            trace_ns: 0.0,
            last: Instant::now(),
        }
    }

    /// The trace time due now (events up to it are replayed), none while
    /// paused; `next` is the time of the next event, which starts the clock.
    fn due(&mut self, next: u64) -> Option<u64> {
        let first = *self.first.get_or_insert(next);
        let (paused, speed) = self.ctl.get();
        let now = Instant::now();
        if !paused {
            self.trace_ns += (now - self.last).as_nanos() as f64 * speed;
        }
        self.last = now;
        (!paused).then(|| first.saturating_add(self.trace_ns as u64))
    }

    /// Sleeps until the event at `next` is due (at most 50 ms, to notice changes).
    async fn wait_for(&mut self, next: u64) {
        let (paused, speed) = self.ctl.get();
        let first = self.first.unwrap_or(next);
        let due = first.saturating_add(self.trace_ns as u64);
        let wait = if paused {
            Duration::from_millis(50)
        } else {
            let gap = next.saturating_sub(due) as f64 / speed;
            Duration::from_nanos(gap.min(50e6) as u64)
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.ctl.changed.notified() => {}
        }
    }
}

//! `looptrace attach`: turns what a tokio-console server (console-subscriber)
//! publishes into a looptrace session, so an unmodified console-instrumented app
//! can be viewed.
//!
//! It is coarser than native capture, and the session says so: console publishes
//! per-task statistics at intervals (one second by default), so only the last poll
//! of each interval has its real start and end; the polls before it are spread
//! evenly over the interval with the busy time they took together; wakes other than
//! self-wakes have no known source (they appear as `external`); there are no worker
//! threads, parks or timers.

use console_api::instrument::{instrument_client::InstrumentClient, InstrumentRequest, Update};
use console_api::tasks::task::Kind as ConsoleKind;
use console_api::{field, Field, Location};
use looptrace_collector::hub::{Hub, SessionId, Source};
use looptrace_wire::{
    encode_header, Event, EventKind, Flavor, Header, Outcome, TaskKind, ThreadRole, WakeOp,
    WakeSource,
};
use std::collections::HashMap;
use std::sync::Arc;

/// Why attaching failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("cannot connect to the console server at {target}: {source}")]
    Connect {
        target: String,
        source: tonic::transport::Error,
    },
    #[error("the console server refused to stream updates: {0}")]
    Watch(#[from] tonic::Status),
}

/// Streams updates from the console server at `target` (`http://HOST:PORT`) into
/// a new session of `hub` until the server goes away. Returns the session id.
pub async fn attach(hub: Arc<Hub>, target: &str) -> Result<SessionId, AttachError> {
    let mut client = InstrumentClient::connect(target.to_string())
        .await
        .map_err(|source| AttachError::Connect {
            target: target.to_string(),
            source,
        })?;
    let mut stream = client
        .watch_updates(InstrumentRequest {})
        .await?
        .into_inner();
    let mut convert = Converter::default();
    let mut session = None;
    loop {
        let update = match stream.message().await {
            Ok(Some(u)) => u,
            Ok(None) => break,
            Err(e) => {
                eprintln!("looptrace attach: console stream ended: {e}");
                break;
            }
        };
        let id = match session {
            Some(id) => id,
            None => {
                let now = update.now.as_ref().map(unix_ns).unwrap_or(0);
                convert.origin = now;
                let header = Header {
                    process_name: format!("console {target}"),
                    pid: 0,
                    flavor: Flavor::MultiThread,
                    workers: 0,
                    clock_origin_unix_ns: now,
                };
                let mut frame = Vec::new();
                encode_header(&header, &mut frame);
                let id = hub.open(header, &frame, Source::Console);
                session = Some(id);
                id
            }
        };
        let events = convert.update(update);
        if !events.is_empty() {
            hub.ingest(id, &events);
        }
    }
    let id = session.unwrap_or(0);
    if session.is_some() {
        hub.close(id);
    }
    Ok(id)
}

fn unix_ns(t: &prost_types::Timestamp) -> u64 {
    (t.seconds.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.nanos.max(0) as u64)
}

fn dur_ns(d: &prost_types::Duration) -> u64 {
    (d.seconds.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(d.nanos.max(0) as u64)
}

#[derive(Default, Clone, Copy)]
struct Seen {
    polls: u64,
    busy_ns: u64,
    wakes: u64,
    self_wakes: u64,
    clones: u64,
    drops: u64,
    /// A poll started and not yet seen ending.
    open_poll: Option<u64>,
    ended: bool,
}

/// Console updates in, looptrace events out.
#[derive(Default)]
struct Converter {
    origin: u64,
    last_ns: u64,
    announced: bool,
    /// Field names of each metadata id.
    fields: HashMap<u64, Vec<String>>,
    meta_locations: HashMap<u64, Location>,
    seen: HashMap<u64, Seen>,
}

fn location_string(l: &Location) -> String {
    format!(
        "{}:{}:{}",
        l.file.as_deref().unwrap_or("?"),
        l.line.unwrap_or(0),
        l.column.unwrap_or(0)
    )
}

impl Converter {
    fn ts(&self, t: Option<&prost_types::Timestamp>) -> Option<u64> {
        t.map(|t| unix_ns(t).saturating_sub(self.origin))
    }

    fn field_name(&self, f: &Field) -> Option<String> {
        match f.name.as_ref()? {
            field::Name::StrName(s) => Some(s.clone()),
            field::Name::NameIdx(i) => {
                let meta = f.metadata_id.as_ref()?.id;
                self.fields.get(&meta)?.get(*i as usize).cloned()
            }
        }
    }

    fn update(&mut self, u: Update) -> Vec<Event> {
        let now = self.ts(u.now.as_ref()).unwrap_or(self.last_ns);
        let mut out = Vec::new();
        let ev = |ts: u64, kind: EventKind| Event {
            ts_ns: ts,
            thread: 0,
            kind,
        };
        if !self.announced {
            self.announced = true;
            out.push(ev(
                0,
                EventKind::Thread {
                    role: ThreadRole::External,
                    name: "tokio-console".into(),
                },
            ));
        }
        if let Some(meta) = u.new_metadata {
            for m in meta.metadata {
                if let (Some(id), Some(md)) = (m.id, m.metadata) {
                    if let Some(l) = md.location.clone() {
                        self.meta_locations.insert(id.id, l);
                    }
                    self.fields.insert(id.id, md.field_names);
                }
            }
        }
        let Some(tasks) = u.task_update else {
            return out;
        };
        let created: HashMap<u64, u64> = tasks
            .stats_update
            .iter()
            .filter_map(|(id, s)| Some((*id, self.ts(s.created_at.as_ref())?)))
            .collect();
        for t in &tasks.new_tasks {
            let Some(id) = t.id.as_ref().map(|i| i.id) else {
                continue;
            };
            let mut name = None;
            let mut size = None;
            for f in &t.fields {
                match (self.field_name(f).as_deref(), f.value.as_ref()) {
                    (
                        Some("task.name"),
                        Some(field::Value::StrVal(s) | field::Value::DebugVal(s)),
                    ) => {
                        let s = s.trim_matches('"');
                        if !s.is_empty() {
                            name = Some(s.to_string());
                        }
                    }
                    (Some("size.bytes"), Some(field::Value::U64Val(v))) => size = Some(*v),
                    _ => {}
                }
            }
            let location = t
                .location
                .as_ref()
                .or_else(|| {
                    t.metadata
                        .as_ref()
                        .and_then(|m| self.meta_locations.get(&m.id))
                })
                .map(location_string)
                .unwrap_or_default();
            let kind = if t.kind == ConsoleKind::Blocking as i32 {
                TaskKind::Blocking
            } else {
                TaskKind::Task
            };
            let at = created.get(&id).copied().unwrap_or(now);
            self.seen.entry(id).or_default();
            out.push(ev(
                at,
                EventKind::Spawn(Box::new(looptrace_wire::Spawn {
                    task: id,
                    kind,
                    name,
                    location,
                    parent: None,
                    size_bytes: size,
                })),
            ));
        }
        let mut ids: Vec<_> = tasks.stats_update.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let s = &tasks.stats_update[&id];
            let Some(prev) = self.seen.get(&id).copied() else {
                continue;
            };
            if prev.ended {
                continue;
            }
            let mut next = prev;
            let poll = s.poll_stats.unwrap_or_default();
            let busy = poll.busy_time.as_ref().map(dur_ns).unwrap_or(prev.busy_ns);
            let started = self.ts(poll.last_poll_started.as_ref());
            let ended = self.ts(poll.last_poll_ended.as_ref());
            let dropped = self.ts(s.dropped_at.as_ref());
            let new_polls = poll.polls.saturating_sub(prev.polls);
            let mut evs = Vec::new();
            // A poll left open by the last update has ended.
            if let (Some(open), Some(e)) = (prev.open_poll, ended) {
                if e >= open {
                    evs.push(ev(
                        e,
                        EventKind::PollEnd {
                            clones: 0,
                            drops: 0,
                            task: id,
                            ready: false,
                            context: None,
                        },
                    ));
                    next.open_poll = None;
                }
            }
            if new_polls > 0 {
                let last_start = started.unwrap_or(now);
                let last_end = ended.filter(|e| *e >= last_start);
                let last_dur = last_end.map_or(0, |e| e - last_start);
                // The polls before the last: spread evenly, sharing the rest of the busy time.
                let earlier = new_polls - 1;
                if earlier > 0 {
                    let from = self.last_ns.min(last_start);
                    let span = last_start - from;
                    let step = span / (earlier + 1);
                    let each = (busy.saturating_sub(prev.busy_ns).saturating_sub(last_dur)
                        / earlier)
                        .min(step);
                    for k in 0..earlier {
                        let s0 = from + step * k;
                        evs.push(ev(s0, EventKind::PollStart { task: id }));
                        evs.push(ev(
                            s0 + each,
                            EventKind::PollEnd {
                                clones: 0,
                                drops: 0,
                                task: id,
                                ready: false,
                                context: None,
                            },
                        ));
                    }
                }
                evs.push(ev(last_start, EventKind::PollStart { task: id }));
                match last_end {
                    Some(e) => evs.push(ev(
                        e,
                        EventKind::PollEnd {
                            clones: 0,
                            drops: 0,
                            task: id,
                            ready: dropped.is_some(),
                            context: None,
                        },
                    )),
                    None => next.open_poll = Some(last_start),
                }
            }
            // Wakes: self-wakes are known; the others' source is not.
            let last_wake = self.ts(s.last_wake.as_ref()).unwrap_or(now);
            let self_wakes = s.self_wakes.saturating_sub(prev.self_wakes);
            let other = s
                .wakes
                .saturating_sub(prev.wakes)
                .saturating_sub(self_wakes);
            for _ in 0..self_wakes {
                evs.push(ev(
                    last_wake,
                    EventKind::Waker {
                        task: id,
                        op: WakeOp::Wake,
                        by: WakeSource::Task(id),
                    },
                ));
            }
            for _ in 0..other {
                evs.push(ev(
                    last_wake,
                    EventKind::Waker {
                        task: id,
                        op: WakeOp::Wake,
                        by: WakeSource::External,
                    },
                ));
            }
            for _ in 0..s.waker_clones.saturating_sub(prev.clones) {
                evs.push(ev(
                    now,
                    EventKind::Waker {
                        task: id,
                        op: WakeOp::Clone,
                        by: WakeSource::External,
                    },
                ));
            }
            for _ in 0..s.waker_drops.saturating_sub(prev.drops) {
                evs.push(ev(
                    now,
                    EventKind::Waker {
                        task: id,
                        op: WakeOp::Drop,
                        by: WakeSource::External,
                    },
                ));
            }
            if let Some(d) = dropped {
                evs.push(ev(
                    d,
                    EventKind::Terminate {
                        task: id,
                        outcome: Outcome::Completed,
                    },
                ));
                next.ended = true;
            }
            evs.sort_by_key(|e| e.ts_ns);
            out.extend(evs);
            next.polls = poll.polls.max(prev.polls);
            next.busy_ns = busy.max(prev.busy_ns);
            next.wakes = s.wakes.max(prev.wakes);
            next.self_wakes = s.self_wakes.max(prev.self_wakes);
            next.clones = s.waker_clones.max(prev.clones);
            next.drops = s.waker_drops.max(prev.drops);
            self.seen.insert(id, next);
        }
        self.last_ns = now;
        out.sort_by_key(|e| e.ts_ns);
        out
    }
}

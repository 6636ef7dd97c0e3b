//! The hub: every session the collector holds, their models and stores, the memory
//! budget, recording, and the live updates viewers subscribe to.
//!
//! Ingest holds a session's own lock for a chunk of events at a time; live updates
//! go out on a broadcast channel that never waits for a viewer (a slow one is told
//! it missed updates), and only for sessions someone watches. Window queries
//! snapshot the store under the lock and decode outside it.

use crate::model::timeline::{Capped, Discard, Follow, OneTask, Out, Tracker, Window};
use crate::model::{Model, Thresholds};
use crate::store::{RunSource, Store, CHECKPOINT_EVERY};
use crate::to_api::{snapshot_rank, task_detail, ToApi};
use looptrace_api as api;
use looptrace_wire::{
    decode_frame, frame_type, DecodeError, Event, EventsReader, Frame, FrameType, Header,
    RecordingWriter, TaskState,
};
use parking_lot::{Mutex, MutexGuard, RwLock};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

pub type SessionId = u64;

/// How the hub is set up.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Bytes of event history kept across all sessions.
    pub memory_budget: usize,
    pub thresholds: Thresholds,
    /// Record every session into this directory.
    pub record_dir: Option<PathBuf>,
    /// Live batches with more events than this are sent without their events.
    pub max_live_events: usize,
    /// Task groups per session shown as their own by the metrics exporters
    /// (see [`crate::model::groups::Groups::shown`]; the rest are `other`).
    pub metrics_groups: usize,
    /// Keep each finding for an exporter to send as a span (OpenTelemetry).
    pub outbox: bool,
    /// With `outbox`, polls at least this long are kept too.
    pub export_polls_ns: Option<u64>,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            memory_budget: 512 << 20,
            thresholds: Thresholds::default(),
            record_dir: None,
            max_live_events: 2000,
            metrics_groups: crate::metrics::DEFAULT_GROUPS,
            outbox: false,
            export_polls_ns: None,
        }
    }
}

pub use looptrace_api::{Source, WindowReply};

/// Hub-wide counters.
#[derive(Debug, Default)]
pub struct Counters {
    pub frames: AtomicU64,
    pub events: AtomicU64,
    /// Encoded bytes of the event frames ingested.
    pub bytes: AtomicU64,
    pub bad_frames: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub evicted_events: AtomicU64,
    pub viewer_lagged: AtomicU64,
    /// The OpenTelemetry exporter's, if one runs.
    pub otlp_spans_exported: AtomicU64,
    pub otlp_spans_dropped: AtomicU64,
    pub otlp_metrics_exported: AtomicU64,
    pub otlp_metrics_dropped: AtomicU64,
}

/// One session as the hub holds it.
pub struct SessionState {
    pub id: SessionId,
    pub source: Source,
    pub model: Model,
    pub store: Store,
    pub connected_unix_ns: u64,
    pub disconnected_unix_ns: Option<u64>,
    pub bad_frames: u64,
    pub recording: Option<PathBuf>,
    /// A text the traced program wants viewers to read (a demo's lesson).
    pub note: Option<Note>,
    /// The session of the same process (same name, pid and clock origin) this
    /// one continues after a reconnect, if this collector holds it.
    pub continues: Option<SessionId>,
    /// The address the app connected from, for a live app over the network.
    pub peer: Option<String>,
    recorder: Option<RecordingWriter<File>>,
    /// How far the app's clock runs behind this collector's, at least (delivery
    /// delay included): the smallest gap seen between an event's time and its
    /// arrival. Estimates the app's present between events.
    clock_lag_ns: Option<i128>,
    /// While viewers watch live: follows the stream to send the intervals each
    /// batch closes, having followed the first `live_index` events.
    live: Option<(u64, Tracker)>,
}

pub use looptrace_wire::Note;

impl SessionState {
    /// The session's present: its latest event, or, while a live app is
    /// connected, the app's clock now (estimated from when its events arrive):
    /// a task idle for seconds has been idle until now, not until the last
    /// event anyone sent.
    pub fn now_ns(&self) -> u64 {
        let data = self.model.now_ns;
        let live = matches!(
            self.source,
            Source::Live | Source::Embedded | Source::Console
        ) && self.disconnected_unix_ns.is_none();
        match self.clock_lag_ns {
            Some(lag) if live => {
                let now = unix_ns() as i128 - self.model.header.clock_origin_unix_ns as i128 - lag;
                (now.clamp(0, u64::MAX as i128) as u64).max(data)
            }
            _ => data,
        }
    }

    /// Notes when events up to the model's latest arrived.
    fn observe_clock(&mut self) {
        let gap = unix_ns() as i128
            - self.model.header.clock_origin_unix_ns as i128
            - self.model.now_ns as i128;
        self.clock_lag_ns = Some(self.clock_lag_ns.map_or(gap, |l| l.min(gap)));
    }
}

/// A live update for viewers.
#[derive(Debug, Clone)]
pub enum Update {
    /// The list of sessions changed.
    Sessions,
    /// A batch of a session: changed tasks, new warnings, the events themselves
    /// when the batch is small.
    Batch {
        session: SessionId,
        message: Arc<String>,
    },
}

/// A session and what is read of it without its lock.
struct Slot {
    state: Mutex<SessionState>,
    /// Viewers subscribed to this session's live updates.
    watchers: AtomicUsize,
    /// Sealing order of the session's oldest block (`u64::MAX`: none), for eviction.
    oldest_seq: AtomicU64,
    /// Bytes the session holds: its store (checkpoints included) and model.
    memory: AtomicUsize,
    /// Bytes of those its model holds.
    model_memory: AtomicUsize,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock()
    }
}

/// Tasks a snapshot carries at most (a session may hold hundreds of thousands).
pub const SNAPSHOT_TASKS: usize = 5000;

/// Models may hold at most 1/this of the memory budget.
const MODEL_SHARE: usize = 2;
/// Timeline checkpoints may hold at most 1/this of it.
const CHECKPOINT_SHARE: usize = 8;

/// Events applied under one hold of a session's lock: ingest of a huge frame lets
/// viewers and the API in between.
pub const CHUNK_EVENTS: usize = 16_384;

/// Decoded chunks' buffers kept for the next frame: a chunk of events is about
/// a MB, and a buffer made afresh for every frame paid for its pages
/// each time (a viewer watching made it show: 93 -> 78 ns an event). At most
/// this many are kept, whatever the number of threads ingesting.
const SPARE_CHUNKS: usize = 4;
static SPARE: Mutex<Vec<Vec<Event>>> = Mutex::new(Vec::new());

/// A chunk buffer: a spare one if any.
fn chunk_buffer() -> Vec<Event> {
    SPARE.lock().pop().unwrap_or_default()
}

/// Gives an emptied chunk buffer back for the next frame (kept if there is room).
fn spare_chunk(mut chunk: Vec<Event>) {
    chunk.clear();
    let mut spare = SPARE.lock();
    if spare.len() < SPARE_CHUNKS && chunk.capacity() <= CHUNK_EVENTS {
        spare.push(chunk);
    }
}

/// Every session the collector holds. Each session has a lock of its own, held
/// while a chunk of at most [`CHUNK_EVENTS`] events is applied; the list of
/// sessions is locked only to add or find one.
pub struct Hub {
    sessions: RwLock<BTreeMap<SessionId, Arc<Slot>>>,
    next_id: AtomicU64,
    /// Sealing order of blocks across sessions.
    next_seq: AtomicU64,
    /// Bytes held by all stores.
    used: AtomicUsize,
    /// Viewers subscribed to every session's live updates.
    watch_all: AtomicUsize,
    /// When viewers were last told the memory budget took something (ms since
    /// the Unix epoch): at most once a second.
    budget_told_ms: AtomicU64,
    pub config: HubConfig,
    pub counters: Counters,
    updates: broadcast::Sender<Update>,
}

/// Now, in Unix nanoseconds.
pub(crate) fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A viewer's interest in live updates; dropping it ends the interest.
pub struct Watch {
    hub: Arc<Hub>,
    session: Option<SessionId>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        match self.session {
            None => {
                self.hub.watch_all.fetch_sub(1, Ordering::Relaxed);
            }
            Some(id) => {
                if let Some(slot) = self.hub.slot(id) {
                    slot.watchers.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }
}

impl Hub {
    pub fn new(config: HubConfig) -> Arc<Hub> {
        let (updates, _) = broadcast::channel(1024);
        Arc::new(Hub {
            sessions: RwLock::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            next_seq: AtomicU64::new(0),
            used: AtomicUsize::new(0),
            watch_all: AtomicUsize::new(0),
            budget_told_ms: AtomicU64::new(0),
            config,
            counters: Counters::default(),
            updates,
        })
    }

    fn slot(&self, id: SessionId) -> Option<Arc<Slot>> {
        self.sessions.read().get(&id).cloned()
    }

    fn slots(&self) -> Vec<Arc<Slot>> {
        self.sessions.read().values().cloned().collect()
    }

    /// Live updates from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.updates.subscribe()
    }

    /// Says a viewer follows `session` live (`None`: every session) until the
    /// returned [`Watch`] is dropped. Batches of sessions nobody watches carry no
    /// intervals and cost no JSON.
    pub fn watch(self: &Arc<Self>, session: Option<SessionId>) -> Watch {
        match session {
            None => {
                self.watch_all.fetch_add(1, Ordering::Relaxed);
            }
            Some(id) => {
                if let Some(slot) = self.slot(id) {
                    slot.watchers.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Watch {
            hub: self.clone(),
            session,
        }
    }

    /// Opens a session for `header`; `header_frame` is its encoded form (recorded first).
    pub fn open(&self, header: Header, header_frame: &[u8], source: Source) -> SessionId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (recording, recorder) = match &self.config.record_dir {
            Some(dir) => {
                let safe: String = header
                    .process_name
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let path = dir.join(format!("{safe}-{}-{id}.ltrace", header.pid));
                match File::create(&path).and_then(|f| RecordingWriter::new_raw(f, header_frame)) {
                    Ok(w) => (Some(path), Some(w)),
                    Err(e) => {
                        eprintln!("looptrace: cannot record to {}: {e}", path.display());
                        (None, None)
                    }
                }
            }
            None => (None, None),
        };
        let continues = self
            .slots()
            .iter()
            .filter_map(|slot| {
                let s = slot.lock();
                let h = &s.model.header;
                (h.pid == header.pid
                    && h.clock_origin_unix_ns == header.clock_origin_unix_ns
                    && h.process_name == header.process_name)
                    .then_some(s.id)
            })
            .max();
        let mut model = Model::new(header, self.config.thresholds);
        if self.config.outbox {
            model.outbox = Some(crate::model::outbox::Outbox::new(
                self.config.export_polls_ns,
            ));
        }
        // Console data does not follow wakers closely enough to call one lost.
        model.coarse = source == Source::Console;
        let slot = Slot {
            state: Mutex::new(SessionState {
                id,
                source,
                model,
                store: Store::default(),
                connected_unix_ns: unix_ns(),
                disconnected_unix_ns: None,
                bad_frames: 0,
                recording,
                note: None,
                continues,
                peer: None,
                recorder,
                clock_lag_ns: None,
                live: None,
            }),
            watchers: AtomicUsize::new(0),
            oldest_seq: AtomicU64::new(u64::MAX),
            memory: AtomicUsize::new(0),
            model_memory: AtomicUsize::new(0),
        };
        self.sessions.write().insert(id, Arc::new(slot));
        let _ = self.updates.send(Update::Sessions);
        id
    }

    /// Notes where session `id`'s app connected from.
    pub fn set_peer(&self, id: SessionId, peer: String) {
        if let Some(slot) = self.slot(id) {
            slot.lock().peer = Some(peer);
        }
    }

    /// Bytes the sessions' history and models hold (what `memory_budget` bounds).
    pub fn memory_used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Sets the note viewers show beside a session (replacing any before).
    pub fn set_note(&self, id: SessionId, note: Note) {
        if let Some(slot) = self.slot(id) {
            let mut s = slot.lock();
            // Recorded too, so a replay shows it.
            if let Some(w) = s.recorder.as_mut() {
                if let Err(e) = w.write_note(&note) {
                    eprintln!("looptrace: recording of session {id} stopped: {e}");
                    s.recorder = None;
                }
            }
            s.note = Some(note);
        }
        let _ = self.updates.send(Update::Sessions);
    }

    /// Raises what a live app's silence proves by now (a task idle with no
    /// waker past its grace period: a lost waker, even if the app sends nothing
    /// more), and tells whoever watches. Called on the viewers' stats tick.
    pub fn settle(&self, id: SessionId) {
        let Some(slot) = self.slot(id) else {
            return;
        };
        let message = {
            let mut s = slot.lock();
            if s.disconnected_unix_ns.is_some() {
                return;
            }
            let now = s.now_ns();
            s.model.settle(now);
            if !s.model.track_changes {
                return;
            }
            let changes = s.model.take_changes();
            if changes.warnings.is_empty() {
                // Nothing new: what changed goes out with the next batch.
                s.model.requeue(changes);
                return;
            }
            let at = s.model.now_ns;
            let batch = api::Batch {
                session: id,
                now_ns: at,
                event_count: 0,
                tasks: changes
                    .tasks
                    .iter()
                    .filter_map(|t| s.model.tasks.get(t))
                    .map(|t| t.to_api(at))
                    .collect(),
                warnings: changes
                    .warnings
                    .iter()
                    .filter_map(|&i| s.model.warnings.get(i).cloned())
                    .collect(),
                marks: Vec::new(),
                events: Some(Vec::new()),
                intervals: Some(Vec::new()),
                workers: Some(Vec::new()),
                wakes: Some(Vec::new()),
                markers: Some(Vec::new()),
                queues: Some(Vec::new()),
                events_skipped: None,
            };
            message_text(&api::Message::Batch(batch))
        };
        let _ = self.updates.send(Update::Batch {
            session: id,
            message: Arc::new(message),
        });
    }

    /// Marks a session disconnected (its data stays).
    pub fn close(&self, id: SessionId) {
        if let Some(slot) = self.slot(id) {
            let mut s = slot.lock();
            s.disconnected_unix_ns = Some(unix_ns());
            s.recorder = None;
            // Nothing more will come: what stayed lost past its grace is reported.
            let end = s.model.now_ns;
            s.model.settle(end);
        }
        let _ = self.updates.send(Update::Sessions);
    }

    /// Counts a malformed frame against a session.
    pub fn bad_frame(&self, id: Option<SessionId>) {
        self.counters.bad_frames.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = id.and_then(|id| self.slot(id)) {
            slot.lock().bad_frames += 1;
        }
    }

    /// Decodes and ingests one frame of session `id`: events are applied as they
    /// are decoded, a chunk at a time, in time linear in their number. A frame
    /// that turns out malformed part way keeps the events before the fault.
    pub fn ingest_frame(&self, id: SessionId, frame: &[u8]) -> Result<usize, DecodeError> {
        let result = self.ingest_frame_inner(id, frame);
        if result.is_err() {
            self.bad_frame(Some(id));
        }
        result
    }

    fn ingest_frame_inner(&self, id: SessionId, frame: &[u8]) -> Result<usize, DecodeError> {
        match frame_type(frame)? {
            // A restated header (the app reconnected): nothing new.
            FrameType::Header => return Ok(0),
            FrameType::Note => {
                if let Frame::Note(note) = decode_frame(frame)? {
                    self.set_note(id, note);
                }
                return Ok(0);
            }
            FrameType::Events => {}
        }
        let reader = EventsReader::new(frame)?;
        let Some(slot) = self.slot(id) else {
            return Ok(0);
        };
        self.counters.frames.fetch_add(1, Ordering::Relaxed);
        let mut chunk = chunk_buffer();
        let result = self.ingest_events(&slot, id, frame, reader, &mut chunk);
        spare_chunk(chunk);
        result
    }

    /// [`Hub::ingest_frame`] of an events frame, `reader` at its first event,
    /// decoded a chunk at a time into `chunk`.
    fn ingest_events(
        &self,
        slot: &Arc<Slot>,
        id: SessionId,
        frame: &[u8],
        mut reader: EventsReader<'_>,
        chunk: &mut Vec<Event>,
    ) -> Result<usize, DecodeError> {
        let mut applied = 0;
        loop {
            chunk.clear();
            // Exactly: grown by doubling, a buffer would outgrow its place
            // among the spares.
            chunk.reserve_exact((reader.len() as usize).min(CHUNK_EVENTS));
            let (start, base) = (reader.position(), reader.prev_ns());
            // A chunk after a context label was said may refer to it: it is
            // encoded anew rather than kept as it came.
            let can_cut = reader.can_cut();
            // Trailing bytes show once every event is read.
            let fault = reader.read_into(chunk, CHUNK_EVENTS).err();
            let run = RunSource {
                bytes: &frame[start..reader.position()],
                base_ns: base,
                events: chunk,
            };
            if !chunk.is_empty() {
                let whole = fault.is_none() && applied == 0 && reader.is_empty();
                // The recording gets the frame as it came when it is one chunk, else
                // the chunk encoded anew.
                let record = if whole {
                    Record::Frame(frame)
                } else {
                    Record::Events
                };
                let run = (fault.is_none() && can_cut).then_some(run);
                self.apply(slot, id, chunk, run, record);
                applied += chunk.len();
            }
            if let Some(e) = fault {
                return Err(e);
            }
            if reader.is_empty() {
                break;
            }
        }
        self.counters
            .bytes
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        Ok(applied)
    }

    /// Ingests an events frame whose events the caller has decoded already: the
    /// embedded collector, handed both by the shipper in the same process. The
    /// frame is kept as it is; `events` must be what it encodes.
    pub fn ingest_decoded(&self, id: SessionId, frame: &[u8], events: &[Event]) {
        let start = match EventsReader::new(frame) {
            Ok(r) if r.len() == events.len() as u64 && events.len() <= CHUNK_EVENTS => r.position(),
            // Not what was promised, or too big for one chunk: decode it.
            _ => {
                let _ = self.ingest_frame(id, frame);
                return;
            }
        };
        let Some(slot) = self.slot(id) else { return };
        self.counters.frames.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        let run = RunSource {
            bytes: &frame[start..],
            base_ns: 0,
            events,
        };
        self.apply(&slot, id, events, Some(run), Record::Frame(frame));
    }

    /// Ingests decoded events of session `id`.
    pub fn ingest(&self, id: SessionId, events: &[Event]) {
        let Some(slot) = self.slot(id) else { return };
        self.counters.frames.fetch_add(1, Ordering::Relaxed);
        for chunk in events.chunks(CHUNK_EVENTS) {
            self.apply(&slot, id, chunk, None, Record::Events);
        }
    }

    /// Applies one chunk: model, store, recording, and what live viewers get.
    fn apply(
        &self,
        slot: &Slot,
        id: SessionId,
        events: &[Event],
        run: Option<RunSource<'_>>,
        record: Record<'_>,
    ) {
        self.counters
            .events
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        let watched =
            slot.watchers.load(Ordering::Relaxed) > 0 || self.watch_all.load(Ordering::Relaxed) > 0;
        let mut s = slot.lock();
        if let Some(w) = s.recorder.as_mut() {
            let written = match record {
                Record::Frame(f) => w.write_frame(f),
                Record::Events => w.write_events(events),
            };
            if let Err(e) = written {
                eprintln!("looptrace: recording of session {id} stopped: {e}");
                s.recorder = None;
            }
        }
        s.model.track_changes = watched;
        for e in events {
            s.model.apply(e);
        }
        s.model.flush_histograms();
        s.observe_clock();
        let mut seq = self.next_seq.load(Ordering::Relaxed);
        let before = seq;
        match run {
            Some(run) => s.store.append_run(run, &mut seq),
            None => s.store.append_events(events, &mut seq),
        }
        if seq != before {
            self.next_seq.fetch_max(seq, Ordering::Relaxed);
        }
        let message = if watched {
            Some(self.live_batch(&mut s, events))
        } else {
            s.live = None;
            None
        };
        self.resync(slot, &s);
        drop(s);
        let used = self.used.load(Ordering::Relaxed);
        if let Some(message) = message {
            let _ = self.updates.send(Update::Batch {
                session: id,
                message: Arc::new(message),
            });
        }
        if used > self.config.memory_budget {
            self.enforce_budget();
        }
    }

    /// The live batch message for `events`, just applied to `s`; follows them with
    /// the live tracker (caught up first if viewers just arrived).
    fn live_batch(&self, s: &mut SessionState, events: &[Event]) -> String {
        let after = s.store.events;
        let first = after - events.len() as u64;
        if s.live.as_ref().is_none_or(|(i, _)| *i != first) {
            s.live = Some((first, catch_up(&s.store, first)));
        }
        let small = events.len() <= self.config.max_live_events;
        let mut closed = Window::default();
        if let Some((index, tracker)) = s.live.as_mut() {
            // A batch too big to carry its events carries none of what it closed
            // either: followed, not drawn (drawing it only to drop it cost a
            // busy session's viewer a MB of fresh buffers a batch).
            if small {
                events.iter().for_each(|e| tracker.push(e, &mut closed));
            } else {
                events.iter().for_each(|e| tracker.push(e, &mut Discard));
            }
            *index = after;
        }
        let changes = s.model.take_changes();
        let now = s.model.now_ns;
        let tasks = changes
            .tasks
            .iter()
            .filter_map(|t| s.model.tasks.get(t))
            .map(|t| t.to_api(now))
            .collect();
        let warnings = changes
            .warnings
            .iter()
            .filter_map(|&i| s.model.warnings.get(i).cloned())
            .collect();
        // Marks are few and drawn at every zoom: always sent, even in a batch too big for its events.
        let marks = s
            .model
            .marks
            .iter()
            .skip(s.model.marks.len() - changes.marks)
            .cloned()
            .collect();
        let batch = api::Batch {
            session: s.id,
            now_ns: now,
            event_count: events.len() as u64,
            tasks,
            warnings,
            marks,
            events: small.then(|| {
                events
                    .iter()
                    .map(crate::export::jsonl::event_json)
                    .collect()
            }),
            // What the batch closed: intervals, worker spans, wake arrows, markers.
            intervals: small.then_some(closed.intervals),
            workers: small.then_some(closed.workers),
            wakes: small.then_some(closed.wakes),
            markers: small.then_some(closed.markers),
            queues: small.then_some(closed.queues),
            events_skipped: (!small).then_some(events.len() as u64),
        };
        message_text(&api::Message::Batch(batch))
    }

    /// Evicts the oldest blocks across sessions until the stores fit the budget.
    fn enforce_budget(&self) {
        let budget = self.config.memory_budget;
        let slots = self.slots();
        // Models take at most half the budget: beyond it each gives up detail,
        // oldest first (see `model::memory`), down to three quarters of its share
        // so that this does not run at every batch.
        let models: usize = slots
            .iter()
            .map(|s| s.model_memory.load(Ordering::Relaxed))
            .sum();
        if models > budget / MODEL_SHARE {
            let scale = 0.75 * (budget / MODEL_SHARE) as f64 / models as f64;
            for slot in &slots {
                let mut s = slot.lock();
                let target = (s.model.memory().total() as f64 * scale) as usize;
                s.model.shrink_to(target);
                self.resync(slot, &s);
            }
        }
        // Checkpoints at most an eighth: they are made again when needed.
        for slot in &slots {
            let mut s = slot.lock();
            if s.store.checkpoint_bytes() > budget / CHECKPOINT_SHARE / slots.len().max(1) {
                s.store.clear_checkpoints();
                self.resync(slot, &s);
            }
        }
        // Compact what is still open: it may be all it takes.
        for slot in &slots {
            let mut s = slot.lock();
            let mut seq = self.next_seq.fetch_add(1, Ordering::Relaxed) + 1;
            s.store.seal_open(&mut seq);
            self.next_seq.fetch_max(seq, Ordering::Relaxed);
            self.resync(slot, &s);
        }
        while self.used.load(Ordering::Relaxed) > budget {
            let Some(slot) = slots
                .iter()
                .filter(|s| s.oldest_seq.load(Ordering::Relaxed) != u64::MAX)
                .min_by_key(|s| s.oldest_seq.load(Ordering::Relaxed))
            else {
                break;
            };
            let mut s = slot.lock();
            let before = s.store.evicted_events;
            if s.store.evict_oldest().is_none() {
                self.resync(slot, &s);
                continue;
            }
            self.counters
                .evicted_events
                .fetch_add(s.store.evicted_events - before, Ordering::Relaxed);
            self.resync(slot, &s);
        }
        // Viewers hear of it through the session list (what was evicted and given
        // up is in each summary).
        let now_ms = unix_ns() / 1_000_000;
        let told = self.budget_told_ms.load(Ordering::Relaxed);
        if now_ms >= told + 1000
            && self
                .budget_told_ms
                .compare_exchange(told, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let _ = self.updates.send(Update::Sessions);
        }
    }

    /// Brings a session's lock-free figures (memory, oldest block) up to date.
    fn resync(&self, slot: &Slot, s: &SessionState) {
        let model = s.model.memory().total() as usize;
        let memory = s.store.memory() + model;
        slot.model_memory.store(model, Ordering::Relaxed);
        slot.oldest_seq
            .store(s.store.oldest_seq().unwrap_or(u64::MAX), Ordering::Relaxed);
        let was = slot.memory.swap(memory, Ordering::Relaxed);
        if memory >= was {
            self.used.fetch_add(memory - was, Ordering::Relaxed);
        } else {
            self.used.fetch_sub(was - memory, Ordering::Relaxed);
        }
    }

    /// Runs `f` on a session.
    pub fn with_session<R>(&self, id: SessionId, f: impl FnOnce(&SessionState) -> R) -> Option<R> {
        let slot = self.slot(id)?;
        let s = slot.lock();
        Some(f(&s))
    }

    /// Runs `f` on session `id`, which it may change (what an exporter takes
    /// from it); nothing a viewer sees.
    pub fn with_session_mut<R>(
        &self,
        id: SessionId,
        f: impl FnOnce(&mut SessionState) -> R,
    ) -> Option<R> {
        let slot = self.slot(id)?;
        let mut s = slot.lock();
        Some(f(&mut s))
    }

    /// Summaries of all sessions.
    pub fn sessions(&self) -> Vec<api::SessionSummary> {
        self.slots()
            .iter()
            .map(|slot| {
                let s = slot.lock();
                s.to_api(s.now_ns())
            })
            .collect()
    }

    /// The collector's own counters.
    pub fn counters(&self) -> api::Counters {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        api::Counters {
            frames: get(&c.frames),
            events: get(&c.events),
            bytes: get(&c.bytes),
            bad_frames: get(&c.bad_frames),
            rejected_connections: get(&c.rejected_connections),
            evicted_events: get(&c.evicted_events),
            viewer_lagged: get(&c.viewer_lagged),
        }
    }

    /// Session ids.
    pub fn session_ids(&self) -> Vec<SessionId> {
        self.sessions.read().keys().copied().collect()
    }

    /// A time window of a session: full detail if it has at most `max_intervals`
    /// intervals, else aggregated into `buckets`. Decoded and followed outside the
    /// session's lock; checkpoints it passes are kept for later queries.
    pub fn window(
        &self,
        id: SessionId,
        start_ns: u64,
        end_ns: u64,
        max_intervals: usize,
        buckets: usize,
    ) -> Option<WindowReply> {
        let mut out = Capped::new(start_ns, end_ns, max_intervals, buckets);
        let until = self.follow(id, start_ns, end_ns, &mut out)?;
        Some(match out {
            Capped::Full(mut w, ..) => {
                w.until_ns = until;
                w.wakes.sort_by_key(|a| a.at_ns);
                WindowReply::Full(w)
            }
            Capped::Aggregated(a) => WindowReply::Aggregate(a.finish(until)),
        })
    }

    /// Follows a session's events over `[start_ns, end_ns)` into `out`, from the
    /// nearest checkpoint, a block at a time, outside the session's lock; keeps
    /// the checkpoints it passes. Returns the time open states were closed at.
    fn follow(&self, id: SessionId, start_ns: u64, end_ns: u64, out: &mut impl Out) -> Option<u64> {
        let slot = self.slot(id)?;
        let (tracker, snapshot) = slot.lock().store.snapshot_window(start_ns, end_ns);
        let from = snapshot.start_index();
        let tracker = match tracker {
            Some(t) => t.for_window(start_ns, end_ns),
            None => Tracker::new(start_ns, end_ns),
        };
        let mut follow = Follow::new(tracker, start_ns, end_ns);
        let mut checkpoints = Vec::new();
        snapshot.for_each_block(|events| {
            follow.feed(events, out, |k, t| {
                if k > 0 && (from + k as u64).is_multiple_of(CHECKPOINT_EVERY) {
                    checkpoints.push((from + k as u64, Arc::new(t.clone())));
                }
            })
        });
        let until = follow.finish(out);
        if !checkpoints.is_empty() {
            let mut s = slot.lock();
            for (index, t) in checkpoints {
                s.store.add_checkpoint(index, t);
            }
            self.resync(&slot, &s);
        }
        Some(until)
    }

    /// Everything known about a session now: tasks (at most
    /// [`SNAPSHOT_TASKS`], the busiest now first), warnings and stats.
    pub fn snapshot(&self, id: SessionId) -> Option<api::Snapshot> {
        self.with_session(id, |s| {
            let mut tasks: Vec<_> = s.model.tasks.values().collect();
            let total = tasks.len();
            if total > SNAPSHOT_TASKS {
                tasks.sort_by_key(|t| snapshot_rank(t));
                tasks.truncate(SNAPSHOT_TASKS);
            }
            tasks.sort_by_key(|t| t.id);
            api::Snapshot {
                session: id,
                tasks_total: total as u64,
                tasks: tasks.iter().map(|t| t.to_api(s.now_ns())).collect(),
                warnings: s.model.findings().cloned().collect(),
                marks: s.model.marks.iter().cloned().collect(),
                stats: crate::to_api::session_stats(s),
            }
        })
    }

    /// One task in detail, with its last 20 polls and who woke each.
    pub fn task_message(&self, id: SessionId, task: u64) -> Option<api::TaskMessage> {
        let detail = self
            .with_session(id, |s| {
                s.model
                    .tasks
                    .get(&task)
                    .map(|t| task_detail(t, &s.model, s.now_ns()))
            })
            .flatten()?;
        Some(api::TaskMessage {
            session: id,
            detail,
            recent_polls: self
                .recent_polls(id, task, 20, 10_000_000_000)
                .unwrap_or_default(),
        })
    }

    /// A task's last `n` polls, each with who woke it (from the last `lookback_ns`
    /// of the session before its latest poll).
    pub fn recent_polls(
        &self,
        id: SessionId,
        task: u64,
        n: usize,
        lookback_ns: u64,
    ) -> Option<Vec<api::Poll>> {
        let last = self.with_session(id, |s| {
            s.model
                .tasks
                .get(&task)
                .map(|t| t.last_poll_ns.unwrap_or(s.model.now_ns))
        })??;
        let end = last.saturating_add(1);
        let mut out = OneTask(task, Vec::new());
        self.follow(id, end.saturating_sub(lookback_ns), end, &mut out)?;
        let mine = &out.1;
        let mut polls = Vec::new();
        for (k, i) in mine.iter().enumerate() {
            if i.state != TaskState::Running {
                continue;
            }
            // Who woke it: the scheduled stretch just before the poll says.
            let woken_by = k
                .checked_sub(1)
                .and_then(|p| mine.get(p))
                .and_then(|p| p.woken_by);
            polls.push(api::Poll {
                start_ns: i.start_ns,
                duration_ns: i.end_ns - i.start_ns,
                ready: i.ready,
                thread: i.thread,
                woken_by,
            });
        }
        let skip = polls.len().saturating_sub(n);
        Some(polls.split_off(skip))
    }

    pub(crate) fn record_lag(&self, skipped: u64) {
        self.counters
            .viewer_lagged
            .fetch_add(skipped, Ordering::Relaxed);
    }
}

/// How a chunk goes into the session's recording.
enum Record<'a> {
    /// The frame it came in, whole.
    Frame(&'a [u8]),
    /// Encoded anew.
    Events,
}

/// A tracker that has followed the first `index` events of `store`, built from the
/// nearest checkpoint (the live tracker, when viewers arrive).
fn catch_up(store: &Store, index: u64) -> Tracker {
    let (tracker, snapshot) = store.snapshot_window(u64::MAX, u64::MAX);
    let mut tracker =
        tracker.map_or_else(|| Tracker::new(0, u64::MAX), |t| t.for_window(0, u64::MAX));
    let mut left = index.saturating_sub(snapshot.start_index());
    snapshot.for_each_block(|events| {
        for e in events.iter().take(left as usize) {
            tracker.push(e, &mut Discard);
        }
        left = left.saturating_sub(events.len() as u64);
        left > 0
    });
    tracker
}

/// A message as the viewer socket carries it.
pub fn message_text(m: &api::Message) -> String {
    serde_json::to_string(m).unwrap_or_else(|e| {
        // Not expected of these types (maps have string keys): say so rather
        // than send nothing.
        let error = api::Message::Error {
            id: None,
            message: format!("a message could not be written: {e}"),
        };
        serde_json::to_string(&error).unwrap_or_default()
    })
}

//! The binary wire codec.
//!
//! A *frame* is one self-contained message: a version byte, a type byte, then the
//! payload. Integers are LEB128 varints; timestamps inside an events frame are
//! zig-zag deltas from the previous event (threads' events interleave, so a delta
//! may be slightly negative). A typical poll start or end takes 4 to 6 bytes.
//!
//! Decoding never panics: anything malformed, truncated or from another version is
//! a [`DecodeError`].

use crate::event::*;
use std::sync::Arc;
use thiserror::Error;

/// Version of the frame layout this build writes. Version 2 added poll ends that
/// carry the task's own waker clones and drops, version 3 the context events
/// (a poll's `tracing` span) and the queues events (the scheduler's queues,
/// sampled), version 4 context events that refer to a label said earlier in
/// their run, version 5 poll ends that carry their poll's context; decoders
/// read versions 1 to 5 and refuse any other,
/// so an older collector says it cannot read a newer app instead of failing on
/// an event it does not know.
pub const WIRE_VERSION: u8 = 5;
/// Oldest frame layout a decoder still reads.
pub const OLDEST_WIRE_VERSION: u8 = 1;
/// Most events one events frame may hold. Encoders split longer runs; decoders
/// refuse larger counts (a frame's size is bounded separately by its transport).
pub const MAX_FRAME_EVENTS: u64 = (1 << 21) - 1;

const FRAME_HEADER: u8 = 1;
const FRAME_EVENTS: u8 = 2;
const FRAME_NOTE: u8 = 3;

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Header(Header),
    Events(Vec<Event>),
    /// A text to show beside the session ([`Note`]).
    Note(Note),
}

/// Why a frame could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("empty frame")]
    Empty,
    #[error("unsupported wire version {found} (this build speaks version {WIRE_VERSION})")]
    Version { found: u8 },
    #[error("unknown frame type {0}")]
    FrameType(u8),
    #[error("frame truncated at byte {0}")]
    Truncated(usize),
    #[error("varint too long at byte {0}")]
    Varint(usize),
    #[error("unknown {what} tag {tag} at byte {at}")]
    Tag {
        what: &'static str,
        tag: u8,
        at: usize,
    },
    #[error("invalid UTF-8 string at byte {0}")]
    Utf8(usize),
    #[error("value out of range at byte {0}")]
    Range(usize),
    #[error("{0} trailing bytes after the frame")]
    Trailing(usize),
}

/// Encodes a header frame.
pub fn encode_header(h: &Header, out: &mut Vec<u8>) {
    out.push(WIRE_VERSION);
    out.push(FRAME_HEADER);
    put_str(out, &h.process_name);
    put_var(out, h.pid as u64);
    out.push(match h.flavor {
        Flavor::CurrentThread => 0,
        Flavor::MultiThread => 1,
    });
    put_var(out, h.workers as u64);
    put_var(out, h.clock_origin_unix_ns);
}

/// Encodes a note frame.
pub fn encode_note(note: &Note, out: &mut Vec<u8>) {
    out.push(WIRE_VERSION);
    out.push(FRAME_NOTE);
    put_str(out, &note.title);
    put_str(out, &note.text);
}

/// Encodes an events frame holding `events` (at most [`MAX_FRAME_EVENTS`]).
pub fn encode_events(events: &[Event], out: &mut Vec<u8>) {
    debug_assert!(events.len() as u64 <= MAX_FRAME_EVENTS);
    out.push(WIRE_VERSION);
    out.push(FRAME_EVENTS);
    put_var(out, events.len() as u64);
    let mut run = RunState::default();
    for e in events {
        encode_event(e, &mut run, out);
    }
}

/// Most context labels a run keeps to say by index; past this, each new label
/// takes the place of the one said longest ago (a run of many distinct labels
/// keeps a table this small).
pub const MAX_RUN_LABELS: usize = 64;

/// What one event of a run hands the next, encoding or decoding: the timestamp
/// its delta is taken from, and the context labels said so far, which later
/// context events of the run refer to by index. A frame starts a run afresh, so
/// a frame decodes on its own: no table outlives it, nothing is restated after a
/// reconnect, and a collector keeps no table per app.
#[derive(Debug, Clone, Default)]
pub struct RunState {
    prev_ns: u64,
    labels: Vec<Arc<str>>,
    /// The slot the next new label takes once the table is full.
    next: usize,
}

impl RunState {
    /// A run whose first event's delta is taken from `prev_ns`.
    pub fn after(prev_ns: u64) -> RunState {
        RunState {
            prev_ns,
            labels: Vec::new(),
            next: 0,
        }
    }

    /// The timestamp the next event's delta is taken from.
    pub fn prev_ns(&self) -> u64 {
        self.prev_ns
    }

    /// Whether no label was said yet: a run cut here decodes on its own from
    /// [`RunState::after`] its `prev_ns`.
    pub fn can_cut(&self) -> bool {
        self.labels.is_empty()
    }

    /// The index of `label` if the run said it already; else notes it and
    /// returns `None`, for the label to be written in full.
    fn said(&mut self, label: &Arc<str>) -> Option<usize> {
        // Few labels per run: a scan, the pointer before the text (the
        // shipper's labels are shared), beats hashing the text.
        let found = self
            .labels
            .iter()
            .position(|l| Arc::ptr_eq(l, label) || **l == **label);
        if found.is_none() {
            self.note(label.clone());
        }
        found
    }

    /// Reads a context label: by its index in the run, or its text (which the
    /// run then keeps).
    fn label(&mut self, r: &mut Reader<'_>, by_index: bool) -> Result<Arc<str>, DecodeError> {
        if by_index {
            let at = r.pos;
            let i = r.var()?;
            return match usize::try_from(i).ok().and_then(|i| self.labels.get(i)) {
                Some(label) => Ok(label.clone()),
                // A label the run never said.
                None => Err(DecodeError::Range(at)),
            };
        }
        let label: Arc<str> = r.string()?.into();
        self.note(label.clone());
        Ok(label)
    }

    /// Keeps `label` to be said by index: in a new slot while there is room,
    /// else in the one said longest ago (encoder and decoder do the same).
    fn note(&mut self, label: Arc<str>) {
        if self.labels.len() < MAX_RUN_LABELS {
            self.labels.push(label);
        } else {
            self.labels[self.next] = label;
            self.next = (self.next + 1) % MAX_RUN_LABELS;
        }
    }
}

/// Encodes one event onto `out` as the next of `run`: its timestamp a delta
/// from the previous event's, a context label by index if the run said it.
pub fn encode_event(e: &Event, run: &mut RunState, out: &mut Vec<u8>) {
    let said = e.kind.context().and_then(|(_, label)| run.said(label));
    let tag = match &e.kind {
        EventKind::Thread { .. } => 1,
        EventKind::Spawn(_) => 2,
        EventKind::Terminate { .. } => 3,
        EventKind::PollStart { .. } => 4,
        EventKind::PollEnd {
            context: Some(_), ..
        } => 22,
        EventKind::PollEnd {
            ready,
            clones,
            drops,
            context: None,
            ..
        } => match (ready, *clones == 0 && *drops == 0) {
            (false, true) => 5,
            (true, true) => 6,
            (false, false) => 16,
            (true, false) => 17,
        },
        EventKind::Waker { .. } => 7,
        EventKind::Park => 8,
        EventKind::Unpark => 9,
        EventKind::BlockingStart { .. } => 10,
        EventKind::BlockingEnd { .. } => 11,
        EventKind::TimerArmed { .. } => 12,
        EventKind::TimerFired { .. } => 13,
        EventKind::Dropped { .. } => 14,
        EventKind::Mark { .. } => 15,
        EventKind::TaskState { .. } => 18,
        EventKind::Context { .. } if said.is_some() => 21,
        EventKind::Context { .. } => 19,
        EventKind::Queues(_) => 20,
    };
    out.push(tag);
    let delta = e.ts_ns.wrapping_sub(run.prev_ns) as i64;
    put_var(out, zigzag(delta));
    run.prev_ns = e.ts_ns;
    put_var(out, e.thread as u64);
    match &e.kind {
        EventKind::Thread { role, name } => {
            match role {
                ThreadRole::Worker(i) => {
                    out.push(0);
                    put_var(out, *i as u64);
                }
                ThreadRole::Blocking => out.push(1),
                ThreadRole::External => out.push(2),
            }
            put_str(out, name);
        }
        EventKind::Spawn(spawn) => {
            let Spawn {
                task,
                kind,
                name,
                location,
                parent,
                size_bytes,
            } = &**spawn;
            put_var(out, *task);
            out.push(match kind {
                TaskKind::Task => 0,
                TaskKind::Local => 1,
                TaskKind::Blocking => 2,
            });
            put_opt_str(out, name.as_deref());
            put_str(out, location);
            put_opt(out, *parent);
            put_opt(out, *size_bytes);
        }
        EventKind::Terminate { task, outcome } => {
            put_var(out, *task);
            out.push(match outcome {
                Outcome::Completed => 0,
                Outcome::Cancelled => 1,
                Outcome::Panicked => 2,
            });
        }
        EventKind::PollEnd {
            task,
            ready,
            clones,
            drops,
            context,
        } => {
            put_var(out, *task);
            let counts = *clones != 0 || *drops != 0;
            if context.is_some() {
                // One byte of flags: ready, counts follow, the label by index.
                out.push(*ready as u8 | (counts as u8) << 1 | (said.is_some() as u8) << 2);
            }
            if counts {
                put_var(out, *clones as u64);
                put_var(out, *drops as u64);
            }
            if let Some(label) = context {
                put_label(out, said, label);
            }
        }
        EventKind::PollStart { task }
        | EventKind::BlockingStart { task }
        | EventKind::BlockingEnd { task }
        | EventKind::TimerFired { task } => put_var(out, *task),
        EventKind::Waker { task, op, by } => {
            put_var(out, *task);
            let op = match op {
                WakeOp::Wake => 0u8,
                WakeOp::WakeByRef => 1,
                WakeOp::Clone => 2,
                WakeOp::Drop => 3,
            };
            match by {
                WakeSource::Task(t) => {
                    out.push(op << 4);
                    put_var(out, *t);
                }
                WakeSource::Timer => out.push(op << 4 | 1),
                WakeSource::Io => out.push(op << 4 | 2),
                WakeSource::Blocking => out.push(op << 4 | 3),
                WakeSource::External => out.push(op << 4 | 4),
            }
        }
        EventKind::Park | EventKind::Unpark => {}
        EventKind::TimerArmed { task, deadline_ns } => {
            put_var(out, *task);
            put_var(out, *deadline_ns);
        }
        EventKind::Dropped { count } => put_var(out, *count),
        EventKind::Mark { label } => put_str(out, label),
        EventKind::Context { task, label } => {
            put_var(out, *task);
            put_label(out, said, label);
        }
        EventKind::Queues(queues) => {
            let Queues {
                local,
                steals,
                injection,
            } = &**queues;
            put_var(out, local.len() as u64);
            for (l, st) in local.iter().zip(steals.iter().chain(std::iter::repeat(&0))) {
                put_var(out, *l as u64);
                put_var(out, *st);
            }
            put_var(out, *injection as u64);
        }
        EventKind::TaskState { task, state } => {
            put_var(out, *task);
            out.push(match state {
                TaskState::Running => 0,
                TaskState::Scheduled => 1,
                TaskState::Idle => 2,
                TaskState::Done => 3,
            });
        }
    }
}

/// A context label: its index if the run said it (`said`), else its text.
fn put_label(out: &mut Vec<u8>, said: Option<usize>, label: &str) {
    match said {
        Some(i) => put_var(out, i as u64),
        None => put_str(out, label),
    }
}

/// What a frame holds, read from its first two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameType {
    Header,
    Events,
    Note,
}

/// The type of the frame in `buf`, checking its version; the rest is not read.
pub fn frame_type(buf: &[u8]) -> Result<FrameType, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    frame_start(&mut r)
}

fn frame_start(r: &mut Reader<'_>) -> Result<FrameType, DecodeError> {
    let version = r.u8().map_err(|_| DecodeError::Empty)?;
    if !(OLDEST_WIRE_VERSION..=WIRE_VERSION).contains(&version) {
        return Err(DecodeError::Version { found: version });
    }
    match r.u8()? {
        FRAME_HEADER => Ok(FrameType::Header),
        FRAME_EVENTS => Ok(FrameType::Events),
        FRAME_NOTE => Ok(FrameType::Note),
        t => Err(DecodeError::FrameType(t)),
    }
}

/// Decodes one whole frame; `buf` must hold exactly one frame.
pub fn decode_frame(buf: &[u8]) -> Result<Frame, DecodeError> {
    if frame_type(buf)? == FrameType::Events {
        let mut events = EventsReader::new(buf)?;
        // Every event takes at least 3 bytes: never reserve for more than the
        // frame can hold, whatever its count says.
        let mut out = Vec::with_capacity((events.len() as usize).min(buf.len() / 3));
        for e in events.by_ref() {
            out.push(e?);
        }
        return Ok(Frame::Events(out));
    }
    let mut r = Reader { buf, pos: 0 };
    let frame = match frame_start(&mut r)? {
        FrameType::Header => {
            let process_name = r.string()?;
            let pid = r.var_u32()?;
            let at = r.pos;
            let flavor = match r.u8()? {
                0 => Flavor::CurrentThread,
                1 => Flavor::MultiThread,
                tag => {
                    return Err(DecodeError::Tag {
                        what: "flavor",
                        tag,
                        at,
                    })
                }
            };
            let workers = r.var_u32()?;
            let clock_origin_unix_ns = r.var()?;
            Frame::Header(Header {
                process_name,
                pid,
                flavor,
                workers,
                clock_origin_unix_ns,
            })
        }
        FrameType::Events => unreachable!("decoded above"),
        FrameType::Note => Frame::Note(Note {
            title: r.string()?,
            text: r.string()?,
        }),
    };
    if r.remaining() != 0 {
        return Err(DecodeError::Trailing(r.remaining()));
    }
    Ok(frame)
}

fn decode_event(r: &mut Reader<'_>, run: &mut RunState) -> Result<Event, DecodeError> {
    let at = r.pos;
    let tag = r.u8()?;
    let delta = unzigzag(r.var()?);
    let ts_ns = run.prev_ns.wrapping_add(delta as u64);
    run.prev_ns = ts_ns;
    let thread = r.var_u32()?;
    let kind = match tag {
        1 => {
            let at = r.pos;
            let role = match r.u8()? {
                0 => ThreadRole::Worker(r.var_u32()?),
                1 => ThreadRole::Blocking,
                2 => ThreadRole::External,
                tag => {
                    return Err(DecodeError::Tag {
                        what: "thread role",
                        tag,
                        at,
                    })
                }
            };
            EventKind::Thread {
                role,
                name: r.string()?,
            }
        }
        2 => {
            let task = r.var()?;
            let at = r.pos;
            let kind = match r.u8()? {
                0 => TaskKind::Task,
                1 => TaskKind::Local,
                2 => TaskKind::Blocking,
                tag => {
                    return Err(DecodeError::Tag {
                        what: "task kind",
                        tag,
                        at,
                    })
                }
            };
            let name = r.opt_string()?;
            let location = r.string()?;
            let parent = r.opt()?;
            let size_bytes = r.opt()?;
            EventKind::Spawn(Box::new(Spawn {
                task,
                kind,
                name,
                location,
                parent,
                size_bytes,
            }))
        }
        3 => {
            let task = r.var()?;
            let at = r.pos;
            let outcome = match r.u8()? {
                0 => Outcome::Completed,
                1 => Outcome::Cancelled,
                2 => Outcome::Panicked,
                tag => {
                    return Err(DecodeError::Tag {
                        what: "outcome",
                        tag,
                        at,
                    })
                }
            };
            EventKind::Terminate { task, outcome }
        }
        4 => EventKind::PollStart { task: r.var()? },
        5 | 6 => EventKind::PollEnd {
            task: r.var()?,
            ready: tag == 6,
            clones: 0,
            drops: 0,
            context: None,
        },
        16 | 17 => EventKind::PollEnd {
            task: r.var()?,
            ready: tag == 17,
            clones: r.var_u32()?,
            drops: r.var_u32()?,
            context: None,
        },
        22 => {
            let task = r.var()?;
            let at = r.pos;
            let flags = r.u8()?;
            if flags > 7 {
                return Err(DecodeError::Tag {
                    what: "poll end flags",
                    tag: flags,
                    at,
                });
            }
            let (clones, drops) = if flags & 2 != 0 {
                (r.var_u32()?, r.var_u32()?)
            } else {
                (0, 0)
            };
            let label = run.label(r, flags & 4 != 0)?;
            EventKind::PollEnd {
                task,
                ready: flags & 1 != 0,
                clones,
                drops,
                context: Some(label),
            }
        }
        7 => {
            let task = r.var()?;
            let at = r.pos;
            let b = r.u8()?;
            let op = match b >> 4 {
                0 => WakeOp::Wake,
                1 => WakeOp::WakeByRef,
                2 => WakeOp::Clone,
                3 => WakeOp::Drop,
                _ => {
                    return Err(DecodeError::Tag {
                        what: "waker op",
                        tag: b,
                        at,
                    })
                }
            };
            let by = match b & 0xf {
                0 => WakeSource::Task(r.var()?),
                1 => WakeSource::Timer,
                2 => WakeSource::Io,
                3 => WakeSource::Blocking,
                4 => WakeSource::External,
                _ => {
                    return Err(DecodeError::Tag {
                        what: "wake source",
                        tag: b,
                        at,
                    })
                }
            };
            EventKind::Waker { task, op, by }
        }
        8 => EventKind::Park,
        9 => EventKind::Unpark,
        10 => EventKind::BlockingStart { task: r.var()? },
        11 => EventKind::BlockingEnd { task: r.var()? },
        12 => EventKind::TimerArmed {
            task: r.var()?,
            deadline_ns: r.var()?,
        },
        13 => EventKind::TimerFired { task: r.var()? },
        14 => EventKind::Dropped { count: r.var()? },
        15 => EventKind::Mark { label: r.string()? },
        19 | 21 => {
            let task = r.var()?;
            let label = run.label(r, tag == 21)?;
            EventKind::Context { task, label }
        }
        20 => {
            // Two bytes per worker at least: a count the frame cannot hold is
            // refused before anything is allocated for it.
            let at = r.pos;
            let n = r.var()?;
            if n > (r.remaining() / 2) as u64 {
                return Err(DecodeError::Range(at));
            }
            let (mut local, mut steals) = (Vec::new(), Vec::new());
            for _ in 0..n {
                local.push(r.var_u32()?);
                steals.push(r.var()?);
            }
            EventKind::Queues(Box::new(Queues {
                local,
                steals,
                injection: r.var_u32()?,
            }))
        }
        18 => {
            let task = r.var()?;
            let at = r.pos;
            let state = match r.u8()? {
                0 => TaskState::Running,
                1 => TaskState::Scheduled,
                2 => TaskState::Idle,
                3 => TaskState::Done,
                tag => {
                    return Err(DecodeError::Tag {
                        what: "task state",
                        tag,
                        at,
                    })
                }
            };
            EventKind::TaskState { task, state }
        }
        tag => {
            return Err(DecodeError::Tag {
                what: "event",
                tag,
                at,
            })
        }
    };
    Ok(Event {
        ts_ns,
        thread,
        kind,
    })
}

/// Reads the events of an events frame one at a time, without collecting them:
/// ingest applies each as it is read. It also says where each event starts, so a
/// store can keep runs of the encoded bytes as they came ([`EventsReader::run`]).
///
/// ```
/// use looptrace_wire::{encode_events, Event, EventKind, EventsReader};
/// let events: Vec<Event> = (0..3)
///     .map(|i| Event { ts_ns: 100 * i, thread: 0, kind: EventKind::PollStart { task: i } })
///     .collect();
/// let mut frame = Vec::new();
/// encode_events(&events, &mut frame);
/// let mut r = EventsReader::new(&frame)?;
/// assert_eq!(r.len(), 3);
/// let first = r.next().unwrap()?;
/// assert_eq!(first, events[0]);
/// // The rest, as a run that decodes on its own.
/// let (start, base) = (r.position(), r.prev_ns());
/// let rest: Vec<Event> = r.collect::<Result<_, _>>()?;
/// let again: Vec<Event> = EventsReader::run(&frame[start..], 2, base).collect::<Result<_, _>>()?;
/// assert_eq!(rest, again);
/// # Ok::<(), looptrace_wire::DecodeError>(())
/// ```
pub struct EventsReader<'a> {
    r: Reader<'a>,
    left: u64,
    run: RunState,
    /// Whether the bytes must end with the last event (a whole frame).
    whole: bool,
    failed: bool,
}

impl<'a> EventsReader<'a> {
    /// Starts reading a whole events frame.
    pub fn new(frame: &'a [u8]) -> Result<EventsReader<'a>, DecodeError> {
        let mut r = Reader { buf: frame, pos: 0 };
        match frame_start(&mut r)? {
            FrameType::Events => {}
            _ => return Err(DecodeError::FrameType(frame[1])),
        }
        let at = r.pos;
        let count = r.var()?;
        // Every event takes at least 3 bytes: a count the frame cannot hold is
        // corrupt (and must not size any allocation).
        if count > (r.remaining() / 3) as u64 || count > MAX_FRAME_EVENTS {
            return Err(DecodeError::Range(at));
        }
        Ok(EventsReader {
            r,
            left: count,
            run: RunState::default(),
            whole: true,
            failed: false,
        })
    }

    /// Reads `count` events encoded back to back in `bytes` (no frame header), the
    /// first one's timestamp a delta from `base_ns`: a run cut out of a frame at
    /// [`EventsReader::position`], with [`EventsReader::prev_ns`] as its base,
    /// where [`EventsReader::can_cut`] held.
    pub fn run(bytes: &'a [u8], count: u64, base_ns: u64) -> EventsReader<'a> {
        EventsReader {
            r: Reader { buf: bytes, pos: 0 },
            left: count,
            run: RunState::after(base_ns),
            whole: false,
            failed: false,
        }
    }

    /// Events not read yet.
    pub fn len(&self) -> u64 {
        self.left
    }

    /// Whether every event has been read.
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }

    /// Byte offset of the next event in the frame (or run).
    pub fn position(&self) -> usize {
        self.r.pos
    }

    /// The timestamp the next event's delta is taken from.
    pub fn prev_ns(&self) -> u64 {
        self.run.prev_ns
    }

    /// Whether the events from here on decode on their own, as a run (no label
    /// said before here that they could refer to).
    pub fn can_cut(&self) -> bool {
        self.run.can_cut()
    }

    /// Reads up to `max` more events onto the end of `out`; past the last event of
    /// a whole frame, checks that nothing trails it. After an error nothing more
    /// is read. What the iterator yields,
    /// for a consumer that keeps events in a buffer: each event goes straight
    /// into it rather than on through a `Some(Ok(..))` (two copies of an
    /// event, a quarter of the decoding's instructions).
    ///
    /// ```
    /// use looptrace_wire::{encode_events, Event, EventKind, EventsReader};
    /// let events = vec![Event { ts_ns: 5, thread: 1, kind: EventKind::PollStart { task: 3 } }; 3];
    /// let mut frame = Vec::new();
    /// encode_events(&events, &mut frame);
    /// let mut r = EventsReader::new(&frame).unwrap();
    /// let mut out = Vec::new();
    /// r.read_into(&mut out, 2).unwrap();
    /// assert_eq!(out.len(), 2);
    /// r.read_into(&mut out, 2).unwrap();
    /// assert_eq!((out, r.is_empty()), (events, true));
    /// ```
    pub fn read_into(&mut self, out: &mut Vec<Event>, max: usize) -> Result<(), DecodeError> {
        if self.failed {
            return Ok(());
        }
        let n = self.left.min(max as u64);
        out.reserve(n as usize);
        for _ in 0..n {
            match decode_event(&mut self.r, &mut self.run) {
                Ok(e) => out.push(e),
                Err(e) => {
                    // Nothing more is read: `is_empty` says so.
                    self.failed = true;
                    self.left = 0;
                    return Err(e);
                }
            }
            self.left -= 1;
        }
        if self.left == 0 && self.whole && self.r.remaining() != 0 {
            self.failed = true;
            return Err(DecodeError::Trailing(self.r.remaining()));
        }
        Ok(())
    }
}

impl Iterator for EventsReader<'_> {
    type Item = Result<Event, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.left == 0 {
            if self.whole && self.r.remaining() != 0 {
                self.failed = true;
                return Some(Err(DecodeError::Trailing(self.r.remaining())));
            }
            return None;
        }
        self.left -= 1;
        let e = decode_event(&mut self.r, &mut self.run);
        self.failed = e.is_err();
        Some(e)
    }
}

/// Encodes events into an events frame one at a time, as they are produced:
/// [`EventsWriter::finish`] writes the count in place. At most
/// [`MAX_FRAME_EVENTS`] events (see [`EventsWriter::is_full`]).
pub struct EventsWriter<'a> {
    out: &'a mut Vec<u8>,
    count_at: usize,
    count: u64,
    run: RunState,
}

impl<'a> EventsWriter<'a> {
    /// Starts an events frame at the end of `out`.
    pub fn new(out: &'a mut Vec<u8>) -> EventsWriter<'a> {
        out.push(WIRE_VERSION);
        out.push(FRAME_EVENTS);
        let count_at = out.len();
        // The count, as a three-byte varint patched in `finish`.
        out.extend_from_slice(&[0x80, 0x80, 0]);
        EventsWriter {
            out,
            count_at,
            count: 0,
            run: RunState::default(),
        }
    }

    /// Appends one event.
    pub fn push(&mut self, e: &Event) {
        debug_assert!(self.count < MAX_FRAME_EVENTS);
        encode_event(e, &mut self.run, self.out);
        self.count += 1;
    }

    /// Events written so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no event was written.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the frame so far (the whole buffer it writes into).
    pub fn bytes(&self) -> usize {
        self.out.len()
    }

    /// Whether the frame holds as many events as a frame may.
    pub fn is_full(&self) -> bool {
        self.count >= MAX_FRAME_EVENTS
    }

    /// Ends the frame; returns how many events it holds.
    pub fn finish(self) -> u64 {
        let c = self.count;
        let b = &mut self.out[self.count_at..self.count_at + 3];
        b[0] = (c & 0x7f) as u8 | 0x80;
        b[1] = ((c >> 7) & 0x7f) as u8 | 0x80;
        b[2] = ((c >> 14) & 0x7f) as u8;
        c
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_var(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_var(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

fn put_opt(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put_var(out, v);
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(DecodeError::Truncated(self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn var(&mut self) -> Result<u64, DecodeError> {
        // Most are one byte: an event's thread, a small count or task.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(b as u64);
            }
        }
        self.var_long()
    }

    fn var_long(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(DecodeError::Varint(start));
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Varint(start))
    }

    fn var_u32(&mut self) -> Result<u32, DecodeError> {
        let at = self.pos;
        u32::try_from(self.var()?).map_err(|_| DecodeError::Range(at))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let at = self.pos;
        let len = self.var()?;
        if len > self.remaining() as u64 {
            return Err(DecodeError::Truncated(self.buf.len()));
        }
        let bytes = &self.buf[self.pos..self.pos + len as usize];
        self.pos += len as usize;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Utf8(at))
    }

    fn opt_string(&mut self) -> Result<Option<String>, DecodeError> {
        let at = self.pos;
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.string()?)),
            tag => Err(DecodeError::Tag {
                what: "option",
                tag,
                at,
            }),
        }
    }

    fn opt(&mut self) -> Result<Option<u64>, DecodeError> {
        let at = self.pos;
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.var()?)),
            tag => Err(DecodeError::Tag {
                what: "option",
                tag,
                at,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_edges_round_trip() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX - 1, u64::MAX] {
            let mut out = Vec::new();
            put_var(&mut out, v);
            let mut r = Reader { buf: &out, pos: 0 };
            assert_eq!(r.var().unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
        for v in [0i64, 1, -1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let buf = [0xffu8; 11];
        let mut r = Reader { buf: &buf, pos: 0 };
        assert_eq!(r.var(), Err(DecodeError::Varint(0)));
    }

    #[test]
    fn poll_events_are_compact() {
        let events: Vec<Event> = (0..1000u64)
            .map(|i| Event {
                ts_ns: 1_000_000 + i * 700,
                thread: 1,
                kind: if i % 2 == 0 {
                    EventKind::PollStart { task: 42 }
                } else {
                    EventKind::PollEnd {
                        clones: 0,
                        drops: 0,
                        task: 42,
                        ready: false,
                        context: None,
                    }
                },
            })
            .collect();
        let mut out = Vec::new();
        encode_events(&events, &mut out);
        assert!(
            out.len() < 6 * events.len(),
            "{} bytes for {} events",
            out.len(),
            events.len()
        );
    }

    /// Every field at its widest, in each kind of event with such fields,
    /// comes back the same.
    #[test]
    fn events_with_their_widest_fields_round_trip() {
        let label: Arc<str> = "GET /items/{id}".into();
        let mut kinds = vec![
            EventKind::PollEnd {
                task: u64::MAX,
                ready: true,
                clones: u32::MAX,
                drops: u32::MAX,
                context: Some(label.clone()),
            },
            EventKind::Waker {
                task: u64::MAX,
                op: WakeOp::Drop,
                by: WakeSource::Task(u64::MAX),
            },
            EventKind::TimerArmed {
                task: u64::MAX,
                deadline_ns: u64::MAX,
            },
            EventKind::Spawn(Box::new(Spawn {
                task: u64::MAX,
                kind: TaskKind::Blocking,
                name: Some("n".into()),
                location: "src/main.rs:1".into(),
                parent: Some(u64::MAX),
                size_bytes: Some(u64::MAX),
            })),
            EventKind::Thread {
                role: ThreadRole::Worker(u32::MAX),
                name: "w".into(),
            },
            EventKind::TaskState {
                task: u64::MAX,
                state: TaskState::Done,
            },
            EventKind::Dropped { count: u64::MAX },
            EventKind::Mark { label: "m".into() },
        ];
        // The same label again goes by its index.
        kinds.push(kinds[0].clone());
        kinds.push(EventKind::Context {
            task: u64::MAX,
            label,
        });
        let events: Vec<Event> = kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| Event {
                // Deltas of both signs at their widest (zigzag of i64::MIN).
                ts_ns: if i % 2 == 0 { 1 << 63 } else { 0 },
                thread: u32::MAX,
                kind,
            })
            .collect();
        let mut out = Vec::new();
        encode_events(&events, &mut out);
        assert_eq!(decode_frame(&out), Ok(Frame::Events(events)));
    }

    #[test]
    fn wrong_version_and_type_are_reported() {
        assert_eq!(decode_frame(&[]), Err(DecodeError::Empty));
        assert_eq!(
            decode_frame(&[9, 2, 0]),
            Err(DecodeError::Version { found: 9 })
        );
        assert_eq!(
            decode_frame(&[WIRE_VERSION, 77]),
            Err(DecodeError::FrameType(77))
        );
        assert_eq!(
            decode_frame(&[WIRE_VERSION, FRAME_EVENTS, 0, 5]),
            Err(DecodeError::Trailing(1))
        );
        // A count far beyond what the frame holds is refused before allocating.
        assert!(matches!(
            decode_frame(&[WIRE_VERSION, FRAME_EVENTS, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(DecodeError::Range(_))
        ));
    }
}

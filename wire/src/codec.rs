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
use thiserror::Error;

/// Version of the frame layout. A decoder refuses frames of any other version.
pub const WIRE_VERSION: u8 = 1;

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

/// Encodes an events frame holding `events`.
pub fn encode_events(events: &[Event], out: &mut Vec<u8>) {
    out.push(WIRE_VERSION);
    out.push(FRAME_EVENTS);
    put_var(out, events.len() as u64);
    let mut prev = 0u64;
    for e in events {
        encode_event(e, &mut prev, out);
    }
}

fn encode_event(e: &Event, prev: &mut u64, out: &mut Vec<u8>) {
    let tag = match &e.kind {
        EventKind::Thread { .. } => 1,
        EventKind::Spawn { .. } => 2,
        EventKind::Terminate { .. } => 3,
        EventKind::PollStart { .. } => 4,
        EventKind::PollEnd { ready: false, .. } => 5,
        EventKind::PollEnd { ready: true, .. } => 6,
        EventKind::Waker { .. } => 7,
        EventKind::Park => 8,
        EventKind::Unpark => 9,
        EventKind::BlockingStart { .. } => 10,
        EventKind::BlockingEnd { .. } => 11,
        EventKind::TimerArmed { .. } => 12,
        EventKind::TimerFired { .. } => 13,
        EventKind::Dropped { .. } => 14,
        EventKind::Mark { .. } => 15,
    };
    out.push(tag);
    let delta = e.ts_ns.wrapping_sub(*prev) as i64;
    put_var(out, zigzag(delta));
    *prev = e.ts_ns;
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
        EventKind::Spawn {
            task,
            kind,
            name,
            location,
            parent,
            size_bytes,
        } => {
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
        EventKind::PollStart { task }
        | EventKind::PollEnd { task, .. }
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
    }
}

/// Decodes one whole frame; `buf` must hold exactly one frame.
pub fn decode_frame(buf: &[u8]) -> Result<Frame, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let version = r.u8().map_err(|_| DecodeError::Empty)?;
    if version != WIRE_VERSION {
        return Err(DecodeError::Version { found: version });
    }
    let frame = match r.u8()? {
        FRAME_HEADER => {
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
        FRAME_EVENTS => {
            let count = r.var()?;
            // Every event takes at least 3 bytes: refuse counts the frame cannot hold
            // before allocating for them.
            if count > (r.remaining() / 3) as u64 {
                return Err(DecodeError::Range(r.pos));
            }
            let mut events = Vec::with_capacity(count as usize);
            let mut prev = 0u64;
            for _ in 0..count {
                events.push(decode_event(&mut r, &mut prev)?);
            }
            Frame::Events(events)
        }
        FRAME_NOTE => Frame::Note(Note {
            title: r.string()?,
            text: r.string()?,
        }),
        t => return Err(DecodeError::FrameType(t)),
    };
    if r.remaining() != 0 {
        return Err(DecodeError::Trailing(r.remaining()));
    }
    Ok(frame)
}

fn decode_event(r: &mut Reader<'_>, prev: &mut u64) -> Result<Event, DecodeError> {
    let at = r.pos;
    let tag = r.u8()?;
    let delta = unzigzag(r.var()?);
    let ts_ns = prev.wrapping_add(delta as u64);
    *prev = ts_ns;
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
            EventKind::Spawn {
                task,
                kind,
                name,
                location,
                parent,
                size_bytes,
            }
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
        5 => EventKind::PollEnd {
            task: r.var()?,
            ready: false,
        },
        6 => EventKind::PollEnd {
            task: r.var()?,
            ready: true,
        },
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

    fn var(&mut self) -> Result<u64, DecodeError> {
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
                        task: 42,
                        ready: false,
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

//! The recording file: what a session looked like, replayable and exportable.
//!
//! Layout (file version 2): the 8-byte magic `LOOPTRAC`, a little-endian `u16`
//! file version and two reserved bytes; then chunks, each the 4-byte sync marker
//! `0xE2 'L' 'T' 'c'`, the payload length as a `u32` and again bit-inverted (so a
//! damaged length shows), a `u32` CRC-32 of the payload (all little-endian), then
//! the payload, one codec [`Frame`]. The first chunk holds the [`Header`]. Each chunk is written with one
//! `write` call, so a writer killed mid-run leaves a file that reads back up to its
//! last complete chunk.
//!
//! A damaged chunk (a flipped byte, a bad length) is skipped: the reader looks for
//! the next sync marker that starts a chunk whose checksum holds, carries on from
//! there, and reports each skipped stretch ([`Damage`]). A file that ends part way
//! through a chunk is a torn tail (the writer was stopped), not corruption. Files of
//! version 1 (no markers, a CRC of the payload only) are still read, up to their
//! first damage.

use crate::codec::{
    decode_frame, encode_events, encode_header, encode_note, frame_type, DecodeError, Frame,
    FrameType,
};
use crate::event::{Event, Header, Note};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use thiserror::Error;

const MAGIC: &[u8; 8] = b"LOOPTRAC";
/// Version of the file layout (chunk framing) this build writes. Frames carry
/// their own version.
pub const FILE_VERSION: u16 = 2;
/// Starts every chunk of a version 2 file.
const SYNC: [u8; 4] = [0xE2, b'L', b'T', b'c'];
/// Chunks larger than this are taken for corruption rather than allocated.
pub const MAX_CHUNK: u32 = 64 << 20;

/// Why a recording could not be read at all.
#[derive(Debug, Error)]
pub enum RecordingError {
    // The I/O error is said here, not also given as a source: a chain of
    // causes would say it twice.
    #[error("cannot read recording: {0}")]
    Io(io::Error),
    #[error("not a looptrace recording (bad magic)")]
    Magic,
    #[error("recording file version {0} is not supported (this build reads versions 1 and {FILE_VERSION})")]
    Version(u16),
    #[error("recording has no header chunk")]
    NoHeader,
    #[error("cannot add to a damaged recording ({0})")]
    Damaged(Damage),
}

impl From<io::Error> for RecordingError {
    fn from(e: io::Error) -> RecordingError {
        RecordingError::Io(e)
    }
}

/// A stretch of a recording that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind} at byte {offset} ({skipped} bytes skipped)")]
pub struct Damage {
    /// File offset where it starts.
    pub offset: u64,
    /// Bytes skipped (to the next good chunk, or to the end).
    pub skipped: u64,
    pub kind: DamageKind,
}

/// What was wrong there.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DamageKind {
    /// The file ends part way through a chunk: the writer was stopped while
    /// writing (a process killed, a disk full). Nothing follows it.
    #[error("the file ends mid-chunk (the writer was stopped while writing)")]
    TornTail,
    /// The bytes there are not a chunk: a bad marker, an impossible length, a
    /// checksum that does not match.
    #[error("corrupt chunk: {0}")]
    Corrupt(String),
    /// A chunk whose checksum holds but whose frame does not decode.
    #[error("chunk does not decode: {0}")]
    Decode(DecodeError),
}

impl Damage {
    /// Whether the writer merely stopped part way (the one damage a file being
    /// written, or whose writer was killed, is expected to have).
    pub fn is_torn_tail(&self) -> bool {
        self.kind == DamageKind::TornTail
    }
}

/// Writes a recording chunk by chunk.
pub struct RecordingWriter<W: Write> {
    out: W,
    scratch: Vec<u8>,
    /// The layout written (an older file's, when appending to one).
    version: u16,
}

impl RecordingWriter<File> {
    /// Creates (or truncates) `path` and writes the file header and `header`.
    pub fn create(path: impl AsRef<Path>, header: &Header) -> io::Result<Self> {
        RecordingWriter::new(File::create(path)?, header)
    }
}

impl<W: Write> RecordingWriter<W> {
    /// Starts a recording on `out`. Unbuffered writers are best: every chunk is one
    /// `write_all`, so what reached the OS is always whole chunks but the last.
    pub fn new(out: W, header: &Header) -> io::Result<Self> {
        let mut frame = Vec::new();
        encode_header(header, &mut frame);
        Self::new_raw(out, &frame)
    }

    /// Starts a recording whose header is the already encoded `header_frame`.
    pub fn new_raw(mut out: W, header_frame: &[u8]) -> io::Result<Self> {
        let mut start = Vec::with_capacity(12);
        start.extend_from_slice(MAGIC);
        start.extend_from_slice(&FILE_VERSION.to_le_bytes());
        start.extend_from_slice(&[0, 0]);
        out.write_all(&start)?;
        let mut w = RecordingWriter {
            out,
            scratch: Vec::new(),
            version: FILE_VERSION,
        };
        w.write_frame(header_frame)?;
        Ok(w)
    }

    /// Appends one encoded frame as a chunk.
    pub fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        self.scratch.clear();
        if self.version == 1 {
            self.scratch
                .extend_from_slice(&(frame.len() as u32).to_le_bytes());
            self.scratch
                .extend_from_slice(&crc32fast::hash(frame).to_le_bytes());
            self.scratch.extend_from_slice(frame);
        } else {
            chunk(frame, &mut self.scratch);
        }
        self.out.write_all(&self.scratch)?;
        self.out.flush()
    }

    /// Appends `events` as one chunk.
    pub fn write_events(&mut self, events: &[Event]) -> io::Result<()> {
        let mut frame = Vec::with_capacity(events.len() * 6 + 8);
        encode_events(events, &mut frame);
        self.write_frame(&frame)
    }

    /// Appends a note as one chunk.
    pub fn write_note(&mut self, note: &Note) -> io::Result<()> {
        let mut frame = Vec::new();
        encode_note(note, &mut frame);
        self.write_frame(&frame)
    }

    /// The underlying writer, by reference.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Bytes before a chunk's payload, by file version.
fn chunk_head(version: u16) -> usize {
    if version == 1 {
        8
    } else {
        16
    }
}

/// One chunk of a version 2 file, for `frame`.
fn chunk(frame: &[u8], out: &mut Vec<u8>) {
    let len = frame.len() as u32;
    out.extend_from_slice(&SYNC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(frame).to_le_bytes());
    out.extend_from_slice(frame);
}

/// A window on the input: what has been read and not yet consumed.
struct Input<R> {
    input: R,
    buf: Vec<u8>,
    pos: usize,
    /// File offset of `buf[pos]`.
    offset: u64,
    eof: bool,
}

impl<R: Read> Input<R> {
    /// Makes at least `n` bytes available from `pos`; false at the end of input.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        while self.buf.len() - self.pos < n && !self.eof {
            if self.pos > 0 && self.pos * 2 > self.buf.len() {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            let want = (n - (self.buf.len() - self.pos)).max(64 << 10);
            let at = self.buf.len();
            self.buf.resize(at + want, 0);
            let got = loop {
                match self.input.read(&mut self.buf[at..]) {
                    Ok(k) => break k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.buf.truncate(at);
                        return Err(e);
                    }
                }
            };
            self.buf.truncate(at + got);
            self.eof = got == 0;
        }
        Ok(self.buf.len() - self.pos >= n)
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn advance(&mut self, n: usize) {
        self.pos += n;
        self.offset += n as u64;
    }
}

/// What is at the input's position.
enum At {
    /// A chunk whose checksum holds: its payload's length.
    Chunk(usize),
    /// Not a chunk, for this reason.
    Bad(String),
    /// A chunk that would end past the end of the file.
    PastEnd,
}

/// Reads a recording's frames one chunk at a time, skipping damaged stretches
/// (see the module's notes) and keeping account of them.
pub struct RecordingReader<R: Read> {
    input: Input<R>,
    done: bool,
    /// Stretches skipped so far.
    pub damage: Vec<Damage>,
    /// The file layout's version.
    pub version: u16,
}

impl<R: Read> RecordingReader<R> {
    /// Checks the file header; frames then come from the iterator.
    pub fn new(input: R) -> Result<Self, RecordingError> {
        let mut input = Input {
            input,
            buf: Vec::new(),
            pos: 0,
            offset: 0,
            eof: false,
        };
        if !input.fill(12)? || &input.available()[..8] != MAGIC {
            return Err(RecordingError::Magic);
        }
        let a = input.available();
        let version = u16::from_le_bytes([a[8], a[9]]);
        if version != 1 && version != FILE_VERSION {
            return Err(RecordingError::Version(version));
        }
        input.advance(12);
        Ok(RecordingReader {
            input,
            version,
            done: false,
            damage: Vec::new(),
        })
    }

    /// Looks at the chunk at the input's position.
    fn look(&mut self) -> io::Result<At> {
        let head = chunk_head(self.version);
        if !self.input.fill(head)? {
            return Ok(At::PastEnd);
        }
        let a = self.input.available();
        let word = |at: usize| u32::from_le_bytes([a[at], a[at + 1], a[at + 2], a[at + 3]]);
        let (len, crc) = if self.version == 1 {
            (word(0), word(4))
        } else {
            if a[..4] != SYNC {
                return Ok(At::Bad("no chunk marker".into()));
            }
            if word(4) != !word(8) {
                return Ok(At::Bad("the chunk's length is damaged".into()));
            }
            (word(4), word(12))
        };
        if len > MAX_CHUNK {
            return Ok(At::Bad(format!("chunk length {len} is implausible")));
        }
        if !self.input.fill(head + len as usize)? {
            return Ok(At::PastEnd);
        }
        let payload = &self.input.available()[head..head + len as usize];
        Ok(if crc32fast::hash(payload) == crc {
            At::Chunk(len as usize)
        } else {
            At::Bad("checksum mismatch".into())
        })
    }

    /// Skips from a damaged chunk to the next good one (version 2), or to the end;
    /// records the stretch.
    fn resync(&mut self, reason: DamageKind) -> io::Result<()> {
        let offset = self.input.offset;
        if self.version == 1 {
            // No markers to find the next chunk by: the rest is lost.
            let mut skipped = 0u64;
            while self.input.fill(1)? {
                let n = self.input.available().len();
                skipped += n as u64;
                self.input.advance(n);
            }
            self.damage.push(Damage {
                offset,
                skipped,
                kind: reason,
            });
            self.done = true;
            return Ok(());
        }
        self.input.advance(1);
        loop {
            if !self.input.fill(4)? {
                // Nothing good after it.
                let rest = self.input.available().len();
                self.input.advance(rest);
                break;
            }
            if self.input.available()[..4] == SYNC && matches!(self.look()?, At::Chunk(_)) {
                break;
            }
            self.input.advance(1);
        }
        self.damage.push(Damage {
            offset,
            skipped: self.input.offset - offset,
            kind: reason,
        });
        Ok(())
    }

    /// The next chunk's frame, checked against its CRC but not decoded (the
    /// collector decodes as it ingests), with the file offset it starts at.
    pub fn next_raw(&mut self) -> Result<Option<(u64, Vec<u8>)>, RecordingError> {
        let head = chunk_head(self.version);
        while !self.done {
            let at = self.input.offset;
            match self.look()? {
                At::Chunk(len) => {
                    let payload = self.input.available()[head..head + len].to_vec();
                    self.input.advance(head + len);
                    return Ok(Some((at, payload)));
                }
                At::PastEnd => {
                    let rest = self.input.available().len();
                    if rest == 0 {
                        self.done = true;
                        return Ok(None);
                    }
                    // A torn tail, unless a good chunk follows (then the length
                    // was corrupt).
                    let before = self.damage.len();
                    self.resync(DamageKind::TornTail)?;
                    if self.input.fill(1)? {
                        if let Some(d) = self.damage.get_mut(before) {
                            d.kind =
                                DamageKind::Corrupt("chunk length runs past the next chunk".into());
                        }
                    } else {
                        self.done = true;
                    }
                }
                At::Bad(reason) => self.resync(DamageKind::Corrupt(reason))?,
            }
        }
        Ok(None)
    }

    fn next_chunk(&mut self) -> Result<Option<Frame>, RecordingError> {
        loop {
            let Some((at, payload)) = self.next_raw()? else {
                return Ok(None);
            };
            match decode_frame(&payload) {
                Ok(f) => return Ok(Some(f)),
                Err(e) => self.damage.push(Damage {
                    offset: at,
                    skipped: (payload.len() + chunk_head(self.version)) as u64,
                    kind: DamageKind::Decode(e),
                }),
            }
        }
    }
}

impl<R: Read> Iterator for RecordingReader<R> {
    type Item = Result<Frame, RecordingError>;

    /// Yields frames until the end, skipping damage (see
    /// [`RecordingReader::damage`]); an I/O error ends it.
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_chunk() {
            Ok(Some(frame)) => Some(Ok(frame)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Adds `note` at the end of the finished recording at `path` (a demo's "what
/// happened", known only once its runtime has stopped). A damaged recording is
/// left alone.
pub fn append_note(path: impl AsRef<Path>, note: &Note) -> Result<(), RecordingError> {
    let path = path.as_ref();
    let rec = Recording::open(path)?;
    if let Some(damage) = rec.damage.into_iter().next() {
        return Err(RecordingError::Damaged(damage));
    }
    let file = OpenOptions::new().append(true).open(path)?;
    let mut w = RecordingWriter {
        out: file,
        scratch: Vec::new(),
        version: rec.version,
    };
    w.write_note(note)?;
    Ok(())
}

/// A whole recording in memory.
#[derive(Debug)]
pub struct Recording {
    pub header: Header,
    pub events: Vec<Event>,
    /// The notes the program put beside its session, in order.
    pub notes: Vec<Note>,
    /// What could not be read (skipped), in file order; everything else is here.
    pub damage: Vec<Damage>,
    /// The file layout's version.
    pub version: u16,
}

impl Recording {
    /// Reads `path`. Fails only if not even the header is readable; damage is
    /// skipped and reported in [`Recording::damage`].
    pub fn open(path: impl AsRef<Path>) -> Result<Recording, RecordingError> {
        Recording::from_reader(BufReader::new(File::open(path)?))
    }

    /// Like [`Recording::open`], from any reader.
    pub fn from_reader(input: impl Read) -> Result<Recording, RecordingError> {
        let mut frames = RecordingReader::new(input)?;
        let header = match frames.next() {
            Some(Ok(Frame::Header(h))) => h,
            Some(Ok(Frame::Events(_) | Frame::Note(_))) | None => {
                return Err(RecordingError::NoHeader)
            }
            Some(Err(e)) => return Err(e),
        };
        let mut events = Vec::new();
        let mut notes = Vec::new();
        for frame in frames.by_ref() {
            match frame? {
                Frame::Events(mut batch) => events.append(&mut batch),
                Frame::Note(n) => notes.push(n),
                // A process may restate its header (after a reconnect); keep the first.
                Frame::Header(_) => {}
            }
        }
        Ok(Recording {
            header,
            events,
            notes,
            damage: frames.damage,
            version: frames.version,
        })
    }
}

/// A recording's frames as they are in the file, checked against their CRCs but
/// not decoded: what replays a large recording without holding it decoded.
#[derive(Debug)]
pub struct RawRecording {
    pub header: Header,
    /// The header frame, encoded.
    pub header_frame: Vec<u8>,
    /// The events frames, in order.
    pub frames: Vec<Vec<u8>>,
    pub notes: Vec<Note>,
    /// What could not be read (skipped), in file order.
    pub damage: Vec<Damage>,
}

impl RawRecording {
    /// Reads `path`, like [`Recording::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<RawRecording, RecordingError> {
        let mut r = RecordingReader::new(BufReader::new(File::open(path)?))?;
        let (_, header_frame) = r.next_raw()?.ok_or(RecordingError::NoHeader)?;
        let header = match decode_frame(&header_frame) {
            Ok(Frame::Header(h)) => h,
            _ => return Err(RecordingError::NoHeader),
        };
        let mut rec = RawRecording {
            header,
            header_frame,
            frames: Vec::new(),
            notes: Vec::new(),
            damage: Vec::new(),
        };
        while let Some((at, frame)) = r.next_raw()? {
            let bad = |e| Damage {
                offset: at,
                skipped: (frame.len() + chunk_head(r.version)) as u64,
                kind: DamageKind::Decode(e),
            };
            match frame_type(&frame) {
                Ok(FrameType::Events) => rec.frames.push(frame),
                Ok(FrameType::Note) => match decode_frame(&frame) {
                    Ok(Frame::Note(n)) => rec.notes.push(n),
                    Ok(_) => {}
                    Err(e) => r.damage.push(bad(e)),
                },
                // A restated header (after a reconnect); keep the first.
                Ok(FrameType::Header) => {}
                Err(e) => r.damage.push(bad(e)),
            }
        }
        rec.damage = r.damage;
        Ok(rec)
    }
}

//! The recording file: what a session looked like, replayable and exportable.
//!
//! Layout: the 8-byte magic `LOOPTRAC`, a little-endian `u16` file version and two
//! reserved bytes; then chunks, each `u32` payload length, `u32` CRC-32 of the
//! payload (both little-endian) and the payload, one codec [`Frame`]. The first
//! chunk holds the [`Header`]. Each chunk is written with one `write` call, so a
//! writer killed mid-run leaves a file that reads back up to its last complete
//! chunk; the reader reports where and why it stopped.

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
/// Version of the file layout (chunk framing). Frames carry their own version.
pub const FILE_VERSION: u16 = 1;
/// Chunks larger than this are taken for corruption rather than allocated.
pub const MAX_CHUNK: u32 = 64 << 20;

/// Why a recording could not be read (entirely).
#[derive(Debug, Error)]
pub enum RecordingError {
    #[error("cannot read recording: {0}")]
    Io(#[from] io::Error),
    #[error("not a looptrace recording (bad magic)")]
    Magic,
    #[error(
        "recording file version {0} is not supported (this build reads version {FILE_VERSION})"
    )]
    Version(u16),
    #[error("recording has no header chunk")]
    NoHeader,
    #[error("recording ends mid-chunk at byte {offset} (the writer was stopped while writing)")]
    Truncated { offset: u64 },
    #[error("chunk at byte {offset} is corrupt: {reason}")]
    Corrupt { offset: u64, reason: String },
    #[error("chunk at byte {offset} does not decode: {source}")]
    Decode { offset: u64, source: DecodeError },
    #[error("cannot add to a damaged recording ({0})")]
    Damaged(Box<RecordingError>),
}

/// Writes a recording chunk by chunk.
pub struct RecordingWriter<W: Write> {
    out: W,
    scratch: Vec<u8>,
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
        };
        w.write_frame(header_frame)?;
        Ok(w)
    }

    /// Appends one encoded frame as a chunk.
    pub fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        self.scratch.clear();
        self.scratch
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.scratch
            .extend_from_slice(&crc32fast::hash(frame).to_le_bytes());
        self.scratch.extend_from_slice(frame);
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

/// Reads a recording's frames one chunk at a time.
pub struct RecordingReader<R: Read> {
    input: R,
    offset: u64,
    done: bool,
}

impl<R: Read> RecordingReader<R> {
    /// Checks the file header; frames then come from the iterator.
    pub fn new(mut input: R) -> Result<Self, RecordingError> {
        let mut start = [0u8; 12];
        if read_full(&mut input, &mut start)? < start.len() || &start[..8] != MAGIC {
            return Err(RecordingError::Magic);
        }
        let version = u16::from_le_bytes([start[8], start[9]]);
        if version != FILE_VERSION {
            return Err(RecordingError::Version(version));
        }
        Ok(RecordingReader {
            input,
            offset: 12,
            done: false,
        })
    }

    /// The next chunk's frame, checked against its CRC but not decoded (the
    /// collector decodes as it ingests), with the file offset it starts at.
    pub fn next_raw(&mut self) -> Result<Option<(u64, Vec<u8>)>, RecordingError> {
        if self.done {
            return Ok(None);
        }
        let r = self.read_payload();
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r
    }

    fn next_chunk(&mut self) -> Result<Option<Frame>, RecordingError> {
        let Some((at, payload)) = self.read_payload()? else {
            return Ok(None);
        };
        decode_frame(&payload)
            .map(Some)
            .map_err(|source| RecordingError::Decode { offset: at, source })
    }

    fn read_payload(&mut self) -> Result<Option<(u64, Vec<u8>)>, RecordingError> {
        let at = self.offset;
        let mut head = [0u8; 8];
        match read_full(&mut self.input, &mut head)? {
            0 => return Ok(None),
            8 => {}
            _ => return Err(RecordingError::Truncated { offset: at }),
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_CHUNK {
            return Err(RecordingError::Corrupt {
                offset: at,
                reason: format!("chunk length {len} is implausible"),
            });
        }
        let mut payload = vec![0u8; len as usize];
        if read_full(&mut self.input, &mut payload)? < payload.len() {
            return Err(RecordingError::Truncated { offset: at });
        }
        if crc32fast::hash(&payload) != crc {
            return Err(RecordingError::Corrupt {
                offset: at,
                reason: "checksum mismatch".into(),
            });
        }
        self.offset += 8 + len as u64;
        Ok(Some((at, payload)))
    }
}

impl<R: Read> Iterator for RecordingReader<R> {
    type Item = Result<Frame, RecordingError>;

    /// Yields frames until the end, or one error and then nothing.
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_chunk() {
            Ok(Some(frame)) => Some(Ok(frame)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Adds `note` at the end of the finished recording at `path` (a demo's "what
/// happened", known only once its runtime has stopped). A recording whose tail is
/// damaged is left alone: a chunk after the damage could not be read back.
pub fn append_note(path: impl AsRef<Path>, note: &Note) -> Result<(), RecordingError> {
    let path = path.as_ref();
    if let Some(damage) = Recording::open(path)?.damage {
        return Err(RecordingError::Damaged(Box::new(damage)));
    }
    let file = OpenOptions::new().append(true).open(path)?;
    let mut w = RecordingWriter {
        out: file,
        scratch: Vec::new(),
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
    /// Set when the file did not end cleanly: everything before it is in `events`.
    pub damage: Option<RecordingError>,
}

impl Recording {
    /// Reads `path`. Fails only if not even the header is readable; a torn or
    /// corrupt tail is reported in [`Recording::damage`].
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
        let mut damage = None;
        for frame in frames {
            match frame {
                Ok(Frame::Events(mut batch)) => events.append(&mut batch),
                Ok(Frame::Note(n)) => notes.push(n),
                // A process may restate its header (after a reconnect); keep the first.
                Ok(Frame::Header(_)) => {}
                Err(e) => damage = Some(e),
            }
        }
        Ok(Recording {
            header,
            events,
            notes,
            damage,
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
    /// Set when the file did not end cleanly: every frame before it is in `frames`.
    pub damage: Option<RecordingError>,
}

impl RawRecording {
    /// Reads `path`, like [`Recording::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<RawRecording, RecordingError> {
        let mut r = RecordingReader::new(BufReader::new(File::open(path)?))?;
        let (at, header_frame) = r.next_raw()?.ok_or(RecordingError::NoHeader)?;
        let header = match decode_frame(&header_frame) {
            Ok(Frame::Header(h)) => h,
            Ok(_) => return Err(RecordingError::NoHeader),
            Err(source) => return Err(RecordingError::Decode { offset: at, source }),
        };
        let mut rec = RawRecording {
            header,
            header_frame,
            frames: Vec::new(),
            notes: Vec::new(),
            damage: None,
        };
        loop {
            match r.next_raw() {
                Ok(Some((at, frame))) => match frame_type(&frame) {
                    Ok(FrameType::Events) => rec.frames.push(frame),
                    Ok(FrameType::Note) => match decode_frame(&frame) {
                        Ok(Frame::Note(n)) => rec.notes.push(n),
                        Ok(_) => {}
                        Err(source) => {
                            rec.damage = Some(RecordingError::Decode { offset: at, source });
                            break;
                        }
                    },
                    // A restated header (after a reconnect); keep the first.
                    Ok(FrameType::Header) => {}
                    Err(source) => {
                        rec.damage = Some(RecordingError::Decode { offset: at, source });
                        break;
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    rec.damage = Some(e);
                    break;
                }
            }
        }
        Ok(rec)
    }
}

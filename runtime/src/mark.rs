//! What the program says about itself: labelled moments ([`mark`]) and a note to
//! show beside its session ([`note`]).

use crate::buffer::{self, Raw};

/// Marks this moment in the trace with `label`: the start of a phase, a request
/// burst, "part 2: the fix". Viewers draw it across the timeline; exports carry it
/// (a global instant in Chrome/Perfetto, a `mark` line in JSONL).
///
/// Cheap enough for rare events (it allocates the label), from any thread; while
/// nothing is being captured it does nothing.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let path = std::env::temp_dir().join("looptrace-mark-example.ltrace");
/// let rt = looptrace::Builder::new_current_thread().record(&path).build()?;
/// rt.block_on(async {
///     looptrace::mark("warm-up");
///     tokio::time::sleep(std::time::Duration::from_millis(5)).await;
///     looptrace::mark("measured run");
/// });
/// rt.shutdown();
/// let rec = looptrace::wire::Recording::open(&path)?;
/// let marks = rec.events.iter().filter(|e| matches!(e.kind, looptrace::wire::EventKind::Mark { .. })).count();
/// assert_eq!(marks, 2);
/// # Ok(()) }
/// ```
pub fn mark(label: impl Into<String>) {
    if buffer::active() != 0 {
        buffer::record(Raw::Mark(label.into().into_boxed_str()));
    }
}

/// Puts a note beside this session: a title and a text (paragraphs, one per line)
/// that viewers show in a panel and recordings keep; a later note replaces it in
/// view (`looptrace replay` shows a recording's first note, then its last at the
/// end). The demos use it for "what to watch for" and "what happened".
///
/// Like [`mark`], it does nothing while nothing is being captured.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let path = std::env::temp_dir().join("looptrace-note-example.ltrace");
/// let rt = looptrace::Builder::new_current_thread().record(&path).build()?;
/// rt.block_on(async {
///     looptrace::note("load test", "200 clients for 10 s.\nWatch the accept loop.");
/// });
/// rt.shutdown();
/// let rec = looptrace::wire::Recording::open(&path)?;
/// assert_eq!(rec.notes[0].title, "load test");
/// # Ok(()) }
/// ```
pub fn note(title: impl Into<String>, text: impl Into<String>) {
    if buffer::active() != 0 {
        buffer::record(Raw::Note(Box::new(looptrace_wire::Note {
            title: title.into(),
            text: text.into(),
        })));
    }
}

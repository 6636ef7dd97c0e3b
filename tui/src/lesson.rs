//! A text the program driving the UI wants read: a demo's "what to watch for",
//! later "what happened". It is shared with that program, which may replace it at
//! any time; each new text opens the lesson panel again.

use looptrace_api::Note;
use parking_lot::Mutex;

/// A shared, replaceable text for the lesson panel.
#[derive(Debug, Default)]
pub struct Lesson {
    /// A version bumped by each [`Lesson::set`], and the text.
    note: Mutex<(u64, Note)>,
}

impl Lesson {
    /// A lesson titled `title` saying `text`.
    pub fn new(title: impl Into<String>, text: impl Into<String>) -> Lesson {
        Lesson {
            note: Mutex::new((
                1,
                Note {
                    title: title.into(),
                    text: text.into(),
                },
            )),
        }
    }

    /// Replaces the title and text; the panel opens again to show them.
    pub fn set(&self, title: impl Into<String>, text: impl Into<String>) {
        let mut n = self.note.lock();
        n.0 += 1;
        n.1 = Note {
            title: title.into(),
            text: text.into(),
        };
    }

    /// The version (bumped by each [`Lesson::set`]) and the text.
    pub fn read(&self) -> (u64, Note) {
        self.note.lock().clone()
    }
}

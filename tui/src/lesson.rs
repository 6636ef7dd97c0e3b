//! A text the program driving the UI wants read: a demo's "what to watch for",
//! later "what happened". It is shared with that program, which may replace it at
//! any time; each new text opens the lesson panel again.

use std::sync::Mutex;

/// A shared, replaceable text for the lesson panel.
#[derive(Debug, Default)]
pub struct Lesson {
    text: Mutex<(u64, String, String)>,
}

impl Lesson {
    /// A lesson titled `title` saying `text`.
    pub fn new(title: impl Into<String>, text: impl Into<String>) -> Lesson {
        Lesson { text: Mutex::new((1, title.into(), text.into())) }
    }

    /// Replaces the title and text; the panel opens again to show them.
    pub fn set(&self, title: impl Into<String>, text: impl Into<String>) {
        let mut t = self.text.lock().unwrap_or_else(|p| p.into_inner());
        t.0 += 1;
        t.1 = title.into();
        t.2 = text.into();
    }

    /// The version (bumped by each [`Lesson::set`]), title and text.
    pub fn read(&self) -> (u64, String, String) {
        self.text.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

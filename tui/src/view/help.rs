//! The help overlay: every key.

use crate::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

pub const KEYS: &[(&str, &str)] = &[
    (
        "Tab / Shift-Tab, 1-5",
        "switch view: tasks, timeline, task, warnings, workers",
    ),
    ("↑ ↓ / j k, PgUp PgDn, g G", "move the selection"),
    (
        "Enter",
        "task: show details · warning: jump to it in the timeline",
    ),
    (
        "Esc",
        "back from the task view; clear the filter while typing",
    ),
    ("/", "filter tasks by name (Enter keeps it, Esc clears it)"),
    ("s / S, r", "sort by the next / previous column, reverse"),
    ("+ / -", "timeline: zoom in / out (ctrl + mouse wheel too)"),
    ("← → / h l", "timeline: pan (stops following)"),
    (
        "f, 0",
        "timeline: follow live on/off, fit the whole session",
    ),
    ("p or space, [ ]", "replay: pause / play, slower / faster"),
    ("n / N", "next / previous session"),
    ("mouse wheel", "scroll"),
    ("i", "the demo's lesson: what to watch for, what happened"),
    ("?", "this help (any key closes it)"),
    ("q, Ctrl-C", "quit"),
];

/// Width of the key column.
const KEY_COLUMN: usize = 27;

/// The help's lines for a box `width` wide (inside its borders): each key, its
/// meaning wrapped beside it.
pub fn lines(width: usize) -> Vec<String> {
    let text = width.saturating_sub(KEY_COLUMN + 1).max(12);
    let mut out = Vec::new();
    for (k, what) in KEYS {
        for (i, part) in super::wrap(what, text).into_iter().enumerate() {
            let key = if i == 0 { *k } else { "" };
            out.push(format!(" {key:<w$}{part}", w = KEY_COLUMN));
        }
    }
    out
}

/// Sized to its text: as wide as its longest line (within the screen), as tall
/// as its lines once wrapped; over the whole screen if it needs it.
pub fn render(theme: &Theme, frame: &mut Frame, area: Rect) {
    let widest = lines(usize::MAX / 2)
        .iter()
        .map(|l| l.trim_end().chars().count())
        .max()
        .unwrap_or(0);
    let w = (widest as u16 + 3).min(area.width);
    let text = lines(w.saturating_sub(2) as usize);
    let h = (text.len() as u16 + 2).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(text.into_iter().map(Line::from).collect::<Vec<_>>()).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" keys ")
                .title_style(theme.title()),
        ),
        r,
    );
}

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

pub fn render(theme: &Theme, frame: &mut Frame, area: Rect) {
    let w = area.width.min(80);
    let h = (KEYS.len() as u16 + 2).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, what)| Line::from(format!(" {k:<26} {what}")))
        .collect();
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" keys ")
                .title_style(theme.title()),
        ),
        r,
    );
}

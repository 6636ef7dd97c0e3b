//! The lesson panel: a demo's text, wrapped, over the current view.

use crate::theme::Theme;
use looptrace_api::Note;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Padding, Paragraph, Wrap};
use ratatui::Frame;

pub fn render(theme: &Theme, frame: &mut Frame, area: Rect, note: &Note) {
    let w = area.width.min(84);
    // Each paragraph with a blank line after it, then the closing hint.
    let mut lines: Vec<Line> = Vec::new();
    for p in note.text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        lines.push(Line::from(p.to_string()));
        lines.push(Line::from(""));
    }
    lines.push(Line::styled(
        "Esc closes this · i opens it again · other keys close it and act",
        theme.muted(),
    ));
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" {} ", note.title))
        .title_style(theme.title())
        .padding(Padding::horizontal(1));
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: true }).block(block);
    // Sized to the text as the paragraph wraps it (inside the borders and padding).
    let h = (paragraph.line_count(w.saturating_sub(4).max(1)) as u16).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, r);
    frame.render_widget(paragraph, r);
}

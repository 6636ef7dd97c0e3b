//! The lesson panel: a demo's text, wrapped, over the current view.

use crate::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

pub fn render(theme: &Theme, frame: &mut Frame, area: Rect, title: &str, text: &str) {
    let w = area.width.min(84);
    let inner = w.saturating_sub(4).max(1) as usize;
    // Rows the wrapped text needs (an estimate by characters, which wrapping by words only exceeds a little).
    let rows: usize = text.lines().map(|l| l.chars().count().div_ceil(inner).max(1) + 1).sum::<usize>() + 2;
    let h = (rows as u16 + 2).min(area.height);
    let r = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    let mut lines: Vec<Line> = Vec::new();
    for l in text.lines() {
        lines.push(Line::from(l.to_string()));
        lines.push(Line::from(""));
    }
    lines.push(Line::styled("any key closes this · i opens it again", theme.muted()));
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::default().borders(Borders::ALL).title(format!(" {title} ")).title_style(theme.title()).padding(ratatui::widgets::Padding::horizontal(1))),
        r,
    );
}

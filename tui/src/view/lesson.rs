//! The lesson panel: a demo's text, wrapped, over the current view.

use crate::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

/// Lines `text` takes when wrapped at word boundaries to `width` columns.
fn wrapped_lines(text: &str, width: usize) -> usize {
    let mut lines = 1;
    let mut used = 0;
    for word in text.split_whitespace() {
        let w = word.chars().count();
        if used > 0 && used + 1 + w > width {
            lines += 1;
            used = 0;
        }
        // A word longer than the line is broken across lines.
        used = if used == 0 { w } else { used + 1 + w };
        while used > width {
            lines += 1;
            used -= width;
        }
    }
    lines
}

pub fn render(theme: &Theme, frame: &mut Frame, area: Rect, title: &str, text: &str) {
    let w = area.width.min(84);
    let inner = w.saturating_sub(4).max(1) as usize;
    let paragraphs: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    // Each paragraph, a blank line after it, and the closing hint; plus the borders.
    let rows: usize = paragraphs.iter().map(|p| wrapped_lines(p, inner) + 1).sum::<usize>() + 1;
    let h = (rows as u16 + 2).min(area.height);
    let r = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    let mut lines: Vec<Line> = Vec::new();
    for p in &paragraphs {
        lines.push(Line::from(p.to_string()));
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

//! Warnings, each with its task and moment; Enter jumps to it in the timeline.
//! Each warning is a heading (kind, moment, task, repeats) and its text in full,
//! wrapped to the width: the text is what says what to look at.

use super::{dur, wrap};
use crate::app::App;
use crate::theme::Theme;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};
use ratatui::Frame;

pub fn render(app: &mut App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let width = area.width.saturating_sub(4).max(10) as usize;
    let selected = app.warning_table.selected();
    let rows: Vec<Row> = app
        .state
        .warnings
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut head = vec![
                Span::styled(w.kind.as_str().replace('_', " "), theme.warn()),
                Span::raw(format!(" at {}", dur(w.at_ns))),
            ];
            if w.count > 1 {
                head.push(Span::raw(format!(" ×{}", w.count)));
            }
            if let Some(t) = &w.task_name {
                head.push(Span::styled(format!(" · {t}"), theme.muted()));
            }
            let mut lines = vec![Line::from(head)];
            lines.extend(
                wrap(&w.message, width)
                    .into_iter()
                    .map(|l| Line::from(format!("  {l}"))),
            );
            // The selected one says why it matters and what to do.
            if Some(i) == selected {
                for (label, text) in [("why: ", &w.why), ("what to do: ", &w.fix)] {
                    lines.extend(
                        wrap(&format!("{label}{text}"), width)
                            .into_iter()
                            .map(|l| Line::styled(format!("  {l}"), theme.muted())),
                    );
                }
            }
            let height = lines.len() as u16;
            Row::new(vec![Cell::from(Text::from(lines))]).height(height)
        })
        .collect();
    let empty = rows.is_empty();
    let table = Table::new(rows, [Constraint::Percentage(100)])
        .row_highlight_style(theme.selected())
        .block(Block::default().borders(Borders::TOP).title(if empty {
            " no warnings ".to_string()
        } else {
            " warnings · Enter: show in the timeline ".to_string()
        }));
    if empty {
        app.warning_table.select(None);
    } else if app.warning_table.selected().is_none() {
        app.warning_table.select(Some(0));
    }
    frame.render_stateful_widget(table, area, &mut app.warning_table);
}

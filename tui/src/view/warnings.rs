//! Warnings, each with its task and moment; Enter jumps to it in the timeline.

use super::moment;
use crate::app::App;
use crate::theme::Theme;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Row, Table};
use ratatui::Frame;

pub fn render(app: &mut App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let rows: Vec<Row> = app
        .state
        .warnings
        .iter()
        .map(|w| {
            Row::new(vec![
                Cell::from(Span::styled(
                    w.kind.as_str().replace('_', " "),
                    theme.warn(),
                )),
                Cell::from(moment(w.at_ns)),
                Cell::from(w.task_name.clone().unwrap_or_default()),
                Cell::from(if w.count > 1 {
                    format!("×{}", w.count)
                } else {
                    String::new()
                }),
                Cell::from(w.message.clone()),
            ])
        })
        .collect();
    let empty = rows.is_empty();
    let table = Table::new(
        rows,
        [
            Constraint::Length(19),
            Constraint::Length(13),
            Constraint::Length(14),
            Constraint::Length(5),
            Constraint::Min(20),
        ],
    )
    .header(Row::new(vec!["warning", "at", "task", "", "what"]).style(theme.header()))
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

//! Warnings, each with its task and moment; Enter jumps to it in the timeline.

use super::moment;
use crate::app::App;
use crate::theme::Theme;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Row, Table, TableState};
use ratatui::Frame;

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
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
    let mut state =
        TableState::default().with_selected(if empty { None } else { Some(app.warning) });
    frame.render_stateful_widget(table, area, &mut state);
}

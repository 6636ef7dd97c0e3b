//! The task table: like tokio-console's, sortable and filterable, live.

use super::dur;
use crate::app::{App, Column};
use crate::theme::Theme;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Row, Table};
use ratatui::Frame;

pub fn render(app: &mut App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let header = Row::new(Column::ALL.iter().map(|c| {
        let mark = if *c == app.sort {
            if app.descending {
                " ▼"
            } else {
                " ▲"
            }
        } else {
            ""
        };
        Cell::from(format!("{}{mark}", c.title()))
    }))
    .style(theme.header());
    let now = app.state.now_ns;
    let rows: Vec<Row> = app
        .rows()
        .into_iter()
        .map(|t| {
            let last = t
                .last_poll_ns
                .map(|l| format!("{} ago", dur(now.saturating_sub(l))))
                .unwrap_or_else(|| "–".into());
            Row::new(vec![
                Cell::from(t.id.to_string()),
                Cell::from(t.name.clone()),
                Cell::from(Span::styled(t.state.to_string(), theme.state(t.state))),
                Cell::from(t.polls.to_string()),
                Cell::from(dur(t.busy_ns)),
                Cell::from(dur(t.scheduled_ns)),
                Cell::from(dur(t.idle_ns)),
                Cell::from(t.wakes.total().to_string()),
                Cell::from(last),
                Cell::from(if t.warnings > 0 {
                    Span::styled(t.warnings.to_string(), theme.warn())
                } else {
                    Span::raw("")
                }),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(6),
        Constraint::Min(12),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(12),
        Constraint::Length(5),
    ];
    let title = format!(
        " tasks ({}) · s/S sort · r reverse · / filter · Enter details ",
        rows.len()
    );
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(theme.selected())
        .block(Block::default().borders(Borders::TOP).title(title));
    frame.render_stateful_widget(table, area, &mut app.table);
}

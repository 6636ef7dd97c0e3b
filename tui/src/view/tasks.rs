//! The task table: like tokio-console's, sortable and filterable, live.

use super::{clip_middle, dur};
use crate::app::{App, Column};
use crate::theme::Theme;
use looptrace_wire::units::fmt_duration_compact;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Row, Table};
use ratatui::Frame;

pub fn render(app: &mut App, theme: &Theme, frame: &mut Frame, area: Rect) {
    // Narrow: compact numbers (`265ms`), so that every column keeps its unit.
    let narrow = area.width < 120;
    let header = Row::new(Column::ALL.iter().map(|c| {
        let mark = match (*c == app.sort, app.descending) {
            (false, _) => "",
            (true, true) => "▼",
            (true, false) => "▲",
        };
        let title = match c {
            Column::LastPoll if narrow => "last",
            c => c.title(),
        };
        let gap = if narrow || mark.is_empty() { "" } else { " " };
        Cell::from(format!("{title}{gap}{mark}"))
    }))
    .style(theme.header());
    let now = app.state.now_ns;
    // What the name column gets: the rest of the width, less the column gaps.
    let fixed: u16 = if narrow { 55 } else { 73 };
    let name_width = area.width.saturating_sub(fixed + 9).max(9) as usize;
    let d = |ns: u64| {
        if narrow {
            fmt_duration_compact(ns)
        } else {
            dur(ns)
        }
    };
    let rows: Vec<Row> = app
        .rows()
        .into_iter()
        .map(|t| {
            let last = t
                .last_poll_ns
                .map(|l| {
                    let ago = now.saturating_sub(l);
                    if narrow {
                        d(ago)
                    } else {
                        format!("{} ago", dur(ago))
                    }
                })
                .unwrap_or_else(|| "–".into());
            // The current state counted up to now, not only to the last update.
            let (busy, scheduled, idle) = crate::state::totals(t, now);
            Row::new(vec![
                Cell::from(t.id.to_string()),
                // What it was doing, first, when it said (its tracing span).
                Cell::from(match &t.context {
                    Some(c) => super::clip(&format!("{c} · {}", t.name), name_width),
                    None => clip_middle(&t.name, name_width),
                }),
                // A finished task by how it ended: completed, cancelled, panicked.
                Cell::from(Span::styled(
                    match (t.state, t.outcome) {
                        (looptrace_api::TaskState::Done, Some(o)) => o.to_string(),
                        (state, _) => state.to_string(),
                    },
                    theme.state(t.state),
                )),
                Cell::from(t.polls.to_string()),
                Cell::from(d(busy)),
                Cell::from(d(scheduled)),
                Cell::from(d(idle)),
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
    let widths = if narrow {
        [
            Constraint::Length(5),
            Constraint::Min(9),
            Constraint::Length(9),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(5),
        ]
    } else {
        [
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
        ]
    };
    let title = if narrow {
        format!(
            " tasks ({}) · s sort · / filter · Enter details ",
            rows.len()
        )
    } else {
        format!(
            " tasks ({}) · s/S sort · r reverse · / filter · Enter details ",
            rows.len()
        )
    };
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(theme.selected())
        .block(Block::default().borders(Borders::TOP).title(title));
    frame.render_stateful_widget(table, area, &mut app.table);
}

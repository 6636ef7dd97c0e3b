//! One task: where it was spawned, its statistics, its poll-time histogram, its
//! wakes by source and its recent polls with who woke each.

use super::{dur, moment};
use crate::app::App;
use crate::theme::Theme;
use looptrace_wire::units::fmt_duration_compact;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Borders, Paragraph, Row, Table};
use ratatui::Frame;

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(id) = app.selected_task() else {
        frame.render_widget(
            Paragraph::new("No task selected: pick one in the task table (1).")
                .style(theme.muted()),
            area,
        );
        return;
    };
    let summary = app.state.tasks.get(&id);
    let detail = app.state.detail.as_ref().filter(|d| d.detail.task.id == id);
    let Some(t) = detail.map(|d| &d.detail.task).or(summary) else {
        return;
    };
    let [top, mid, bottom] = Layout::vertical([
        Constraint::Length(9 + t.context.is_some() as u16),
        Constraint::Length(8),
        Constraint::Min(3),
    ])
    .areas(area);
    let [stats, wakes] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(top);
    let kv = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!("{k:<14}"), theme.muted()),
            Span::raw(v),
        ])
    };
    // The tail of a long location is the part that says where (file and line).
    let room = (area.width as usize * 55 / 100).saturating_sub(15);
    let mut stat_lines = vec![kv("spawned at", clip_left(&t.location, room))];
    if let Some(c) = &t.context {
        stat_lines.push(kv("doing", clip_left(c, room)));
    }
    let (busy, scheduled, idle) = crate::state::totals(t, app.state.now_ns);
    stat_lines.extend([
        kv(
            "state",
            format!(
                "{}{}",
                t.state,
                t.outcome
                    .as_ref()
                    .map(|o| format!(" ({o})"))
                    .unwrap_or_default()
            ),
        ),
        kv("polls", t.polls.to_string()),
        kv("busy", dur(busy)),
        kv("scheduled", dur(scheduled)),
        kv("idle", dur(idle)),
        kv("longest poll", dur(t.longest_poll_ns)),
        kv("lifetime", dur(t.lifetime_ns)),
    ]);
    frame.render_widget(
        Paragraph::new(stat_lines).block(Block::default().borders(Borders::TOP).title({
            let tail = format!(" #{} · Esc back ", t.id);
            let fit = (stats.width as usize).saturating_sub(tail.chars().count() + 2);
            format!(" {}{tail}", super::clip_middle(&t.name, fit.max(8)))
        })),
        stats,
    );
    let w = &t.wakes;
    let wake_lines = vec![
        kv("by tasks", w.task.to_string()),
        kv("by itself", w.own.to_string()),
        kv("by timer", w.timer.to_string()),
        kv("by I/O", w.io.to_string()),
        kv("by blocking", w.blocking.to_string()),
        kv("by others", w.external.to_string()),
    ];
    frame.render_widget(
        Paragraph::new(wake_lines).block(
            Block::default()
                .borders(Borders::TOP)
                .title(format!(" wakes ({}) ", w.total())),
        ),
        wakes,
    );
    // Poll-time histogram.
    let hist = detail
        .map(|d| d.detail.poll_histogram.clone())
        .unwrap_or_default();
    let bars: Vec<Bar> = hist
        .iter()
        .map(|(upto, n)| {
            Bar::default()
                .value(*n)
                .label(Line::from(format!("≤{}", fmt_duration_compact(*upto))))
        })
        .collect();
    let chart = BarChart::default()
        .block(Block::default().borders(Borders::TOP).title(" poll time "))
        .data(BarGroup::default().bars(&bars))
        .bar_width(9)
        .bar_gap(1)
        .bar_style(theme.running());
    if bars.is_empty() {
        frame.render_widget(
            Paragraph::new("loading…")
                .style(theme.muted())
                .block(Block::default().borders(Borders::TOP).title(" poll time ")),
            mid,
        );
    } else {
        frame.render_widget(chart, mid);
    }
    // Recent polls.
    let polls = detail.map(|d| d.recent_polls.clone()).unwrap_or_default();
    let rows: Vec<Row> = polls
        .iter()
        .rev()
        .map(|p| {
            Row::new(vec![
                moment(p.start_ns),
                dur(p.duration_ns),
                match p.ready {
                    Some(true) => "Ready".into(),
                    Some(false) => "Pending".into(),
                    None => "–".into(),
                },
                p.woken_by.map_or_else(|| "–".into(), |b| b.to_string()),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(14),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Min(10),
        ],
    )
    .header(Row::new(vec!["start", "took", "returned", "woken by"]).style(theme.header()))
    .block(
        Block::default()
            .borders(Borders::TOP)
            .title(" recent polls "),
    );
    frame.render_widget(table, bottom);
}

/// `s` cut to its last `width` characters, with an ellipsis in front.
fn clip_left(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    let tail: String = s.chars().skip(n + 1 - width.max(1)).collect();
    format!("…{tail}")
}

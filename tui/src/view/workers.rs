//! Workers: utilization now and over the timeline's range.

use super::{dur, timeline::plot_width};
use crate::app::App;
use crate::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline};
use ratatui::Frame;

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let block = Block::default()
        .borders(Borders::TOP)
        .title(" workers · busy share now and over the timeline's range ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.state.workers.is_empty() {
        frame.render_widget(
            Paragraph::new("no workers reported yet").style(theme.muted()),
            inner,
        );
        return;
    }
    let rows = Layout::vertical(
        app.state
            .workers
            .iter()
            .map(|_| Constraint::Length(3))
            .chain([Constraint::Min(0)]),
    )
    .split(inner);
    for (w, row) in app.state.workers.iter().zip(rows.iter()) {
        let [head, spark] =
            Layout::vertical([Constraint::Length(1), Constraint::Length(2)]).areas(*row);
        // Its share as a bar of its own, then the figures: a label never drawn
        // over the bar.
        let bar_w = if area.width < 100 { 10 } else { 20 };
        let filled = (w.utilization.clamp(0.0, 1.0) * bar_w as f64).round() as usize;
        let head_line = Line::from(vec![
            Span::styled(format!(" worker {} ", w.index), theme.title()),
            Span::styled("█".repeat(filled), theme.worker()),
            Span::styled("░".repeat(bar_w - filled), theme.muted()),
            Span::raw(format!(
                " {:.0}% busy · {} polls · {} migrations · parked {}",
                w.utilization * 100.0,
                w.polls,
                w.migrations,
                dur(w.parked_ns)
            )),
            // The scheduler's queue, when the app samples it.
            Span::styled(
                if w.max_queue_depth > 0 || w.steals > 0 {
                    format!(
                        " · queue {} (most {}) · {} steals",
                        w.queue_depth, w.max_queue_depth, w.steals
                    )
                } else {
                    String::new()
                },
                theme.muted(),
            ),
        ]);
        frame.render_widget(Paragraph::new(head_line), head);
        let data: Vec<u64> = app
            .state
            .timeline
            .as_ref()
            .and_then(|t| t.workers.iter().find(|b| b.thread == w.thread))
            .map(|b| b.busy.iter().map(|v| (v * 100.0).round() as u64).collect())
            .unwrap_or_default();
        // Labelled like the timeline's lanes, and as wide as its plot.
        let [label, plot] = Layout::horizontal([
            Constraint::Length(area.width.saturating_sub(plot_width(area.width))),
            Constraint::Min(1),
        ])
        .areas(spark);
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(" busy over time"),
                Line::from(" (as the timeline)"),
            ])
            .style(theme.muted()),
            label,
        );
        let width = plot.width as usize;
        frame.render_widget(
            Sparkline::default()
                .data(&data[..data.len().min(width)])
                .max(100)
                .style(theme.worker()),
            plot,
        );
    }
}

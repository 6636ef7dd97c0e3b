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
        let sampled = w.max_queue_depth > 0 || w.steals > 0;
        let narrow = area.width < 100;
        let head_line = Line::from(vec![
            Span::styled(format!(" worker {} ", w.index), theme.title()),
            Span::styled("█".repeat(filled), theme.worker()),
            Span::styled("░".repeat(bar_w - filled), theme.muted()),
            Span::raw(format!(
                " {:.0}% busy · {} polls · {} {} · parked {}",
                w.utilization * 100.0,
                w.polls,
                w.migrations,
                if narrow { "moved" } else { "migrations" },
                dur(w.parked_ns)
            )),
            // The scheduler's queue, when the app samples it (narrow, its depth
            // is on its plot's label).
            Span::styled(
                match (sampled, narrow) {
                    (false, _) => String::new(),
                    (true, true) => format!(" · {} steals", w.steals),
                    (true, false) => format!(
                        " · queue {} (most {}) · {} steals",
                        w.queue_depth, w.max_queue_depth, w.steals
                    ),
                },
                theme.muted(),
            ),
        ]);
        frame.render_widget(Paragraph::new(head_line), head);
        let timeline = app.state.timeline.as_ref();
        let data: Vec<u64> = timeline
            .and_then(|t| t.workers.iter().find(|b| b.thread == w.thread))
            .map(|b| b.busy.iter().map(|v| (v * 100.0).round() as u64).collect())
            .unwrap_or_default();
        // Its local run queue over the same range, when the app samples it.
        let queue: Option<Vec<u64>> = timeline
            .and_then(|t| t.queues.as_ref())
            .and_then(|q| q.local.get(w.index as usize))
            .map(|depths| depths.iter().map(|&d| d as u64).collect());
        // Labelled like the timeline's lanes, and as wide as its plot.
        let label_w = area.width.saturating_sub(plot_width(area.width));
        let lines = match &queue {
            Some(_) => [Constraint::Length(1), Constraint::Length(1)],
            None => [Constraint::Length(2), Constraint::Length(0)],
        };
        let [busy_row, queue_row] = Layout::vertical(lines).areas(spark);
        let split = |row: Rect| {
            Layout::horizontal([Constraint::Length(label_w), Constraint::Min(1)]).areas::<2>(row)
        };
        let [label, plot] = split(busy_row);
        frame.render_widget(
            Paragraph::new(if queue.is_some() {
                vec![Line::from(" busy over time")]
            } else {
                vec![
                    Line::from(" busy over time"),
                    Line::from(" (as the timeline)"),
                ]
            })
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
        if let Some(depths) = queue {
            let [label, plot] = split(queue_row);
            let deepest = depths.iter().copied().max().unwrap_or(0);
            frame.render_widget(
                Paragraph::new(Line::from(format!(
                    " queue {}, most {deepest}",
                    w.queue_depth
                )))
                .style(theme.muted()),
                label,
            );
            let width = plot.width as usize;
            frame.render_widget(
                Sparkline::default()
                    .data(&depths[..depths.len().min(width)])
                    .max(deepest.max(1))
                    .style(theme.warn()),
                plot,
            );
        }
    }
}

//! Rendering: one file per screen, and the frame around them (tabs, status line,
//! connection banner, help overlay).

mod detail;
mod help;
mod lesson;
mod tasks;
mod timeline;
mod warnings;
mod workers;

use crate::app::{App, View};
use crate::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Tabs};
use ratatui::Frame;

/// Smallest terminal the views fit in.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 12;

pub use looptrace_wire::units::{fmt_duration as dur, fmt_moment as moment};

/// Draws the whole screen.
pub fn render(app: &mut App, theme: &Theme, frame: &mut Frame) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal too small: {}×{}\nlooptrace needs at least {MIN_WIDTH}×{MIN_HEIGHT}",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(msg).style(theme.warn()), area);
        return;
    }
    let [top, banner, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(if app.state.connected { 0 } else { 1 }),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    let titles: Vec<Line> = View::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| Line::from(format!("{} {}", i + 1, v.title())))
        .collect();
    let selected = View::ALL.iter().position(|v| *v == app.view).unwrap_or(0);
    frame.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(theme.selected())
            .divider("│"),
        top,
    );
    if let Some(note) = &app.note {
        let w = (note.chars().count() as u16 + 1).min(top.width / 2);
        let r = Rect {
            x: top.x + top.width - w,
            width: w,
            ..top
        };
        frame.render_widget(
            Paragraph::new(clip(note, w as usize)).style(theme.muted()),
            r,
        );
    }
    if !app.state.connected {
        frame.render_widget(
            Paragraph::new(" Lost the connection to the collector; reconnecting…")
                .style(theme.error()),
            banner,
        );
    }
    match app.view {
        View::Tasks => tasks::render(app, theme, frame, body),
        View::Timeline => timeline::render(app, theme, frame, body),
        View::Detail => detail::render(app, theme, frame, body),
        View::Warnings => warnings::render(app, theme, frame, body),
        View::Workers => workers::render(app, theme, frame, body),
    }
    frame.render_widget(Paragraph::new(status_line(app, theme)), status);
    if app.help {
        help::render(theme, frame, body);
    } else if app.lesson_open {
        if let Some(note) = &app.lesson {
            lesson::render(theme, frame, body, note);
        }
    }
}

fn status_line<'a>(app: &App, theme: &Theme) -> Line<'a> {
    let s = &app.state;
    let mut spans = vec![];
    match s.current() {
        Some(c) => spans.push(Span::styled(
            format!(" {} (pid {}) · {} ", c.process, c.pid, c.flavor),
            theme.title(),
        )),
        None => spans.push(Span::styled(" waiting for a session… ", theme.muted())),
    }
    spans.push(Span::raw(format!(
        "· {} · {} tasks ",
        moment(s.now_ns),
        s.tasks.len()
    )));
    if !s.warnings.is_empty() {
        spans.push(Span::styled(
            format!("· {} warnings ", s.warnings.len()),
            theme.warn(),
        ));
    }
    if let Some(r) = s.replay {
        spans.push(Span::raw(format!(
            "· replay {} {}× ",
            if r.paused { "paused" } else { "playing" },
            r.speed
        )));
    }
    if s.lagged > 0 {
        spans.push(Span::styled(
            format!("· {} updates skipped ", s.lagged),
            theme.muted(),
        ));
    }
    if let Some(e) = s.recent_error() {
        spans.push(Span::styled(format!("· {} ", clip(e, 60)), theme.error()));
    }
    if app.filtering || !app.filter.is_empty() {
        spans.push(Span::styled(
            format!(
                "· filter: {}{} ",
                app.filter,
                if app.filtering { "▏" } else { "" }
            ),
            theme.scheduled(),
        ));
    }
    if app.lesson.is_some() {
        spans.push(Span::styled("· i lesson ", theme.muted()));
    }
    spans.push(Span::styled("· ? help · q quit", theme.muted()));
    Line::from(spans)
}

/// Timeline columns for a terminal `width` wide: one bucket each.
pub fn timeline_columns(width: u16) -> u16 {
    timeline::plot_width(width)
}

/// Truncates `s` to `width` characters, with an ellipsis.
pub(crate) fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

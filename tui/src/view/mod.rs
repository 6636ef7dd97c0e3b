//! Rendering: one file per screen, and the frame around them (tabs, status line,
//! connection banner, help overlay).

mod detail;
pub mod help;
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
    let titles: Vec<String> = View::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{} {}", i + 1, v.title()))
        .collect();
    // Each title with a space either side, and a divider between them.
    let tabs_width: u16 = titles
        .iter()
        .map(|t| t.chars().count() as u16 + 3)
        .sum::<u16>()
        .saturating_sub(1);
    let selected = View::ALL.iter().position(|v| *v == app.view).unwrap_or(0);
    // Narrow, the tabs drop their padding to leave room for the note.
    let narrow = top.width < 100;
    let tabs_width = if narrow {
        tabs_width - 2 * View::ALL.len() as u16
    } else {
        tabs_width
    };
    let tabs = Tabs::new(titles.into_iter().map(Line::from).collect::<Vec<_>>())
        .select(selected)
        .highlight_style(theme.selected())
        .divider("│");
    frame.render_widget(if narrow { tabs.padding("", "") } else { tabs }, top);
    // The program's note (the browser's address) in the room the tabs leave:
    // in full, else without its caption, else not at all.
    if let Some(note) = &app.note {
        let room = top.width.saturating_sub(tabs_width + 2) as usize;
        let bare = note.split_once(": ").map_or(note.as_str(), |(_, v)| v);
        if let Some(text) = [note.as_str(), bare]
            .into_iter()
            .find(|t| t.chars().count() <= room)
        {
            let w = text.chars().count() as u16;
            let r = Rect {
                x: top.x + top.width - w,
                width: w,
                ..top
            };
            frame.render_widget(Paragraph::new(text.to_string()).style(theme.muted()), r);
        }
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
    // The keys that get a user anywhere stay in view; the rest is cut to fit.
    let keys = status_keys(app, theme);
    let keys_width = keys.width() as u16;
    let [left, right] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(keys_width)]).areas(status);
    // Whole parts only: a part that does not fit is left out, never cut.
    let mut room = left.width as usize;
    let parts: Vec<Span> = status_line(app, theme, left.width as usize)
        .spans
        .into_iter()
        .filter(|p| {
            let fits = p.width() <= room;
            if fits {
                room -= p.width();
            }
            fits
        })
        .collect();
    frame.render_widget(Paragraph::new(Line::from(parts)), left);
    frame.render_widget(Paragraph::new(keys), right);
    if app.help {
        help::render(theme, frame, area);
    } else if app.lesson_open {
        if let Some(note) = &app.lesson {
            lesson::render(theme, frame, body, note);
        }
    }
}

/// The status line's parts, most important first (a narrow terminal shows the
/// first ones that fit).
fn status_line<'a>(app: &App, theme: &Theme, width: usize) -> Line<'a> {
    let s = &app.state;
    let mut spans = vec![];
    let current = s.current();
    match current {
        Some(c) => spans.push(Span::styled(format!(" {} ", c.process), theme.title())),
        None => spans.push(Span::styled(" waiting for a session… ", theme.muted())),
    }
    // What needs the user now: an error (cut to fit), the filter being typed.
    if let Some(e) = s.recent_error() {
        let room = width.saturating_sub(spans[0].width() + 4).max(10);
        spans.push(Span::styled(format!("· {} ", clip(e, room)), theme.error()));
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
    spans.push(Span::raw(format!("· {} ", dur(s.now_ns))));
    if !s.warnings.is_empty() {
        spans.push(Span::styled(
            format!(
                "· {} warning{} ",
                s.warnings.len(),
                if s.warnings.len() == 1 { "" } else { "s" }
            ),
            theme.warn(),
        ));
    }
    spans.push(Span::raw(format!("· {} tasks ", s.tasks.len())));
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
    if let Some(c) = current {
        spans.push(Span::styled(
            format!("· {} · pid {} ", c.flavor, c.pid),
            theme.muted(),
        ));
    }
    Line::from(spans)
}

fn status_keys<'a>(app: &App, theme: &Theme) -> Line<'a> {
    let text = if app.lesson.is_some() {
        "· i lesson · ? help · q quit "
    } else {
        "· ? help · q quit "
    };
    Line::styled(text, theme.muted())
}

/// Timeline columns for a terminal `width` wide: one bucket each.
pub fn timeline_columns(width: u16) -> u16 {
    timeline::plot_width(width)
}

/// `s` in `width` characters, its middle left out: a task named by where it was
/// spawned keeps its crate and its file and line (`axum-…mod.rs:389`).
pub(crate) fn clip_middle(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    if width < 6 {
        return clip(s, width);
    }
    let tail = (width - 1) * 2 / 3;
    let head = width - 1 - tail;
    let h: String = s.chars().take(head).collect();
    let t: String = s.chars().skip(n - tail).collect();
    format!("{h}…{t}")
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

/// `s` broken into lines of at most `width` characters, at spaces where it can
/// be (a word longer than a line is cut).
pub(crate) fn wrap(s: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in s.split_whitespace() {
        let mut word = word.to_string();
        loop {
            let (n, w) = (line.chars().count(), word.chars().count());
            if n > 0 && n + 1 + w <= width {
                line.push(' ');
                line.push_str(&word);
                break;
            }
            if n == 0 && w <= width {
                line = word;
                break;
            }
            if n > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word longer than a line.
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(head);
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

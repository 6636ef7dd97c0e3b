//! The timeline in the terminal: a row per worker and per task, time left to
//! right, one column per bucket of the collector's aggregated window.
//!
//! Cells: `█` mostly running, `▌` running part of the time, `░` scheduled
//! (woken, waiting), `─` idle, `•` a wake; workers: `█` busy, `·` parked; above
//! the lanes, `▼` and its label where the program marked a moment.

use super::{clip, clip_middle, dur};
use crate::app::App;
use crate::theme::Theme;
use looptrace_wire::units::fmt_moment_within;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

/// Width of the lanes' labels: wider on a wide terminal, where names fit.
pub fn label_width(area_width: u16) -> u16 {
    if area_width >= 140 {
        36
    } else {
        18
    }
}

/// Columns of the plot for a body of `area`'s width (what to ask the collector for).
pub fn plot_width(area_width: u16) -> u16 {
    area_width
        .saturating_sub(label_width(area_width) + 1)
        .max(1)
}

fn cell_char(running: f32, scheduled: f32, wakes: u32, alive: bool) -> (char, u8) {
    if running >= 0.5 {
        ('█', 0)
    } else if running > 0.0 {
        ('▌', 0)
    } else if scheduled > 0.0 {
        ('░', 1)
    } else if wakes > 0 {
        ('•', 2)
    } else if alive {
        ('─', 3)
    } else {
        (' ', 3)
    }
}

pub fn render(app: &mut App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let (start, end) = app.range();
    let span = end.saturating_sub(start).max(1);
    let keys = if area.width >= 100 {
        " · +/- zoom · ←/→ pan · f follow · 0 fit"
    } else {
        ""
    };
    let title = format!(
        " {} – {} ({}){}{keys} ",
        fmt_moment_within(start, span),
        fmt_moment_within(end, span),
        dur(span),
        if app.follow { " · following" } else { "" }
    );
    let label_w = label_width(area.width) as usize;
    let block = Block::default().borders(Borders::TOP).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = plot_width(inner.width) as usize;
    let mut lines: Vec<Line> = Vec::new();
    lines.push(Line::styled(
        format!("{}{}", " ".repeat(label_w + 1), axis(start, end, width)),
        theme.muted(),
    ));
    // Marks: `▼` at their column, labelled where there is room.
    let marks: Vec<(usize, &str)> = app
        .state
        .marks
        .iter()
        .filter(|m| m.at_ns >= start && m.at_ns <= end && end > start)
        .map(|m| {
            (
                ((m.at_ns - start) as u128 * width as u128 / (end - start) as u128) as usize,
                m.label.as_str(),
            )
        })
        .collect();
    if !marks.is_empty() {
        let mut row: Vec<char> = vec![' '; width];
        for (i, (col, label)) in marks.iter().enumerate() {
            let col = (*col).min(width.saturating_sub(1));
            row[col] = '▼';
            // The label runs to the next mark at most.
            let limit = marks.get(i + 1).map(|n| n.0).unwrap_or(width).min(width);
            for (j, ch) in label.chars().enumerate() {
                let at = col + 1 + j;
                if at + 1 >= limit {
                    break;
                }
                row[at] = ch;
            }
        }
        let text: String = row.into_iter().collect();
        lines.push(Line::from(vec![
            Span::raw(" ".repeat(label_w + 1)),
            Span::styled(text, theme.title()),
        ]));
    }
    let tl = app.state.timeline.clone();
    // Workers.
    for w in &app.state.workers {
        let mut spans = vec![Span::styled(
            format!(
                "{:<w$} ",
                clip(&format!("worker {}", w.index), label_w),
                w = label_w
            ),
            theme.worker(),
        )];
        let buckets = tl
            .as_ref()
            .and_then(|t| t.workers.iter().find(|b| b.thread == w.thread));
        let mut row = String::with_capacity(width);
        for c in 0..width {
            let (busy, parked) = buckets.map_or((0.0, 0.0), |b| {
                (
                    b.busy.get(c).copied().unwrap_or(0.0),
                    b.parked.get(c).copied().unwrap_or(0.0),
                )
            });
            row.push(if busy >= 0.5 {
                '█'
            } else if busy > 0.0 {
                '▌'
            } else if parked > 0.0 {
                '·'
            } else {
                ' '
            });
        }
        spans.push(Span::styled(row, theme.worker()));
        lines.push(Line::from(spans));
    }
    // Threads of the blocking pool that ran something in the range.
    if let Some(tl) = &tl {
        for b in tl
            .workers
            .iter()
            .filter(|b| !app.state.workers.iter().any(|w| w.thread == b.thread))
        {
            let row: String = (0..width)
                .map(|c| match b.busy.get(c).copied().unwrap_or(0.0) {
                    v if v >= 0.5 => '█',
                    v if v > 0.0 => '▌',
                    _ => ' ',
                })
                .collect();
            lines.push(Line::from(vec![
                Span::styled(
                    format!(
                        "{:<w$} ",
                        clip(&format!("blocking thread {}", b.thread), label_w),
                        w = label_w
                    ),
                    theme.muted(),
                ),
                Span::styled(row, theme.worker()),
            ]));
        }
    }
    // Tasks, in the table's order, those alive in the range (a server's finished
    // connections do not fill the screen); the selected one highlighted.
    let rows: Vec<_> = app.rows().into_iter().cloned().collect();
    let room = (inner.height as usize).saturating_sub(lines.len()).max(1);
    let selected = app.selected();
    let alive = |t: &looptrace_api::TaskSummary| {
        t.spawned_ns <= end && t.ended_ns.is_none_or(|e| e >= start)
    };
    let selected_id = rows.get(selected).map(|t| t.id);
    let shown: Vec<(usize, &looptrace_api::TaskSummary)> = rows
        .iter()
        .enumerate()
        .filter(|(_, t)| alive(t) || Some(t.id) == selected_id)
        .collect();
    // Scrolled here only, where the room is known: the selection stays in view,
    // among the lanes shown.
    let at = shown.iter().position(|(i, _)| *i == selected).unwrap_or(0);
    if at >= app.scroll + room {
        app.scroll = at + 1 - room;
    }
    if at < app.scroll {
        app.scroll = at;
    }
    // The warnings' moments by task, gathered once for all lanes.
    let mut warned: std::collections::HashMap<u64, Vec<u64>> = Default::default();
    for w in &app.state.warnings {
        if let Some(task) = w.task {
            warned.entry(task).or_default().push(w.at_ns);
        }
    }
    for &(i, t) in shown.iter().skip(app.scroll).take(room) {
        let id = format!(" #{}", t.id);
        let room_for_name = label_w.saturating_sub(id.len());
        // What it was doing says more than a shared spawn location.
        let name = match &t.context {
            Some(c) => super::clip(&format!("{c} · {}", t.name), room_for_name),
            None => clip_middle(&t.name, room_for_name),
        };
        let label = format!("{:<w$} ", format!("{name}{id}"), w = label_w);
        let mut spans = vec![Span::styled(
            label,
            if i == selected {
                theme.selected()
            } else {
                theme.title()
            },
        )];
        let b = tl
            .as_ref()
            .and_then(|tl| tl.tasks.iter().find(|b| b.task == t.id));
        let bucket = tl.as_ref().map_or(1, |tl| tl.bucket_ns.max(1));
        let first = tl.as_ref().map_or(start, |tl| tl.start_ns);
        // Its warnings: a `!` at their moment.
        let flags: &[u64] = warned.get(&t.id).map_or(&[], Vec::as_slice);
        let flags: Vec<usize> = flags
            .iter()
            .filter(|at| **at >= first)
            .map(|at| ((at - first) / bucket) as usize)
            .filter(|c| *c < width)
            .collect();
        let mut run = String::new();
        let mut run_kind = 255u8;
        let push = |spans: &mut Vec<Span<'static>>, run: &mut String, kind: u8| {
            if !run.is_empty() {
                let style = match kind {
                    0 => theme.running(),
                    1 => theme.scheduled(),
                    2 => theme.wake(),
                    4 => theme.warn(),
                    _ => theme.idle(),
                };
                spans.push(Span::styled(std::mem::take(run), style));
            }
        };
        for c in 0..width {
            let t0 = first + c as u64 * bucket;
            let alive = t.spawned_ns <= t0 + bucket && t.ended_ns.is_none_or(|e| e >= t0);
            let (r, s, w) = b.map_or((0.0, 0.0, 0), |b| {
                (
                    b.running.get(c).copied().unwrap_or(0.0),
                    b.scheduled.get(c).copied().unwrap_or(0.0),
                    b.wakes.get(c).copied().unwrap_or(0),
                )
            });
            let (ch, kind) = if flags.contains(&c) {
                ('!', 4)
            } else {
                cell_char(r, s, w, alive)
            };
            if kind != run_kind {
                push(&mut spans, &mut run, run_kind);
                run_kind = kind;
            }
            run.push(ch);
        }
        push(&mut spans, &mut run, run_kind);
        lines.push(Line::from(spans));
    }
    if rows.is_empty() {
        lines.push(Line::styled("  no tasks yet", theme.muted()));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// A step of 1, 2 or 5 times a power of ten (ns) leaving at least `min` ns
/// between ticks.
fn round_step(min: u64) -> u64 {
    let mut p = 1u64;
    loop {
        for m in [1, 2, 5] {
            if p.saturating_mul(m) >= min {
                return p.saturating_mul(m);
            }
        }
        p = p.saturating_mul(10);
    }
}

/// The axis over `width` columns from `start` to `end`: `|` and a label at round
/// moments (a tick every dozen columns or more), each label as precise as the
/// step and never over the next one.
pub fn axis(start: u64, end: u64, width: usize) -> String {
    let mut row: Vec<char> = vec![' '; width];
    if end <= start || width == 0 {
        return row.into_iter().collect();
    }
    let span = end - start;
    let step = round_step((span as u128 * 12 / width as u128) as u64);
    let decimals = (9 - (step.ilog10() as i64)).clamp(0, 9) as usize;
    let mut t = start.div_ceil(step) * step;
    let mut free_from = 0;
    while t < end {
        let col = ((t - start) as u128 * width as u128 / span as u128) as usize;
        let label = format!("|{:.*} s", decimals, t as f64 / 1e9);
        let n = label.chars().count();
        if col >= free_from && col + n <= width {
            for (j, ch) in label.chars().enumerate() {
                row[col + j] = ch;
            }
            free_from = col + n + 1;
        }
        t += step;
    }
    row.into_iter().collect()
}

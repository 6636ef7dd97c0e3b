//! The task table keeps its scroll from frame to frame (the app owns its table
//! state): moving the selection up one row inside the view moves the highlight,
//! not the rows.

use looptrace_test_support::task_summary;
use looptrace_tui::{view, App, Theme};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

fn screen(term: &mut Terminal<TestBackend>, app: &mut App) -> Vec<String> {
    term.draw(|f| view::render(app, &Theme { color: false }, f))
        .unwrap();
    let buf = term.backend().buffer().clone();
    (0..buf.area.height)
        .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect())
        .collect()
}

/// The first task row on screen: its name.
fn first_row(lines: &[String]) -> String {
    lines
        .iter()
        .find_map(|l| {
            l.split_whitespace()
                .nth(1)
                .filter(|w| w.starts_with("task-"))
        })
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_task_table_keeps_its_scroll_between_frames() {
    let mut app = App::default();
    app.state.session = Some(1);
    for id in 1..=60 {
        app.state
            .tasks
            .insert(id, task_summary(id, &format!("task-{id:02}"), id));
    }
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    for _ in 0..40 {
        app.on_key(key(KeyCode::Down));
        screen(&mut term, &mut app);
    }
    let before = screen(&mut term, &mut app);
    let top = first_row(&before);
    assert_ne!(
        top,
        "task-01",
        "scrolled down to row 40:\n{}",
        before.join("\n")
    );
    app.on_key(key(KeyCode::Up));
    let after = screen(&mut term, &mut app);
    assert_eq!(
        first_row(&after),
        top,
        "the rows stay put:\n{}",
        after.join("\n")
    );
    assert_eq!(app.selected(), 39);
    // Back to the top: the view follows the selection.
    app.on_key(key(KeyCode::Home));
    assert_eq!(first_row(&screen(&mut term, &mut app)), "task-01");
}

//! What keys do to the app's state (no terminal needed).

use looptrace_api::{ReplayAction, ReplayState as Replay, Warning, WarningKind};
use looptrace_test_support::task_summary;
use looptrace_tui::app::{Action, App, Column, View};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn app() -> App {
    let mut app = App::default();
    app.state.session = Some(1);
    app.state.now_ns = 10_000_000_000;
    for (id, name) in [(1, "alpha"), (2, "beta"), (3, "gamma")] {
        app.state.tasks.insert(id, task_summary(id, name, 10 - id));
    }
    app
}

#[test]
fn tab_cycles_views_and_numbers_pick_one() {
    let mut a = app();
    let seen: Vec<View> = (0..5)
        .map(|_| {
            a.on_key(key(KeyCode::Tab));
            a.view
        })
        .collect();
    assert_eq!(
        seen,
        [
            View::Timeline,
            View::Detail,
            View::Warnings,
            View::Workers,
            View::Tasks
        ]
    );
    a.on_key(key(KeyCode::BackTab));
    assert_eq!(a.view, View::Workers);
    assert_eq!(a.on_key(key(KeyCode::Char('2'))), vec![Action::Window]);
    assert_eq!(a.view, View::Timeline);
}

#[test]
fn typing_filters_and_escape_clears() {
    let mut a = app();
    a.on_key(key(KeyCode::Char('/')));
    for c in "amm".chars() {
        a.on_key(key(KeyCode::Char(c)));
    }
    assert_eq!(
        a.rows().iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["gamma"]
    );
    // While typing, 'q' is text, not quit.
    assert!(a.on_key(key(KeyCode::Char('q'))).is_empty());
    assert_eq!(a.filter, "ammq");
    a.on_key(key(KeyCode::Esc));
    assert_eq!(a.filter, "");
    assert_eq!(a.rows().len(), 3);
}

#[test]
fn sorting_keys_pick_the_column_and_direction() {
    let mut a = app();
    a.on_key(key(KeyCode::Char('s')));
    assert_eq!(a.sort, Column::Name);
    a.on_key(key(KeyCode::Char('s')));
    a.on_key(key(KeyCode::Char('s')));
    assert_eq!(a.sort, Column::Polls);
    assert_eq!(a.rows().iter().map(|t| t.id).collect::<Vec<_>>(), [3, 2, 1]);
    a.on_key(key(KeyCode::Char('r')));
    assert_eq!(a.rows().iter().map(|t| t.id).collect::<Vec<_>>(), [1, 2, 3]);
    a.on_key(key(KeyCode::Char('S')));
    assert_eq!(a.sort, Column::State);
}

#[test]
fn moving_and_opening_a_task() {
    let mut a = app();
    a.on_key(key(KeyCode::Char('j')));
    a.on_key(key(KeyCode::Down));
    a.on_key(key(KeyCode::Down));
    assert_eq!(a.selected(), 2, "clamped to the last row");
    a.on_key(key(KeyCode::Char('k')));
    assert_eq!(a.on_key(key(KeyCode::Enter)), vec![Action::Task(2)]);
    assert_eq!(a.view, View::Detail);
    a.on_key(key(KeyCode::Esc));
    assert_eq!(a.view, View::Tasks);
}

#[test]
fn timeline_zoom_pan_and_follow() {
    let mut a = app();
    a.view = View::Timeline;
    let span = a.span_ns;
    assert_eq!(
        a.range().1,
        10_000_000_000,
        "following: the right edge is now"
    );
    a.on_key(key(KeyCode::Char('+')));
    assert_eq!(a.span_ns, span / 2);
    a.on_key(key(KeyCode::Char('-')));
    a.on_key(key(KeyCode::Char('-')));
    assert_eq!(a.span_ns, span * 2);
    assert!(a.follow);
    // The whole 10 s is in view: nothing before 0 to pan to.
    a.on_key(key(KeyCode::Left));
    assert_eq!(a.range(), (0, 10_000_000_000));
    a.on_key(key(KeyCode::Char('f')));
    a.on_key(key(KeyCode::Char('+')));
    assert_eq!(a.span_ns, span);
    assert_eq!(a.on_key(key(KeyCode::Left)), vec![Action::Window]);
    assert!(!a.follow, "panning stops following");
    assert_eq!(a.range().1, 10_000_000_000 - span / 4);
    a.on_key(key(KeyCode::Char('l')));
    assert_eq!(a.range().1, 10_000_000_000);
    a.on_key(key(KeyCode::Char('f')));
    assert!(a.follow);
}

#[test]
fn a_warning_jumps_to_its_moment_and_task() {
    let mut a = app();
    a.state.warnings.push(Warning {
        id: 0,
        kind: WarningKind::BlockingPoll,
        task: Some(3),
        task_name: Some("gamma".into()),
        at_ns: 4_000_000_000,
        last_ns: 4_000_000_000,
        count: 1,
        value: 20_000_000,
        message: "gamma blocked".into(),
        context: None,
        why: String::new(),
        fix: String::new(),
        withdrawn: false,
    });
    a.view = View::Warnings;
    assert_eq!(a.on_key(key(KeyCode::Enter)), vec![Action::Window]);
    assert_eq!(a.view, View::Timeline);
    let (start, end) = a.range();
    assert!(start <= 4_000_000_000 && 4_000_000_000 <= end);
    assert_eq!(a.selected_task(), Some(3));
}

#[test]
fn replay_keys_help_and_quit() {
    let mut a = app();
    assert!(
        a.on_key(key(KeyCode::Char('p'))).is_empty(),
        "not a replay: nothing to pause"
    );
    a.state.replay = Some(Replay {
        paused: false,
        speed: 1.0,
    });
    assert_eq!(
        a.on_key(key(KeyCode::Char('p'))),
        vec![Action::Replay(ReplayAction::Pause, None)]
    );
    assert_eq!(
        a.on_key(key(KeyCode::Char(']'))),
        vec![Action::Replay(ReplayAction::Speed, Some(2.0))]
    );
    assert_eq!(
        a.on_key(key(KeyCode::Char('['))),
        vec![Action::Replay(ReplayAction::Speed, Some(0.5))]
    );
    a.state.replay = Some(Replay {
        paused: true,
        speed: 0.5,
    });
    assert_eq!(
        a.on_key(key(KeyCode::Char(' '))),
        vec![Action::Replay(ReplayAction::Play, None)]
    );
    a.on_key(key(KeyCode::Char('?')));
    assert!(a.help);
    assert!(
        a.on_key(key(KeyCode::Char('q'))).is_empty(),
        "a key closes the help first"
    );
    assert!(!a.help);
    assert_eq!(a.on_key(key(KeyCode::Char('q'))), vec![Action::Quit]);
    assert_eq!(
        a.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        vec![Action::Quit]
    );
}

#[test]
fn the_mouse_wheel_scrolls_and_ctrl_wheel_zooms_the_timeline() {
    use ratatui::crossterm::event::{MouseEvent, MouseEventKind};
    let mouse = |kind, modifiers| MouseEvent {
        kind,
        column: 10,
        row: 5,
        modifiers,
    };
    let mut a = app();
    a.on_mouse(mouse(MouseEventKind::ScrollDown, KeyModifiers::NONE));
    assert_eq!(a.selected(), 2, "three rows down, clamped");
    a.on_mouse(mouse(MouseEventKind::ScrollUp, KeyModifiers::NONE));
    assert_eq!(a.selected(), 0);
    a.view = View::Timeline;
    let span = a.span_ns;
    assert_eq!(
        a.on_mouse(mouse(MouseEventKind::ScrollUp, KeyModifiers::CONTROL)),
        vec![Action::Window]
    );
    assert_eq!(a.span_ns, span / 2);
}

#[test]
fn the_key_that_closes_the_lesson_also_does_what_it_does() {
    let mut a = app();
    a.lesson = Some(looptrace_api::Note {
        title: "hello".into(),
        text: "watch Bob".into(),
    });
    a.lesson_open = true;
    a.on_key(key(KeyCode::Char('2')));
    assert!(!a.lesson_open);
    assert_eq!(
        a.view,
        View::Timeline,
        "2 closed the lesson and showed the timeline"
    );
    // Esc, q, Enter, Space and i only close it: q does not quit from the lesson.
    for c in [
        KeyCode::Esc,
        KeyCode::Char('q'),
        KeyCode::Enter,
        KeyCode::Char(' '),
    ] {
        a.lesson_open = true;
        assert_eq!(a.on_key(key(c)), vec![], "{c:?}");
        assert!(!a.lesson_open);
        assert_eq!(a.view, View::Timeline);
    }
}

#[test]
fn open_states_are_counted_up_to_now() {
    let mut t = task_summary(1, "sleeper", 1);
    t.state = looptrace_api::TaskState::Idle;
    t.idle_ns = 1_000;
    t.state_since_ns = 100;
    t.as_of_ns = 500_000_000;
    let (_, _, idle) = looptrace_tui::state::totals(&t, 2_500_000_000);
    assert_eq!(
        idle,
        1_000 + 2_000_000_000,
        "idle since the figures, two more seconds"
    );
    t.ended_ns = Some(600);
    assert_eq!(looptrace_tui::state::totals(&t, 9_000_000_000).2, 1_000);
}

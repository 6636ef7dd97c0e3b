//! The terminal UI at 80x24 and at 160x45, rendered with ratatui's TestBackend
//! from what a collector serves about a demo (`blocking`) and a real app (the
//! attach example): every view's text fits without overwriting, numbers keep
//! their units, the help is not cut, the timeline's ticks are round, the
//! blocking pool's threads have lanes and the request context is shown.

mod support;

use looptrace_api::{Message, WindowMessage};
use looptrace_collector::hub::{message_text, Hub, HubConfig, Source};
use looptrace_tui::{view, App, State, Theme, View};
use looptrace_wire::{encode_header, Recording};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 45)];

fn deliver(state: &mut State, m: Message) -> Option<u64> {
    state.apply(serde_json::from_str(&message_text(&m)).expect("a message reads back"))
}

/// The app as it stands talking to a collector that holds `rec`, its timeline
/// fitted to the whole session for a terminal `width` wide.
fn app_for(rec: &Recording, width: u16) -> App {
    let hub = Hub::new(HubConfig::default());
    let mut frame = Vec::new();
    encode_header(&rec.header, &mut frame);
    let id = hub.open(rec.header.clone(), &frame, Source::Replay);
    hub.ingest(id, &rec.events);
    let mut state = State {
        connected: true,
        ..State::default()
    };
    let sessions = Message::Sessions {
        sessions: hub.sessions(),
        replay: None,
    };
    deliver(&mut state, sessions);
    deliver(&mut state, Message::Snapshot(hub.snapshot(id).unwrap()));
    let end = rec.events.iter().map(|e| e.ts_ns).max().unwrap();
    let columns = view::timeline_columns(width) as usize;
    let window = hub.window(id, 0, end, 0, columns).unwrap();
    deliver(
        &mut state,
        Message::Window(WindowMessage {
            id: Some(0),
            session: id,
            window,
        }),
    );
    // The task a warning is about, in detail.
    let task = state
        .warnings
        .iter()
        .find_map(|w| w.task)
        .or_else(|| state.tasks.keys().next().copied())
        .unwrap();
    deliver(
        &mut state,
        Message::Task(hub.task_message(id, task).unwrap()),
    );
    let mut app = App::new(state);
    app.note = Some("browser: http://127.0.0.1:40123/".into());
    app.follow = false;
    app.end_ns = end;
    app.span_ns = end;
    let row = app.rows().iter().position(|t| t.id == task).unwrap();
    app.select(row);
    app
}

fn render(app: &mut App, w: u16, h: u16) -> Vec<String> {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| view::render(app, &Theme { color: true }, f))
        .unwrap();
    let buf = term.backend().buffer().clone();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect())
        .collect()
}

/// Every number with a decimal point is followed by its unit (`1.70s`,
/// `265.2 ms`, `30%`); version numbers and addresses are not measurements.
fn units_kept(lines: &[String]) -> Result<(), String> {
    for line in lines {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if !chars[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let number: String = chars[start..i].iter().collect();
            let before = start.checked_sub(1).map(|j| chars[j]);
            let measured = number.matches('.').count() == 1
                && !number.ends_with('.')
                && !before.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '.');
            if !measured {
                continue;
            }
            let rest: String = chars[i..].iter().collect();
            let rest = rest.strip_prefix(' ').unwrap_or(&rest);
            if !["ns", "µs", "ms", "s", "%", "×"]
                .iter()
                .any(|u| rest.starts_with(u))
            {
                return Err(format!("{number:?} has no unit in {line:?}"));
            }
        }
    }
    Ok(())
}

/// The words of `text`, in order, somewhere on screen (wrapped as it may be).
fn shows(lines: &[String], text: &str) -> bool {
    let screen: Vec<String> = lines
        .iter()
        .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect();
    let screen = screen.join(" ");
    let want: Vec<&str> = text.split_whitespace().collect();
    screen.contains(&want.join(" "))
}

fn check_frame(lines: &[String], what: &str) {
    let all = lines.join("\n");
    for tab in ["1 Tasks", "2 Timeline", "3 Task", "4 Warnings", "5 Workers"] {
        assert!(lines[0].contains(tab), "{what}: tab {tab:?} in\n{all}");
    }
    assert!(
        lines
            .last()
            .unwrap()
            .trim_end()
            .ends_with("? help · q quit"),
        "{what}: the status bar keeps its keys:\n{all}"
    );
    if let Err(e) = units_kept(lines) {
        panic!("{what}: {e}\n{all}");
    }
}

fn every_view(rec: &Recording, name: &str, also: impl Fn(View, &[String], &App, (u16, u16))) {
    for (w, h) in SIZES {
        let mut app = app_for(rec, w);
        for v in View::ALL {
            app.view = v;
            let lines = render(&mut app, w, h);
            let what = format!("{name} {v:?} at {w}x{h}");
            check_frame(&lines, &what);
            also(v, &lines, &app, (w, h));
        }
        // The help, sized to its text: every line of it whole.
        app.help = true;
        let lines = render(&mut app, w, h);
        let top: Vec<char> = lines
            .iter()
            .find(|l| l.contains('┌'))
            .expect("the help's box")
            .chars()
            .collect();
        let left = top.iter().position(|c| *c == '┌').expect("the help's box");
        let right = top.iter().position(|c| *c == '┐').expect("the help's box");
        let inner = right - left - 1;
        for l in view::help::lines(inner) {
            assert!(
                lines.iter().any(|s| s.contains(l.trim_end())),
                "{name} help at {w}x{h}: {l:?} cut:\n{}",
                lines.join("\n")
            );
        }
        app.help = false;
    }
}

/// Round tick labels: `|1.5 s`, never `|0.425758 s`.
fn ticks_round(lines: &[String], what: &str) {
    let axis = lines
        .iter()
        .find(|l| l.contains("|0 s") || l.trim_start().starts_with('|'))
        .unwrap_or_else(|| panic!("{what}: no axis:\n{}", lines.join("\n")));
    for label in axis.split('|').skip(1) {
        let value = label.trim().trim_end_matches(" s").trim_end_matches('s');
        let decimals = value.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(decimals <= 2, "{what}: tick {label:?} in {axis:?}");
    }
}

#[test]
fn the_blocking_demo_fits_80x24_and_160x45() {
    let rec = support::record_demo("blocking");
    every_view(&rec, "blocking", |v, lines, app, (w, h)| {
        let what = format!("blocking {v:?} at {w}x{h}");
        let all = lines.join("\n");
        match v {
            View::Tasks => {
                for t in app.state.tasks.values() {
                    let shown: String = t.name.chars().take(5).collect();
                    assert!(all.contains(&shown), "{what}: {} listed:\n{all}", t.name);
                }
            }
            View::Timeline => {
                ticks_round(lines, &what);
                assert!(all.contains("worker 0"), "{what}:\n{all}");
                assert!(
                    all.contains("blocking thread"),
                    "{what}: the blocking pool's thread has a lane:\n{all}"
                );
                let blocker = lines
                    .iter()
                    .find(|l| l.starts_with("std::"))
                    .unwrap_or_else(|| panic!("{what}: the blocker's lane:\n{all}"));
                assert!(
                    blocker.contains('!'),
                    "{what}: its warning marked: {blocker:?}"
                );
                // Lane labels end before the plot: a space in the column between.
                let label = if w >= 140 { 36 } else { 18 };
                for l in lines.iter().filter(|l| l.contains('#')) {
                    assert_eq!(l.chars().nth(label), Some(' '), "{what}: {l:?}");
                }
            }
            View::Warnings => {
                assert!(!app.state.warnings.is_empty());
                assert!(
                    all.contains("what to do:"),
                    "{what}: the selected one's advice:\n{all}"
                );
                for warning in &app.state.warnings {
                    assert!(
                        shows(lines, &warning.message),
                        "{what}: {:?} in full:\n{all}",
                        warning.message
                    );
                }
            }
            View::Workers => {
                assert!(
                    all.contains("busy over time"),
                    "{what}: the sparkline's label:\n{all}"
                );
            }
            View::Detail => assert!(all.contains("spawned at"), "{what}:\n{all}"),
        }
    });
}

#[test]
fn a_real_app_fits_80x24_and_160x45_and_names_its_requests() {
    let rec = support::record_service(false);
    every_view(&rec, "http-service", |v, lines, app, (w, h)| {
        let what = format!("http-service {v:?} at {w}x{h}");
        let all = lines.join("\n");
        assert!(!all.contains("registry"), "{what}: readable names:\n{all}");
        match v {
            View::Warnings => {
                let w = app
                    .state
                    .warnings
                    .iter()
                    .find(|w| w.context.as_deref() == Some("GET /blocking"))
                    .expect("the /blocking warning with its route");
                assert!(shows(lines, &w.message), "{what}:\n{all}");
                assert!(all.contains("GET /blocking"), "{what}:\n{all}");
            }
            View::Detail => {
                assert!(
                    all.contains("doing") && all.contains("GET /blocking"),
                    "{what}: the task says what it was doing:\n{all}"
                );
                assert!(all.contains("src/serve/mod.rs:"), "{what}:\n{all}");
            }
            View::Timeline => ticks_round(lines, &what),
            _ => {}
        }
    });
}

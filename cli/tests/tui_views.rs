//! Each view rendered with ratatui's TestBackend from a known model: the hello
//! demo's recording, as the collector serves it.

use looptrace_api::{Batch, Mark, Message, WindowMessage};
use looptrace_collector::hub::{message_text, Hub, HubConfig, Source, WindowReply};
use looptrace_tui::{view, App, State, Theme, View};
use looptrace_wire::{encode_header, Recording};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// Gives `state` a message as the viewer socket carries it: as JSON.
fn deliver(state: &mut State, m: Message) -> Option<u64> {
    state.apply(serde_json::from_str(&message_text(&m)).expect("a message reads back"))
}

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hello.ltrace");

/// The state the TUI reaches talking to a collector that holds the hello run.
fn hello_state(columns: usize) -> State {
    let rec = Recording::open(FIXTURE).expect("fixture reads");
    let hub = Hub::new(HubConfig::default());
    let mut frame = Vec::new();
    encode_header(&rec.header, &mut frame);
    let id = hub.open(rec.header.clone(), &frame, Source::Replay);
    hub.ingest(id, &rec.events);
    let end = rec.events.iter().map(|e| e.ts_ns).max().unwrap();
    let mut state = state_of(&hub, id, end, columns);
    let bob = state.tasks.values().find(|t| t.name == "Bob").unwrap().id;
    deliver(
        &mut state,
        Message::Task(hub.task_message(id, bob).unwrap()),
    );
    state
}

/// What the TUI knows of session `id` of `hub` once connected: the session
/// list, its snapshot, and its timeline up to `end` in `columns` buckets.
fn state_of(hub: &Hub, id: u64, end: u64, columns: usize) -> State {
    let mut state = State {
        connected: true,
        ..State::default()
    };
    let sessions = Message::Sessions {
        sessions: hub.sessions(),
        replay: None,
    };
    assert_eq!(deliver(&mut state, sessions), Some(id));
    deliver(&mut state, Message::Snapshot(hub.snapshot(id).unwrap()));
    let window = hub.window(id, 0, end, 0, columns).unwrap();
    assert!(
        matches!(window, WindowReply::Aggregate(_)),
        "aggregate asked"
    );
    deliver(
        &mut state,
        Message::Window(WindowMessage {
            id: Some(0),
            session: id,
            window,
        }),
    );
    state
}

fn render(app: &mut App, theme: &Theme, w: u16, h: u16) -> Vec<String> {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| view::render(app, theme, f)).unwrap();
    let buf = term.backend().buffer().clone();
    (0..h)
        .map(|y| {
            (0..w)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect()
}

fn row<'a>(lines: &'a [String], needle: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{}", lines.join("\n")))
}

#[test]
fn the_task_table_lists_the_hello_tasks_with_their_polls() {
    let mut app = App::new(hello_state(60));
    app.note = Some("browser: http://127.0.0.1:7878/".into());
    let lines = render(&mut app, &Theme { color: true }, 120, 20);
    assert!(
        lines[0]
            .trim_end()
            .ends_with("browser: http://127.0.0.1:7878/"),
        "{}",
        lines[0]
    );
    for name in ["Alice", "Bob", "Charlie"] {
        let r = row(&lines, &format!(" {name} "));
        let cells: Vec<&str> = r.split_whitespace().collect();
        assert_eq!(
            cells[2], "completed",
            "a finished task by how it ended: {r}"
        );
        assert_eq!(cells[3], "2", "{name} polled twice: {r}");
    }
    // By id: Alice, Bob, Charlie (spawn order).
    let order: Vec<usize> = ["Alice", "Bob", "Charlie"]
        .iter()
        .map(|n| lines.iter().position(|l| l.contains(n)).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    assert!(row(&lines, "demos hello").contains("3 tasks"));
}

#[test]
fn sorting_and_filtering_change_the_rows() {
    let mut app = App::new(hello_state(60));
    app.sort = looptrace_tui::app::Column::Name;
    app.descending = true;
    let lines = render(&mut app, &Theme { color: true }, 120, 20);
    let pos = |n: &str| lines.iter().position(|l| l.contains(n)).unwrap();
    assert!(pos("Charlie") < pos("Bob") && pos("Bob") < pos("Alice"));
    // Idle time sorts Bob (1 s), Alice (2 s), Charlie (3 s).
    app.sort = looptrace_tui::app::Column::Idle;
    app.descending = false;
    let lines = render(&mut app, &Theme { color: true }, 120, 20);
    let pos = |n: &str| lines.iter().position(|l| l.contains(n)).unwrap();
    assert!(pos("Bob") < pos("Alice") && pos("Alice") < pos("Charlie"));
    app.filter = "li".into();
    let lines = render(&mut app, &Theme { color: true }, 120, 20);
    assert!(
        lines.iter().any(|l| l.contains("Alice")) && lines.iter().any(|l| l.contains("Charlie"))
    );
    assert!(
        !lines.iter().any(|l| l.contains(" Bob ")),
        "Bob filtered out"
    );
    assert!(row(&lines, "filter: li").contains("filter"));
}

/// The timeline view over the whole hello run, `width` columns wide: the app, the
/// aggregated window it shows, and the plot's columns.
fn timeline_app(width: u16) -> (App, looptrace_api::Aggregate, usize) {
    let columns = view::timeline_columns(width) as usize;
    let mut app = App::new(hello_state(columns));
    app.view = View::Timeline;
    app.follow = false;
    let tl = app.state.timeline.clone().unwrap();
    app.end_ns = tl.end_ns;
    app.span_ns = tl.end_ns - tl.start_ns;
    (app, tl, columns)
}

#[test]
fn the_timeline_shows_each_task_running_when_its_timer_fired() {
    let width = 120u16;
    let (mut app, tl, columns) = timeline_app(width);
    let lines = render(&mut app, &Theme { color: true }, width, 24);
    assert!(
        row(&lines, "worker 0").contains('·'),
        "parked time on the worker lane"
    );
    for (name, secs) in [("Bob", 1.0), ("Alice", 2.0), ("Charlie", 3.0)] {
        let r: Vec<char> = row(&lines, &format!("{name} #")).chars().collect();
        let col = 19 + ((secs * 1e9 - tl.start_ns as f64) / tl.bucket_ns as f64) as usize;
        let around: String = r[col.saturating_sub(1)..(col + 2).min(r.len())]
            .iter()
            .collect();
        assert!(
            around.contains('▌') || around.contains('█'),
            "{name} runs at {secs} s: {around:?} in {:?}",
            r.iter().collect::<String>()
        );
        // Idle in between.
        assert_eq!(r[19 + columns / 6], '─', "{name} idle early on");
    }
}

#[test]
fn marks_are_flagged_on_the_timeline_with_their_labels() {
    let width = 120u16;
    let (mut app, tl, columns) = timeline_app(width);
    // As a live batch brings them.
    let mark = |secs: u64, label: &str| Mark {
        at_ns: secs * 1_000_000_000,
        thread: 0,
        label: label.into(),
    };
    let batch = Batch {
        session: app.state.session.unwrap(),
        now_ns: tl.end_ns,
        event_count: 2,
        tasks: vec![],
        warnings: vec![],
        marks: vec![mark(1, "Bob's turn"), mark(2, "Alice's turn")],
        events: None,
        intervals: None,
        workers: None,
        wakes: None,
        markers: None,
        queues: None,
        events_skipped: Some(2),
    };
    deliver(&mut app.state, Message::Batch(batch));
    assert_eq!(app.state.marks.len(), 2);
    let lines = render(&mut app, &Theme { color: true }, width, 24);
    let r: Vec<char> = row(&lines, "▼Bob's turn").chars().collect();
    let col = |secs: f64| {
        19 + ((secs * 1e9 - tl.start_ns as f64) / (tl.end_ns - tl.start_ns) as f64 * columns as f64)
            as usize
    };
    assert_eq!(r[col(1.0)], '▼', "{:?}", r.iter().collect::<String>());
    assert_eq!(r[col(2.0)], '▼');
    assert!(r.iter().collect::<String>().contains("▼Alice's turn"));
    // Out of view: no flag row.
    app.end_ns = 900_000_000;
    app.span_ns = 500_000_000;
    let lines = render(&mut app, &Theme { color: true }, width, 24);
    assert!(!lines.iter().any(|l| l.contains('▼')));
}

#[test]
fn the_task_view_shows_stats_wakes_and_recent_polls() {
    let mut app = App::new(hello_state(60));
    let bob = app.rows().iter().position(|t| t.name == "Bob").unwrap();
    app.select(bob);
    app.view = View::Detail;
    let lines = render(&mut app, &Theme { color: true }, 120, 34);
    assert!(row(&lines, "Bob #").contains("Esc back"));
    assert!(row(&lines, "spawned at").contains("demos/src/hello.rs"));
    assert!(row(&lines, "polls").contains('2'));
    assert!(row(&lines, "by timer").trim_end().ends_with('1'));
    assert!(row(&lines, "poll time").contains("poll time"));
    let ready = row(&lines, "Ready");
    assert!(
        ready.contains("timer"),
        "the last poll was woken by the timer: {ready}"
    );
    assert!(
        lines.iter().any(|l| l.contains("Pending")),
        "the first poll returned Pending"
    );
}

#[test]
fn warnings_workers_help_and_a_tiny_terminal() {
    let mut app = App::new(hello_state(60));
    app.view = View::Warnings;
    let lines = render(&mut app, &Theme { color: true }, 100, 20);
    assert!(row(&lines, "no warnings").contains("no warnings"));
    app.view = View::Workers;
    let lines = render(&mut app, &Theme { color: true }, 100, 20);
    assert!(row(&lines, "worker 0").contains("polls"));
    app.help = true;
    let lines = render(&mut app, &Theme { color: true }, 100, 24);
    assert!(row(&lines, "keys").contains("keys"));
    assert!(row(&lines, "q, Ctrl-C").contains("quit"));
    let lines = render(&mut app, &Theme { color: true }, 40, 8);
    assert!(row(&lines, "too small").contains("40×8"));
}

#[test]
fn no_color_means_no_colours() {
    let mut app = App::new(hello_state(60));
    app.view = View::Timeline;
    let mut term = Terminal::new(TestBackend::new(100, 20)).unwrap();
    term.draw(|f| view::render(&mut app, &Theme { color: false }, f))
        .unwrap();
    let buf = term.backend().buffer();
    assert!(buf
        .content()
        .iter()
        .all(|c| c.fg == ratatui::style::Color::Reset && c.bg == ratatui::style::Color::Reset));
    term.draw(|f| view::render(&mut app, &Theme { color: true }, f))
        .unwrap();
    assert!(term
        .backend()
        .buffer()
        .content()
        .iter()
        .any(|c| c.fg != ratatui::style::Color::Reset));
}

#[test]
fn a_dropped_connection_shows_a_banner() {
    let mut app = App::new(hello_state(60));
    app.state.connected = false;
    let lines = render(&mut app, &Theme { color: true }, 100, 20);
    assert!(
        lines[1].contains("Lost the connection to the collector; reconnecting"),
        "{}",
        lines[1]
    );
}

#[test]
fn the_lesson_panel_shows_the_demo_text_wrapped_and_any_key_closes_it() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = App::new(hello_state(60));
    let lesson = looptrace_tui::Lesson::new("hello: what to watch for", "Each task is polled once and returns Pending while its timer runs; the timer wakes Bob at 1 s.\nThe run takes about 3 s, not 6.");
    let (version, note) = lesson.read();
    app.lesson = Some(note);
    app.lesson_open = true;
    let theme = Theme { color: true };
    let lines = render(&mut app, &theme, 70, 20);
    let screen = lines.join("\n");
    assert!(
        row(&lines, "hello: what to watch for").contains('─'),
        "the title sits on the panel's border:\n{screen}"
    );
    // Wrapped inside the panel: every word is there, no line overflows its border.
    for word in ["Pending", "timer", "Bob", "about", "not"] {
        assert!(screen.contains(word), "{word} in\n{screen}");
    }
    assert!(screen.contains("Esc closes this"));
    // Sized to its text: the hint is the last row inside the border, and paragraphs are
    // separated by one blank row.
    let hint = lines
        .iter()
        .position(|l| l.contains("Esc closes this"))
        .unwrap();
    assert!(lines[hint + 1].contains('└'), "{screen}");
    let first = lines
        .iter()
        .position(|l| l.contains("Each task is polled"))
        .unwrap();
    assert!(lines[first - 1].contains("┌"), "{screen}");
    let wide = render(&mut app, &theme, 140, 20);
    assert!(
        row(&wide, "? help").contains("i lesson"),
        "the status line says how to reopen it"
    );
    // Any key closes it; `i` opens it again.
    assert!(app
        .on_key(KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE))
        .is_empty());
    assert!(!app.lesson_open);
    assert!(!render(&mut app, &theme, 70, 20)
        .join("\n")
        .contains("what to watch for"));
    app.on_key(KeyEvent::new(KeyCode::Char('i'), KeyModifiers::NONE));
    assert!(app.lesson_open);
    // A new text bumps the version: the UI reopens the panel for it.
    lesson.set("what happened", "Bob finished first, after 1.0 s.");
    let (v2, note) = lesson.read();
    assert!(v2 > version);
    assert_eq!(
        (note.title.as_str(), note.text.as_str()),
        ("what happened", "Bob finished first, after 1.0 s.")
    );
}

/// An app that samples its queues: the workers view plots each worker's local
/// queue over the timeline's range, under its busy share, and says the deepest.
#[test]
fn the_workers_view_plots_each_queue_over_time() {
    use looptrace_wire::{Event, EventKind, Flavor, Header, ThreadRole};
    let header = Header {
        process_name: "queues".into(),
        pid: 1,
        flavor: Flavor::MultiThread,
        workers: 2,
        clock_origin_unix_ns: 0,
    };
    let ev = |ts_ns: u64, thread: u32, kind: EventKind| Event {
        ts_ns,
        thread,
        kind,
    };
    let mut events = Vec::new();
    for w in 0..2 {
        events.push(ev(
            0,
            w,
            EventKind::Thread {
                role: ThreadRole::Worker(w),
                name: format!("w{w}"),
            },
        ));
    }
    for (i, depth) in [0u32, 2, 6, 3, 1, 0].into_iter().enumerate() {
        events.push(ev(
            (i as u64 + 1) * 1_000_000,
            0,
            EventKind::Queues(Box::new(looptrace_wire::Queues {
                local: vec![depth, 0],
                steals: vec![0, i as u64],
                injection: 0,
            })),
        ));
    }
    // A task polled now and then, so the window has something to sum.
    for i in 0..5u64 {
        let ts = i * 2_000_000 + 500_000;
        events.push(ev(ts, 0, EventKind::PollStart { task: 1 }));
        events.push(ev(
            ts + 100_000,
            0,
            EventKind::PollEnd {
                task: 1,
                ready: false,
                clones: 0,
                drops: 0,
                context: None,
            },
        ));
    }
    events.sort_by_key(|e| e.ts_ns);
    events.push(ev(10_000_000, 0, EventKind::Park));
    let hub = Hub::new(HubConfig::default());
    let mut frame = Vec::new();
    encode_header(&header, &mut frame);
    let id = hub.open(header, &frame, Source::Replay);
    hub.ingest(id, &events);
    let mut app = App::new(state_of(&hub, id, 10_000_000, 40));
    app.view = View::Workers;
    let lines = render(&mut app, &Theme { color: true }, 80, 24);
    let queue = row(&lines, "queue 0, most 6");
    // The plot: bars where the queue held tasks, none before the first.
    let plot: String = queue.chars().skip_while(|c| *c != '6').skip(1).collect();
    assert!(
        plot.chars().any(|c| "▁▂▃▄▅▆▇█".contains(c)),
        "a queue plot: {queue:?}\n{}",
        lines.join("\n")
    );
    assert!(row(&lines, "worker 1").contains("5 steals"));
    // Nothing cut at 80 columns: each worker's line ends with its steals.
    for worker in ["worker 0", "worker 1"] {
        assert!(
            row(&lines, worker).trim_end().ends_with("steals"),
            "{}",
            lines.join("\n")
        );
    }
}

//! The terminal UI's state besides the data: which view, sorting, filtering,
//! selection, the timeline's range; and what each key does.

use crate::state::State;
use looptrace_api::{Note, ReplayAction, TaskSummary as Task, WarningKind};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui::widgets::TableState;

/// The screens, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Tasks,
    Timeline,
    Detail,
    Warnings,
    Workers,
}

impl View {
    pub const ALL: [View; 5] = [
        View::Tasks,
        View::Timeline,
        View::Detail,
        View::Warnings,
        View::Workers,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Tasks => "Tasks",
            View::Timeline => "Timeline",
            View::Detail => "Task",
            View::Warnings => "Warnings",
            View::Workers => "Workers",
        }
    }
}

/// Task table columns (sortable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Id,
    Name,
    State,
    Polls,
    Busy,
    Scheduled,
    Idle,
    Wakes,
    LastPoll,
    Warnings,
}

impl Column {
    pub const ALL: [Column; 10] = [
        Column::Id,
        Column::Name,
        Column::State,
        Column::Polls,
        Column::Busy,
        Column::Scheduled,
        Column::Idle,
        Column::Wakes,
        Column::LastPoll,
        Column::Warnings,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Column::Id => "id",
            Column::Name => "name",
            Column::State => "state",
            Column::Polls => "polls",
            Column::Busy => "busy",
            Column::Scheduled => "sched",
            Column::Idle => "idle",
            Column::Wakes => "wakes",
            Column::LastPoll => "last poll",
            Column::Warnings => "warn",
        }
    }

    fn key(self, t: &Task) -> (u64, String) {
        let n = |v: u64| (v, String::new());
        match self {
            Column::Id => n(t.id),
            Column::Name => (0, t.name.to_lowercase()),
            Column::State => (0, t.state.to_string()),
            Column::Polls => n(t.polls),
            Column::Busy => n(t.busy_ns),
            Column::Scheduled => n(t.scheduled_ns),
            Column::Idle => n(t.idle_ns),
            Column::Wakes => n(t.wakes.total()),
            Column::LastPoll => n(t.last_poll_ns.unwrap_or(0)),
            Column::Warnings => n(t.warnings.into()),
        }
    }
}

/// What the app asks of the connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    /// Ask for the timeline window in view.
    Window,
    /// Ask for a task's details.
    Task(u64),
    /// Replay control.
    Replay(ReplayAction, Option<f64>),
    /// Show another session.
    Session(u64),
}

const SPEEDS: [f64; 7] = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0];
const MIN_SPAN: u64 = 10_000;

pub struct App {
    pub state: State,
    pub view: View,
    pub sort: Column,
    pub descending: bool,
    pub filter: String,
    pub filtering: bool,
    /// The task table's selection and scroll (its selected row is the timeline's
    /// selected task too), kept from frame to frame.
    pub table: TableState,
    /// The warning list's.
    pub warning_table: TableState,
    pub help: bool,
    /// Timeline: keep the newest moment at the right edge.
    pub follow: bool,
    pub span_ns: u64,
    /// Timeline: its right edge when not following.
    pub end_ns: u64,
    /// First task row shown in the timeline (the timeline keeps it, knowing its
    /// room, when it draws).
    pub scroll: usize,
    /// Shown at the top right.
    pub note: Option<String>,
    /// The lesson panel's title and text (a demo's), if any.
    pub lesson: Option<Note>,
    /// Whether the lesson panel is open.
    pub lesson_open: bool,
}

impl Default for App {
    fn default() -> Self {
        App::new(State::default())
    }
}

impl App {
    pub fn new(state: State) -> App {
        App {
            state,
            view: View::Tasks,
            sort: Column::Id,
            descending: false,
            filter: String::new(),
            filtering: false,
            table: TableState::default().with_selected(Some(0)),
            warning_table: TableState::default().with_selected(Some(0)),
            help: false,
            follow: true,
            span_ns: 5_000_000_000,
            end_ns: 0,
            scroll: 0,
            note: None,
            lesson: None,
            lesson_open: false,
        }
    }

    /// Tasks as the table shows them: filtered by name, sorted.
    pub fn rows(&self) -> Vec<&Task> {
        let q = self.filter.to_lowercase();
        let mut rows: Vec<&Task> = self
            .state
            .tasks
            .values()
            .filter(|t| q.is_empty() || t.name.to_lowercase().contains(&q))
            .collect();
        rows.sort_by(|a, b| {
            let o = self
                .sort
                .key(a)
                .cmp(&self.sort.key(b))
                .then(a.id.cmp(&b.id));
            if self.descending {
                o.reverse()
            } else {
                o
            }
        });
        rows
    }

    pub fn selected_task(&self) -> Option<u64> {
        self.rows().get(self.selected()).map(|t| t.id)
    }

    /// The selected row of the task table.
    pub fn selected(&self) -> usize {
        self.table.selected().unwrap_or(0)
    }

    /// Selects row `i` of the task table.
    pub fn select(&mut self, i: usize) {
        self.table.select(Some(i));
    }

    /// The selected warning.
    pub fn selected_warning(&self) -> usize {
        self.warning_table.selected().unwrap_or(0)
    }

    /// The timeline's time range.
    pub fn range(&self) -> (u64, u64) {
        let end = if self.follow {
            self.state.now_ns.max(self.span_ns / 10)
        } else {
            self.end_ns
        };
        (
            end.saturating_sub(self.span_ns),
            end.max(self.span_ns.min(end)),
        )
    }

    fn stop_following(&mut self) {
        if self.follow {
            self.end_ns = self.range().1;
            self.follow = false;
        }
    }

    fn zoom(&mut self, factor: f64) {
        let (start, end) = self.range();
        let mid = (start + end) / 2;
        // Never wider than the whole session (a little more): zooming out past it
        // would only add presses to come back.
        let widest = match self.state.now_ns {
            0 => u64::MAX,
            now => now.saturating_add(now / 20).max(MIN_SPAN),
        };
        self.span_ns = ((self.span_ns as f64 * factor) as u64).clamp(MIN_SPAN, widest);
        if !self.follow {
            self.end_ns = mid + self.span_ns / 2;
        }
    }

    fn pan(&mut self, fraction: f64) {
        self.stop_following();
        let d = (self.span_ns as f64 * fraction.abs()) as u64;
        self.end_ns = if fraction < 0.0 {
            self.end_ns
                .saturating_sub(d)
                .max(self.span_ns.min(self.end_ns))
        } else {
            self.end_ns + d
        };
    }

    fn move_selection(&mut self, delta: i64) {
        let n = match self.view {
            View::Warnings => self.state.warnings.len(),
            _ => self.rows().len(),
        };
        if n == 0 {
            return;
        }
        let table = if self.view == View::Warnings {
            &mut self.warning_table
        } else {
            &mut self.table
        };
        let cur = table.selected().unwrap_or(0) as i64;
        table.select(Some((cur + delta).clamp(0, n as i64 - 1) as usize));
    }

    fn replay_speed(&self, up: bool) -> Option<f64> {
        let cur = self.state.replay?.speed;
        let i = SPEEDS.iter().position(|s| *s >= cur - 1e-9).unwrap_or(3);
        let j = if up {
            (i + 1).min(SPEEDS.len() - 1)
        } else {
            i.saturating_sub(1)
        };
        Some(SPEEDS[j])
    }

    /// What a key does.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return vec![Action::Quit];
        }
        if self.help {
            self.help = false;
            return vec![];
        }
        if self.lesson_open {
            self.lesson_open = false;
            // Keys that only close it; any other closes it and does what it does
            // (`2` shows the timeline).
            if matches!(
                key.code,
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char(' ' | 'i' | 'q')
            ) {
                return vec![];
            }
        }
        if self.filtering {
            match key.code {
                KeyCode::Esc => {
                    self.filter.clear();
                    self.filtering = false;
                }
                KeyCode::Enter => self.filtering = false,
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            self.select(0);
            return vec![];
        }
        let mut actions = vec![];
        match key.code {
            KeyCode::Char('q') => actions.push(Action::Quit),
            KeyCode::Char('?') => self.help = true,
            KeyCode::Char('i') if self.lesson.is_some() => self.lesson_open = true,
            KeyCode::Tab => self.switch(1, &mut actions),
            KeyCode::BackTab => self.switch(-1, &mut actions),
            KeyCode::Char(c @ '1'..='5') => {
                self.view = View::ALL[(c as u8 - b'1') as usize];
                self.entered(&mut actions);
            }
            KeyCode::Char('/') if matches!(self.view, View::Tasks | View::Timeline) => {
                self.filtering = true
            }
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::PageDown => self.move_selection(10),
            KeyCode::PageUp => self.move_selection(-10),
            KeyCode::Home | KeyCode::Char('g') => self.move_selection(-(1 << 30)),
            KeyCode::End | KeyCode::Char('G') => self.move_selection(1 << 30),
            KeyCode::Enter => match self.view {
                View::Tasks | View::Timeline => {
                    if let Some(id) = self.selected_task() {
                        self.view = View::Detail;
                        actions.push(Action::Task(id));
                    }
                }
                View::Warnings => {
                    if let Some(w) = self.state.warnings.get(self.selected_warning()).cloned() {
                        // Zoom to what it is about (the poll, or the wait), with a
                        // margin, within the session; its task selected.
                        self.view = View::Timeline;
                        self.follow = false;
                        let (from, to) = match w.kind {
                            WarningKind::BlockingPoll | WarningKind::NeverYields => {
                                (w.at_ns, w.at_ns.saturating_add(w.value))
                            }
                            WarningKind::SchedulingLatency => {
                                (w.at_ns.saturating_sub(w.value), w.at_ns)
                            }
                            _ => (w.at_ns, w.at_ns),
                        };
                        let pad = (to.saturating_sub(from) / 4).max(500_000);
                        let start = from.saturating_sub(pad);
                        let end = to
                            .saturating_add(pad)
                            .min(self.state.now_ns.max(to).saturating_add(1));
                        self.span_ns = end.saturating_sub(start).max(MIN_SPAN);
                        self.end_ns = start + self.span_ns;
                        if let Some(task) = w.task {
                            self.filter.clear();
                            if let Some(i) = self.rows().iter().position(|t| t.id == task) {
                                self.select(i);
                            }
                        }
                        actions.push(Action::Window);
                    }
                }
                _ => {}
            },
            KeyCode::Esc if self.view == View::Detail => self.view = View::Tasks,
            // Sorting: s / S pick the column, r reverses.
            KeyCode::Char('s') => self.cycle_sort(1),
            KeyCode::Char('S') => self.cycle_sort(-1),
            KeyCode::Char('r') => self.descending = !self.descending,
            // Timeline: zoom, pan, follow.
            KeyCode::Char('+') | KeyCode::Char('=') => {
                self.zoom(0.5);
                actions.push(Action::Window);
            }
            KeyCode::Char('-') | KeyCode::Char('_') => {
                self.zoom(2.0);
                actions.push(Action::Window);
            }
            KeyCode::Left | KeyCode::Char('h') => {
                self.pan(-0.25);
                actions.push(Action::Window);
            }
            KeyCode::Right | KeyCode::Char('l') => {
                self.pan(0.25);
                actions.push(Action::Window);
            }
            KeyCode::Char('f') => {
                self.follow = !self.follow;
                if !self.follow {
                    self.end_ns = self.state.now_ns;
                }
                actions.push(Action::Window);
            }
            KeyCode::Char('0') => {
                self.follow = true;
                self.span_ns = self.state.now_ns.max(MIN_SPAN) * 21 / 20;
                actions.push(Action::Window);
            }
            // Replay: pause/play and speed.
            KeyCode::Char('p') | KeyCode::Char(' ') if self.state.replay.is_some() => {
                let paused = self.state.replay.is_some_and(|r| r.paused);
                actions.push(Action::Replay(
                    if paused {
                        ReplayAction::Play
                    } else {
                        ReplayAction::Pause
                    },
                    None,
                ));
            }
            KeyCode::Char(']') => {
                if let Some(s) = self.replay_speed(true) {
                    actions.push(Action::Replay(ReplayAction::Speed, Some(s)));
                }
            }
            KeyCode::Char('[') => {
                if let Some(s) = self.replay_speed(false) {
                    actions.push(Action::Replay(ReplayAction::Speed, Some(s)));
                }
            }
            // Sessions: n / N.
            KeyCode::Char('n') | KeyCode::Char('N') => {
                let ids: Vec<u64> = self.state.sessions.iter().map(|s| s.id).collect();
                if let Some(i) = ids.iter().position(|id| Some(*id) == self.state.session) {
                    let j = if key.code == KeyCode::Char('n') {
                        (i + 1) % ids.len()
                    } else {
                        (i + ids.len() - 1) % ids.len()
                    };
                    actions.push(Action::Session(ids[j]));
                }
            }
            _ => {}
        }
        actions
    }

    fn cycle_sort(&mut self, step: i64) {
        let i = Column::ALL
            .iter()
            .position(|c| *c == self.sort)
            .unwrap_or(0) as i64;
        let n = Column::ALL.len() as i64;
        self.sort = Column::ALL[((i + step).rem_euclid(n)) as usize];
    }

    fn switch(&mut self, step: i64, actions: &mut Vec<Action>) {
        let i = View::ALL.iter().position(|v| *v == self.view).unwrap_or(0) as i64;
        self.view = View::ALL[((i + step).rem_euclid(View::ALL.len() as i64)) as usize];
        self.entered(actions);
    }

    fn entered(&mut self, actions: &mut Vec<Action>) {
        match self.view {
            View::Timeline | View::Workers => actions.push(Action::Window),
            View::Detail => {
                if let Some(id) = self.selected_task() {
                    actions.push(Action::Task(id));
                }
            }
            _ => {}
        }
    }

    /// Mouse: the wheel scrolls (zooms in the timeline with ctrl).
    pub fn on_mouse(&mut self, m: MouseEvent) -> Vec<Action> {
        let down = match m.kind {
            MouseEventKind::ScrollDown => true,
            MouseEventKind::ScrollUp => false,
            _ => return vec![],
        };
        if self.view == View::Timeline && m.modifiers.contains(KeyModifiers::CONTROL) {
            self.zoom(if down { 2.0 } else { 0.5 });
            return vec![Action::Window];
        }
        self.move_selection(if down { 3 } else { -3 });
        vec![]
    }
}

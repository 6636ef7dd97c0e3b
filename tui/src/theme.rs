//! Colours that read on dark and light terminals (the terminal's own foreground
//! and background, plus the basic ANSI colours), or none at all.

use looptrace_api::TaskState;
use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless `--no-color` or `NO_COLOR` says otherwise.
    pub fn from_env(no_color_flag: bool) -> Theme {
        let no_color = no_color_flag || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme { color: !no_color }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    pub fn muted(&self) -> Style {
        if self.color {
            Style::default().add_modifier(Modifier::DIM)
        } else {
            Style::default()
        }
    }
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    pub fn header(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }
    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    pub fn error(&self) -> Style {
        if self.color {
            Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }
    pub fn running(&self) -> Style {
        self.fg(Color::Green)
    }
    pub fn scheduled(&self) -> Style {
        self.fg(Color::Yellow)
    }
    pub fn idle(&self) -> Style {
        self.muted()
    }
    pub fn wake(&self) -> Style {
        self.fg(Color::Magenta)
    }
    pub fn worker(&self) -> Style {
        self.fg(Color::Cyan)
    }
    /// The style of a task state's name.
    pub fn state(&self, state: TaskState) -> Style {
        match state {
            TaskState::Running => self.running(),
            TaskState::Scheduled => self.scheduled(),
            TaskState::Idle => self.idle(),
            TaskState::Done => self.muted(),
        }
    }
}

//! Colours, or none when `NO_COLOR` is set: then meaning is carried by symbols and
//! bold/reversed text only.

use ratatui::style::{Color, Modifier, Style};

use crate::report::StepStatus;

/// The styles every screen uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set to anything non-empty (no-color.org).
    pub fn from_env() -> Theme {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    /// Passed, found, mounted.
    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }

    /// Needs a look: warnings, questions, the notice.
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    /// Failed, refused, missing.
    pub fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// Keys, the running step, what will run.
    pub fn accent(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// Secondary text: step ids in the output, durations.
    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }

    /// A line a diff adds.
    pub fn added(self) -> Style {
        self.fg(Color::Green)
    }

    /// A line a diff removes.
    pub fn removed(self) -> Style {
        self.fg(Color::Red)
    }

    /// The selected row.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// Labels and headings.
    pub fn title(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    /// A step's symbol and style.
    pub fn status(self, status: StepStatus) -> (&'static str, Style) {
        match status {
            StepStatus::Pending => ("·", self.dim()),
            StepStatus::Running => ("▶", self.accent()),
            StepStatus::Passed => ("✓", self.ok()),
            StepStatus::Warning => ("!", self.warn()),
            StepStatus::Failed => ("✗", self.bad()),
            StepStatus::Skipped => ("-", self.dim()),
            StepStatus::Refused => ("⊘", self.bad()),
            StepStatus::NeedsConfirmation => ("?", self.warn()),
        }
    }
}

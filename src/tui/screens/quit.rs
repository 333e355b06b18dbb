//! `q` while a step runs: quitting cancels the step, so ask first.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use crate::tui::theme::Theme;
use crate::tui::widgets::modal;

/// The question `q` asks while a step runs.
pub fn render(frame: &mut Frame, area: Rect, theme: Theme) {
    let inner = modal::open(frame, modal::centered(area, 56, 7), "Quit?", theme.warn());
    let text = vec![
        Line::raw("A step is running. Quitting cancels it; it cleans up (unmounts) first."),
        Line::raw(""),
        Line::styled("y quit   any other key: keep going", theme.accent()),
    ];
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), inner);
}

//! The line of key hints at the bottom of every screen.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::tui::theme::Theme;

/// Draw `hints` (key, what it does) on one line.
pub fn render(frame: &mut Frame, area: Rect, hints: &[(&str, &str)], theme: Theme) {
    let mut spans = vec![Span::raw(" ")];
    for (key, what) in hints {
        spans.push(Span::styled(*key, theme.accent()));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    frame.render_widget(Line::from(spans), area);
}

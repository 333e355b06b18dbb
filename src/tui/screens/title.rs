//! The top line of every screen.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::tui::state::State;
use crate::tui::theme::Theme;

/// The top line: where the operator is, and the notice if there is one.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    title: Vec<Span<'static>>,
    state: &State,
    theme: Theme,
) {
    let mut spans = vec![Span::styled(" lifeboat ", theme.title())];
    spans.extend(title);
    if let Some(notice) = &state.notice {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(notice.clone(), theme.warn()));
    }
    frame.render_widget(Line::from(spans), area);
}

//! The diff view: a step's diff (the generated hardware config against the committed
//! one) over the whole flow screen, scrollable, closed with Esc or `q`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;

use crate::tui::diff::DiffView;
use crate::tui::state::{FlowView, State};
use crate::tui::theme::Theme;
use crate::tui::widgets::{diff_pane, key_hints};

/// The diff view for `open`, in place of the flow screen.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    view: &FlowView,
    open: DiffView,
    theme: Theme,
) {
    let [title, body, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    let spans = vec![
        Span::styled(view.kind.id(), theme.accent()),
        Span::raw(" · "),
        Span::styled(open.step, theme.accent()),
        Span::raw(" · diff"),
    ];
    super::title::render(frame, title, spans, state, theme);
    if let Some(diff) = view.diffs.get(open.step) {
        diff_pane::render(frame, body, diff, open.scroll, theme);
    }
    key_hints::render(
        frame,
        hints,
        &[
            ("↑↓", "line"),
            ("PgUp/PgDn", "page"),
            ("Home/End", "top/bottom"),
            ("Esc/q", "close"),
            ("?", "help"),
        ],
        theme,
    );
}

//! Every key, on one overlay.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::theme::Theme;
use crate::tui::widgets::modal;

/// (where, key, what it does)
const KEYS: &[(&str, &str, &str)] = &[
    ("Everywhere", "?", "this help (any key closes it)"),
    ("", "q", "quit (asks first while a step runs)"),
    ("", "Ctrl-C", "cancel the running step, clean up, quit"),
    ("Home", "↑ ↓", "choose a flow"),
    ("", "Enter", "start it"),
    ("Flow", "↑ ↓", "select a step: what it does and why"),
    ("", "PgUp PgDn", "scroll the output"),
    (
        "",
        "Home End",
        "the oldest output / follow the output again",
    ),
    ("", "/", "search the output (n older, N newer hit)"),
    ("", "d", "show the selected step's diff (Esc closes)"),
    ("", "Tab", "switch between steps and results"),
    ("", "r", "re-run the flow once it has ended"),
    ("", "Esc", "back to the home screen once it has ended"),
    (
        "Results",
        "↑ ↓",
        "move in the size tree; scroll an end screen",
    ),
    ("", "Enter ← →", "open or close an entry"),
    ("", "s", "sort by size or by name"),
    ("Confirm", "y / n", "run the step / stop here"),
    ("", "PgUp PgDn", "scroll the diff, where one is shown"),
    (
        "",
        "word Enter",
        "where asked, type the hostname to confirm",
    ),
];

/// The help overlay.
pub fn render(frame: &mut Frame, area: Rect, theme: Theme) {
    let height = u16::try_from(KEYS.len())
        .unwrap_or(u16::MAX)
        .saturating_add(2);
    let inner = modal::open(
        frame,
        modal::centered(area, 70, height),
        "Keys",
        theme.accent(),
    );
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(place, key, what)| {
            Line::from(vec![
                Span::styled(format!(" {place:<11}"), theme.title()),
                Span::styled(format!("{key:<11}"), theme.accent()),
                Span::raw(*what),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

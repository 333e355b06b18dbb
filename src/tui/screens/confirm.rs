//! The confirmation: the question, exactly what will run, and how to answer. Where the
//! change cannot be undone the operator types a word (the hostname): no single stray key
//! can confirm it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::tui::state::Confirmation;
use crate::tui::theme::Theme;
use crate::tui::widgets::{modal, safe};

/// The confirmation modal over the flow screen.
pub fn render(frame: &mut Frame, area: Rect, confirm: &Confirmation, theme: Theme) {
    let mut lines = vec![
        Line::styled(safe(&confirm.question).into_owned(), theme.title()),
        Line::raw(""),
    ];
    if confirm.actions.is_empty() {
        lines.push(Line::styled(
            "It changes nothing on the machine.",
            theme.dim(),
        ));
    } else {
        lines.push(Line::raw("This runs exactly:"));
        lines.extend(
            confirm
                .actions
                .iter()
                .map(|a| Line::styled(format!("  {}", safe(&a.describe())), theme.accent())),
        );
    }
    lines.push(Line::raw(""));
    match &confirm.word {
        None => lines.push(Line::from(vec![
            Span::styled("y", theme.accent()),
            Span::raw(" yes, run it   "),
            Span::styled("n", theme.accent()),
            Span::raw(" / "),
            Span::styled("Esc", theme.accent()),
            Span::raw(" no, stop here"),
        ])),
        Some(word) => {
            lines.push(Line::from(vec![
                Span::raw("Type "),
                Span::styled(safe(word).into_owned(), theme.warn()),
                Span::raw(" and press Enter to confirm; Esc stops here."),
            ]));
            lines.push(Line::from(vec![
                Span::raw("> "),
                Span::raw(safe(&confirm.typed).into_owned()),
                Span::styled("█", theme.accent()),
            ]));
        }
    }
    let height = u16::try_from(lines.len() + 4).unwrap_or(u16::MAX);
    let box_area = modal::centered(area, 72, height);
    let inner = modal::open(
        frame,
        box_area,
        &format!("Confirm: {}", confirm.step),
        theme.warn(),
    );
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

//! The confirmation: the question, exactly what will run, the diff of what it writes when
//! the step made one, and how to answer. Where the change cannot be undone the operator
//! types a word (the hostname): no single stray key can confirm it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::report::FileDiff;
use crate::tui::state::Confirmation;
use crate::tui::theme::Theme;
use crate::tui::widgets::{diff_pane, modal, safe};

/// The smallest diff pane worth showing: its borders and a few lines.
const MIN_DIFF_HEIGHT: u16 = 5;

/// The confirmation modal over the flow screen, with `diff` when the step made one.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    confirm: &Confirmation,
    diff: Option<&FileDiff>,
    theme: Theme,
) {
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
    let title = format!("Confirm: {}", confirm.step);
    let Some(diff) = diff else {
        let height = u16::try_from(lines.len() + 4).unwrap_or(u16::MAX);
        let inner = modal::open(
            frame,
            modal::centered(area, 72, height),
            &title,
            theme.warn(),
        );
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        return;
    };
    lines.push(Line::from(vec![
        Span::styled("↑↓ PgUp PgDn", theme.accent()),
        Span::raw(" scroll the changes below"),
    ]));
    // The diff takes the room the question leaves, on a wider box.
    let width = area.width.saturating_sub(4).min(110);
    let text_height = wrapped_height(&lines, width.saturating_sub(2));
    let diff_height = u16::try_from(diff.lines.len() + 2)
        .unwrap_or(u16::MAX)
        .max(MIN_DIFF_HEIGHT);
    let box_area = modal::centered(area, width, text_height + diff_height + 2);
    let inner = modal::open(frame, box_area, &title, theme.warn());
    let [text_area, diff_area] = Layout::vertical([
        Constraint::Length(text_height),
        Constraint::Min(MIN_DIFF_HEIGHT),
    ])
    .areas(inner);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), text_area);
    diff_pane::render(frame, diff_area, diff, confirm.diff_scroll, theme);
}

/// The rows `lines` take wrapped at `width` (at least: word wrap may need one more).
fn wrapped_height(lines: &[Line], width: u16) -> u16 {
    let width = usize::from(width.max(1));
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(width).max(1)).sum();
    u16::try_from(rows).unwrap_or(u16::MAX)
}

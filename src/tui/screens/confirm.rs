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
    let mut answer = answer_lines(confirm, theme);
    let title = format!("Confirm: {}", confirm.step);
    if diff.is_some() {
        answer.push(Line::from(vec![
            Span::styled("↑↓ PgUp PgDn", theme.accent()),
            Span::raw(" scroll the changes below"),
        ]));
    }
    // A diff gets a wider box; the question alone the usual one.
    let width = match diff {
        Some(_) => area.width.saturating_sub(4).min(110),
        None => 72,
    };
    let text = Paragraph::new(lines).wrap(Wrap { trim: false });
    let answer = Paragraph::new(answer).wrap(Wrap { trim: false });
    let inner_width = width.min(area.width).saturating_sub(2);
    let text_height = rows(&text, inner_width);
    let answer_height = rows(&answer, inner_width);
    let diff_height = diff.map_or(0, |d| {
        u16::try_from(d.lines.len() + 2)
            .unwrap_or(u16::MAX)
            .max(MIN_DIFF_HEIGHT)
    });
    let wanted = text_height
        .saturating_add(answer_height)
        .saturating_add(diff_height)
        .saturating_add(2);
    let inner = modal::open(
        frame,
        modal::centered(area, width, wanted),
        &title,
        theme.warn(),
    );
    let parts = split(inner, text_height, answer_height, diff.is_some());
    frame.render_widget(text, parts.text);
    frame.render_widget(answer, parts.answer);
    if let (Some(diff), Some(diff_area)) = (diff, parts.diff) {
        diff_pane::render(frame, diff_area, diff, confirm.diff_scroll, theme);
    }
}

/// How to answer: a key, or the word to type and what has been typed so far.
fn answer_lines(confirm: &Confirmation, theme: Theme) -> Vec<Line<'static>> {
    match &confirm.word {
        None => vec![Line::from(vec![
            Span::styled("y", theme.accent()),
            Span::raw(" yes, run it   "),
            Span::styled("n", theme.accent()),
            Span::raw(" / "),
            Span::styled("Esc", theme.accent()),
            Span::raw(" no, stop here"),
        ])],
        Some(word) => vec![
            Line::from(vec![
                Span::raw("Type "),
                Span::styled(safe(word).into_owned(), theme.warn()),
                Span::raw(" and press Enter to confirm; Esc stops here."),
            ]),
            Line::from(vec![
                Span::raw("> "),
                Span::raw(safe(&confirm.typed).into_owned()),
                Span::styled("█", theme.accent()),
            ]),
        ],
    }
}

/// The modal's inside, top to bottom.
struct Parts {
    text: Rect,
    answer: Rect,
    diff: Option<Rect>,
}

/// Share `inner` out. How to answer is never squeezed out: when room is short, the
/// diff keeps its smallest height and the question's text is cut at the bottom.
fn split(inner: Rect, text: u16, answer: u16, with_diff: bool) -> Parts {
    let answer = answer.min(inner.height);
    let left = inner.height - answer;
    let diff = match with_diff {
        true => MIN_DIFF_HEIGHT.min(left).max(left.saturating_sub(text)),
        false => 0,
    };
    let text = left - diff;
    let [text, answer, diff_area] = Layout::vertical([
        Constraint::Length(text),
        Constraint::Length(answer),
        Constraint::Length(diff),
    ])
    .areas(inner);
    Parts {
        text,
        answer,
        diff: with_diff.then_some(diff_area),
    }
}

/// The rows `paragraph` takes wrapped at `width`.
fn rows(paragraph: &Paragraph, width: u16) -> u16 {
    u16::try_from(paragraph.line_count(width.max(1))).unwrap_or(u16::MAX)
}

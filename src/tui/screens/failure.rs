//! A run that failed or refused: which step, why in words, what it does, the last lines
//! it printed, and what the operator can do now.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::report::StepStatus;
use crate::tui::state::{FlowView, RunPhase};
use crate::tui::theme::Theme;
use crate::tui::widgets::safe;

/// Lines of the panel besides the output: borders, message, blank lines, heading, keys.
const FIXED_LINES: u16 = 7;

pub fn render(frame: &mut Frame, area: Rect, view: &FlowView, theme: Theme) {
    // As many of the last output lines as fit, so the keys stay on screen.
    let tail_len = usize::from(area.height.saturating_sub(FIXED_LINES).max(1));
    let (title, mut lines) = match (&view.phase, view.failed_step()) {
        (RunPhase::CouldNotStart(why), _) => (
            format!(" ✗ {} could not start ", view.kind.id()),
            vec![Line::styled(safe(why).into_owned(), theme.bad())],
        ),
        (_, Some(step)) => {
            let verb = if step.status == StepStatus::Refused {
                "refused"
            } else {
                "failed"
            };
            // What the step does and why is beside it, in the step's panel above.
            let mut lines = vec![Line::styled(safe(&step.message).into_owned(), theme.bad())];
            let tail = view.output.tail_of(step.def.id, tail_len);
            if !tail.is_empty() {
                lines.push(Line::raw(""));
                lines.push(Line::styled("Its last output:", theme.title()));
                lines.extend(
                    tail.iter()
                        .map(|l| Line::raw(format!("  {}", safe(&l.text)))),
                );
            }
            (format!(" ✗ {} {verb} ", step.def.id), lines)
        }
        (_, None) => {
            let lines = view
                .output
                .lines()
                .rev()
                .take(tail_len)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .map(|l| Line::raw(format!("  {}", safe(&l.text))))
                .collect();
            (" ✗ the run stopped ".to_string(), lines)
        }
    };
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled("r", theme.accent()),
        Span::raw(" re-run the flow   "),
        Span::styled("q", theme.accent()),
        Span::raw(" quit"),
    ]));
    let block = Block::bordered()
        .title(title)
        .title_style(theme.bad())
        .border_style(theme.bad());
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}

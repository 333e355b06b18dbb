//! A run that failed or refused: which step, why in words, what it does, the last lines
//! it printed, and what the operator can do now.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::report::StepStatus;
use crate::tui::state::{FlowView, RunPhase};
use crate::tui::step_view::StepView;
use crate::tui::theme::Theme;
use crate::tui::widgets::safe;

/// Lines of the panel besides the failures and the output: borders, blank lines,
/// the heading and the keys.
const FIXED_LINES: usize = 6;

/// The failure panel in place of the output pane.
pub fn render(frame: &mut Frame, area: Rect, view: &FlowView, theme: Theme) {
    let failed: Vec<&StepView> = view.failed_steps().collect();
    let (title, mut lines) = match (&view.phase, failed.as_slice()) {
        (RunPhase::CouldNotStart(why), _) => (
            format!(" ✗ {} could not start ", view.kind.id()),
            vec![Line::styled(safe(why).into_owned(), theme.bad())],
        ),
        (_, []) => (" ✗ the run stopped ".to_string(), Vec::new()),
        // What the step does and why is beside it, in the step's panel above.
        (_, [step]) => (
            format!(" ✗ {} {} ", step.def.id, verb(step)),
            vec![Line::styled(safe(&step.message).into_owned(), theme.bad())],
        ),
        (_, steps) => (
            format!(" ✗ {} steps did not pass ", steps.len()),
            steps
                .iter()
                .map(|step| {
                    Line::styled(
                        format!("✗ {} {}: {}", step.def.id, verb(step), safe(&step.message)),
                        theme.bad(),
                    )
                })
                .collect(),
        ),
    };
    // As many of the last output lines as fit, so the keys stay on screen.
    let room = usize::from(area.height).saturating_sub(FIXED_LINES + lines.len());
    let ids: Vec<&str> = failed.iter().map(|s| s.def.id.as_str()).collect();
    let tail = match room {
        0 => Vec::new(),
        room => view.output.tail_of(&ids, room),
    };
    if !tail.is_empty() && !matches!(view.phase, RunPhase::CouldNotStart(_)) {
        lines.push(Line::raw(""));
        lines.push(Line::styled("The last output:", theme.title()));
        lines.extend(
            tail.iter()
                .map(|l| Line::raw(format!("  {}", safe(&l.text)))),
        );
    }
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

fn verb(step: &StepView) -> &'static str {
    if step.status == StepStatus::Refused {
        "refused"
    } else {
        "failed"
    }
}

//! The flow's steps with their states and durations.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::report::StepStatus;
use crate::tui::state::FlowView;
use crate::tui::theme::Theme;

use super::duration;

/// How wide the list is for `view`'s step ids: pointer, symbol, id, a duration.
pub fn width(view: &FlowView) -> u16 {
    let longest = view
        .steps
        .iter()
        .map(|s| s.def.id.as_str().len())
        .max()
        .unwrap_or(0);
    u16::try_from(longest + 13)
        .unwrap_or(u16::MAX)
        .clamp(28, 40)
}

/// One line per step: symbol, id, duration; the selected one highlighted.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    view: &FlowView,
    now: std::time::Duration,
    theme: Theme,
) {
    let block = Block::bordered().title(" Steps ");
    let inner = block.inner(area);
    let lines: Vec<Line> = view
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let (symbol, style) = theme.status(step.status);
            let took = match (step.status, step.took, step.started) {
                (StepStatus::Running, _, Some(started)) => duration(now.saturating_sub(started)),
                (StepStatus::Pending | StepStatus::Skipped, _, _) => String::new(),
                (_, Some(took), _) => duration(took),
                (_, None, _) => String::new(),
            };
            let width = usize::from(inner.width);
            let name_width = width.saturating_sub(took.len() + 4);
            let name = super::truncate(step.def.id.as_str(), name_width.saturating_sub(1));
            let mut line = Line::from(vec![
                Span::styled(
                    format!("{}{symbol} ", super::pointer(i == view.selected)),
                    style,
                ),
                Span::raw(format!("{name:<name_width$}")),
                Span::styled(format!("{took} "), theme.dim()),
            ]);
            if i == view.selected {
                line = line.style(theme.selected());
            }
            line
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

//! The progress line of the running step: a gauge when the total is known, a count when not.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Gauge;

use crate::report::Unit;
use crate::tui::state::StepProgress;
use crate::tui::theme::Theme;

/// Draw `progress` on one line.
pub fn render(frame: &mut Frame, area: Rect, progress: &StepProgress, theme: Theme) {
    let unit = unit_word(progress.unit);
    match progress.total.filter(|t| *t > 0) {
        Some(total) => {
            let ratio = (progress.done as f64 / total as f64).clamp(0.0, 1.0);
            let gauge = Gauge::default()
                .gauge_style(theme.accent())
                .ratio(ratio)
                .label(format!(
                    "{}: {} of {total} {unit}",
                    progress.step, progress.done
                ));
            frame.render_widget(gauge, area);
        }
        None => frame.render_widget(
            Line::from(vec![
                Span::styled(" ⟳ ", theme.accent()),
                Span::raw(format!(
                    "{}: {} {unit} so far",
                    progress.step, progress.done
                )),
            ]),
            area,
        ),
    }
}

fn unit_word(unit: Unit) -> &'static str {
    match unit {
        Unit::Files => "files scanned",
        Unit::Bytes => "bytes copied",
        Unit::Objects => "objects received",
        Unit::Derivations => "derivations built",
    }
}

//! A unified diff in a box: added lines green, removed red, hunk headers dim. Under
//! `NO_COLOR` the `+`/`-` at the start of each line still say which is which.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph};

use crate::report::FileDiff;
use crate::tui::diff::{LineKind, kinds};
use crate::tui::theme::Theme;

use super::safe;

/// Draw `diff` in `area` from line `scroll` on (as far as the last line allows).
pub fn render(frame: &mut Frame, area: Rect, diff: &FileDiff, scroll: usize, theme: Theme) {
    let block = Block::bordered();
    let inner = block.inner(area);
    let height = usize::from(inner.height);
    let len = diff.lines.len();
    let first = scroll.min(len.saturating_sub(height));
    let shown = len.min(first + height);
    let position = if len == 0 {
        "no changes".to_string()
    } else {
        format!("lines {}–{shown} of {len}", first + 1)
    };
    let block = block.title(format!(" {}: {position} ", safe(&diff.file)));
    frame.render_widget(block, area);
    let lines: Vec<Line> = if len == 0 {
        vec![Line::styled(
            "The new file is the committed one.",
            theme.dim(),
        )]
    } else {
        diff.lines
            .iter()
            .zip(kinds(&diff.lines))
            .skip(first)
            .take(height)
            .map(|(line, kind)| Line::styled(safe(line).into_owned(), style(kind, theme)))
            .collect()
    };
    frame.render_widget(Paragraph::new(lines), inner);
}

fn style(kind: LineKind, theme: Theme) -> Style {
    match kind {
        LineKind::File => theme.title(),
        LineKind::Hunk => theme.dim(),
        LineKind::Added => theme.added(),
        LineKind::Removed => theme.removed(),
        LineKind::Context => Style::new(),
    }
}

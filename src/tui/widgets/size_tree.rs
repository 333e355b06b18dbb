//! The size tree of inspect: one row per entry, a bar for its share of the volume. While the
//! walk goes on, a row still being walked ends in `…`: its figures so far, still growing.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::steps::identify::human_bytes;
use crate::tui::results::{SizeTree, SortBy};
use crate::tui::theme::Theme;

use super::{safe, truncate};

/// Draw the tree, keeping the selected row in view; the selection shows only when `focused`
/// (the keys move this tree, not the steps).
pub fn render(frame: &mut Frame, area: Rect, tree: &SizeTree, focused: bool, theme: Theme) {
    let sort = match tree.sort {
        SortBy::Size => "by size",
        SortBy::Name => "by name",
    };
    let walking = match tree.walking() {
        0 => String::new(),
        n => format!(" · walking {n} of {}", tree.top_level()),
    };
    let block = Block::bordered().title(format!(" Sizes ({sort}){walking} "));
    let inner = block.inner(area);
    let rows = tree.visible();
    let total = tree.total_bytes().max(1);
    let height = usize::from(inner.height).max(1);
    let skip = (tree.selected + 1).saturating_sub(height);
    let width = usize::from(inner.width);
    // Room for a bar of ten cells only when the name keeps at least 16.
    let bar_cells = if width >= 16 + 40 { 10 } else { 0 };
    let name_width = width.saturating_sub(27 + bar_cells).max(8);
    let lines: Vec<Line> = rows
        .iter()
        .enumerate()
        .skip(skip)
        .take(height)
        .map(|(i, visible)| {
            let marker = match visible.expanded {
                Some(true) => "▾ ",
                Some(false) => "▸ ",
                None => "  ",
            };
            let indent = "  ".repeat(visible.depth);
            let name = visible
                .row
                .path
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let label = format!("{indent}{marker}{}", safe(&name));
            let bar_len =
                (u128::from(visible.row.bytes) * bar_cells as u128 / u128::from(total)) as usize;
            let selected = focused && i == tree.selected;
            let mut line = Line::from(vec![
                Span::raw(format!(
                    "{}{:<name_width$} {:>10} {:>7} files",
                    super::pointer(selected),
                    truncate(&label, name_width),
                    human_bytes(visible.row.bytes),
                    visible.row.files
                )),
                if visible.walking {
                    Span::styled("…", theme.warn())
                } else {
                    Span::raw(" ")
                },
                Span::styled("█".repeat(bar_len.min(bar_cells)), theme.accent()),
            ]);
            if selected {
                line = line.style(theme.selected());
            }
            line
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

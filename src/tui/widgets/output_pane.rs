//! The live output of the run: the tail, or where the operator scrolled or searched to.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::report::Stream;
use crate::tui::output::{OutputLog, Search};
use crate::tui::theme::Theme;

use super::safe;

/// Draw the log in `area`; the search query on the bottom line while one is typed or shown.
pub fn render(frame: &mut Frame, area: Rect, log: &OutputLog, theme: Theme) {
    let position = if log.back() == 0 {
        "following".to_string()
    } else {
        format!("{} lines back, End follows", log.back())
    };
    let block = Block::bordered().title(format!(" Output ({} lines, {position}) ", log.len()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let search = search_line(&log.search, theme);
    let height = usize::from(inner.height).saturating_sub(usize::from(search.is_some()));
    let mut lines: Vec<Line> = log
        .window(height)
        .map(|(index, line)| {
            let style = match (log.is_hit(index), line.stream) {
                (true, _) => theme.selected(),
                (false, Stream::Stderr) => theme.warn(),
                (false, Stream::Stdout) => ratatui::style::Style::new(),
            };
            Line::from(vec![
                Span::styled(format!("{:<16} ", line.step), theme.dim()),
                Span::styled(safe(&line.text).into_owned(), style),
            ])
        })
        .collect();
    if log.is_empty() {
        lines.push(Line::styled("(no output yet)", theme.dim()));
    }
    frame.render_widget(Paragraph::new(lines), inner);
    if let Some(search) = search {
        let bottom = Rect {
            y: inner.y + inner.height.saturating_sub(1),
            height: 1.min(inner.height),
            ..inner
        };
        frame.render_widget(search, bottom);
    }
}

fn search_line(search: &Search, theme: Theme) -> Option<Line<'static>> {
    match search {
        Search::Off => None,
        Search::Typing(query) => Some(Line::from(vec![
            Span::styled("/", theme.accent()),
            Span::raw(safe(query).into_owned()),
            Span::styled("█", theme.accent()),
            Span::styled("  Enter search  Esc cancel", theme.dim()),
        ])),
        Search::Active { query, hit } => Some(Line::from(vec![
            Span::styled("/", theme.accent()),
            Span::raw(safe(query).into_owned()),
            match hit {
                Some(_) => Span::styled("  n older  N newer  Esc clear", theme.dim()),
                None => Span::styled("  not found  Esc clear", theme.warn()),
            },
        ])),
    }
}

//! Inspect's results: the volume's identity card, the layout checklist, the size tree.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::steps::identify::human_bytes;
use crate::tui::results::{InspectResults, Layout as LayoutReport, VolumeCard};
use crate::tui::theme::Theme;
use crate::tui::widgets::{safe, size_tree};

pub fn render(frame: &mut Frame, area: Rect, results: &InspectResults, theme: Theme) {
    let checks = results.layout.as_ref().map_or(0, |l| l.checks.len());
    let top_height = u16::try_from(checks.max(8) + 2)
        .unwrap_or(u16::MAX)
        .min(area.height / 2);
    let [top, tree] =
        Layout::vertical([Constraint::Length(top_height), Constraint::Min(4)]).areas(area);
    let [card, layout] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    frame.render_widget(
        Paragraph::new(card_lines(results.volume.as_ref(), theme))
            .block(Block::bordered().title(" Volume ")),
        card,
    );
    let (title, lines) = layout_lines(results.layout.as_ref(), theme);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        layout,
    );
    size_tree::render(frame, tree, &results.tree, theme);
}

fn row(label: &str, value: String, theme: Theme) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!(" {label:<9}"), theme.title()),
        Span::raw(value),
    ])
}

fn card_lines(volume: Option<&VolumeCard>, theme: Theme) -> Vec<Line<'static>> {
    let Some(v) = volume else {
        return vec![Line::styled(" not identified", theme.dim())];
    };
    let journal = if v.needs_recovery {
        Line::from(vec![
            Span::styled(format!(" {:<9}", "Journal"), theme.title()),
            Span::styled("needs recovery (not replayed)", theme.warn()),
        ])
    } else {
        row("Journal", "clean".into(), theme)
    };
    let read_at = match (&v.mounted_at, v.in_place) {
        (Some(at), Some(true)) => format!("{} (already mounted)", safe(at)),
        (Some(at), _) => format!("{} (read-only, now unmounted)", safe(at)),
        (None, _) => "not read".into(),
    };
    vec![
        row("Device", safe(&v.device).into_owned(), theme),
        row("Is", safe(&v.resolved).into_owned(), theme),
        row("Type", safe(&v.fs_type).into_owned(), theme),
        row("UUID", safe(&v.uuid).into_owned(), theme),
        row("Label", format!("\"{}\"", safe(&v.label)), theme),
        row(
            "Size",
            format!(
                "{} device, {} used",
                human_bytes(v.size_bytes),
                human_bytes(v.used_bytes)
            ),
            theme,
        ),
        journal,
        row("Read at", read_at, theme),
    ]
}

fn layout_lines(layout: Option<&LayoutReport>, theme: Theme) -> (String, Vec<Line<'static>>) {
    let Some(layout) = layout else {
        return (
            " Layout ".into(),
            vec![Line::styled(" not checked", theme.dim())],
        );
    };
    let title = format!(
        " Layout: user {} (from the {}) ",
        safe(layout.user.as_deref().unwrap_or("unknown")),
        safe(&layout.user_from)
    );
    let path_width = layout
        .checks
        .iter()
        .map(|c| safe(&c.path).chars().count())
        .max()
        .unwrap_or(0);
    let lines = layout
        .checks
        .iter()
        .map(|check| {
            let (mark, style) = match check.status.as_str() {
                "found" => ("✓", theme.ok()),
                "absent" => ("-", theme.dim()),
                "wrong" => ("!", theme.bad()),
                _ => ("✗", theme.bad()),
            };
            Line::from(vec![
                Span::styled(format!(" {mark} "), style),
                Span::raw(format!("{:<path_width$} ", safe(&check.path))),
                Span::styled(safe(&check.detail).into_owned(), theme.dim()),
            ])
        })
        .collect();
    (title, lines)
}

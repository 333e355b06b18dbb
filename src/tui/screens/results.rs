//! Inspect's results: the volume's identity card, the layout checklist, the size tree.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::steps::identify::human_bytes;
use crate::summary::{LayoutReport, Status, VolumeSummary};
use crate::tui::results::InspectResults;
use crate::tui::theme::Theme;
use crate::tui::widgets::{safe, size_tree};

/// Inspect's results in place of the steps; while the run goes on (`running`), the tree
/// grows and the identity and layout wait for the summary.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    results: &InspectResults,
    running: bool,
    theme: Theme,
) {
    let card_lines = card_lines(results.volume.as_ref(), running, theme);
    let card_height = u16::try_from(card_lines.len() + 2).unwrap_or(u16::MAX);
    let [card, lists] =
        Layout::vertical([Constraint::Length(card_height), Constraint::Min(6)]).areas(area);
    let [layout, tree] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(lists);
    frame.render_widget(
        Paragraph::new(card_lines).block(Block::bordered().title(" Volume ")),
        card,
    );
    let (title, lines) = layout_lines(results.layout.as_ref(), running, theme);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        layout,
    );
    size_tree::render(frame, tree, &results.tree, true, theme);
}

fn label(text: &str, theme: Theme) -> Span<'static> {
    Span::styled(format!(" {text:<8}"), theme.title())
}

/// What stands where the summary's facts will be.
fn awaited(running: bool, missing: &str, theme: Theme) -> Line<'static> {
    let text = if running {
        " shown when the run ends"
    } else {
        missing
    };
    Line::styled(text.to_string(), theme.dim())
}

/// The identity in four lines, full width, so long device names fit.
fn card_lines(volume: Option<&VolumeSummary>, running: bool, theme: Theme) -> Vec<Line<'static>> {
    let Some(v) = volume else {
        return vec![awaited(running, " not identified", theme)];
    };
    let journal = if v.needs_recovery {
        Span::styled("journal needs recovery (not replayed)", theme.warn())
    } else {
        Span::styled("journal clean", theme.ok())
    };
    let read_at = match (&v.mounted_at, v.in_place) {
        (Some(at), Some(true)) => format!("{} (where it was already mounted)", safe(at)),
        (Some(at), _) => format!("{} (mounted read-only, now unmounted)", safe(at)),
        (None, _) => "not read".into(),
    };
    vec![
        Line::from(vec![
            label("Device", theme),
            Span::raw(format!("{} → {}", safe(&v.device), safe(&v.resolved))),
        ]),
        Line::from(vec![
            label("Is", theme),
            Span::raw(format!(
                "{}  UUID {}  label \"{}\"",
                safe(&v.fs_type),
                safe(&v.uuid),
                safe(&v.label)
            )),
        ]),
        Line::from(vec![
            label("Size", theme),
            Span::raw(format!(
                "{} device, {} used  ",
                human_bytes(v.size_bytes),
                human_bytes(v.used_bytes)
            )),
            journal,
        ]),
        Line::from(vec![label("Read at", theme), Span::raw(read_at)]),
    ]
}

fn layout_lines(
    layout: Option<&LayoutReport>,
    running: bool,
    theme: Theme,
) -> (String, Vec<Line<'static>>) {
    let Some(layout) = layout else {
        return (
            " Layout ".into(),
            vec![awaited(running, " not checked", theme)],
        );
    };
    let title = format!(
        " Layout: user {} (from {}) ",
        safe(layout.user.as_deref().unwrap_or("unknown")),
        safe(layout.user_from)
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
        .flat_map(|check| {
            let (mark, style) = match check.status {
                Status::Found => ("✓", theme.ok()),
                Status::Absent => ("-", theme.dim()),
                Status::Wrong => ("!", theme.bad()),
                Status::Missing => ("✗", theme.bad()),
            };
            let path = format!("{:<path_width$} ", safe(&check.path));
            let detail = safe(&check.detail).into_owned();
            if mark == "!" || mark == "✗" {
                // A problem's detail is what to fix: on its own line, never cut off.
                let mut lines = vec![Line::from(vec![
                    Span::styled(format!(" {mark} "), style),
                    Span::raw(path),
                ])];
                if !detail.is_empty() {
                    lines.push(Line::styled(format!("     {detail}"), style));
                }
                lines
            } else {
                vec![Line::from(vec![
                    Span::styled(format!(" {mark} "), style),
                    Span::raw(path),
                    Span::styled(detail, theme.dim()),
                ])]
            }
        })
        .collect();
    (title, lines)
}

//! The flow screen, shared by every flow: steps, the selected step's explanation and
//! exact actions, the live output, progress; the results or the failure once it ended.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::report::{RunStatus, StepStatus};
use crate::tui::state::{FlowTab, FlowView, RunPhase, State};
use crate::tui::theme::Theme;
use crate::tui::widgets::{key_hints, output_pane, progress, safe, size_tree, step_list};

/// The flow screen for `view`.
pub fn render(frame: &mut Frame, area: Rect, state: &State, view: &FlowView, theme: Theme) {
    let [title, body, progress_area, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(10),
        Constraint::Length(u16::from(view.progress.is_some())),
        Constraint::Length(1),
    ])
    .areas(area);
    super::title::render(frame, title, title_spans(view, theme), state, theme);
    match view.tab {
        FlowTab::Results => match (&view.results, &view.end) {
            (Some(results), _) => {
                let running = view.phase == RunPhase::Running;
                super::results::render(frame, body, results, running, theme);
            }
            (None, Some(end)) => super::end::render(frame, body, view, end, theme),
            (None, None) => steps_body(frame, body, state, view, theme),
        },
        FlowTab::Steps => steps_body(frame, body, state, view, theme),
    }
    if let Some(p) = &view.progress {
        progress::render(frame, progress_area, p, theme);
    }
    key_hints::render(frame, hints, &hint_keys(state, view), theme);
}

fn title_spans(view: &FlowView, theme: Theme) -> Vec<Span<'static>> {
    let (word, style) = match &view.phase {
        RunPhase::Running => ("running".to_string(), theme.accent()),
        RunPhase::CouldNotStart(_) => ("could not start".to_string(), theme.bad()),
        RunPhase::Ended(status) => {
            let style = match status {
                RunStatus::Passed => theme.ok(),
                RunStatus::Stopped | RunStatus::Interrupted => theme.warn(),
                RunStatus::Failed | RunStatus::Refused => theme.bad(),
            };
            (status_word(*status).to_string(), style)
        }
    };
    let mut spans = vec![
        Span::styled(view.kind.id(), theme.accent()),
        Span::raw(" · "),
        Span::styled(word, style),
    ];
    if view.dry_run {
        spans.push(Span::styled(
            " · dry run: nothing will change",
            theme.warn(),
        ));
    }
    spans
}

/// The run's outcome in one word, as the summary names it.
pub fn status_word(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Passed => "passed",
        RunStatus::Failed => "failed",
        RunStatus::Refused => "refused",
        RunStatus::Stopped => "stopped",
        RunStatus::Interrupted => "interrupted",
    }
}

fn hint_keys(state: &State, view: &FlowView) -> Vec<(&'static str, &'static str)> {
    let mut hints = Vec::new();
    match view.tab {
        FlowTab::Steps => hints.extend([("↑↓", "step"), ("PgUp/PgDn", "scroll"), ("/", "search")]),
        FlowTab::Results if view.results.is_some() => {
            hints.extend([("↑↓", "move"), ("Enter", "open"), ("s", "sort")]);
        }
        // The end screen was drawn before the hints: it knows whether it scrolls.
        FlowTab::Results => {
            if view.end.as_ref().is_some_and(|e| e.scroll.max.get() > 0) {
                hints.push(("↑↓", "scroll"));
            }
        }
    }
    if view.tab == FlowTab::Steps && view.selected_diff().is_some() {
        hints.push(("d", "diff"));
    }
    if view.has_results() {
        hints.push(("Tab", "steps/results"));
    }
    if view.phase != RunPhase::Running {
        hints.push(("r", "re-run"));
        if state.home.is_some() {
            hints.push(("Esc", "home"));
        }
    } else {
        hints.push(("Ctrl-C", "cancel"));
    }
    hints.extend([("?", "help"), ("q", "quit")]);
    hints
}

fn steps_body(frame: &mut Frame, area: Rect, state: &State, view: &FlowView, theme: Theme) {
    let top_height = u16::try_from(view.steps.len())
        .unwrap_or(u16::MAX)
        .saturating_add(2)
        .max(8);
    let [top, bottom] =
        Layout::vertical([Constraint::Length(top_height), Constraint::Min(4)]).areas(area);
    let [list, detail] = Layout::horizontal([
        Constraint::Length(step_list::width(view)),
        Constraint::Min(20),
    ])
    .areas(top);
    step_list::render(frame, list, view, state.now, theme);
    step_detail(frame, detail, view, theme);
    let failed = matches!(
        view.phase,
        RunPhase::CouldNotStart(_) | RunPhase::Ended(RunStatus::Failed | RunStatus::Refused)
    );
    let growing = view
        .results
        .as_ref()
        .filter(|_| view.phase == RunPhase::Running);
    match growing {
        _ if failed => super::failure::render(frame, bottom, view, theme),
        // The walk goes on: its tree grows beside the output (Tab shows it whole).
        Some(results) => {
            let [output, tree] =
                Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                    .areas(bottom);
            output_pane::render(frame, output, &view.output, theme);
            size_tree::render(frame, tree, &results.tree, false, theme);
        }
        None => output_pane::render(frame, bottom, &view.output, theme),
    }
}

fn step_detail(frame: &mut Frame, area: Rect, view: &FlowView, theme: Theme) {
    let Some(step) = view.steps.get(view.selected) else {
        return;
    };
    let (symbol, style) = theme.status(step.status);
    let mut lines = vec![
        Line::styled(step.def.explains, ratatui::style::Style::new()),
        Line::raw(""),
    ];
    if step.actions.is_empty() {
        lines.push(Line::styled("Changes nothing on the machine.", theme.dim()));
    } else {
        lines.push(Line::styled("Runs exactly:", theme.title()));
        lines.extend(
            step.actions
                .iter()
                .map(|a| Line::raw(format!("  {}", safe(&a.describe())))),
        );
    }
    if !step.message.is_empty() && step.status != StepStatus::NeedsConfirmation {
        lines.push(Line::from(vec![
            Span::styled(format!("{symbol} "), style),
            Span::styled(safe(&step.message).into_owned(), style),
        ]));
    }
    let block = Block::bordered()
        .title(format!(" {symbol} {}: {} ", step.def.id, step.def.title))
        .title_style(style);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}

//! Every screen and overlay, one file each. [`render`] picks what the state shows.

pub mod confirm;
pub mod diff;
pub mod end;
pub mod failure;
pub mod flow;
pub mod help;
pub mod home;
pub mod quit;
pub mod results;
pub mod too_small;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::state::{Screen, State};
use super::theme::Theme;

/// The smallest terminal the screens are laid out for.
pub const MIN_WIDTH: u16 = 80;
/// See [`MIN_WIDTH`].
pub const MIN_HEIGHT: u16 = 24;

/// Draw the whole wizard for `state`.
pub fn render(frame: &mut Frame, state: &State, theme: Theme) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small::render(frame, area, theme);
        return;
    }
    match &state.screen {
        Screen::Home => home::render(frame, area, state, theme),
        Screen::Flow(view) => match view.diff {
            Some(open) => diff::render(frame, area, state, view, open, theme),
            None => flow::render(frame, area, state, view, theme),
        },
    }
    if let Screen::Flow(view) = &state.screen
        && let Some(confirm) = &view.confirm
    {
        confirm::render(frame, area, confirm, view.diffs.get(confirm.step), theme);
    }
    if state.help {
        help::render(frame, area, theme);
    }
    if state.quit_prompt {
        quit::render(frame, area, theme);
    }
}

/// The top line: where the operator is, and the notice if there is one.
pub fn title_line(
    frame: &mut Frame,
    area: Rect,
    title: Vec<Span<'static>>,
    state: &State,
    theme: Theme,
) {
    let mut spans = vec![Span::styled(" lifeboat ", theme.title())];
    spans.extend(title);
    if let Some(notice) = &state.notice {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(notice.clone(), theme.warn()));
    }
    frame.render_widget(Line::from(spans), area);
}

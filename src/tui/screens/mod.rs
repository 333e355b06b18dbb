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
pub mod title;
pub mod too_small;

use ratatui::Frame;

use super::state::{Overlay, Screen, State};
use super::theme::Theme;

/// Draw the whole wizard for `state`.
pub fn render(frame: &mut Frame, state: &State, theme: Theme) {
    let area = frame.area();
    if area.width < too_small::MIN_WIDTH || area.height < too_small::MIN_HEIGHT {
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
    let Some(overlay) = &state.overlay else {
        return;
    };
    // A question waiting under the quit prompt shows beneath it.
    if let Some(confirm) = overlay.confirmation() {
        let diff = match &state.screen {
            Screen::Flow(view) => view.diffs.get(confirm.step),
            Screen::Home => None,
        };
        confirm::render(frame, area, confirm, diff, theme);
    }
    match overlay {
        Overlay::Help => help::render(frame, area, theme),
        Overlay::QuitPrompt { .. } => quit::render(frame, area, theme),
        Overlay::Confirm(_) => {}
    }
}

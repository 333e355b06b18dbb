//! Below 80×24 the screens do not fit: say so instead of drawing them cut.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use crate::tui::theme::Theme;

/// The smallest terminal the screens are laid out for.
pub const MIN_WIDTH: u16 = 80;
/// See [`MIN_WIDTH`].
pub const MIN_HEIGHT: u16 = 24;

/// The whole screen when it is below the minimum.
pub fn render(frame: &mut Frame, area: Rect, theme: Theme) {
    let text = vec![
        Line::styled("lifeboat needs more room", theme.warn()),
        Line::raw(format!(
            "This terminal is {}×{}; the wizard needs at least {MIN_WIDTH}×{MIN_HEIGHT}.",
            area.width, area.height
        )),
        Line::raw("Enlarge the window, or press q to quit."),
    ];
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

//! Front ends over the same flows. The headless one prints; the TUI is still to come.

pub mod headless;

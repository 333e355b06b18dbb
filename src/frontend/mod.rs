//! The headless front end: progress for people on stderr, or JSON events on stdout. The
//! wizard, the other front end over the same flows, is `crate::tui`.

pub mod headless;

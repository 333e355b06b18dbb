//! The process's exit codes: the contract scripts and the CI around lifeboat rely on
//! (README "Using it"). Every way out of the program ends in one of these.

/// Every step passed (warnings allowed).
pub const PASSED: i32 = 0;
/// A step failed, or lifeboat could not do its job (no root, a sandbox it cannot build).
pub const FAILED: i32 = 1;
/// Usage or config error: nothing was run.
pub const USAGE: i32 = 2;
/// Refused for safety: a blank or unexpected device, a check that protects data said no.
pub const REFUSED: i32 = 3;
/// Stopped at a confirmation that was not given (headless without `--yes`).
pub const STOPPED: i32 = 4;
/// Interrupted by Ctrl-C or SIGTERM.
pub const INTERRUPTED: i32 = 130;

//! Nix's `--log-format internal-json` turned into what the operator needs to see: messages,
//! build progress, which derivation is building and its log, what the build copied from a
//! local store (the volume's), downloaded or built, and explanations for the failures
//! lifeboat knows (ARCHITECTURE.md, "Facts about the tools").
//!
//! The stream is untrusted and changes between Nix versions: unknown actions and numbers are
//! ignored, a line that is not valid `@nix` JSON is passed through as a plain line, and
//! nothing here panics or grows without bound.
//!
//! [`parser`] is the model: [`NixLog`] reads the stream into [`Item`]s and counts the
//! [`Transfers`]; [`record`] reads one record's JSON; [`quick`] is the fast path for the
//! records a build's log is made of; [`known_error`] recognises the failures lifeboat
//! explains; [`ansi`] strips colours.

mod ansi;
mod known_error;
mod parser;
mod quick;
mod record;

pub use ansi::strip_ansi;
pub use known_error::{KnownError, summarise_errors};
pub use parser::{BuildProgress, Item, Moved, NixLog, Transfers};
pub use quick::quick_path_agrees;

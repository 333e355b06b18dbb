//! lifeboat: a wizard that walks an operator through destroying and rebuilding a
//! NixOS VPS whose `/home` and `/nix` live on an attached block volume.
//!
//! The crate is a pure core (`flow`) with effects at the edge (`exec`, `steps`, the
//! front ends).

pub mod app;
pub mod card;
pub mod cli;
pub mod config;
pub mod demo;
pub mod driver;
pub mod escape;
pub mod exec;
pub mod exit;
pub mod faults;
pub mod flow;
pub mod frontend;
pub mod fuzz_targets;
pub mod journal;
pub mod line_buffer;
pub mod marker;
pub mod nixedit;
pub mod nixlog;
pub mod report;
pub mod sandbox;
pub mod session;
pub mod steps;
pub mod summary;
pub mod transcript;
pub mod tui;

//! lifeboat: a wizard that walks an operator through destroying and rebuilding a
//! NixOS VPS whose `/home` and `/nix` live on an attached block volume.
//!
//! The crate is a pure core (`flow`) with effects at the edge (`exec`, the
//! front ends). See `DESIGN` notes in the README for the layout.

pub mod config;
pub mod exec;
pub mod sandbox;

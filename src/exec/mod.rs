//! Everything that touches the machine, behind small functions and types.

pub mod atomic;
pub mod by_id;
pub mod git;
pub mod host;
pub mod lock;
pub mod mount;
pub mod mountinfo;
pub mod netfacts;
#[cfg(test)]
mod noise;
pub mod probe;
pub mod process;
pub mod scan;

//! Everything that touches the machine, behind small functions and types.

pub mod atomic;
pub mod git;
pub mod lock;
pub mod mount;
pub mod probe;
pub mod process;
pub mod scan;

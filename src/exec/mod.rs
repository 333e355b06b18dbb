//! Everything that touches the machine, behind small functions and types.

pub mod probe;
pub mod scan;

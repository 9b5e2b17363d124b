//! Moved to [`crate::config`]; this re-export keeps the old path working until its users move.

pub use crate::config::*;

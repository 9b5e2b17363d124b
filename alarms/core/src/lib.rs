//! placeholder
#![warn(missing_docs)]
pub mod action;
pub mod error;
pub mod model;
pub mod raw;
pub mod rule;
pub mod timefmt;
pub mod validate;
pub mod state;
pub mod evaluator;

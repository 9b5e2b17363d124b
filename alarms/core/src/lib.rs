//! placeholder
#![warn(missing_docs)]
pub mod error;
pub mod raw;

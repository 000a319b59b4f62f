//! The runbook format: the model (`model`), reading and checking a file (`parse`), how problems are
//! shown (`diagnostic`), and the printed outline (`plan`).

pub mod diagnostic;
pub mod import;
pub mod model;
pub mod parse;
pub mod plan;

pub use model::*;
pub use parse::{LoadError, load};

//! credaudit: a read-only credential-hygiene auditor. Collect (AWS export or live) into a SQLite
//! snapshot, evaluate rules at an explicit as-of time, map findings to controls, render evidence.
#![forbid(unsafe_code)]

pub mod assess;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod controls;
pub mod diff;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod generate;
pub mod history;
pub mod inventory;
pub mod join;
pub mod merge;
pub mod model;
pub mod outcome;
pub mod output;
pub mod plan;
pub mod report;
pub mod rules;
pub mod scan;
pub mod snapshot;
pub mod term;
pub mod waivers;

pub use error::{Error, Result};
pub mod query;
pub mod simulate;

//! Sources of observed credentials: the export directory (and, later, live AWS).
//!
//! - [`export`] reads an export directory (`docs/export-format.md`) into [`ExportData`].
//! - [`awsjson`] parses the date forms and JSON shapes of AWS CLI output.
//! - [`credential_report`] reads the IAM credential report CSV.
//! - [`schedule`] turns a Secrets Manager rotation schedule into an interval in days.

pub mod aws;
pub mod awsjson;
pub mod cloudtrail;
pub mod credential_report;
pub mod export;
pub mod input;
pub mod lake;
pub mod raw;
pub mod schedule;

pub use export::{ExportData, ExportOptions, read_export_dir};
pub use schedule::schedule_interval_days;

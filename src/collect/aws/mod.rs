//! Live AWS collection (read-only): writes the raw responses in the export-directory layout,
//! so a live scan and a replay of its export are read by the same code.

use std::path::Path;

use crate::error::{Error, Result};

/// How to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub profile: Option<String>,
    pub regions: Vec<String>,
    pub assume_roles: Vec<String>,
    pub external_id: Option<String>,
    pub endpoint_url: Option<String>,
    pub concurrency: usize,
    /// Days of CloudTrail LookupEvents to read (0 = none).
    pub cloudtrail_window_days: u32,
    /// Show a progress bar (only on a terminal).
    pub progress: bool,
}

/// What a collection did.
#[derive(Debug, Clone, Default)]
pub struct CollectSummary {
    pub accounts: Vec<String>,
    pub requests: u64,
    pub failures: u64,
}

/// Reads every account and region and writes the export layout into `dir`.
pub fn collect_to_dir(
    _options: &AwsOptions,
    _dir: &Path,
    _as_of: crate::model::Timestamp,
) -> Result<CollectSummary> {
    Err(Error::Usage(
        "live AWS collection is not available in this build".into(),
    ))
}

/// The least-privilege read-only IAM policy a live scan needs.
pub fn iam_policy() -> String {
    String::new()
}

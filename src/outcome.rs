//! How a command ended short of an error, and the exit code `main` maps it to.

/// How a command ended, short of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: findings at or above `--fail-on`.
    FindingsAtThreshold,
    /// Exit 3: some source could not be read; partial results were recorded.
    Incomplete,
}

impl Outcome {
    /// The process exit code of this outcome (an error exits 2).
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Ok => 0,
            Outcome::FindingsAtThreshold => 1,
            Outcome::Incomplete => 3,
        }
    }
}

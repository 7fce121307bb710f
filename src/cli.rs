//! The command line (clap derive), nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Read-only credential-hygiene auditor: finds every credential, reconciles it with the declared
/// inventory and rotation policy, and reports what is out of policy.
#[derive(Debug, Parser)]
#[command(name = "credaudit", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect, record a run in the snapshot, evaluate every rule, and write findings.
    Scan(ScanArgs),
    /// List every rule with its severity and a one-line description.
    Rules(RulesArgs),
    /// Explain one rule: what it finds, why it matters, what to do.
    Explain {
        /// Rule id, e.g. rotation-overdue.
        rule: String,
    },
    /// Write a synthetic fleet (export directory, inventory, history, expected findings).
    Generate(GenerateArgs),
    /// List the control catalogues and the rules that test each control.
    Controls(ControlsArgs),
    /// Re-render the evidence bundle of a stored run.
    Report(ReportArgs),
    /// Combine the latest runs of sharded snapshots (one per account or OU) into one
    /// organisation run, evaluate it as a scan does, and write findings.
    Merge(MergeArgs),
    /// Read AWS live and write the raw responses as an export directory.
    Collect(CollectArgs),
    /// Print the least-privilege read-only IAM policy a live scan needs.
    IamPolicy(IamPolicyArgs),
    /// Check an evidence bundle against its manifest, or the hash chain of a snapshot.
    Verify(VerifyArgs),
    /// New, resolved and persisting findings between two runs of a snapshot.
    Diff(DiffArgs),
    /// Answer a catalogue of auditor questions from a stored run and score how completely.
    Simulate(SimulateArgs),
    /// Ask the snapshot: rotation events, a credential's audit trail, proof of rotation.
    Query(QueryArgs),
    /// Print the completion script of a shell (e.g. `credaudit completions bash`).
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `credaudit man > credaudit.1`.
    Man,
}

#[derive(Debug, Args)]
pub struct CollectArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle folder (holding manifest.json).
    #[arg(required_unless_present = "db", conflicts_with = "db")]
    pub dir: Option<PathBuf>,
    /// Check the hash chain of every run in this snapshot instead (opened read-only).
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// With --db: fail unless the newest run's content hash is HASH (the head an earlier
    /// `verify --db` printed, or a bundle manifest's `run_content_hash`), so a removed newest
    /// run is noticed.
    #[arg(long, value_name = "HASH", requires = "db")]
    pub head: Option<String>,
}

/// Which stored run a read-only command looks at. Global, so `query rotations --db FILE` reads
/// as well as `query --db FILE rotations`.
#[derive(Debug, Args)]
pub struct RunSelect {
    /// SQLite snapshot holding the runs.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "credaudit.db",
        global = true
    )]
    pub db: PathBuf,
    /// The run [default: the latest].
    #[arg(long, value_name = "ID", global = true)]
    pub run: Option<i64>,
    /// Answer as of this time (RFC 3339) [default: the run's as-of].
    #[arg(long, value_name = "TIME", global = true)]
    pub as_of: Option<String>,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub select: RunSelect,
    /// Write each answer's evidence CSV, simulation.json and simulation.md here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(subcommand)]
    pub query: Query,
    #[command(flatten)]
    pub select: RunSelect,
    /// Output format.
    #[arg(long, value_enum, default_value_t = QueryFormatArg::Table, global = true)]
    pub format: QueryFormatArg,
}

#[derive(Debug, Subcommand)]
pub enum Query {
    /// Every rotation event (history and CloudTrail), oldest first.
    Rotations {
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Only this credential (its id, declared id or secret name).
        #[arg(long, value_name = "ID")]
        credential: Option<String>,
    },
    /// The audit trail of one credential between two times.
    Trail {
        /// Credential id, declared id or secret name.
        credential: String,
        #[arg(long, value_name = "TIME")]
        from: String,
        #[arg(long, value_name = "TIME")]
        to: String,
    },
    /// Proof that a credential was rotated within its declared period (exit 1 when it was not).
    Proof {
        /// Credential id, declared id or secret name.
        credential: String,
    },
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier run [default: the run before --to].
    #[arg(long, value_name = "RUN")]
    pub from: Option<i64>,
    /// The later run [default: the latest].
    #[arg(long, value_name = "RUN")]
    pub to: Option<i64>,
    /// SQLite snapshot holding the runs.
    #[arg(long, value_name = "FILE", default_value = "credaudit.db")]
    pub db: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Where the bundle goes and what it maps to.
#[derive(Debug, Args)]
pub struct BundleArgs {
    /// Write the evidence bundle here (index.html, CSVs, JSON, plan, raw/, manifest.json).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Also write <DIR>.tar.gz of the bundle.
    #[arg(long, requires = "out")]
    pub archive: bool,
    /// Extra control catalogues (*.toml) to load beside the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub controls_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ControlsArgs {
    /// Only this framework (e.g. pci-dss, soc2, iso27001, nist-800-53, cis-aws).
    #[arg(long, value_name = "ID")]
    pub framework: Option<String>,
    /// Extra control catalogues (*.toml) to load beside the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub controls_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run to render [default: the latest].
    #[arg(long, value_name = "ID")]
    pub run: Option<i64>,
    /// SQLite snapshot holding the run.
    #[arg(long, value_name = "FILE", default_value = "credaudit.db")]
    pub db: PathBuf,
    #[command(flatten)]
    pub bundle: BundleArgs,
}

#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    /// The two policies of `--org`: the management (or delegated-administrator) account's, and
    /// the member accounts' --org-role.
    #[arg(long)]
    pub org: bool,
    /// The role assumed in each member account.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "credaudit-audit",
        requires = "org"
    )]
    pub org_role: String,
}

/// Where a live collection reads AWS.
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// Read AWS live (read-only) through the standard credential chain.
    #[arg(long)]
    pub aws: bool,
    /// Named profile of the AWS config.
    #[arg(long, value_name = "NAME", requires = "aws")]
    pub profile: Option<String>,
    /// Region to read Secrets Manager (and CloudTrail) in; repeatable [default: the configured region].
    #[arg(long = "region", value_name = "REGION", requires = "aws")]
    pub regions: Vec<String>,
    /// Role to assume for one more account; repeatable.
    #[arg(
        long = "assume-role",
        value_name = "ARN",
        requires = "aws",
        conflicts_with = "org"
    )]
    pub assume_roles: Vec<String>,
    /// Read every account of the AWS Organization (organizations:ListAccounts from the
    /// management or a delegated-administrator account), each through --org-role.
    #[arg(long, requires = "aws")]
    pub org: bool,
    /// Role assumed in each member account with --org.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "credaudit-audit",
        requires = "org"
    )]
    pub org_role: String,
    /// Account left out of --org; repeatable.
    #[arg(long = "exclude-account", value_name = "ID", requires = "org")]
    pub exclude_accounts: Vec<String>,
    /// With --org, only the accounts under this organisational unit (or root), at any depth;
    /// repeatable.
    #[arg(long = "include-ou", value_name = "OU", requires = "org")]
    pub include_ous: Vec<String>,
    /// Ask GetAccessKeyLastUsed of every key (one request each) instead of reading last use
    /// from the credential report, which IAM regenerates at most every 4 hours.
    #[arg(long, requires = "aws")]
    pub precise_last_used: bool,
    /// External id for --assume-role.
    #[arg(long, value_name = "ID", requires = "aws")]
    pub external_id: Option<String>,
    /// Endpoint for every AWS API (emulators, VPC endpoints) [env: AWS_ENDPOINT_URL].
    #[arg(long, value_name = "URL", requires = "aws")]
    pub endpoint_url: Option<String>,
    /// Most AWS requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 8, requires = "aws")]
    pub concurrency: usize,
    /// Days of CloudTrail to read before --as-of (0 = none; LookupEvents keeps 90 days, so
    /// more needs --cloudtrail-lake, which needs at least 1).
    #[arg(long, value_name = "DAYS", default_value_t = 30, requires = "aws",
          value_parser = clap::value_parser!(u32).range(0..=3660))]
    pub cloudtrail_window: u32,
    /// Aggregate CloudTrail usage in this CloudTrail Lake event data store (ARN or id) instead
    /// of LookupEvents: StartQuery, DescribeQuery, GetQueryResults (see docs/live-scan.md).
    #[arg(long, value_name = "EVENT_DATA_STORE", requires = "aws")]
    pub cloudtrail_lake: Option<String>,
    /// Keep the raw responses here, in the export-directory layout (replay with --from).
    #[arg(long, value_name = "DIR", requires = "aws")]
    pub export: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Export directory to scan (see docs/export-format.md).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "aws",
        conflicts_with = "aws"
    )]
    pub from: Option<PathBuf>,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// CloudTrail log files or folders (S3 delivery files, .json or .json.gz, record arrays,
    /// lookup-events output); repeatable. DIR/cloudtrail is read too when present.
    #[arg(long, value_name = "PATH")]
    pub cloudtrail: Vec<PathBuf>,
    /// Declared inventory [default: DIR/inventory.toml when present].
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Rotation history, JSON Lines [default: DIR/history.jsonl when present].
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Waivers (accepted risks with expiry) [default: DIR/waivers.toml when present].
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// SQLite snapshot to append the run to.
    #[arg(long, value_name = "FILE", default_value = "credaudit.db")]
    pub db: PathBuf,
    /// Evaluate as of this time (RFC 3339) [default: now].
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
    #[command(flatten)]
    pub bundle: BundleArgs,
    #[command(flatten)]
    pub gate: GateArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Accept export records whose ARN names another account or region than the folder that
    /// holds them (each file is noted in the coverage); by default that is bad input.
    #[arg(long)]
    pub allow_mislabelled: bool,
    /// Keep the bytes of the CloudTrail files read in the raw evidence (by default the run keeps
    /// each file's path, size and SHA-256 in raw/cloudtrail-files.json).
    #[arg(long)]
    pub keep_cloudtrail: bool,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// When a run that recorded its findings exits 1 (`scan`, `merge`).
#[derive(Debug, Args)]
pub struct GateArgs {
    /// Exit 1 when an unwaived finding at or above this severity exists.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<SeverityArg>,
    /// Exit 1 when an unwaived finding at or above this severity is new since the previous run
    /// of the snapshot (--db).
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on_new: Option<SeverityArg>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shard snapshots (`scan --db SHARD.db`), opened read-only; their latest runs are
    /// merged. Their accounts must not overlap.
    #[arg(value_name = "SHARD.db", required = true)]
    pub shards: Vec<PathBuf>,
    /// SQLite snapshot to append the organisation run to (not one of the shards).
    #[arg(long, value_name = "FILE", required = true)]
    pub db: PathBuf,
    /// Evaluate as of this time (RFC 3339) [default: the latest as-of of the shards' runs].
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
    #[command(flatten)]
    pub bundle: BundleArgs,
    #[command(flatten)]
    pub gate: GateArgs,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Caps on what a scan reads from untrusted input; a file over one stops the scan (exit 2)
/// naming the limit. Sizes take K, M, G or T (binary units).
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Largest input file: export files, inventory, history, waivers, each CloudTrail file.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    pub max_file_size: u64,
    /// Largest decompressed stream of one .gz CloudTrail file.
    #[arg(long, value_name = "SIZE", default_value = "4G", value_parser = parse_size)]
    pub max_decompressed_size: u64,
    /// Largest single record: a CloudTrail record, a credential report row, a history.jsonl line.
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_size)]
    pub max_record_size: u64,
}

fn parse_size(text: &str) -> Result<u64, String> {
    crate::collect::input::parse_size(text)
}

impl LimitArgs {
    pub fn limits(&self) -> crate::collect::input::Limits {
        crate::collect::input::Limits {
            max_file_bytes: self.max_file_size,
            max_decompressed_bytes: self.max_decompressed_size,
            max_record_bytes: self.max_record_size,
        }
    }
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Output format (markdown: the README's rule table).
    #[arg(long, value_enum, default_value_t = RulesFormat::Table)]
    pub format: RulesFormat,
}

/// How `rules` writes the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RulesFormat {
    /// Aligned columns for a terminal.
    Table,
    /// A versioned JSON document (`schema_version`).
    Json,
    /// The Markdown table of the README's "Rules" section.
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text for a terminal.
    Table,
    /// A versioned JSON document (`schema_version`).
    Json,
}

/// A severity as `--fail-on` spells it (the library's `model::Severity` knows nothing of clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SeverityArg {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// How `query` writes its answer (the library's `query::QueryFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryFormatArg {
    /// Aligned columns for a terminal.
    Table,
    /// RFC 4180 CSV with a header row, every cell neutralised against formula injection.
    Csv,
    /// A versioned JSON document: `schema_version`, the query, run and as-of, its columns, and
    /// one object per row keyed by column name (all values are strings).
    Json,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Directory to write the fleet into (must be empty or a previous fleet).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Number of agents (the demo's 40 scenarios, repeated).
    #[arg(long, default_value_t = 40)]
    pub agents: usize,
    /// Generate a fleet at scale instead: about N credentials with per-rule defect rates.
    #[arg(long, value_name = "N", conflicts_with = "agents")]
    pub credentials: Option<u64>,
    /// With --credentials: the number of accounts (ids drawn from the seed) or a comma list
    /// of 12-digit ids.
    #[arg(
        long,
        value_name = "K|IDS",
        default_value = "2",
        requires = "credentials"
    )]
    pub accounts: String,
    /// With --credentials: comma list of regions.
    #[arg(
        long,
        value_name = "REGIONS",
        default_value = "us-east-1,eu-west-1",
        requires = "credentials"
    )]
    pub regions: String,
    /// With --credentials: days of rotation history.
    #[arg(
        long,
        value_name = "D",
        default_value_t = 365,
        requires = "credentials"
    )]
    pub days: u32,
    /// With --credentials: a rule's defect rate, RULE=P (repeatable or comma separated; 0
    /// switches the defect off).
    #[arg(long, value_name = "RULE=P", requires = "credentials")]
    pub rate: Vec<String>,
    /// With --credentials: about this many CloudTrail records (0: no CloudTrail logs).
    #[arg(long, value_name = "E", default_value_t = 0, requires = "credentials")]
    pub cloudtrail_events: u64,
    /// Seed of the generator; the same seed gives the same fleet.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The time the fleet's ages are relative to (RFC 3339).
    #[arg(long, value_name = "TIME", default_value = "2026-11-01T00:00:00Z")]
    pub as_of: String,
    /// Print no progress.
    #[arg(long, short)]
    pub quiet: bool,
}

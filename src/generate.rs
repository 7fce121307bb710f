//! Synthetic fleets with ground truth. [`generate`] writes an export directory of AWS CLI
//! output (IAM credential report, users, keys, last use, tags; Secrets Manager per region), a
//! declared `inventory.toml`, a rotation `history.jsonl`, and `expected-findings.json`: exactly the
//! findings a correct scan must produce at the spec's as-of time.
//!
//! Every rule is planted on a few credentials (scenarios repeat every 40 agents, so a large
//! fleet carries proportionally many) next to many clean ones. The same spec always gives
//! byte-identical files: randomness comes from a seeded splitmix64, every time is relative to
//! the as-of time, and nothing reads the clock. No secret value is generated anywhere; history
//! fingerprints are hashes of random bytes.
//!
//! Layout of the output directory:
//! ```text
//! OUT/aws/<account>/iam/credential-report.csv
//! OUT/aws/<account>/iam/{list-users,list-access-keys,get-access-key-last-used,list-user-tags}.json
//! OUT/aws/<account>/secretsmanager/<region>/list-secrets.json
//! OUT/inventory.toml  OUT/history.jsonl  OUT/expected-findings.json
//! ```

mod build;
mod fleet;
mod rng;
mod scale;
mod truth;
mod write;

pub use self::scale::{
    RULE_IDS as PLANTED_AT_SCALE, Rates, ScaleSpec, accounts_from, generate_scale,
};

use std::fs;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What fleet to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetSpec {
    /// Seeds every random choice; the same spec gives the same files.
    pub seed: u64,
    /// Number of agents; each has about ten credentials (one IAM key, nine secrets).
    pub agents: usize,
    /// 12-digit AWS account ids; agents are spread over them round-robin.
    pub accounts: Vec<String>,
    /// Secrets Manager regions (e.g. `us-east-1`); agents are spread over them too.
    pub regions: Vec<String>,
    /// The time every date is relative to, and at which the expected findings hold.
    pub as_of: DateTime<Utc>,
}

impl FleetSpec {
    /// The demo fleet: seed 7, 40 agents (every scenario once), two accounts, two regions.
    pub fn demo(as_of: DateTime<Utc>) -> Self {
        FleetSpec {
            seed: 7,
            agents: 40,
            accounts: vec!["111122223333".into(), "444455556666".into()],
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            as_of,
        }
    }

    /// Account ids and regions become folder names, so they must be plain.
    fn validate(&self) -> Result<()> {
        if self.accounts.is_empty() {
            return Err(Error::Usage(
                "generate: at least one account is needed".into(),
            ));
        }
        if self.regions.is_empty() {
            return Err(Error::Usage(
                "generate: at least one region is needed".into(),
            ));
        }
        for account in &self.accounts {
            if !crate::model::is_account_id(account) {
                return Err(Error::Usage(format!(
                    "generate: account \"{account}\": expected a 12-digit AWS account id"
                )));
            }
        }
        for region in &self.regions {
            let plain = !region.is_empty()
                && region.len() <= 32
                && region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !region.starts_with('-');
            if !plain {
                return Err(Error::Usage(format!(
                    "generate: region \"{region}\": expected a region name such as us-east-1"
                )));
            }
        }
        if has_duplicates(&self.accounts) || has_duplicates(&self.regions) {
            return Err(Error::Usage(
                "generate: accounts and regions must not repeat".into(),
            ));
        }
        Ok(())
    }
}

fn has_duplicates(items: &[String]) -> bool {
    let mut seen = std::collections::HashSet::new();
    items.iter().any(|item| !seen.insert(item))
}

/// The findings a correct scan of a generated fleet produces; also written as
/// `expected-findings.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// Sorted by rule, then credential.
    pub expected: Vec<ExpectedFinding>,
    /// Distinct credentials in the fleet: observed IAM keys (root keys included) and secrets,
    /// plus declared credentials that are not observed (external and orphaned ones).
    pub credentials: usize,
}

/// One expected finding: a rule id and the public id of the credential it is about (access key
/// id, secret ARN, `arn:aws:iam::ACCOUNT:root/access-key-N`, or a declared id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ExpectedFinding {
    pub rule: String,
    pub credential: String,
}

/// Generates the fleet of `spec` into `out`: the export directory plus `inventory.toml`,
/// `history.jsonl` and `expected-findings.json`, and returns the ground truth.
///
/// `out` is created if missing. A non-empty directory is written into only if it holds an
/// `inventory.toml` (a previous fleet, or one's own fixture); if it also holds
/// `expected-findings.json` it is taken to be a generated fleet and its `aws/` and `cloudtrail/`
/// folders are replaced, so no account, region or log of an earlier spec lingers.
pub fn generate(spec: &FleetSpec, out: &Path) -> Result<GroundTruth> {
    spec.validate()?;
    prepare_out(out)?;
    let fleet = build::build(spec);
    let expected = truth::evaluate(&fleet, spec.as_of)
        .into_iter()
        .map(|(rule, credential)| ExpectedFinding { rule, credential })
        .collect();
    let truth = GroundTruth {
        expected,
        credentials: truth::count_credentials(&fleet),
    };
    let header = format!(
        "Declared inventory of a synthetic fleet (credaudit generate).\nseed = {}, agents = {}, as-of {}.",
        spec.seed,
        spec.agents,
        spec.as_of.format("%Y-%m-%dT%H:%M:%SZ")
    );
    write::write_all(&fleet, &truth, &header, out)?;
    Ok(truth)
}

fn prepare_out(out: &Path) -> Result<()> {
    match fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_none() {
                return Ok(());
            }
            if !out.join(write::INVENTORY).is_file() {
                return Err(Error::Usage(format!(
                    "generate: {} is not empty and holds no {}; refusing to write into it",
                    out.display(),
                    write::INVENTORY
                )));
            }
            if out.join(write::EXPECTED).is_file() {
                for folder in ["aws", "cloudtrail"] {
                    let stale = out.join(folder);
                    if stale.is_dir() {
                        fs::remove_dir_all(&stale).map_err(|e| Error::io(&stale, e))?;
                    }
                }
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(out).map_err(|e| Error::io(out, e))
        }
        Err(e) => Err(Error::io(out, e)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashSet};
    use std::path::PathBuf;

    use chrono::TimeZone;

    use super::*;

    /// The 18 rules the generator plants.
    const RULES: [&str; 18] = [
        "unmanaged-credential",
        "orphaned-inventory-entry",
        "rotation-overdue",
        "rotation-due-soon",
        "unclassified-credential",
        "unowned-credential",
        "unused-credential",
        "multiple-active-keys",
        "root-access-key",
        "inactive-key-lingering",
        "rotation-not-automated",
        "rotation-schedule-drift",
        "rotation-failing",
        "audit-trail-gap",
        "tag-drift",
        "credential-reuse",
        "secret-unused",
        "incident-not-remediated",
    ];

    fn as_of() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 10, 20, 2, 0, 0).unwrap()
    }

    /// Every file under `dir`, by relative path.
    fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    let rel = path.strip_prefix(root).unwrap().to_path_buf();
                    out.insert(rel, fs::read(&path).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(dir, dir, &mut out);
        out
    }

    #[test]
    fn same_spec_gives_identical_bytes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let spec = FleetSpec::demo(as_of());
        let truth_a = generate(&spec, a.path()).unwrap();
        let truth_b = generate(&spec, &b.path().join("nested/out")).unwrap();
        assert_eq!(truth_a, truth_b);
        let files_a = files(a.path());
        let files_b = files(&b.path().join("nested/out"));
        assert_eq!(
            files_a.keys().collect::<Vec<_>>(),
            files_b.keys().collect::<Vec<_>>()
        );
        assert!(files_a.len() >= 2 * 5 + 4 + 3, "{:?}", files_a.keys());
        for (path, bytes) in &files_a {
            assert!(bytes == &files_b[path], "{} differs", path.display());
        }
        // Regenerating in place is allowed and gives the same bytes again.
        generate(&spec, a.path()).unwrap();
        assert_eq!(files(a.path()), files_a);
        // A different seed gives a different fleet.
        let c = tempfile::tempdir().unwrap();
        generate(&FleetSpec { seed: 8, ..spec }, c.path()).unwrap();
        assert_ne!(
            files(c.path())[Path::new("inventory.toml")],
            files_a[Path::new("inventory.toml")]
        );
    }

    #[test]
    fn demo_plants_every_rule_on_a_few_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let truth = generate(&FleetSpec::demo(as_of()), dir.path()).unwrap();
        let written: GroundTruth =
            serde_json::from_slice(&fs::read(dir.path().join("expected-findings.json")).unwrap())
                .unwrap();
        assert_eq!(written, truth);
        let mut sorted = truth.expected.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, truth.expected, "sorted and unique");
        for rule in RULES {
            let count = truth.expected.iter().filter(|f| f.rule == rule).count();
            assert!((2..=4).contains(&count), "{rule}: {count} findings");
        }
        let unknown: Vec<_> = truth
            .expected
            .iter()
            .filter(|f| !RULES.contains(&f.rule.as_str()))
            .collect();
        assert!(unknown.is_empty(), "{unknown:?}");
        // Plenty of clean credentials next to the planted ones.
        let flagged: HashSet<&str> = truth
            .expected
            .iter()
            .map(|f| f.credential.as_str())
            .collect();
        assert!(truth.credentials >= 300, "{}", truth.credentials);
        assert!(
            flagged.len() * 5 < truth.credentials,
            "{} flagged",
            flagged.len()
        );
    }

    #[test]
    fn ground_truth_is_exactly_what_the_scenarios_planted() {
        // Several shapes of fleet and seeds: the evaluation must find the planted findings
        // and nothing on the clean credentials.
        let specs = [
            FleetSpec::demo(as_of()),
            FleetSpec {
                seed: 99,
                agents: 120,
                ..FleetSpec::demo(as_of())
            },
            FleetSpec {
                seed: 3,
                agents: 45,
                accounts: vec!["123456789012".into()],
                regions: vec!["ap-southeast-2".into()],
                as_of: Utc.with_ymd_and_hms(2025, 2, 28, 23, 59, 59).unwrap(),
            },
            FleetSpec {
                seed: 11,
                agents: 80,
                accounts: vec![
                    "111111111111".into(),
                    "222222222222".into(),
                    "333333333333".into(),
                ],
                regions: vec![
                    "us-east-1".into(),
                    "us-west-2".into(),
                    "eu-central-1".into(),
                ],
                as_of: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            },
        ];
        for spec in specs {
            let fleet = build::build(&spec);
            let found = truth::evaluate(&fleet, spec.as_of);
            let missing: Vec<_> = fleet.intended.difference(&found).collect();
            let extra: Vec<_> = found.difference(&fleet.intended).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "seed {}: missing {missing:?}, extra {extra:?}",
                spec.seed
            );
        }
    }

    #[test]
    fn files_are_well_formed_and_ids_unique() {
        let dir = tempfile::tempdir().unwrap();
        let spec = FleetSpec::demo(as_of());
        let truth = generate(&spec, dir.path()).unwrap();

        // inventory.toml is TOML, and the inventory reader accepts it.
        let text = fs::read_to_string(dir.path().join("inventory.toml")).unwrap();
        let value: toml::Value = toml::from_str(&text).unwrap();
        let credentials = value["credentials"].as_array().unwrap();
        let inventory = crate::inventory::parse(&text, Path::new("inventory.toml")).unwrap();
        assert_eq!(inventory.credentials.len(), credentials.len());
        assert!(value.get("policy").is_none());

        // Every history line is a JSON object the history reader accepts, in time order.
        let history = fs::read_to_string(dir.path().join("history.jsonl")).unwrap();
        let mut previous = String::new();
        for (index, line) in history.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let time = v["time"].as_str().unwrap().to_string();
            assert!(time >= previous, "line {}", index + 1);
            previous = time;
            crate::history::parse_line(line, Path::new("history.jsonl"), index + 1).unwrap();
        }

        let mut ids: HashSet<String> = HashSet::new();
        let mut observed = 0;
        for account in &spec.accounts {
            let iam = dir.path().join("aws").join(account).join("iam");
            // 22 columns on every row, root first.
            let mut reader = csv::Reader::from_path(iam.join("credential-report.csv")).unwrap();
            assert_eq!(reader.headers().unwrap().len(), 22);
            let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
            assert!(rows.iter().all(|r| r.len() == 22));
            assert_eq!(&rows[0][0], "<root_account>");
            assert_eq!(rows[0][1], format!("arn:aws:iam::{account}:root"));
            observed += rows[0]
                .iter()
                .enumerate()
                .filter(|(i, v)| (*i == 8 || *i == 13) && *v == "true")
                .count();

            let keys: serde_json::Value =
                serde_json::from_slice(&fs::read(iam.join("list-access-keys.json")).unwrap())
                    .unwrap();
            for output in keys.as_array().unwrap() {
                for key in output["AccessKeyMetadata"].as_array().unwrap() {
                    let id = key["AccessKeyId"].as_str().unwrap();
                    assert!(id.len() == 20 && id.starts_with("AKIA"), "{id}");
                    assert!(ids.insert(id.to_string()), "duplicate {id}");
                    observed += 1;
                }
            }
            for region in &spec.regions {
                let path = dir
                    .path()
                    .join("aws")
                    .join(account)
                    .join("secretsmanager")
                    .join(region)
                    .join("list-secrets.json");
                let list: serde_json::Value =
                    serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
                for secret in list["SecretList"].as_array().unwrap() {
                    let arn = secret["ARN"].as_str().unwrap();
                    let name = secret["Name"].as_str().unwrap();
                    assert!(
                        arn.starts_with(&format!(
                            "arn:aws:secretsmanager:{region}:{account}:secret:{name}-"
                        )),
                        "{arn}"
                    );
                    assert_eq!(arn.len(), arn.find(name).unwrap() + name.len() + 7);
                    assert!(ids.insert(arn.to_string()), "duplicate {arn}");
                    assert!(secret.get("SecretString").is_none());
                    observed += 1;
                }
            }
        }
        let declared_only = inventory
            .credentials
            .iter()
            .filter(|c| !ids.contains(&c.id))
            .count();
        assert_eq!(truth.credentials, observed + declared_only);
    }

    #[test]
    fn history_is_consistent_and_fingerprints_unique_except_the_planted_reuse() {
        let fleet = build::build(&FleetSpec::demo(as_of()));
        let mut seen = HashSet::new();
        let mut repeats = 0;
        for event in &fleet.events {
            if let Some(fp) = &event.fingerprint {
                assert!(fp.starts_with("sha256:") && fp.len() == 7 + 64, "{fp}");
                if !seen.insert(fp.clone()) {
                    repeats += 1;
                }
            }
            assert!(event.time >= as_of() - chrono::Duration::days(fleet::HISTORY_DAYS));
            assert!(event.time <= as_of());
        }
        assert_eq!(repeats, 2);

        // Every event names a credential that exists or is declared, and no secret that AWS
        // never rotated has a rotation in history (the rules read those differently).
        let mut known: HashSet<&str> = fleet.declared.iter().map(|d| d.id.as_str()).collect();
        let mut never_rotated = HashSet::new();
        for account in &fleet.accounts {
            for user in &account.users {
                known.extend(user.keys.iter().map(|k| k.id.as_str()));
            }
            for secret in account.secrets.iter().flatten() {
                known.insert(&secret.arn);
                if secret.last_rotated.is_none() {
                    never_rotated.insert(secret.arn.as_str());
                }
            }
        }
        for event in &fleet.events {
            assert!(
                known.contains(event.credential.as_str()),
                "{}",
                event.credential
            );
            let rotation = matches!(
                event.kind,
                crate::model::EventType::RotationInitiated
                    | crate::model::EventType::RotationCompleted
                    | crate::model::EventType::RotationFailed
            );
            assert!(!(rotation && never_rotated.contains(event.credential.as_str())));
        }
    }

    #[test]
    fn refuses_to_clobber_a_foreign_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let err = generate(&FleetSpec::demo(as_of()), dir.path()).unwrap_err();
        assert!(err.to_string().contains("refusing"), "{err}");
        assert_eq!(files(dir.path()).len(), 1);

        let bad = FleetSpec {
            accounts: vec!["../etc".into()],
            ..FleetSpec::demo(as_of())
        };
        assert!(generate(&bad, &dir.path().join("x")).is_err());
        let bad = FleetSpec {
            regions: vec!["us-east-1/..".into()],
            ..FleetSpec::demo(as_of())
        };
        assert!(generate(&bad, &dir.path().join("x")).is_err());
    }

    #[test]
    fn a_large_fleet_is_generated() {
        let dir = tempfile::tempdir().unwrap();
        let spec = FleetSpec {
            agents: 2000,
            ..FleetSpec::demo(as_of())
        };
        let truth = generate(&spec, dir.path()).unwrap();
        assert!(truth.credentials > 15_000, "{}", truth.credentials);
        let rules: BTreeSet<&str> = truth.expected.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(rules.len(), RULES.len());
    }
}

//! Tests of the export-directory reader: the real AWS samples, the two-account `basic` export,
//! and bad input that must be refused with the file and the location named.

use std::path::PathBuf;

use base64::Engine;
use chrono::{DateTime, Utc};

use super::*;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/export")
        .join(name)
}

fn at(text: &str) -> Option<Timestamp> {
    Some(
        DateTime::parse_from_rfc3339(text)
            .expect("test date")
            .with_timezone(&Utc),
    )
}

fn find<'a>(export: &'a ExportData, id: &str) -> &'a ObservedCredential {
    export
        .observed
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no credential {id}"))
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn coverage(export: &ExportData) -> Vec<String> {
    export
        .coverage
        .iter()
        .map(|c| {
            assert!(c.ok);
            assert_eq!(c.error, None);
            format!("{} {} {} {}", c.account, c.region, c.api, c.records)
        })
        .collect()
}

/// A temporary export directory holding `files` (relative path, content).
fn export_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, content) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, content).expect("write");
    }
    dir
}

/// The error message for reading `files`, with the temporary directory shown as `DIR`.
fn error_for(files: &[(&str, &str)]) -> String {
    let dir = export_with(files);
    let err = read_export_dir(dir.path()).expect_err("bad input must be refused");
    assert!(matches!(err, Error::Input { .. }), "{err:?}");
    err.to_string()
        .replace(&dir.path().display().to_string(), "DIR")
}

const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";
const ROOT_ROW: &str = "<root_account>,arn:aws:iam::111111111111:root,2019-05-01T10:00:00+00:00,not_supported,N/A,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A";

// ---------------------------------------------------------------------------------------------
// Real samples

/// The real samples, read with `--allow-mislabelled` (see their SOURCE.md).
fn read_samples() -> ExportData {
    let options = ExportOptions {
        allow_mislabelled: true,
        ..ExportOptions::default()
    };
    read_export_dir_with(&data("samples"), &options).unwrap()
}

#[test]
fn reads_real_samples() {
    // The list-secrets sample's ARN names a 13-digit demo account, so it sits under a folder
    // of its own and is read as mislabelled, with a note.
    assert!(read_export_dir(&data("samples")).is_err());
    let mut export = read_samples();
    let note = export
        .coverage
        .iter()
        .position(|c| c.api == "export:mislabelled")
        .expect("a note for the mislabelled sample");
    let note = export.coverage.remove(note);
    assert_eq!(
        (note.account.as_str(), note.region.as_str(), note.records),
        ("012345678901", "us-east-1", 1)
    );
    assert!(
        note.error
            .as_deref()
            .unwrap()
            .contains("its ARN names account \"0123456789012\""),
        "{note:?}"
    );
    assert_eq!(
        export.accounts,
        ["012345678901", "123456789012", "653711331788"]
    );
    assert_eq!(
        coverage(&export),
        [
            "012345678901 us-east-1 secretsmanager:list-secrets 1",
            "123456789012 us-west-2 secretsmanager:describe-secret 1",
            "653711331788 global iam:get-credential-report 1",
            "653711331788 global iam:credential-report:access-keys 0",
        ]
    );
    assert_eq!(export.observed.len(), 3);

    // cloudmapper credential report: the root user's active key.
    let root = find(&export, "arn:aws:iam::653711331788:root/access-key-1");
    assert_eq!(root.kind, CredentialKind::RootAccessKey);
    assert_eq!(root.account, "653711331788");
    assert_eq!(root.region, "global");
    assert_eq!(root.name, "<root_account>");
    assert_eq!(root.status, KeyStatus::Active);
    assert_eq!(root.created_at, at("2018-11-23T16:01:14Z"));
    assert_eq!(root.last_rotated_at, at("2018-11-23T16:01:14Z"));
    assert_eq!(root.last_used_at, at("2018-11-27T00:02:00Z"));
    assert_eq!(root.last_used_region.as_deref(), Some("us-east-1"));
    assert_eq!(root.last_used_service.as_deref(), Some("ecr"));
    assert!(!root.password_enabled);
    assert_eq!(root.rotation_enabled, None);

    // cloudmapper list-secrets: ISO dates with offsets, no CreatedDate, no rotation.
    let demo = find(
        &export,
        "arn:aws:secretsmanager:us-east-1:0123456789012:secret:demo-secret-lfUPRe",
    );
    assert_eq!(demo.kind, CredentialKind::Secret);
    assert_eq!(demo.account, "012345678901");
    assert_eq!(demo.region, "us-east-1");
    assert_eq!(demo.name, "demo-secret");
    assert_eq!(demo.created_at, None);
    assert_eq!(demo.last_rotated_at, None);
    assert_eq!(demo.last_used_at, at("2019-10-17T00:00:00Z"));
    assert_eq!(demo.last_changed_at, at("2019-10-17T21:47:00.587Z"));
    assert_eq!(demo.rotation_enabled, Some(false));
    assert_eq!(demo.rotation_interval_days, None);
    assert!(!demo.pending_version);
    assert_eq!(
        demo.tags,
        tags(&[
            ("access-project", "peg"),
            ("access-team", "eng"),
            ("cost-center", "987654")
        ])
    );

    // awscli describe-secret: epoch dates with fractions, schedule, AWSPENDING.
    let secret = find(
        &export,
        "arn:aws:secretsmanager:us-west-2:123456789012:secret:MyTestSecret-Ca8JGt",
    );
    assert_eq!(secret.name, "MyTestSecret");
    assert_eq!(secret.region, "us-west-2");
    assert_eq!(secret.created_at, at("2018-03-20T08:24:12.660Z"));
    assert_eq!(secret.last_rotated_at, at("2018-05-08T02:40:53.720Z"));
    assert_eq!(secret.last_changed_at, at("2018-04-11T20:05:45.729Z"));
    assert_eq!(secret.last_used_at, at("2018-04-24T12:15:33.250Z"));
    assert_eq!(secret.rotation_enabled, Some(true));
    // AutomaticallyAfterDays wins over the schedule (which alone would give 16).
    assert_eq!(secret.rotation_interval_days, Some(2));
    assert_eq!(
        secret.schedule_expression.as_deref(),
        Some("cron(0 16 1,15 * ? *)")
    );
    assert!(secret.pending_version);
    assert_eq!(
        secret.tags,
        tags(&[("FirstTag", "SomeValue"), ("SecondTag", "AnotherValue")])
    );
}

#[test]
fn credential_report_content_may_be_base64() {
    let sample =
        fs::read_to_string(data("samples").join("aws/653711331788/iam/get-credential-report.json"))
            .unwrap();
    let mut json: Value = serde_json::from_str(&sample).unwrap();
    let plain = json["Content"].as_str().unwrap().to_string();
    json["Content"] = Value::String(base64::engine::general_purpose::STANDARD.encode(plain));
    let dir = export_with(&[(
        "aws/653711331788/iam/get-credential-report.json",
        &json.to_string(),
    )]);
    let from_base64 = read_export_dir(dir.path()).unwrap();
    let from_plain = read_samples();
    let root = find(&from_base64, "arn:aws:iam::653711331788:root/access-key-1");
    assert_eq!(
        root,
        find(&from_plain, "arn:aws:iam::653711331788:root/access-key-1")
    );
}

// ---------------------------------------------------------------------------------------------
// The basic two-account export

#[test]
fn merges_the_basic_export() {
    let export = read_export_dir(&data("basic")).unwrap();
    assert_eq!(export.accounts, ["111111111111", "222222222222"]);
    assert_eq!(
        coverage(&export),
        [
            "111111111111 global iam:credential-report 4",
            "111111111111 global iam:list-users 3",
            "111111111111 global iam:list-access-keys 3",
            "111111111111 global iam:get-access-key-last-used 2",
            "111111111111 global iam:list-user-tags 2",
            "111111111111 eu-west-1 secretsmanager:list-secrets 1",
            "111111111111 us-east-1 secretsmanager:list-secrets 2",
            "111111111111 us-east-1 secretsmanager:describe-secret 1",
            "222222222222 global iam:get-credential-report 3",
            "222222222222 global iam:list-user-tags 1",
            "222222222222 global iam:credential-report:access-keys 2",
            "222222222222 eu-west-1 secretsmanager:describe-secret 1",
            "222222222222 us-east-1 secretsmanager:list-secrets 1",
        ]
    );
    let order: Vec<&str> = export.observed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        order,
        [
            "AKIAALICE11111111111",
            "AKIAALICE22222222222",
            "AKIABOB1111111111111",
            "arn:aws:secretsmanager:eu-west-1:111111111111:secret:agents/summarizer-token-a1B2c3",
            "arn:aws:secretsmanager:us-east-1:111111111111:secret:llm/provider-key-QwErTy",
            "arn:aws:secretsmanager:us-east-1:111111111111:secret:prod/db-password-AbCdEf",
            "arn:aws:iam::222222222222:user/dave/access-key-1",
            "arn:aws:iam::222222222222:user/dave/access-key-2",
            "arn:aws:iam::222222222222:root/access-key-1",
            "arn:aws:secretsmanager:eu-west-1:222222222222:secret:partner/api-key-Pp0Oo9",
            "arn:aws:secretsmanager:us-east-1:222222222222:secret:stuck-rotation-Zz9Yy8",
        ]
    );
    // The export never carried a secret value into the result.
    let dump = format!("{export:?}");
    assert!(!dump.contains("never-returns-this") && !dump.contains("bmV2ZXItcmVhZA"));
}

#[test]
fn basic_access_keys_merge_iam_sources() {
    let export = read_export_dir(&data("basic")).unwrap();

    // Last use from get-access-key-last-used, preferred over the credential report.
    let key = find(&export, "AKIAALICE11111111111");
    assert_eq!(key.kind, CredentialKind::IamAccessKey);
    assert_eq!(
        (key.account.as_str(), key.region.as_str()),
        ("111111111111", "global")
    );
    assert_eq!(key.name, "alice");
    assert_eq!(key.status, KeyStatus::Active);
    assert_eq!(key.created_at, at("2024-01-10T08:00:00Z"));
    assert_eq!(key.last_rotated_at, key.created_at);
    assert_eq!(key.last_used_at, at("2024-04-29T10:00:00Z"));
    assert_eq!(key.last_used_region.as_deref(), Some("us-east-1"));
    assert_eq!(key.last_used_service.as_deref(), Some("iam"));
    assert!(key.password_enabled);
    assert_eq!(key.tags, tags(&[("class", "B"), ("owner", "team-a")]));
    assert_eq!(key.rotation_enabled, None);
    assert_eq!(key.rotation_interval_days, None);

    // No last-used record: the report slot rotated at the key's creation (to the second).
    let key = find(&export, "AKIAALICE22222222222");
    assert_eq!(key.created_at, at("2024-04-01T09:30:00.412Z"));
    assert_eq!(key.last_used_at, at("2024-04-30T12:15:00Z"));
    assert_eq!(key.last_used_region.as_deref(), Some("eu-west-1"));
    assert_eq!(key.last_used_service.as_deref(), Some("secretsmanager"));

    // Never used ("N/A" region and service, no date); epoch CreateDate; no tags.
    let key = find(&export, "AKIABOB1111111111111");
    assert_eq!(key.status, KeyStatus::Inactive);
    assert_eq!(key.created_at, at("2023-06-01T00:00:00Z"));
    assert_eq!(key.last_used_at, None);
    assert_eq!(key.last_used_region, None);
    assert_eq!(key.last_used_service, None);
    assert!(!key.password_enabled);
    assert!(key.tags.is_empty());

    // Account 2 has no list-access-keys: keys come from the report, named by user ARN and slot.
    let key = find(&export, "arn:aws:iam::222222222222:user/dave/access-key-1");
    assert_eq!(key.kind, CredentialKind::IamAccessKey);
    assert_eq!(key.name, "dave");
    assert_eq!(key.status, KeyStatus::Active);
    assert_eq!(key.created_at, at("2024-02-01T00:00:00Z"));
    assert_eq!(key.last_used_at, at("2024-04-30T23:00:00Z"));
    assert_eq!(key.last_used_region.as_deref(), Some("eu-west-1"));
    assert_eq!(key.last_used_service.as_deref(), Some("bedrock"));
    assert_eq!(key.tags, tags(&[("owner", "team-b")]));
    let key = find(&export, "arn:aws:iam::222222222222:user/dave/access-key-2");
    assert_eq!(key.status, KeyStatus::Inactive);
    assert_eq!(key.last_used_at, None);

    let root = find(&export, "arn:aws:iam::222222222222:root/access-key-1");
    assert_eq!(root.kind, CredentialKind::RootAccessKey);
    assert_eq!(root.created_at, at("2020-01-02T00:00:00Z"));
    assert_eq!(root.last_used_service.as_deref(), Some("iam"));
    // Account 1's root has no active key.
    assert!(
        !export
            .observed
            .iter()
            .any(|c| c.account == "111111111111" && c.kind == CredentialKind::RootAccessKey)
    );
}

#[test]
fn basic_secrets_merge_list_and_describe() {
    let export = read_export_dir(&data("basic")).unwrap();

    // describe-secret overrides LastRotatedDate, NextRotationDate, RotationRules and the
    // versions; list-secrets still gives what describe-secret left out.
    let db = find(
        &export,
        "arn:aws:secretsmanager:us-east-1:111111111111:secret:prod/db-password-AbCdEf",
    );
    assert_eq!(db.name, "prod/db-password");
    assert_eq!(
        (db.account.as_str(), db.region.as_str()),
        ("111111111111", "us-east-1")
    );
    assert_eq!(db.status, KeyStatus::Active);
    assert_eq!(db.created_at, at("2023-01-05T10:00:00Z"));
    assert_eq!(db.last_rotated_at, at("2024-04-25T02:00:00Z"));
    assert_eq!(db.last_changed_at, at("2024-04-15T02:00:05.25Z"));
    assert_eq!(db.last_used_at, at("2024-04-30T00:00:00Z"));
    assert_eq!(db.next_rotation_at, at("2024-05-05T23:59:59Z"));
    assert_eq!(db.rotation_enabled, Some(true));
    assert_eq!(db.rotation_interval_days, Some(10));
    assert_eq!(db.schedule_expression.as_deref(), Some("rate(10 days)"));
    assert!(db.pending_version);
    assert_eq!(db.tags, tags(&[("class", "A"), ("owner", "dba")]));

    let llm = find(
        &export,
        "arn:aws:secretsmanager:us-east-1:111111111111:secret:llm/provider-key-QwErTy",
    );
    assert_eq!(llm.created_at, at("2024-01-01T00:00:00.5Z"));
    assert_eq!(llm.rotation_enabled, Some(false));
    assert_eq!(llm.rotation_interval_days, None);
    assert_eq!(llm.schedule_expression, None);
    assert!(!llm.pending_version);
    assert!(llm.tags.is_empty());

    let token = find(
        &export,
        "arn:aws:secretsmanager:eu-west-1:111111111111:secret:agents/summarizer-token-a1B2c3",
    );
    assert_eq!(token.region, "eu-west-1");
    assert_eq!(token.rotation_interval_days, Some(7));
    assert_eq!(token.last_rotated_at, at("2024-04-29T08:00:00.125Z"));
    assert_eq!(token.last_used_at, at("2024-04-30T00:00:00Z"));

    // Deleted secrets are skipped.
    assert!(!export.observed.iter().any(|c| c.name == "old-token"));

    let stuck = find(
        &export,
        "arn:aws:secretsmanager:us-east-1:222222222222:secret:stuck-rotation-Zz9Yy8",
    );
    assert!(stuck.pending_version);
    assert_eq!(stuck.rotation_interval_days, Some(14));
    assert_eq!(stuck.next_rotation_at, at("2024-03-15T23:59:59Z"));

    // AWSPENDING together with AWSCURRENT on one version is not a stuck rotation.
    let partner = find(
        &export,
        "arn:aws:secretsmanager:eu-west-1:222222222222:secret:partner/api-key-Pp0Oo9",
    );
    assert!(!partner.pending_version);
    assert_eq!(partner.rotation_enabled, Some(false));
    assert_eq!(partner.created_at, at("2023-07-07T05:07:07Z"));
}

#[test]
fn reading_is_deterministic() {
    let first = read_export_dir(&data("basic")).unwrap();
    let second = read_export_dir(&data("basic")).unwrap();
    assert_eq!(first, second);
}

// ---------------------------------------------------------------------------------------------
// Layout edge cases

#[test]
fn export_without_aws_folder_is_empty() {
    let dir = export_with(&[("cloudtrail/README.md", "other reader")]);
    let export = read_export_dir(dir.path()).unwrap();
    assert!(export.observed.is_empty() && export.coverage.is_empty() && export.accounts.is_empty());
}

#[test]
fn missing_export_dir_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_export_dir(&dir.path().join("nope")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
}

#[test]
fn the_same_report_twice_is_accepted_and_a_different_one_refused() {
    let csv = format!("{HEADER}\n{ROOT_ROW}\n");
    let json = serde_json::json!({ "Content": csv }).to_string();
    let dir = export_with(&[
        ("aws/111111111111/iam/credential-report.csv", &csv),
        ("aws/111111111111/iam/get-credential-report.json", &json),
    ]);
    let export = read_export_dir(dir.path()).unwrap();
    assert_eq!(export.coverage.len(), 3);

    let other = serde_json::json!({ "Content": format!("{HEADER}\n{}\n", ROOT_ROW.replace(",false,N/A,N/A,N/A,N/A,false,", ",true,2020-01-01T00:00:00Z,N/A,N/A,N/A,false,")) })
        .to_string();
    let err = error_for(&[
        ("aws/111111111111/iam/credential-report.csv", &csv),
        ("aws/111111111111/iam/get-credential-report.json", &other),
    ]);
    assert_eq!(
        err,
        "DIR/aws/111111111111/iam/get-credential-report.json: holds a different credential report \
         than DIR/aws/111111111111/iam/credential-report.csv; keep only one of the two"
    );
}

#[test]
fn the_iam_users_and_their_console_passwords_are_read_from_the_report() {
    // zed: console password used, an active key never used; amy: password never used; bot: no
    // password. The root row is not a user.
    let zed = "zed,arn:aws:iam::111111111111:user/zed,2024-01-10T09:00:00+00:00,true,2024-03-01T08:30:00+00:00,2024-01-10T09:05:00+00:00,N/A,true,true,2024-01-10T09:01:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A";
    let amy = "amy,arn:aws:iam::111111111111:user/ops/amy,2024-02-01T00:00:00+00:00,true,N/A,2024-02-01T00:00:00+00:00,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A";
    let bot = "bot,arn:aws:iam::111111111111:user/bot,2023-06-01T00:00:00+00:00,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A";
    let csv = format!("{HEADER}\n{ROOT_ROW}\n{zed}\n{amy}\n{bot}\n");
    let dir = export_with(&[("aws/111111111111/iam/credential-report.csv", &csv)]);
    let export = read_export_dir(dir.path()).unwrap();
    let user = |name: &str, arn: &str, created: &str, password: bool| IamUser {
        account: "111111111111".into(),
        name: name.into(),
        arn: arn.into(),
        created_at: at(created),
        password_enabled: password,
        password_last_used_at: None,
        password_last_changed_at: None,
    };
    assert_eq!(
        export.users,
        [
            IamUser {
                password_last_changed_at: at("2024-02-01T00:00:00Z"),
                ..user(
                    "amy",
                    "arn:aws:iam::111111111111:user/ops/amy",
                    "2024-02-01T00:00:00Z",
                    true
                )
            },
            user(
                "bot",
                "arn:aws:iam::111111111111:user/bot",
                "2023-06-01T00:00:00Z",
                false
            ),
            IamUser {
                password_last_used_at: at("2024-03-01T08:30:00Z"),
                password_last_changed_at: at("2024-01-10T09:05:00Z"),
                ..user(
                    "zed",
                    "arn:aws:iam::111111111111:user/zed",
                    "2024-01-10T09:00:00Z",
                    true
                )
            },
        ]
    );
    assert_eq!(
        export.users[0].console_password_id(),
        "arn:aws:iam::111111111111:user/ops/amy/console-password"
    );
    // Zed's key, named by slot without list-access-keys, carries what CIS 1.11 judges.
    let key = find(&export, "arn:aws:iam::111111111111:user/zed/access-key-1");
    assert!(key.password_enabled && key.last_used_at.is_none());

    // Without a credential report there are no users, whatever else IAM gave.
    let keys = r#"{"AccessKeyMetadata":[{"UserName":"zed","AccessKeyId":"AKIAZED0000000000001","Status":"Active","CreateDate":"2024-01-10T09:01:00Z"}]}"#;
    let dir = export_with(&[("aws/111111111111/iam/list-access-keys.json", keys)]);
    let export = read_export_dir(dir.path()).unwrap();
    assert_eq!(export.observed.len(), 1);
    assert!(export.users.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn truncated_json_names_file_line_and_column() {
    let err = error_for(&[(
        "aws/111111111111/iam/list-access-keys.json",
        "{\n  \"AccessKeyMetadata\": [\n    {\"UserName\": \"bob\",",
    )]);
    assert_eq!(
        err,
        "DIR/aws/111111111111/iam/list-access-keys.json: line 3 column 23: the JSON ends early; \
         the file looks truncated (EOF while parsing a value)"
    );
}

#[test]
fn wrong_type_names_the_record_and_field() {
    let keys = r#"[
      {"AccessKeyMetadata": []},
      {"AccessKeyMetadata": [{"UserName": "bob", "AccessKeyId": "AKIABOB", "Status": "Active", "CreateDate": true}]}
    ]"#;
    let err = error_for(&[("aws/111111111111/iam/list-access-keys.json", keys)]);
    assert_eq!(
        err,
        "DIR/aws/111111111111/iam/list-access-keys.json: [1].AccessKeyMetadata[0].CreateDate \
         (UserName \"bob\"): expected a date (ISO-8601 string or epoch seconds), found true"
    );

    let secrets = r#"{"SecretList": [{"ARN": "arn:x", "Name": "db", "RotationEnabled": "yes"}]}"#;
    let err = error_for(&[(
        "aws/111111111111/secretsmanager/us-east-1/list-secrets.json",
        secrets,
    )]);
    assert_eq!(
        err,
        "DIR/aws/111111111111/secretsmanager/us-east-1/list-secrets.json: \
         SecretList[0].RotationEnabled (Name \"db\"): expected true or false, found the string \"yes\""
    );

    let secrets = r#"{"SecretList": "none"}"#;
    let err = error_for(&[(
        "aws/111111111111/secretsmanager/us-east-1/list-secrets.json",
        secrets,
    )]);
    assert_eq!(
        err,
        "DIR/aws/111111111111/secretsmanager/us-east-1/list-secrets.json: line 1 column 21: \
         unexpected JSON shape: invalid type: string \"none\", expected a sequence"
    );

    let secret =
        r#"{"ARN": "arn:x", "Name": "db", "RotationRules": {"AutomaticallyAfterDays": "30"}}"#;
    let err = error_for(&[(
        "aws/111111111111/secretsmanager/us-east-1/describe-secret.json",
        secret,
    )]);
    assert_eq!(
        err,
        "DIR/aws/111111111111/secretsmanager/us-east-1/describe-secret.json: \
         RotationRules.AutomaticallyAfterDays (Name \"db\"): expected a whole number, found the string \"30\""
    );

    let secret = r#"[{"ARN": "arn:x", "Name": "db", "VersionIdsToStages": {"v1": "AWSCURRENT"}}]"#;
    let err = error_for(&[(
        "aws/111111111111/secretsmanager/us-east-1/describe-secret.json",
        secret,
    )]);
    assert_eq!(
        err,
        "DIR/aws/111111111111/secretsmanager/us-east-1/describe-secret.json: \
         [0].VersionIdsToStages[\"v1\"] (Name \"db\"): expected a list of stage names, found the string \"AWSCURRENT\""
    );
}

#[test]
fn impossible_date_names_the_field() {
    let secrets = r#"{"SecretList": [
        {"ARN": "arn:a", "Name": "a"},
        {"ARN": "arn:b", "Name": "b"},
        {"ARN": "arn:c", "Name": "c", "LastRotatedDate": "2026-02-30T00:00:00Z"}
    ]}"#;
    let err = error_for(&[(
        "aws/111111111111/secretsmanager/us-east-1/list-secrets.json",
        secrets,
    )]);
    assert_eq!(
        err,
        "DIR/aws/111111111111/secretsmanager/us-east-1/list-secrets.json: \
         SecretList[2].LastRotatedDate (Name \"c\"): \"2026-02-30T00:00:00Z\" is not a real date \
         and time (no such day, hour or offset)"
    );
}

#[test]
fn missing_or_unknown_members_are_named() {
    let used =
        r#"[{"UserName": "bob", "AccessKeyLastUsed": {"Region": "N/A", "ServiceName": "N/A"}}]"#;
    let err = error_for(&[("aws/111111111111/iam/get-access-key-last-used.json", used)]);
    assert_eq!(
        err,
        "DIR/aws/111111111111/iam/get-access-key-last-used.json: [0].AccessKeyId: missing; expected a string"
    );

    let keys = r#"{"AccessKeyMetadata": [{"UserName": "bob", "AccessKeyId": "AKIA1", "Status": "Enabled", "CreateDate": "2024-01-01T00:00:00Z"}]}"#;
    let err = error_for(&[("aws/111111111111/iam/list-access-keys.json", keys)]);
    assert_eq!(
        err,
        "DIR/aws/111111111111/iam/list-access-keys.json: AccessKeyMetadata[0].Status (UserName \"bob\"): \
         expected \"Active\" or \"Inactive\", found \"Enabled\""
    );

    let keys = r#"{"Users": []}"#;
    let err = error_for(&[("aws/111111111111/iam/list-access-keys.json", keys)]);
    assert_eq!(
        err,
        "DIR/aws/111111111111/iam/list-access-keys.json: line 1 column 13: \
         unexpected JSON shape: missing field `AccessKeyMetadata`"
    );
}

#[test]
fn duplicates_are_refused() {
    let key = r#"{"UserName": "bob", "AccessKeyId": "AKIA1", "Status": "Active", "CreateDate": "2024-01-01T00:00:00Z"}"#;
    let keys = format!(r#"[{{"AccessKeyMetadata": [{key}]}}, {{"AccessKeyMetadata": [{key}]}}]"#);
    let err = error_for(&[("aws/111111111111/iam/list-access-keys.json", &keys)]);
    assert_eq!(
        err,
        "DIR/aws/111111111111/iam/list-access-keys.json: [1].AccessKeyMetadata[0].AccessKeyId \
         (UserName \"bob\"): key \"AKIA1\" is listed twice (also at [0].AccessKeyMetadata[0])"
    );

    let secrets = r#"{"SecretList": [{"ARN": "arn:s", "Name": "s"}]}"#;
    let err = error_for(&[
        (
            "aws/111111111111/secretsmanager/eu-west-1/list-secrets.json",
            secrets,
        ),
        (
            "aws/111111111111/secretsmanager/us-east-1/list-secrets.json",
            secrets,
        ),
    ]);
    assert_eq!(
        err,
        "DIR/aws/111111111111/secretsmanager/us-east-1/list-secrets.json: credential \"arn:s\" is also in \
         DIR/aws/111111111111/secretsmanager/eu-west-1/list-secrets.json; each credential must appear once"
    );
}

#[test]
fn a_user_listed_twice_in_the_credential_report_is_refused() {
    let csv = format!("{HEADER}\n{ROOT_ROW}\n{ROOT_ROW}\n");
    let err = error_for(&[("aws/111111111111/iam/credential-report.csv", &csv)]);
    assert_eq!(
        err,
        "DIR/aws/111111111111/iam/credential-report.csv: line 3 (user \"<root_account>\"): the user is listed twice (also at line 2); expected one row per user"
    );
}

#[test]
fn csv_row_with_missing_fields_names_the_line() {
    let short = ROOT_ROW.rsplit_once(',').unwrap().0;
    let user = "bob,arn:aws:iam::111111111111:user/bob,2020-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A";
    let csv = format!("{HEADER}\n{ROOT_ROW}\n{user}\n{short}\n");
    let err = error_for(&[("aws/111111111111/iam/credential-report.csv", &csv)]);
    assert_eq!(
        err,
        "DIR/aws/111111111111/iam/credential-report.csv: line 4: expected 22 fields as in the header, found 21"
    );
}

#[test]
fn csv_bad_header_names_the_column() {
    let header = HEADER.replace("access_key_2_last_rotated", "access_key_2_rotated");
    let csv = format!("{header}\n");
    let err = error_for(&[("aws/111111111111/iam/credential-report.csv", &csv)]);
    assert!(
        err.starts_with(
            "DIR/aws/111111111111/iam/credential-report.csv: line 1: the header lacks the column \
             \"access_key_2_last_rotated\"; expected the credential report columns user,arn,"
        ),
        "{err}"
    );
}

#[test]
fn bad_folder_names_are_named() {
    let err = error_for(&[("aws/prod/iam/list-users.json", r#"{"Users": []}"#)]);
    assert_eq!(
        err,
        "DIR/aws/prod: expected an account folder named by a 12-digit AWS account id, found \"prod\""
    );
    let err = error_for(&[("aws/11111111111/iam/list-users.json", r#"{"Users": []}"#)]);
    assert!(
        err.starts_with("DIR/aws/11111111111: expected an account folder"),
        "{err}"
    );

    let err = error_for(&[(
        "aws/111111111111/secretsmanager/US_EAST_1/list-secrets.json",
        r#"{"SecretList": []}"#,
    )]);
    assert_eq!(
        err,
        "DIR/aws/111111111111/secretsmanager/US_EAST_1: expected a region folder named like us-east-1, found \"US_EAST_1\""
    );

    let err = error_for(&[(
        "aws/111111111111/secretsmanager/list-secrets.json",
        r#"{"SecretList": []}"#,
    )]);
    assert!(
        err.starts_with(
            "DIR/aws/111111111111/secretsmanager/list-secrets.json: expected Secrets Manager files inside a region folder"
        ),
        "{err}"
    );
}

#[test]
fn region_and_account_names() {
    for good in [
        "us-east-1",
        "us-gov-west-1",
        "eu-central-2",
        "cn-northwest-1",
        "il-central-1",
    ] {
        assert!(is_region_name(good), "{good}");
    }
    for bad in [
        "global",
        "us-east",
        "us--east-1",
        "us-east-1-",
        "US-east-1",
        "1s-east-1",
        "../x",
    ] {
        assert!(!is_region_name(bad), "{bad}");
    }
    assert!(is_account_id("012345678901"));
    assert!(!is_account_id("0123456789012"));
    assert!(!is_account_id("01234567890a"));
}

// ---------------------------------------------------------------------------------------------
// Evidence filed under the wrong account or region

/// The real samples copied into `files` (relative path under `aws/`, source under the samples).
fn samples_filed_as(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (to, from) in files {
        let target = dir.path().join("aws").join(to);
        fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        fs::copy(data("samples/aws").join(from), target).expect("copy");
    }
    dir
}

#[test]
fn a_record_filed_under_another_account_or_region_is_refused() {
    // The cloudmapper credential report's root ARN names account 653711331788.
    let dir = samples_filed_as(&[(
        "123456789012/iam/get-credential-report.json",
        "653711331788/iam/get-credential-report.json",
    )]);
    let message = read_export_dir(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains("get-credential-report.json: line 2 (user \"<root_account>\")"),
        "{message}"
    );
    assert!(
        message.contains(
            "its ARN names account \"653711331788\", but it is filed under account 123456789012"
        ),
        "{message}"
    );
    assert!(message.contains("--allow-mislabelled"), "{message}");

    // The describe-secret sample's ARN is in us-west-2 of 123456789012.
    let dir = samples_filed_as(&[(
        "123456789012/secretsmanager/eu-west-1/describe-secret.json",
        "123456789012/secretsmanager/us-west-2/describe-secret.json",
    )]);
    let message = read_export_dir(dir.path()).unwrap_err().to_string();
    assert!(
        message
            .contains("its ARN names region \"us-west-2\", but it is filed under region eu-west-1"),
        "{message}"
    );

    // The list-secrets sample names a 13-digit demo account, in no 12-digit folder.
    let dir = samples_filed_as(&[(
        "111122223333/secretsmanager/us-east-1/list-secrets.json",
        "012345678901/secretsmanager/us-east-1/list-secrets.json",
    )]);
    let message = read_export_dir(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains("SecretList[0] (Name \"demo-secret\")"),
        "{message}"
    );
    assert!(message.contains("account \"0123456789012\""), "{message}");
    assert!(message.contains("account 111122223333"), "{message}");
}

#[test]
fn allow_mislabelled_accepts_the_records_with_a_coverage_note() {
    let dir = samples_filed_as(&[(
        "123456789012/iam/get-credential-report.json",
        "653711331788/iam/get-credential-report.json",
    )]);
    let options = ExportOptions {
        allow_mislabelled: true,
        ..ExportOptions::default()
    };
    let export = read_export_dir_with(dir.path(), &options).unwrap();
    let notes: Vec<&CoverageEntry> = export
        .coverage
        .iter()
        .filter(|c| c.api == "export:mislabelled")
        .collect();
    assert_eq!(notes.len(), 1, "{:?}", export.coverage);
    assert_eq!(notes[0].account, "123456789012");
    assert!(notes[0].ok);
    assert_eq!(notes[0].records, 1);
    let note = notes[0].error.as_deref().unwrap();
    assert!(
        note.starts_with("aws/123456789012/iam/get-credential-report.json: 1 record(s) accepted with --allow-mislabelled"),
        "{note}"
    );
    assert!(note.contains("653711331788"), "{note}");
}

//! The parts of live collection that need no emulator: the IAM policy, the checks of the command
//! line made before any request, and how a scan reads a collection's `coverage.json`.

mod common;

use std::process::Output;

use serde_json::Value;

use common::{AS_OF, credaudit, scan};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn iam_policy_is_read_only_and_denies_secret_values() {
    let output = credaudit().arg("iam-policy").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let policy: Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(policy["Version"], "2012-10-17");
    let allow = &policy["Statement"][0];
    assert_eq!(allow["Effect"], "Allow");
    let actions: Vec<&str> = allow["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for needed in [
        "iam:GenerateCredentialReport",
        "iam:GetCredentialReport",
        "iam:GetAccountAuthorizationDetails",
        "iam:ListAccessKeys",
        "iam:GetAccessKeyLastUsed",
        "secretsmanager:ListSecrets",
        "secretsmanager:DescribeSecret",
        "cloudtrail:LookupEvents",
        "cloudtrail:StartQuery",
        "cloudtrail:DescribeQuery",
        "cloudtrail:GetQueryResults",
        "sts:GetCallerIdentity",
    ] {
        assert!(actions.contains(&needed), "{needed}");
    }
    assert_eq!(actions.len(), 12, "nothing more: {actions:?}");
    let deny = &policy["Statement"][1];
    assert_eq!(deny["Effect"], "Deny");
    let denied = deny["Action"].to_string();
    assert!(denied.contains("secretsmanager:GetSecretValue"));
    assert!(denied.contains("secretsmanager:BatchGetSecretValue"));
}

#[test]
fn org_iam_policies_list_accounts_and_assume_only_the_named_role() {
    let output = credaudit()
        .args(["iam-policy", "--org", "--org-role", "audit-reader"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let both: Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    let management = both["management"]["Statement"].as_array().unwrap();
    let actions: Vec<&str> = management[0]["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "organizations:ListAccounts",
            "organizations:ListAccountsForParent",
            "organizations:ListOrganizationalUnitsForParent"
        ]
    );
    assert_eq!(management[1]["Action"], "sts:AssumeRole");
    assert_eq!(
        management[1]["Resource"],
        "arn:aws:iam::*:role/audit-reader"
    );
    assert_eq!(both["member"]["role"], "audit-reader");
    let single: Value =
        serde_json::from_slice(&credaudit().arg("iam-policy").output().unwrap().stdout).unwrap();
    assert_eq!(both["member"]["policy"], single);

    let bad = credaudit()
        .args(["iam-policy", "--org", "--org-role", "x\"y"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("expected an IAM role name"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn bad_live_arguments_stop_before_any_request() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing listens there; these must fail on the arguments, not on the network.
    let endpoint = "http://127.0.0.1:9";
    let cases: [(&[&str], &str); 7] = [
        (
            &[
                "--region",
                "us-east-1",
                "--assume-role",
                "arn:aws:iam::12345:role/x",
            ],
            "expected a role ARN",
        ),
        (&["--region", "../etc"], "expected an AWS region name"),
        (
            &["--region", "us-east-1", "--external-id", "x"],
            "--external-id needs --assume-role or --org",
        ),
        (
            &[
                "--region",
                "us-east-1",
                "--org",
                "--exclude-account",
                "1234",
            ],
            "--exclude-account \"1234\": expected a 12-digit AWS account id",
        ),
        (
            &[
                "--region",
                "us-east-1",
                "--org",
                "--include-ou",
                "ou-x/../y",
            ],
            "--include-ou \"ou-x/../y\": expected an organisational unit id",
        ),
        (
            &["--region", "us-east-1", "--org", "--org-role", "a/b"],
            "--org-role \"a/b\": expected an IAM role name",
        ),
        (
            &[
                "--region",
                "us-east-1",
                "--org",
                "--assume-role",
                "arn:aws:iam::123456789012:role/x",
            ],
            "cannot be used with",
        ),
    ];
    for (args, message) in cases {
        let output = credaudit()
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent/credaudit-test/config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/credaudit-test/credentials",
            )
            .args(["collect", "--aws", "--endpoint-url", endpoint])
            .args(args)
            .arg("--export")
            .arg(tmp.path().join("export"))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!tmp.path().join("export/aws").exists());
    }
}

fn export_with_coverage(coverage: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let iam = tmp.path().join("export/aws/111111111111/iam");
    std::fs::create_dir_all(&iam).unwrap();
    std::fs::write(
        iam.join("list-access-keys.json"),
        r#"{"AccessKeyMetadata":[{"UserName":"bob","AccessKeyId":"AKIAEXAMPLE0000000001","Status":"Active","CreateDate":"2026-10-20T00:00:00Z"}]}"#,
    )
    .unwrap();
    std::fs::write(tmp.path().join("export/coverage.json"), coverage).unwrap();
    tmp
}

#[test]
fn failures_in_coverage_json_make_the_scan_incomplete() {
    let tmp = export_with_coverage(
        r#"[{"account":"111111111111","region":"eu-west-1","api":"secretsmanager:list-secrets","ok":false,"error":"AccessDeniedException: not authorized","records":0}]"#,
    );
    let out = tmp.path().join("bundle");
    let (code, _, stderr) = scan(
        &tmp.path().join("export"),
        &tmp.path().join("db"),
        Some(&out),
        &[],
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains(
            "incomplete: 111111111111 eu-west-1 secretsmanager:list-secrets: AccessDeniedException"
        ),
        "{stderr}"
    );
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("AccessDeniedException"));
}

#[test]
fn an_empty_coverage_json_changes_nothing() {
    let tmp = export_with_coverage("[]\n");
    let (code, _, stderr) = scan(
        &tmp.path().join("export"),
        &tmp.path().join("db"),
        None,
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("as of"), "{stderr}");
    let _ = AS_OF;
}

#[test]
fn a_malformed_coverage_json_is_named() {
    let tmp = export_with_coverage(r#"[{"account":"111111111111","region":"global"}]"#);
    let (code, _, stderr) = scan(
        &tmp.path().join("export"),
        &tmp.path().join("db"),
        None,
        &[],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("coverage.json"), "{stderr}");
    assert!(!tmp.path().join("db").exists(), "nothing half-written");
}

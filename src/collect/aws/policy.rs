//! The least-privilege IAM policy of a live scan: exactly the read calls the collector makes,
//! and an explicit Deny on reading secret values as defence in depth (a Deny wins over any Allow
//! another policy of the audit role might grant).

use serde_json::json;

/// Every action the collector calls, sorted.
pub const ACTIONS: [&str; 13] = [
    // The three query calls serve `--cloudtrail-lake` only; without it they may be left out.
    "cloudtrail:DescribeQuery",
    "cloudtrail:GetQueryResults",
    "cloudtrail:LookupEvents",
    "cloudtrail:StartQuery",
    "iam:GenerateCredentialReport",
    "iam:GetAccessKeyLastUsed",
    "iam:GetCredentialReport",
    "iam:ListAccessKeys",
    "iam:ListUserTags",
    "iam:ListUsers",
    "secretsmanager:DescribeSecret",
    "secretsmanager:ListSecrets",
    "sts:GetCallerIdentity",
];

/// Actions that read secret values: never needed, always denied.
pub const DENIED: [&str; 2] = [
    "secretsmanager:BatchGetSecretValue",
    "secretsmanager:GetSecretValue",
];

/// The policy document, pretty-printed JSON.
pub fn document() -> String {
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CredauditReadCredentialMetadata",
                "Effect": "Allow",
                "Action": ACTIONS,
                "Resource": "*",
            },
            {
                "Sid": "CredauditNeverReadSecretValues",
                "Effect": "Deny",
                "Action": DENIED,
                "Resource": "*",
            },
        ],
    });
    serde_json::to_string_pretty(&policy).expect("plain data")
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn allows_only_reads_and_denies_secret_values() {
        let policy: Value = serde_json::from_str(&document()).unwrap();
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        let allow = &statements[0];
        assert_eq!(allow["Effect"], "Allow");
        let actions: Vec<&str> = allow["Action"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(actions, ACTIONS);
        for action in &actions {
            assert!(!action.contains('*'), "no wildcards: {action}");
            let verb = action.split(':').nth(1).unwrap();
            // StartQuery runs a SELECT in CloudTrail Lake (Lake allows no other statement).
            assert!(
                ["List", "Get", "Describe", "Lookup", "Generate"]
                    .iter()
                    .any(|p| verb.starts_with(p))
                    || *action == "cloudtrail:StartQuery",
                "{action} reads"
            );
            assert!(!action.ends_with("SecretValue"), "{action}");
        }
        let deny = &statements[1];
        assert_eq!(deny["Effect"], "Deny");
        assert_eq!(
            deny["Action"],
            serde_json::json!([
                "secretsmanager:BatchGetSecretValue",
                "secretsmanager:GetSecretValue"
            ])
        );
    }
}

//! The least-privilege IAM policy of a live scan: exactly the read calls the collector makes,
//! and an explicit Deny on reading secret values as defence in depth (a Deny wins over any Allow
//! another policy of the audit role might grant).

use serde_json::json;

/// Every action the collector calls, sorted.
pub const ACTIONS: [&str; 12] = [
    // The three query calls serve `--cloudtrail-lake` only; without it they may be left out.
    "cloudtrail:DescribeQuery",
    "cloudtrail:GetQueryResults",
    "cloudtrail:LookupEvents",
    "cloudtrail:StartQuery",
    "iam:GenerateCredentialReport",
    "iam:GetAccessKeyLastUsed",
    "iam:GetAccountAuthorizationDetails",
    "iam:GetCredentialReport",
    "iam:ListAccessKeys",
    "secretsmanager:DescribeSecret",
    "secretsmanager:ListSecrets",
    "sts:GetCallerIdentity",
];

/// Actions that read secret values: never needed, always denied.
pub const DENIED: [&str; 2] = [
    "secretsmanager:BatchGetSecretValue",
    "secretsmanager:GetSecretValue",
];

/// What the management (or delegated-administrator) account calls, besides [`ACTIONS`], to read
/// the whole organisation, sorted.
pub const ORG_ACTIONS: [&str; 3] = [
    "organizations:ListAccounts",
    "organizations:ListAccountsForParent",
    "organizations:ListOrganizationalUnitsForParent",
];

/// The policies of `--org`, pretty-printed JSON: `management`, for the principal that runs the
/// scan in the management or delegated-administrator account (list the accounts, assume `role`
/// in each, and read its own account), and `member`, for `role` in every member account (the
/// read-only policy of [`document`]).
pub fn org_documents(role: &str) -> String {
    let management = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CredauditListOrganizationAccounts",
                "Effect": "Allow",
                "Action": ORG_ACTIONS,
                "Resource": "*",
            },
            {
                "Sid": "CredauditAssumeMemberAuditRole",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": format!("arn:aws:iam::*:role/{role}"),
            },
            read_statement(),
            deny_statement(),
        ],
    });
    let member = read_policy();
    let both = json!({
        "management": management,
        "member": { "role": role, "policy": member },
    });
    serde_json::to_string_pretty(&both).expect("plain data")
}

fn read_statement() -> serde_json::Value {
    json!({
        "Sid": "CredauditReadCredentialMetadata",
        "Effect": "Allow",
        "Action": ACTIONS,
        "Resource": "*",
    })
}

fn deny_statement() -> serde_json::Value {
    json!({
        "Sid": "CredauditNeverReadSecretValues",
        "Effect": "Deny",
        "Action": DENIED,
        "Resource": "*",
    })
}

fn read_policy() -> serde_json::Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [read_statement(), deny_statement()],
    })
}

/// The policy document, pretty-printed JSON.
pub fn document() -> String {
    let policy = read_policy();
    serde_json::to_string_pretty(&policy).expect("plain data")
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn org_policies_list_accounts_assume_only_the_role_and_read_alike() {
        let both: Value = serde_json::from_str(&org_documents("credaudit-audit")).unwrap();
        let statements = both["management"]["Statement"].as_array().unwrap();
        assert_eq!(statements[0]["Action"], serde_json::json!(ORG_ACTIONS));
        assert_eq!(statements[1]["Action"], "sts:AssumeRole");
        assert_eq!(
            statements[1]["Resource"],
            "arn:aws:iam::*:role/credaudit-audit"
        );
        let single: Value = serde_json::from_str(&document()).unwrap();
        assert_eq!(
            both["member"]["policy"], single,
            "members get the read-only policy"
        );
        assert_eq!(statements[2], single["Statement"][0]);
        assert_eq!(statements[3]["Effect"], "Deny");
    }

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

//! Secrets Manager of one account and region: ListSecrets through all its pages (secrets planned
//! for deletion left out), and DescribeSecret only for the entries ListSecrets leaves short.
//! Written as the AWS CLI prints them, into `aws/<account>/secretsmanager/<region>/`.
//!
//! ListSecrets already returns everything the rules use (rotation switch, rules and schedule,
//! last rotated/changed/accessed, next rotation, tags, version stages), so one paged call per
//! region does. DescribeSecret is called for an entry that says rotation is on but carries no
//! `RotationRules`, or that carries no version map (`SecretVersionsToStages`), which decides
//! whether a rotation is stuck in `AWSPENDING`.
//!
//! Never GetSecretValue or BatchGetSecretValue: no secret value is requested, so none can be
//! stored.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use aws_sdk_secretsmanager::types::{RotationRulesType, SecretListEntry, Tag};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::context::{AccountId, Ctx, RegionName, compact, describe, iso_opt, write_json};
use super::iam::all_pages;
use super::session::Account;
use crate::error::Result;

/// Reads the secrets of `account` in `region` into the export.
pub async fn collect(ctx: Arc<Ctx>, account: Account, region: RegionName) -> Result<()> {
    let client = account.secrets(&region);
    let id = &account.id;
    ctx.status(format!("Secrets Manager of {id} in {region}"));
    let mut entries: Vec<SecretListEntry> = Vec::new();
    let failure = all_pages!(
        ctx,
        "secretsmanager:ListSecrets",
        client
            .list_secrets()
            .include_planned_deletion(false)
            .max_results(100)
            .into_paginator()
            .send(),
        |page| entries.extend(page.secret_list().iter().cloned())
    );
    if let Some(error) = failure {
        ctx.fail(
            id.as_str(),
            region.as_str(),
            "secretsmanager:list-secrets",
            error,
        );
        if entries.is_empty() {
            return Ok(());
        }
    }
    write_json(
        &ctx.secrets_file(id, &region, "list-secrets.json"),
        &json!({ "SecretList": entries.iter().map(entry_json).collect::<Vec<_>>() }),
    )?;

    let wanted: Vec<String> = entries
        .iter()
        .filter(|entry| needs_describe(entry))
        .filter_map(|entry| entry.arn().map(str::to_string))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let mut tasks = JoinSet::new();
    for (index, arn) in wanted.into_iter().enumerate() {
        let ctx = ctx.clone();
        let client = client.clone();
        let account = id.clone();
        let region = region.clone();
        tasks.spawn(async move {
            (
                index,
                describe_one(&ctx, &client, &account, &region, &arn).await,
            )
        });
    }
    let mut described: BTreeMap<usize, Value> = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (index, output) = joined.expect("Secrets Manager tasks do not panic");
        if let Some(output) = output {
            described.insert(index, output);
        }
    }
    write_json(
        &ctx.secrets_file(id, &region, "describe-secret.json"),
        &Value::Array(described.into_values().collect()),
    )
}

/// Whether ListSecrets left out something DescribeSecret would tell.
fn needs_describe(entry: &SecretListEntry) -> bool {
    (entry.rotation_enabled() == Some(true) && entry.rotation_rules().is_none())
        || entry.secret_versions_to_stages().is_none()
}

async fn describe_one(
    ctx: &Ctx,
    client: &Client,
    account: &AccountId,
    region: &RegionName,
    arn: &str,
) -> Option<Value> {
    let result = ctx
        .call(
            "secretsmanager:DescribeSecret",
            client.describe_secret().secret_id(arn).send(),
        )
        .await;
    match result {
        Ok(output) => Some(describe_json(&output)),
        Err(error) => {
            ctx.fail(
                account.as_str(),
                region.as_str(),
                "secretsmanager:describe-secret",
                format!("{arn}: {}", describe(&error)),
            );
            None
        }
    }
}

fn tags_json(tags: &[Tag]) -> Value {
    Value::Array(
        tags.iter()
            .map(|t| json!({ "Key": t.key(), "Value": t.value() }))
            .collect(),
    )
}

fn rules_json(rules: Option<&RotationRulesType>) -> Value {
    rules
        .map(|r| {
            compact(json!({
                "AutomaticallyAfterDays": r.automatically_after_days(),
                "Duration": r.duration(),
                "ScheduleExpression": r.schedule_expression(),
            }))
        })
        .unwrap_or(Value::Null)
}

/// A version map with its ids sorted, so the same secret always gives the same bytes.
fn stages_json(map: Option<&HashMap<String, Vec<String>>>) -> Value {
    map.map(|m| json!(m.iter().collect::<BTreeMap<_, _>>()))
        .unwrap_or(Value::Null)
}

fn entry_json(entry: &SecretListEntry) -> Value {
    compact(json!({
        "ARN": entry.arn(),
        "Name": entry.name(),
        "Description": entry.description(),
        "KmsKeyId": entry.kms_key_id(),
        "RotationEnabled": entry.rotation_enabled(),
        "RotationLambdaARN": entry.rotation_lambda_arn(),
        "RotationRules": rules_json(entry.rotation_rules()),
        "LastRotatedDate": iso_opt(entry.last_rotated_date()),
        "LastChangedDate": iso_opt(entry.last_changed_date()),
        "LastAccessedDate": iso_opt(entry.last_accessed_date()),
        "DeletedDate": iso_opt(entry.deleted_date()),
        "NextRotationDate": iso_opt(entry.next_rotation_date()),
        "Tags": if entry.tags().is_empty() { Value::Null } else { tags_json(entry.tags()) },
        "SecretVersionsToStages": stages_json(entry.secret_versions_to_stages()),
        "OwningService": entry.owning_service(),
        "CreatedDate": iso_opt(entry.created_date()),
        "PrimaryRegion": entry.primary_region(),
    }))
}

fn describe_json(output: &DescribeSecretOutput) -> Value {
    compact(json!({
        "ARN": output.arn(),
        "Name": output.name(),
        "Description": output.description(),
        "KmsKeyId": output.kms_key_id(),
        "RotationEnabled": output.rotation_enabled(),
        "RotationLambdaARN": output.rotation_lambda_arn(),
        "RotationRules": rules_json(output.rotation_rules()),
        "LastRotatedDate": iso_opt(output.last_rotated_date()),
        "LastChangedDate": iso_opt(output.last_changed_date()),
        "LastAccessedDate": iso_opt(output.last_accessed_date()),
        "DeletedDate": iso_opt(output.deleted_date()),
        "NextRotationDate": iso_opt(output.next_rotation_date()),
        "Tags": if output.tags().is_empty() { Value::Null } else { tags_json(output.tags()) },
        "VersionIdsToStages": stages_json(output.version_ids_to_stages()),
        "OwningService": output.owning_service(),
        "CreatedDate": iso_opt(output.created_date()),
        "PrimaryRegion": output.primary_region(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_entries_print_as_the_cli_does() {
        let entry = SecretListEntry::builder()
            .arn("arn:aws:secretsmanager:us-east-1:111111111111:secret:db-AbCdEf")
            .name("db")
            .rotation_enabled(true)
            .rotation_rules(
                RotationRulesType::builder()
                    .automatically_after_days(30)
                    .build(),
            )
            .last_rotated_date(aws_sdk_secretsmanager::primitives::DateTime::from_secs(
                1_700_000_000,
            ))
            .secret_versions_to_stages("v2", vec!["AWSCURRENT".to_string()])
            .secret_versions_to_stages("v1", vec!["AWSPREVIOUS".to_string()])
            .build();
        let value = entry_json(&entry);
        assert_eq!(value["RotationRules"]["AutomaticallyAfterDays"], 30);
        assert_eq!(value["LastRotatedDate"], "2023-11-14T22:13:20Z");
        assert!(
            value.get("Description").is_none(),
            "absent members are left out"
        );
        let stages: Vec<_> = value["SecretVersionsToStages"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(stages, ["v1", "v2"]);
        assert!(!needs_describe(&entry));
    }

    #[test]
    fn short_entries_are_described() {
        let no_rules = SecretListEntry::builder()
            .rotation_enabled(true)
            .secret_versions_to_stages("v1", vec!["AWSCURRENT".to_string()])
            .build();
        assert!(needs_describe(&no_rules));
        let no_versions = SecretListEntry::builder().build();
        assert!(needs_describe(&no_versions));
    }
}

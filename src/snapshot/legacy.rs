//! The tables of schema versions 1 to 5, written as releases before the content-addressed
//! snapshot wrote them: tests build older snapshots with them, which the migration to schema 6
//! must convert.

use chrono::SecondsFormat;
use rusqlite::{Transaction, params};
use serde::Serialize;

use crate::model::{Facts, KeyStatus, Timestamp};
use crate::rules::RuleOptions;

fn ts(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn ts_opt(t: &Option<Timestamp>) -> Option<String> {
    t.as_ref().map(ts)
}

fn json_err(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

/// The per-bucket maps, stored as one JSON column.
#[derive(Serialize)]
struct UsageDetail {
    source_ips: crate::model::Counts,
    regions: crate::model::Counts,
    operations: crate::model::Counts,
    error_codes: crate::model::Counts,
}

pub fn write_facts(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO run_policy (run_id, policy_json) VALUES (?1, ?2)",
        params![
            run_id,
            // Every rule option written out, in the stored layout (hash version 1 re-serialises
            // the stored policy).
            serde_json::to_string(
                &RuleOptions::normalised(&facts.inventory.policy).map_err(json_err)?
            )
            .map_err(json_err)?
        ],
    )?;
    write_observed(tx, run_id, facts)?;
    write_declared(tx, run_id, facts)?;
    write_owners(tx, run_id, facts)?;
    write_events(tx, run_id, facts)?;
    write_coverage(tx, run_id, facts)?;
    write_usage_buckets(tx, run_id, facts)?;
    write_auth_windows(tx, run_id, facts)?;
    write_waivers(tx, run_id, facts)?;
    write_users(tx, run_id, facts)?;
    Ok(())
}

/// The observed credentials, in collection order.
fn write_observed(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO observed_credentials (run_id, seq, id, kind, account, region, name, status, created_at,
           last_rotated_at, last_used_at, last_used_region, last_used_service, rotation_enabled,
           rotation_interval_days, schedule_expression, next_rotation_at, last_changed_at,
           pending_version, tags_json, password_enabled)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
    )?;
    for (seq, o) in facts.observed.iter().enumerate() {
        stmt.execute(params![
            run_id,
            seq as i64,
            o.id,
            o.kind.as_str(),
            o.account,
            o.region,
            o.name,
            match o.status {
                KeyStatus::Active => "active",
                KeyStatus::Inactive => "inactive",
            },
            ts_opt(&o.created_at),
            ts_opt(&o.last_rotated_at),
            ts_opt(&o.last_used_at),
            o.last_used_region,
            o.last_used_service,
            o.rotation_enabled,
            o.rotation_interval_days,
            o.schedule_expression,
            ts_opt(&o.next_rotation_at),
            ts_opt(&o.last_changed_at),
            o.pending_version,
            serde_json::to_string(&o.tags).map_err(json_err)?,
            o.password_enabled,
        ])?;
    }
    Ok(())
}

/// The declared credentials of the inventory, in file order.
fn write_declared(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO declared_credentials (run_id, seq, id, kind, class, owner, consumers_json, automated,
           interval_days, max_uses, account, description, line)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    for (seq, d) in facts.inventory.credentials.iter().enumerate() {
        stmt.execute(params![
            run_id,
            seq as i64,
            d.id,
            d.kind.as_str(),
            d.class.map(|c| c.as_str()),
            d.owner,
            serde_json::to_string(&d.consumers).map_err(json_err)?,
            d.automated,
            d.interval_days,
            d.max_uses.map(|m| m as i64),
            d.account,
            d.description,
            d.line as i64,
        ])?;
    }
    Ok(())
}

/// The inventory's owners, in file order.
fn write_owners(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO owners (run_id, seq, id, name, email, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (seq, o) in facts.inventory.owners.iter().enumerate() {
        stmt.execute(params![
            run_id,
            seq as i64,
            o.id,
            o.name,
            o.email,
            o.status.as_str()
        ])?;
    }
    Ok(())
}

/// The rotation events, in timeline order.
fn write_events(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO rotation_events (run_id, seq, time, credential_id, type, trigger, fingerprint, details, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (seq, e) in facts.events.iter().enumerate() {
        stmt.execute(params![
            run_id,
            seq as i64,
            ts(&e.time),
            e.credential_id,
            e.event_type.as_str(),
            e.trigger.map(|t| t.as_str()),
            e.fingerprint,
            e.details,
            e.source,
        ])?;
    }
    Ok(())
}

/// What each collector read, per account, region and API.
fn write_coverage(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO coverage (run_id, seq, account, region, api, ok, error, records)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (seq, c) in facts.coverage.iter().enumerate() {
        stmt.execute(params![
            run_id,
            seq as i64,
            c.account,
            c.region,
            c.api,
            c.ok,
            c.error,
            c.records as i64
        ])?;
    }
    Ok(())
}

/// The hourly CloudTrail usage buckets.
fn write_usage_buckets(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO usage_buckets (run_id, credential_id, hour, calls, errors, auth_errors, detail_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for u in &facts.usage {
        let detail = UsageDetail {
            source_ips: u.source_ips.clone(),
            regions: u.regions.clone(),
            operations: u.operations.clone(),
            error_codes: u.error_codes.clone(),
        };
        stmt.execute(params![
            run_id,
            u.credential_id,
            ts(&u.hour),
            u.calls as i64,
            u.errors as i64,
            u.auth_errors as i64,
            serde_json::to_string(&detail).map_err(json_err)?,
        ])?;
    }
    Ok(())
}

/// The authentication-failure windows.
fn write_auth_windows(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO auth_windows (run_id, credential_id, start, calls, auth_errors)
             VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for w in &facts.auth_windows {
        stmt.execute(params![
            run_id,
            w.credential_id,
            ts(&w.start),
            w.calls as i64,
            w.auth_errors as i64
        ])?;
    }
    Ok(())
}

/// The waivers, in file order.
fn write_waivers(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO waivers (run_id, seq, rule, credential, reason, approver, ticket, expires, line)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (seq, w) in facts.waivers.iter().enumerate() {
        stmt.execute(params![
            run_id,
            seq as i64,
            w.rule,
            w.credential,
            w.reason,
            w.approver,
            w.ticket,
            ts(&w.expires),
            w.line as i64
        ])?;
    }
    Ok(())
}

/// The IAM users of the credential report.
fn write_users(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    // No statement without rows: the facts of a run without a credential report write as they
    // did before the table existed (tests recreate older schemas with them).
    if !facts.users.is_empty() {
        let mut stmt = tx.prepare(
            "INSERT INTO iam_users (run_id, seq, account, name, arn, created_at, password_enabled,
               password_last_used_at, password_last_changed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for (seq, u) in facts.users.iter().enumerate() {
            stmt.execute(params![
                run_id,
                seq as i64,
                u.account,
                u.name,
                u.arn,
                ts_opt(&u.created_at),
                u.password_enabled,
                ts_opt(&u.password_last_used_at),
                ts_opt(&u.password_last_changed_at),
            ])?;
        }
    }
    Ok(())
}

//! CloudTrail of one account and region: LookupEvents over `[as_of − window, as_of]`, every page,
//! one call at a time, each [`MIN_SPACING`] after the previous one ended (LookupEvents allows 2 requests per second per account
//! per region). Each page is written as the `aws cloudtrail lookup-events` output it is, to
//! `cloudtrail/<account>/<region>/lookup-events-NNNN.json`, so memory holds one page at a time.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudtrail::primitives::DateTime;
use aws_sdk_cloudtrail::types::Event;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::context::{Ctx, RegionName, compact, describe, iso_opt, write_json};
use super::session::Account;
use crate::error::Result;
use crate::model::Timestamp;

/// The least time between two LookupEvents calls of one account and region.
pub const MIN_SPACING: Duration = Duration::from_millis(500);

/// Events per page (the API's most).
const PAGE_SIZE: i32 = 50;

/// Reads the CloudTrail events of `account` in `region` between `start` and `end`.
pub async fn collect(
    ctx: Arc<Ctx>,
    account: Account,
    region: RegionName,
    start: Timestamp,
    end: Timestamp,
) -> Result<()> {
    let client = account.cloudtrail(&region);
    let id = &account.id;
    ctx.status(format!("CloudTrail of {id} in {region}"));
    let start = DateTime::from_secs(start.timestamp());
    let end = DateTime::from_secs(end.timestamp());
    let mut next_token: Option<String> = None;
    let mut last_call: Option<Instant> = None;
    let mut page = 0u32;
    loop {
        let slot = ctx.slot("cloudtrail:LookupEvents").await;
        // Spaced from the end of the previous call: the previous request had surely arrived by
        // then, so the service sees them at least MIN_SPACING apart however long the first took
        // to travel (a new connection, signing).
        if let Some(last) = last_call {
            tokio::time::sleep_until(last + MIN_SPACING).await;
        }
        let result = client
            .lookup_events()
            .start_time(start)
            .end_time(end)
            .max_results(PAGE_SIZE)
            .set_next_token(next_token.clone())
            .send()
            .await;
        last_call = Some(Instant::now());
        drop(slot);
        ctx.done();
        match result {
            Ok(output) => {
                page += 1;
                let events: Vec<Value> = output.events().iter().map(event_json).collect();
                write_json(
                    &ctx.cloudtrail_page(id, &region, page),
                    &json!({ "Events": events }),
                )?;
                next_token = output.next_token().map(str::to_string);
                if next_token.as_deref().is_none_or(str::is_empty) {
                    return Ok(());
                }
            }
            Err(error) => {
                ctx.fail(
                    id.as_str(),
                    region.as_str(),
                    "cloudtrail:lookup-events",
                    match page {
                        0 => describe(&error),
                        n => format!("after {n} page(s): {}", describe(&error)),
                    },
                );
                return Ok(());
            }
        }
    }
}

/// One event as `aws cloudtrail lookup-events` prints it (the record stays a JSON string in
/// `CloudTrailEvent`).
fn event_json(event: &Event) -> Value {
    compact(json!({
        "EventId": event.event_id(),
        "EventName": event.event_name(),
        "ReadOnly": event.read_only(),
        "AccessKeyId": event.access_key_id(),
        "EventTime": iso_opt(event.event_time()),
        "EventSource": event.event_source(),
        "Username": event.username(),
        "Resources": event.resources().iter().map(|r| compact(json!({
            "ResourceType": r.resource_type(),
            "ResourceName": r.resource_name(),
        }))).collect::<Vec<_>>(),
        "CloudTrailEvent": event.cloud_trail_event(),
    }))
}

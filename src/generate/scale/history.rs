//! `history.jsonl` of a scale fleet, in time order: a `policy.updated` event opens it at the start
//! of the history, then every recorded rotation of every credential (`rotation.initiated` 40 s
//! before the moment AWS shows, `rotation.completed` 2 s after, with the new value's
//! fingerprint) merged by a heap over the credentials' schedules with the few extra events the
//! defects planted (failures, anomalies, access denials).
//!
//! A history that would pass the scanner's default file size limit (1 GiB: a million credentials
//! over a year) records scheduled rotations by their completed events only, without details. No
//! finding depends on those: an initiated event is never the latest attempt, and the completed
//! event 42 s later matches the same AWS rotation.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::super::rng::Rng;
use super::Progress;
use super::cred::{Kind, World, zulu};
use super::files::{Extra, ExtraKind, Scheduled};
use crate::error::{Error, Result};

const FINGERPRINT_STREAM: u64 = 0x5CA1_E000_0000_0040;

/// Writes the history: `schedules` from the credential pass, `extras` in any order.
pub(super) fn write(
    world: &World,
    schedules: Vec<Scheduled>,
    mut extras: Vec<Extra>,
    out: &Path,
    progress: &Progress,
) -> Result<()> {
    let path = out.join(super::super::write::HISTORY);
    let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    extras.sort_unstable();
    let io = |e| Error::io(&path, e);
    writeln!(
        w,
        "{{\"time\":\"{}\",\"type\":\"policy.updated\",\"credential_id\":\"rotation-policy\",\"details\":\"policy v4: class intervals A 14, B 30, C 90, D 365 days; history export starts\"}}",
        zulu(world.history_start)
    )
    .map_err(io)?;
    // (time, schedule, step): step 2k is the initiated event of the k-th recorded rotation
    // (oldest first), 2k + 1 its completed event.
    let mut heap: BinaryHeap<Reverse<(i64, u32, u32)>> = BinaryHeap::with_capacity(schedules.len());
    for (at, s) in schedules.iter().enumerate() {
        if let Some(first) = s.schedule.times().next() {
            heap.push(Reverse((first - 40, at as u32, 0)));
        }
    }
    // A history over the scanner's default file size limit drops what no rule needs: the
    // initiated events and details of scheduled rotations.
    let limit = crate::collect::input::Limits::default().max_file_bytes;
    let full = projected_bytes(world, &schedules, true) <= limit;
    if !full {
        progress.note(&format!(
            "history.jsonl: scheduled rotations recorded by their completed events only, to stay within {}",
            crate::collect::input::human_bytes(limit)
        ));
        if projected_bytes(world, &schedules, false) > limit {
            progress.note(
                "history.jsonl: still over the scanner's default limit; scan it with --max-file-size",
            );
        }
    }
    let mut next_extra = 0;
    let mut written: u64 = 0;
    let total: u64 = schedules
        .iter()
        .map(|s| 2 * s.schedule.count() as u64)
        .sum();
    while let Some(Reverse((time, at, step))) = heap.pop() {
        while next_extra < extras.len() && extras[next_extra].0 <= time {
            write_extra(&mut w, &schedules, extras[next_extra]).map_err(io)?;
            next_extra += 1;
        }
        let s = &schedules[at as usize];
        let count = s.schedule.count();
        let k = i64::from(step / 2);
        let rotation = s.schedule.last - (s.schedule.first_k + count - 1 - k) * s.schedule.cycle;
        if step % 2 == 0 {
            if time >= world.history_start && full {
                write_rotation(&mut w, world, s, at, None, time, full).map_err(io)?;
            }
            heap.push(Reverse((rotation + 2, at, step + 1)));
        } else {
            write_rotation(&mut w, world, s, at, Some((k, count)), time, full).map_err(io)?;
            if k + 1 < count {
                heap.push(Reverse((rotation + s.schedule.cycle - 40, at, step + 1)));
            }
        }
        written += 1;
        progress.step("history events", written, total);
    }
    for &extra in &extras[next_extra..] {
        write_extra(&mut w, &schedules, extra).map_err(io)?;
    }
    w.flush().map_err(io)
}

/// A rotation event; `completed` = (k, count) for the completed event of the k-th of `count`.
fn write_rotation(
    w: &mut impl Write,
    world: &World,
    s: &Scheduled,
    at: u32,
    completed: Option<(i64, i64)>,
    time: i64,
    full: bool,
) -> std::io::Result<()> {
    let trigger = s.schedule.trigger.as_str();
    let Some((k, count)) = completed else {
        return writeln!(
            w,
            "{{\"time\":\"{}\",\"type\":\"rotation.initiated\",\"credential_id\":\"{}\",\"trigger\":\"{trigger}\"}}",
            zulu(time),
            s.id
        );
    };
    // The latest rotation of a reused credential puts back the value of the earliest.
    let reused = s.schedule.reuse && count >= 2 && k == count - 1;
    let mut rng = Rng::stream(
        world.spec.seed ^ FINGERPRINT_STREAM ^ u64::from(at).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        if reused { 0 } else { k as u64 },
    );
    let details = match s.kind {
        Kind::Key => "new access key issued by the rotation pipeline",
        Kind::Secret if trigger == "manual" => "PutSecretValue by hand (runbook RB-3)",
        Kind::Secret => "RotateSecret by the rotation lambda",
        Kind::External(_) => "new credential issued by the provider",
    };
    let details = if full {
        format!(",\"details\":\"{details}\"")
    } else {
        String::new()
    };
    writeln!(
        w,
        "{{\"time\":\"{}\",\"type\":\"rotation.completed\",\"credential_id\":\"{}\",\"trigger\":\"{trigger}\",\"fingerprint\":\"sha256:{}\"{details}}}",
        zulu(time),
        s.id,
        rng.hex(32)
    )
}

/// The size of the history's rotation events, in full or without initiated events and details.
fn projected_bytes(world: &World, schedules: &[Scheduled], full: bool) -> u64 {
    let mut sample = Vec::new();
    let mut total = 0;
    for (at, s) in schedules.iter().enumerate() {
        let count = s.schedule.count();
        if count == 0 {
            continue;
        }
        sample.clear();
        let t = s.schedule.last;
        let _ = write_rotation(&mut sample, world, s, at as u32, Some((0, count)), t, full);
        if full {
            let _ = write_rotation(&mut sample, world, s, at as u32, None, t, full);
        }
        total += sample.len() as u64 * count as u64;
    }
    total
}

fn write_extra(w: &mut impl Write, schedules: &[Scheduled], extra: Extra) -> std::io::Result<()> {
    let (time, at, kind) = extra;
    let id = &schedules[at as usize].id;
    let (kind, tail) = match kind {
        ExtraKind::Initiated => (
            "rotation.initiated",
            ",\"trigger\":\"scheduled\"".to_string(),
        ),
        ExtraKind::Failed => (
            "rotation.failed",
            ",\"trigger\":\"scheduled\",\"details\":\"rotation function timed out\"".to_string(),
        ),
        ExtraKind::Anomaly => (
            "anomaly.detected",
            ",\"details\":\"calls from an unexpected network and region\"".to_string(),
        ),
        ExtraKind::Denied => (
            "access.denied",
            ",\"details\":\"AccessDenied for an unexpected caller\"".to_string(),
        ),
    };
    writeln!(
        w,
        "{{\"time\":\"{}\",\"type\":\"{kind}\",\"credential_id\":\"{id}\"{tail}}}",
        zulu(time)
    )
}

//! Tests of the CloudTrail reader: the three formats (with the real aws-cli lookup-events sample
//! and the real invictus-ir attack data set), gzip, counted skips, refused truncated input, and
//! merging aggregates across scans.

use std::io::Write;

use super::*;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cloudtrail")
        .join(name)
}

fn invictus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cloudtrail/invictus-aws-dataset")
}

fn at(text: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(text)
        .expect("test time")
        .with_timezone(&Utc)
}

fn read(paths: &[PathBuf]) -> CloudTrailData {
    read_paths(paths).unwrap_or_else(|e| panic!("read failed: {e}"))
}

fn bucket<'a>(data: &'a CloudTrailData, id: &str, hour: &str) -> &'a UsageBucket {
    data.usage
        .iter()
        .find(|b| b.credential_id == id && b.hour == at(hour))
        .unwrap_or_else(|| panic!("no bucket {id} {hour}"))
}

fn counts<T: FromIterator<(String, u64)>>(pairs: &[(&str, u64)]) -> T {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// (time, type, credential, details) of each event, for compact assertions.
fn events(data: &CloudTrailData) -> Vec<(String, &'static str, &str, &str)> {
    data.events
        .iter()
        .map(|e| {
            assert_eq!(e.source, "cloudtrail");
            assert_eq!(e.trigger, None);
            assert_eq!(e.fingerprint, None);
            (
                crate::join::fmt_time(e.time),
                e.event_type.as_str(),
                e.credential_id.as_str(),
                e.details.as_deref().unwrap_or(""),
            )
        })
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, bytes).expect("write");
    path
}

fn input_error(e: Error) -> (PathBuf, String, String) {
    match e {
        Error::Input {
            file,
            location,
            message,
        } => (file, location.unwrap_or_default(), message),
        other => panic!("expected an input error, got {other:?}"),
    }
}

#[test]
fn reads_an_s3_log_file_with_usage_lifecycle_and_counted_skips() {
    let d = read(&[data("s3-delivery.json")]);
    assert_eq!(d.files, vec![data("s3-delivery.json")]);
    assert_eq!((d.records, d.skipped), (10, 3));
    assert_eq!(
        d.skip_reasons,
        counts(&[
            ("missing eventTime", 1),
            ("missing userIdentity", 1),
            ("unsupported eventVersion 2.0", 1),
        ])
    );
    let deployer = "by arn:aws:iam::111122223333:user/deployer from 203.0.113.10";
    let secret = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/db/password-AbCdEf";
    assert_eq!(
        events(&d),
        vec![
            (
                "2026-10-30T09:15:02Z".into(),
                "rotation.completed",
                "AKIAEXAMPLEAGENT7NEW",
                format!("CreateAccessKey {deployer}").as_str()
            ),
            (
                "2026-10-30T09:16:40Z".into(),
                "policy.updated",
                "AKIAEXAMPLEAGENT7OLD",
                format!("UpdateAccessKey (status Inactive) {deployer}").as_str()
            ),
            // The DeleteAccessKey at 09:17 was denied: not evidence of anything but the attempt.
            // A rotation function staging a new value: the rotation has begun …
            (
                "2026-10-30T10:02:30Z".into(),
                "rotation.initiated",
                secret,
                "PutSecretValue (stages AWSPENDING) by arn:aws:sts::111122223333:assumed-role/\
                 agent-7/session from 198.51.100.7"
            ),
            // … and is complete when AWSCURRENT moves to that value.
            (
                "2026-10-30T10:03:00Z".into(),
                "rotation.completed",
                secret,
                "UpdateSecretVersionStage (stage AWSCURRENT) by secretsmanager.amazonaws.com \
                 from secretsmanager.amazonaws.com"
            ),
        ]
    );

    // The deployer's key: four calls in the 09:00 hour, one denied; the ListBuckets at 09:59:59
    // with odd field types in requestParameters still counts.
    let key = bucket(&d, "AKIAEXAMPLEDEPLOYER1", "2026-10-30T09:00:00Z");
    assert_eq!((key.calls, key.errors, key.auth_errors), (4, 1, 1));
    assert_eq!(key.source_ips, counts(&[("203.0.113.10", 4)]));
    assert_eq!(key.regions, counts(&[("us-east-1", 4)]));
    assert_eq!(key.error_codes, counts(&[("AccessDenied", 1)]));
    assert_eq!(
        key.operations,
        counts(&[
            ("iam.amazonaws.com:CreateAccessKey", 1),
            ("iam.amazonaws.com:DeleteAccessKey", 1),
            ("iam.amazonaws.com:UpdateAccessKey", 1),
            ("s3.amazonaws.com:ListBuckets", 1),
        ])
    );
    // GetSecretValue counts for the caller's session key and for the secret, named as the
    // caller named it.
    let session = bucket(&d, "ASIAEXAMPLESESSION01", "2026-10-30T10:00:00Z");
    assert_eq!((session.calls, session.errors), (2, 0));
    let read_secret = bucket(&d, "prod/db/password", "2026-10-30T10:00:00Z");
    assert_eq!(read_secret.calls, 1);
    assert_eq!(
        read_secret.operations,
        counts(&[("secretsmanager.amazonaws.com:GetSecretValue", 1)])
    );
    assert_eq!(read_secret.regions, counts(&[("eu-west-1", 1)]));
    assert_eq!(d.usage.len(), 3);
    // The window 09:15–09:20 holds three calls of the key, one of them denied.
    assert_eq!(
        d.auth_windows,
        vec![AuthWindow {
            credential_id: "AKIAEXAMPLEDEPLOYER1".into(),
            start: at("2026-10-30T09:15:00Z"),
            calls: 3,
            auth_errors: 1,
        }]
    );
    assert_eq!(
        last_access(&d.usage, "prod/db/password"),
        Some(at("2026-10-30T10:00:00Z"))
    );
    assert_eq!(last_access(&d.usage, "prod/other"), None);
}

#[test]
fn reads_a_bare_array_across_an_hour_and_day_boundary() {
    let d = read(&[data("bare-array.json")]);
    assert_eq!((d.records, d.skipped), (2, 0));
    assert!(d.events.is_empty());
    let hours: Vec<(String, u64, u64)> = d
        .usage
        .iter()
        .map(|b| (crate::join::fmt_time(b.hour), b.calls, b.auth_errors))
        .collect();
    assert_eq!(
        hours,
        vec![
            ("2026-10-31T23:00:00Z".to_string(), 1, 0),
            ("2026-11-01T00:00:00Z".to_string(), 1, 1),
        ]
    );
    assert_eq!(
        d.auth_windows,
        vec![AuthWindow {
            credential_id: "AKIAEXAMPLECIUSER001".into(),
            start: at("2026-11-01T00:00:00Z"),
            calls: 1,
            auth_errors: 1,
        }]
    );
}

#[test]
fn reads_lookup_events_output_from_the_aws_cli_sample() {
    // One console sign-in, embedded as a JSON string; it carries no access key, so it is read
    // (not skipped) but attributes no usage.
    let d = read(&[data("awscli-example_cloudtrail-lookup-events.json")]);
    assert_eq!((d.records, d.skipped), (1, 0));
    assert!(d.usage.is_empty() && d.auth_windows.is_empty() && d.events.is_empty());
}

#[test]
fn reads_lookup_events_with_secret_lifecycle_and_skips_events_without_a_record() {
    let d = read(&[data("lookup-events-iam.json")]);
    assert_eq!((d.records, d.skipped), (3, 1));
    assert_eq!(
        d.skip_reasons,
        counts(&[("lookup event without CloudTrailEvent", 1)])
    );
    let admin = "by arn:aws:iam::111122223333:user/admin from 203.0.113.99";
    assert_eq!(
        events(&d),
        vec![
            (
                "2026-10-29T14:00:00Z".into(),
                "rotation.initiated",
                "prod/llm/api-key",
                format!("RotateSecret {admin}").as_str()
            ),
            (
                "2026-10-29T14:05:00Z".into(),
                "policy.updated",
                "prod/old",
                format!("DeleteSecret {admin}").as_str()
            ),
        ]
    );
    assert_eq!(
        bucket(&d, "ASIAEXAMPLECONSOLE01", "2026-10-29T14:00:00Z").calls,
        2
    );
}

#[test]
fn reads_gzip_and_multi_member_gzip_like_plain_json_and_walks_directories() {
    let plain = std::fs::read(data("s3-delivery.json")).expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    // One gzip file as CloudTrail writes it, and the bare array split over two gzip members.
    let a = write(
        dir.path(),
        "AWSLogs/111122223333/CloudTrail/us-east-1/2026/10/30/a.json.gz",
        &gzip(&plain),
    );
    let array = std::fs::read(data("bare-array.json")).expect("read");
    let (head, tail) = array.split_at(array.len() / 2);
    let mut members = gzip(head);
    members.extend(gzip(tail));
    let b = write(dir.path(), "AWSLogs/b.json.gz", &members);
    // Left out of a walk: digests, other files, hidden files.
    write(
        dir.path(),
        "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/x_CloudTrail-Digest_x.json.gz",
        &gzip(b"{\"awsAccountId\": \"111122223333\"}"),
    );
    write(dir.path(), "AWSLogs/README.md", b"not a log");
    write(dir.path(), "AWSLogs/.hidden.json", b"not json");

    let from_dir = read(&[dir.path().to_path_buf()]);
    assert_eq!(from_dir.files, vec![a.clone(), b.clone()]);
    let from_plain = read(&[data("s3-delivery.json"), data("bare-array.json")]);
    assert_eq!(
        (from_dir.records, from_dir.skipped, &from_dir.skip_reasons),
        (
            from_plain.records,
            from_plain.skipped,
            &from_plain.skip_reasons
        )
    );
    assert_eq!(from_dir.usage, from_plain.usage);
    assert_eq!(from_dir.auth_windows, from_plain.auth_windows);
    assert_eq!(from_dir.events, from_plain.events);

    // A file named twice, or by itself and through its directory, is read once.
    let twice = read(&[a.clone(), dir.path().to_path_buf(), a]);
    assert_eq!(twice.records, from_dir.records);
}

#[test]
fn a_truncated_gzip_file_is_refused_naming_the_file() {
    let plain =
        std::fs::read(invictus().join(
            "CloudTrail/218007301253_CloudTrail_us-east-1_20230710T1205Z_zs3JGxETHr59VpkX.json",
        ))
        .expect("read");
    let compressed = gzip(&plain);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "cut.json.gz",
        &compressed[..compressed.len() / 2],
    );
    let (file, location, message) =
        input_error(read_paths(std::slice::from_ref(&path)).unwrap_err());
    assert_eq!(file, path);
    assert!(location.starts_with("byte offset "), "{location}");
    assert!(message.contains("truncated"), "{message}");
    let shown = read_paths(std::slice::from_ref(&path))
        .unwrap_err()
        .to_string();
    assert!(shown.contains("cut.json.gz"), "{shown}");

    // Cut inside the trailer (the checksum): the JSON is whole, the stream is not.
    let path = write(
        dir.path(),
        "trailer.json.gz",
        &compressed[..compressed.len() - 4],
    );
    let (file, _, message) = input_error(read_paths(std::slice::from_ref(&path)).unwrap_err());
    assert_eq!(file, path);
    assert!(message.contains("truncated"), "{message}");
}

#[test]
fn truncated_or_malformed_json_is_refused_naming_the_file_and_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = std::fs::read(data("s3-delivery.json")).expect("read");
    // Cut in the middle of the fourth record.
    let cut = plain
        .windows(13)
        .position(|w| w == b"\"ASIAEXAMPLES")
        .expect("marker");
    let path = write(dir.path(), "cut.json", &plain[..cut + 5]);
    let (file, location, message) =
        input_error(read_paths(std::slice::from_ref(&path)).unwrap_err());
    assert_eq!(file, path);
    assert_eq!(location, "record 4");
    assert!(
        message.starts_with("the JSON is truncated: it ends early after 3 complete records"),
        "{message}"
    );

    let path = write(
        dir.path(),
        "bad.json",
        b"{\"Records\": [{\"eventVersion\": \"1.08\"} oops]}",
    );
    let (_, location, message) = input_error(read_paths(&[path]).unwrap_err());
    assert_eq!(location, "record 2");
    assert!(message.starts_with("invalid JSON"), "{message}");

    let path = write(dir.path(), "other.json", b"{\"SecretList\": []}");
    let (_, location, message) = input_error(read_paths(&[path]).unwrap_err());
    assert_eq!(location, "line 1, column 18");
    assert!(message.contains("neither Records nor Events"), "{message}");

    let path = write(dir.path(), "empty.json", b"");
    let (_, location, message) = input_error(read_paths(&[path]).unwrap_err());
    assert_eq!(location, "line 1, column 0");
    assert!(
        message.starts_with("the JSON is truncated or empty"),
        "{message}"
    );

    let path = write(
        dir.path(),
        "lookup.json",
        b"{\"Events\": [{\"CloudTrailEvent\": \"{not json\"}]}",
    );
    let (_, location, message) = input_error(read_paths(&[path]).unwrap_err());
    assert_eq!(location, "record 1");
    assert!(
        message.contains("CloudTrailEvent string is not a JSON record"),
        "{message}"
    );

    let missing = dir.path().join("missing.json");
    assert!(matches!(
        read_paths(&[missing]).unwrap_err(),
        Error::Io { .. }
    ));
}

#[test]
fn odd_records_are_counted_skips_not_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "odd.json",
        br#"[
            "a string",
            {"eventVersion": "1.08", "userIdentity": {"accessKeyId": "AKIAODD0000000000001"}, "eventTime": "yesterday"},
            {"userIdentity": {"accessKeyId": "AKIAODD0000000000001"}, "eventTime": "2026-10-30T00:00:00Z"},
            {"eventVersion": "1.08", "userIdentity": "not an object", "eventTime": "2026-10-30T00:00:00Z"},
            {"eventVersion": "1.10", "userIdentity": {"accessKeyId": "AKIAODD0000000000001"}, "eventTime": "2026-10-30T00:00:00Z"}
        ]"#,
    );
    let d = read(&[path]);
    assert_eq!((d.records, d.skipped), (5, 4));
    assert_eq!(
        d.skip_reasons,
        counts(&[
            ("eventTime is not an RFC 3339 time", 1),
            ("missing eventVersion", 1),
            ("missing userIdentity", 1),
            ("record is not a JSON object", 1),
        ])
    );
    assert_eq!(d.usage.len(), 1);
    assert_eq!(d.usage[0].operations, counts(&[("unknown:unknown", 1)]));
}

fn usage(id: &str, hour: &str, calls: u64) -> UsageBucket {
    UsageBucket {
        credential_id: id.into(),
        hour: at(hour),
        calls,
        ..UsageBucket::default()
    }
}

#[test]
fn merging_replaces_the_hours_read_again_and_keeps_the_rest() {
    let previous = vec![
        usage("AKIAA", "2026-10-01T10:00:00Z", 5),
        usage("AKIAA", "2026-10-01T11:00:00Z", 7),
        usage("AKIAB", "2026-10-01T10:00:00Z", 1),
    ];
    let new = vec![
        usage("AKIAA", "2026-10-01T11:00:00Z", 9),
        usage("AKIAA", "2026-10-01T12:00:00Z", 2),
    ];
    let calls = |merged: &[UsageBucket]| -> Vec<(String, u64)> {
        merged
            .iter()
            .map(|b| {
                (
                    format!("{} {}", b.credential_id, b.hour.format("%H")),
                    b.calls,
                )
            })
            .collect()
    };
    let merged = merge_usage(previous.clone(), new.clone());
    let want = vec![
        ("AKIAA 10".to_string(), 5),
        ("AKIAA 11".to_string(), 9),
        ("AKIAA 12".to_string(), 2),
        ("AKIAB 10".to_string(), 1),
    ];
    assert_eq!(calls(&merged), want);
    // Reading the same logs again changes nothing.
    assert_eq!(calls(&merge_usage(merged.clone(), new.clone())), want);
    assert_eq!(merge_usage(merged.clone(), merged.clone()), merged);
    // Of equal keys the last wins, in either list; the result is in key order.
    let mut twice = new.clone();
    twice.extend(new.iter().cloned().map(|mut b| {
        b.calls += 100;
        b
    }));
    let again = merge_usage(twice.clone(), Vec::new());
    assert!(again.iter().all(|b| b.calls > 100), "{again:?}");
    assert_eq!(merge_usage(Vec::new(), twice), again);

    let window = |start: &str, auth_errors: u64| AuthWindow {
        credential_id: "AKIAA".into(),
        start: at(start),
        calls: 10,
        auth_errors,
    };
    let merged = merge_auth_windows(
        vec![
            window("2026-10-01T10:00:00Z", 1),
            window("2026-10-01T10:05:00Z", 2),
        ],
        vec![
            window("2026-10-01T10:05:00Z", 3),
            window("2026-10-01T09:55:00Z", 4),
        ],
    );
    assert_eq!(
        merged.iter().map(|w| w.auth_errors).collect::<Vec<_>>(),
        vec![4, 1, 3]
    );
}

// ---- The invictus-ir data set: real CloudTrail logs of a Stratus Red Team attack simulation.

#[test]
fn reads_every_record_of_the_invictus_data_set() {
    let d = read(&[invictus()]);
    assert_eq!(d.files.len(), 55);
    assert!(d.files.windows(2).all(|w| w[0] < w[1]));
    assert_eq!((d.records, d.skipped), (2900, 0));

    // Lifecycle evidence: 20 secrets created and given a value, 17 of them deleted, two access
    // keys created for backdoor users and deleted four minutes later.
    let count = |name: &str, event_type: EventType| {
        d.events
            .iter()
            .filter(|e| {
                e.event_type == event_type
                    && e.details.as_deref().is_some_and(|t| t.starts_with(name))
            })
            .count()
    };
    assert_eq!(count("CreateSecret ", EventType::RotationCompleted), 20);
    assert_eq!(count("PutSecretValue ", EventType::RotationCompleted), 20);
    assert_eq!(count("DeleteSecret ", EventType::PolicyUpdated), 17);
    assert_eq!(count("CreateAccessKey ", EventType::RotationCompleted), 2);
    assert_eq!(count("DeleteAccessKey ", EventType::PolicyUpdated), 2);
    assert_eq!(d.events.len(), 61);
    let attacker = "by arn:aws:iam::123837392027:user/bert-jan from 192.168.10.20";
    let keys: Vec<_> = events(&d)
        .into_iter()
        .filter(|(_, _, id, _)| id.starts_with("AKIA"))
        .collect();
    assert_eq!(
        keys,
        vec![
            (
                "2023-07-10T12:24:29Z".into(),
                "rotation.completed",
                "AKIATFQR7NSC3ZO6PKAZ",
                format!("CreateAccessKey {attacker}").as_str()
            ),
            (
                "2023-07-10T12:24:50Z".into(),
                "rotation.completed",
                "AKIATFQR7NSCQLA2F4OD",
                format!("CreateAccessKey {attacker}").as_str()
            ),
            (
                "2023-07-10T12:28:24Z".into(),
                "policy.updated",
                "AKIATFQR7NSC3ZO6PKAZ",
                format!("DeleteAccessKey {attacker}").as_str()
            ),
            (
                "2023-07-10T12:28:24Z".into(),
                "policy.updated",
                "AKIATFQR7NSCQLA2F4OD",
                format!("DeleteAccessKey {attacker}").as_str()
            ),
        ]
    );
    // CreateSecret names the new secret by the ARN in its response (`arn`), DeleteSecret by the
    // secretId it was asked for.
    let secret_6 = "arn:aws:secretsmanager:us-east-1:123837392027:secret:stratus-red-team-retrieve-secret-6-fAVH0t";
    let lifecycle: Vec<_> = events(&d)
        .into_iter()
        .filter(|(_, _, id, _)| *id == secret_6)
        .map(|(t, kind, _, details)| (t, kind, details.split(' ').next().unwrap_or("")))
        .collect();
    assert_eq!(
        lifecycle,
        vec![
            (
                "2023-07-10T11:57:48Z".into(),
                "rotation.completed",
                "CreateSecret"
            ),
            (
                "2023-07-10T11:57:49Z".into(),
                "rotation.completed",
                "PutSecretValue"
            ),
        ]
    );

    // Usage: the attacker's key made 479 calls in the 11:00 hour and 1,625 in the 12:00 hour,
    // all from one IP in one region; each secret was read three times.
    let key = "AKIATFQR7NSC8Q4X20BJ";
    assert_eq!(bucket(&d, key, "2023-07-10T11:00:00Z").calls, 479);
    let noon = bucket(&d, key, "2023-07-10T12:00:00Z");
    assert_eq!(noon.calls, 1625);
    assert_eq!(noon.source_ips, counts(&[("192.168.10.20", 1625)]));
    assert_eq!(noon.regions, counts(&[("us-east-1", 1625)]));
    let reads: u64 = d
        .usage
        .iter()
        .filter(|b| b.credential_id == secret_6)
        .map(|b| b.calls)
        .sum();
    assert_eq!(reads, 3);
    assert_eq!(
        last_access(&d.usage, secret_6),
        Some(at("2023-07-10T12:00:00Z"))
    );
    let total: u64 = d
        .usage
        .iter()
        .filter(|b| !b.credential_id.starts_with("arn:"))
        .map(|b| b.calls)
        .sum();
    // 2,900 records less the 85 made by AWS services or with no (or an empty) access key.
    assert_eq!(total, 2815);

    // Authentication failures: EC2 password-data brute force (29 of 29 calls denied) and the
    // stolen instance credentials (15 of 15), plus scattered AccessDenied on the attacker's key.
    let windows: Vec<(String, &str, u64, u64)> = d
        .auth_windows
        .iter()
        .map(|w| {
            (
                w.start.format("%H:%M").to_string(),
                w.credential_id.as_str(),
                w.calls,
                w.auth_errors,
            )
        })
        .collect();
    assert_eq!(
        windows,
        vec![
            ("11:50".to_string(), "AKIATFQR7NSC8Q4X20BJ", 15, 3),
            ("12:00".to_string(), "AKIATFQR7NSC8Q4X20BJ", 191, 6),
            ("12:05".to_string(), "AKIATFQR7NSC8Q4X20BJ", 779, 4),
            ("12:00".to_string(), "ASIATFQR7NSC2632JLFK", 15, 15),
            ("12:10".to_string(), "ASIATFQR7NSCVTLW746I", 9, 2),
            ("12:00".to_string(), "ASIATFQR7NSCVW2R4OHT", 1, 1),
            ("11:50".to_string(), "ASIATFQR7NSCWLLE7IWW", 29, 29),
        ]
    );
}

// ---- The fast road and the threads: the same result as the streaming parser on one thread.

/// Every CloudTrail file of the tests, plain.
fn every_test_file() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data(""))
        .expect("test data")
        .chain(std::fs::read_dir(invictus().join("CloudTrail")).expect("invictus"))
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// (aggregates, SHA-256) of one file through `read`, as `CloudTrailData` to compare.
fn one_file(
    path: &Path,
    read: impl FnOnce() -> Option<(Aggregator, String)>,
) -> (CloudTrailData, String) {
    let (aggregator, sha256) = read().unwrap_or_else(|| panic!("{}", path.display()));
    (aggregator.finish(vec![path.to_path_buf()]), sha256)
}

#[test]
fn the_fast_road_reads_every_test_file_as_the_streaming_parser_does() {
    let limits = Limits::default();
    let files = every_test_file();
    assert!(files.len() > 55, "{}", files.len());
    let mut buffer = Vec::new();
    for path in &files {
        for bytes in [
            std::fs::read(path).expect("read"),
            gzip(&std::fs::read(path).expect("read")),
        ] {
            let size = bytes.len() as u64;
            let fast = one_file(path, || {
                read_fast(&bytes[..], size, &limits, &mut Vec::new())
            });
            let streaming = one_file(path, || {
                read_streaming(path, &bytes[..], size, &limits).ok()
            });
            assert_eq!(fast, streaming, "{}", path.display());
            // The window kept from file to file does not change what is read.
            let again = one_file(path, || read_fast(&bytes[..], size, &limits, &mut buffer));
            assert_eq!(again, streaming, "{}", path.display());
        }
    }
}

#[test]
fn a_record_near_the_limit_is_left_to_the_streaming_parser_which_decides() {
    let record = |name: &str| {
        format!(
            r#"{{"eventVersion":"1.08","eventTime":"2026-10-30T09:00:00Z","eventName":"{name}","userIdentity":{{"accessKeyId":"AKIAX"}}}}"#
        )
    };
    let text = format!("[{}, {}]", record("Small"), record(&"A".repeat(700 << 10)));
    let limits = |record: u64| Limits {
        max_record_bytes: record,
        ..Limits::default()
    };
    let size = text.len() as u64;
    // 1 MiB: within the streaming parser's budget, but too close to it for the fast road.
    assert!(read_fast(text.as_bytes(), size, &limits(1 << 20), &mut Vec::new()).is_none());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "big.json", text.as_bytes());
    let options = |record: u64| ReadOptions {
        limits: limits(record),
        ..ReadOptions::default()
    };
    let d = read_paths_with(std::slice::from_ref(&path), &options(1 << 20)).expect("read");
    assert_eq!((d.records, d.usage[0].calls), (2, 2));
    // 2 MiB: the fast road takes it, with the same result.
    let fast = read_fast(text.as_bytes(), size, &limits(2 << 20), &mut Vec::new()).expect("fast");
    assert_eq!(fast.0.finish(vec![path.clone()]), {
        let mut d = d.clone();
        d.sources.clear();
        d
    });
    // 256 KiB: the record is over it (by more than the streaming parser's read buffer), and
    // the error names it.
    let Err(error) = read_paths_with(std::slice::from_ref(&path), &options(256 << 10)) else {
        panic!("a 700 KiB record read within a 256 KiB limit");
    };
    let (file, location, message) = input_error(error);
    assert_eq!((file, location.as_str()), (path, "record 2"));
    assert!(
        message.starts_with("one record over the 256 KiB limit"),
        "{message}"
    );
}

/// A folder of many CloudTrail files: the invictus logs twice (plain and gzipped) and the test
/// files, in sub-folders, so that threads interleave.
fn many_files(dir: &Path) {
    for (index, path) in every_test_file().into_iter().enumerate() {
        let bytes = std::fs::read(&path).expect("read");
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        write(dir, &format!("{:02}/{name}", index % 7), &bytes);
        write(
            dir,
            &format!("gz/{:02}/{name}.gz", index % 5),
            &gzip(&bytes),
        );
    }
}

#[test]
fn any_number_of_threads_gives_the_same_result_as_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    many_files(dir.path());
    let paths = [dir.path().to_path_buf()];
    let options = ReadOptions {
        keep: true,
        ..ReadOptions::default()
    };
    let one = read_paths_on(&paths, &options, 1).expect("read");
    assert!(one.files.len() > 110, "{}", one.files.len());
    assert_eq!(one.records, 2 * (2900 + 10 + 2 + 1 + 3));
    assert!(one.sources.iter().all(|s| s.content.is_some()));
    for threads in [2, 3, 8, 1000] {
        let many = read_paths_on(&paths, &options, threads).expect("read");
        assert_eq!(many, one, "{threads} threads");
    }
}

#[test]
fn with_several_bad_files_the_error_is_the_first_ones_in_path_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    many_files(dir.path());
    let plain = std::fs::read(data("s3-delivery.json")).expect("read");
    let compressed = gzip(&plain);
    // Three bad files; the first in path order is 03/cut.json.
    write(
        dir.path(),
        "05/bad.json",
        b"{\"Records\": [{\"eventVersion\": \"1.08\"} oops]}",
    );
    let first = write(dir.path(), "03/cut.json", &plain[..plain.len() / 2]);
    write(
        dir.path(),
        "gz/01/cut.json.gz",
        &compressed[..compressed.len() / 2],
    );
    let paths = [dir.path().to_path_buf()];
    let expected = read_paths_on(&paths, &ReadOptions::default(), 1)
        .unwrap_err()
        .to_string();
    assert!(
        expected.starts_with(&format!("{}: record ", first.display())),
        "{expected}"
    );
    for threads in [2, 3, 8] {
        for _ in 0..5 {
            let error = read_paths_on(&paths, &ReadOptions::default(), threads).unwrap_err();
            assert_eq!(error.to_string(), expected, "{threads} threads");
        }
    }
}

#[test]
fn deep_nesting_reads_the_same_on_both_roads() {
    // serde_json skips unused values without recursion and the record's own fields nest a few
    // levels only, so no depth is refused, on either road.
    let limits = Limits::default();
    for depth in [90, 130, 10_000] {
        let text = format!(
            r#"{{"Other": {open}{close}, "Records": [{{"eventVersion": "1.08", "eventName": {open}1{close}, "x": {open}1{close}, "userIdentity": {{"accessKeyId": "AKIAX"}}, "eventTime": "2026-10-30T09:00:00Z"}}]}}"#,
            open = "[".repeat(depth),
            close = "]".repeat(depth)
        );
        let size = text.len() as u64;
        let path = PathBuf::from(format!("{depth}.json"));
        let fast = one_file(&path, || {
            read_fast(text.as_bytes(), size, &limits, &mut Vec::new())
        });
        let streaming = one_file(&path, || {
            read_streaming(&path, text.as_bytes(), size, &limits).ok()
        });
        assert_eq!(fast, streaming, "{depth}");
        assert_eq!(
            fast.0.usage[0].operations,
            counts(&[("unknown:unknown", 1)])
        );
    }
}

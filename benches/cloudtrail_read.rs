//! Benchmark (not a test) of the CloudTrail reader: generates at least 1 GB of CloudTrail log
//! files as delivered to S3 (plain `.json` and the same records gzipped as `.json.gz`) into a
//! temporary directory, reads each tree with `read_paths`, and prints MB/s, records/s and the
//! peak resident memory of the read (VmHWM of /proc/self/status, reset before each read).
//!
//! Run it with `scripts/bench-cloudtrail.sh` or
//! `cargo bench --bench cloudtrail_read -- --ignored --nocapture`.
//! `CLOUDTRAIL_BENCH_MB` sets the plain size (default 1024), `CLOUDTRAIL_BENCH_DIR` where the
//! files go (default: the system temp dir).
//!
//! The fleet is fixed (100 access keys used from 4 IPs each, 20 secrets, one week), so from about
//! 128 MB on every (credential, hour) bucket exists and the aggregates stop growing: peak memory
//! must then not grow with `CLOUDTRAIL_BENCH_MB`. Request and event ids are random, so the
//! gzip ratio (~6x) is near that of real CloudTrail files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use credaudit::collect::cloudtrail::{CloudTrailData, ReadOptions, read_paths, read_paths_on};

const KEYS: u64 = 100;
const SECRETS: u64 = 20;
const RECORDS_PER_FILE: u64 = 5_000;
const SPAN_SECONDS: u64 = 7 * 24 * 3600;
/// Roughly the size of one generated record, to spread the records over the span.
const RECORD_BYTES: u64 = 1_000;
/// 2026-10-01T00:00:00Z.
const START: i64 = 1_790_812_800;

/// A small deterministic generator (xorshift64*), so every run writes the same logs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const OPERATIONS: &[(&str, &str)] = &[
    ("s3.amazonaws.com", "GetObject"),
    ("s3.amazonaws.com", "PutObject"),
    ("s3.amazonaws.com", "ListBucket"),
    ("dynamodb.amazonaws.com", "Query"),
    ("dynamodb.amazonaws.com", "PutItem"),
    ("sts.amazonaws.com", "GetCallerIdentity"),
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("lambda.amazonaws.com", "Invoke"),
    ("bedrock.amazonaws.com", "InvokeModel"),
    ("kms.amazonaws.com", "Decrypt"),
];
const REGIONS: &[&str] = &["us-east-1", "us-west-2", "eu-west-1", "eu-central-1"];

fn time_text(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// One record of the `index`-th call.
fn record(rng: &mut Rng, index: u64, seconds: i64) -> String {
    let key = rng.below(KEYS);
    let region = REGIONS[(key % REGIONS.len() as u64) as usize];
    let ip = format!("10.{}.{}.{}", key % 8, key, rng.below(4) + 1);
    let time = time_text(seconds);
    let (request_id, event_id, object) = (rng.next(), rng.next(), rng.next());
    let identity = format!(
        r#"{{"type":"IAMUser","principalId":"AIDABENCH{key:011}","arn":"arn:aws:iam::111122223333:user/agent-{key}","accountId":"111122223333","accessKeyId":"AKIABENCH{key:011}","userName":"agent-{key}"}}"#
    );
    let (source, name, request, response) = match rng.below(100) {
        0..=4 => {
            let secret = rng.below(SECRETS);
            (
                "secretsmanager.amazonaws.com",
                "GetSecretValue",
                format!(
                    r#"{{"secretId":"arn:aws:secretsmanager:{region}:111122223333:secret:agents/secret-{secret}-AbCdEf"}}"#
                ),
                "null".to_string(),
            )
        }
        5 if index % 1000 == 5 => (
            "iam.amazonaws.com",
            "CreateAccessKey",
            format!(r#"{{"userName":"agent-{key}"}}"#),
            format!(
                r#"{{"accessKey":{{"accessKeyId":"AKIANEW{index:013}","status":"Active","userName":"agent-{key}","createDate":"Oct 1, 2026 12:00:00 AM"}}}}"#
            ),
        ),
        _ => {
            let (source, name) = OPERATIONS[rng.below(OPERATIONS.len() as u64) as usize];
            (
                source,
                name,
                format!(
                    r#"{{"bucketName":"fleet-data-{key}","key":"runs/{object:016x}/output.json","Host":"fleet-data-{key}.s3.{region}.amazonaws.com"}}"#
                ),
                "null".to_string(),
            )
        }
    };
    let error = if rng.below(100) < 2 {
        r#""errorCode":"AccessDenied","errorMessage":"User is not authorized to perform this operation","#
    } else {
        ""
    };
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{identity},"eventTime":"{time}","eventSource":"{source}","eventName":"{name}","awsRegion":"{region}","sourceIPAddress":"{ip}","userAgent":"aws-sdk-python/1.34.0 Python/3.12.1 Linux/6.1.0 Botocore/1.34.0",{error}"requestParameters":{request},"responseElements":{response},"requestID":"{request_id:016x}-{index:08x}","eventID":"{event_id:016x}-{index:08x}","readOnly":true,"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"111122223333","eventCategory":"Data","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"{source}"}}}}"#
    )
}

/// Writes the logs twice (plain and gzipped); returns (records, plain bytes, gzip bytes).
fn generate(root: &Path, target_bytes: u64) -> (u64, u64, u64) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let estimated_records = (target_bytes / RECORD_BYTES).max(1);
    let step = SPAN_SECONDS as f64 / estimated_records as f64;
    let (mut records, mut plain_bytes, mut gzip_bytes) = (0u64, 0u64, 0u64);
    let mut file_index = 0;
    while plain_bytes < target_bytes {
        let first = START + (records as f64 * step) as i64;
        let day = chrono::DateTime::from_timestamp(first, 0)
            .map(|t| t.format("%Y/%m/%d").to_string())
            .unwrap_or_default();
        let name = format!("111122223333_CloudTrail_us-east-1_{first}_{file_index:06}.json");
        let plain_path = root
            .join("plain/AWSLogs/111122223333/CloudTrail/us-east-1")
            .join(&day);
        let gzip_path = root
            .join("gzip/AWSLogs/111122223333/CloudTrail/us-east-1")
            .join(&day);
        std::fs::create_dir_all(&plain_path).expect("mkdir");
        std::fs::create_dir_all(&gzip_path).expect("mkdir");
        let mut plain = BufWriter::new(File::create(plain_path.join(&name)).expect("create"));
        let mut gzip = flate2::write::GzEncoder::new(
            BufWriter::new(File::create(gzip_path.join(format!("{name}.gz"))).expect("create")),
            flate2::Compression::default(),
        );
        let mut text = String::with_capacity(RECORDS_PER_FILE as usize * 1100);
        text.push_str("{\"Records\":[");
        for i in 0..RECORDS_PER_FILE {
            if i > 0 {
                text.push(',');
            }
            let seconds = START + (records as f64 * step) as i64;
            text.push_str(&record(&mut rng, records, seconds));
            records += 1;
        }
        text.push_str("]}");
        plain.write_all(text.as_bytes()).expect("write");
        gzip.write_all(text.as_bytes()).expect("write");
        plain.flush().expect("flush");
        let compressed = gzip.finish().expect("gzip").into_inner().expect("flush");
        plain_bytes += text.len() as u64;
        gzip_bytes += compressed.metadata().map(|m| m.len()).unwrap_or(0);
        file_index += 1;
    }
    (records, plain_bytes, gzip_bytes)
}

/// A field of /proc/self/status in kB.
fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Reads `dir`, printing throughput and the peak memory of the read; returns the data and the
/// seconds it took.
fn measure(label: &str, dir: &Path, bytes: u64) -> (CloudTrailData, f64) {
    // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let rss_before = status_kb("VmRSS:").unwrap_or(0);
    let started = Instant::now();
    let data = read_paths(&[dir.to_path_buf()]).expect("read");
    let seconds = started.elapsed().as_secs_f64();
    let peak = status_kb("VmHWM:").unwrap_or(0);
    let mb = bytes as f64 / 1e6;
    println!(
        "{label}: {} files, {mb:.0} MB on disk, {} records in {seconds:.2} s: {:.0} MB/s, {:.0} \
         records/s; RSS before {} MB, peak during read {} MB (+{} MB){}",
        data.files.len(),
        data.records,
        mb / seconds,
        data.records as f64 / seconds,
        rss_before / 1024,
        peak / 1024,
        peak.saturating_sub(rss_before) / 1024,
        if reset {
            ""
        } else {
            " (peak not reset: process-wide)"
        },
    );
    (data, seconds)
}

#[test]
#[ignore = "benchmark: writes >= 1 GB; run scripts/bench-cloudtrail.sh"]
fn read_generated_cloudtrail_logs() {
    let megabytes: u64 = std::env::var("CLOUDTRAIL_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let parent: PathBuf = std::env::var_os("CLOUDTRAIL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(parent).expect("tempdir");
    let started = Instant::now();
    let (records, plain_bytes, gzip_bytes) = generate(dir.path(), megabytes * 1024 * 1024);
    println!(
        "generated {records} records: {:.0} MB plain, {:.0} MB gzipped, in {:.1} s",
        plain_bytes as f64 / 1e6,
        gzip_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    // Each result is reduced to a digest and dropped before the next read, so the second
    // read's peak memory is its own.
    let digest = |d: &CloudTrailData| {
        let calls: u64 = d.usage.iter().map(|b| b.calls).sum();
        let auth: u64 = d.auth_windows.iter().map(|w| w.auth_errors).sum();
        (
            d.records,
            d.skipped,
            d.usage.len(),
            calls,
            auth,
            d.events.len(),
        )
    };
    let (plain, _) = measure("plain .json", &dir.path().join("plain"), plain_bytes);
    let plain = digest(&plain);
    let (gzip, gzip_seconds) = measure("gzip .json.gz", &dir.path().join("gzip"), gzip_bytes);
    let gzip = digest(&gzip);
    println!(
        "gzip .json.gz as decompressed JSON: {:.0} MB/s",
        plain_bytes as f64 / 1e6 / gzip_seconds
    );
    assert_eq!((plain.0, plain.1), (records, 0));
    assert_eq!(plain, gzip);
    println!(
        "aggregates: {} usage buckets ({} calls), {} auth errors in windows, {} lifecycle events",
        plain.2, plain.3, plain.4, plain.5
    );
}

/// Reads the files or folders named in `CLOUDTRAIL_BENCH_READ` (separated by `:`) once, on
/// `CLOUDTRAIL_BENCH_THREADS` threads (default: one per core), and prints one line for
/// `scripts/bench-cloudtrail.sh`: seconds, records, bytes read and the peak resident memory of
/// the process (reset before the read).
#[test]
#[ignore = "benchmark: reads the paths in CLOUDTRAIL_BENCH_READ; run scripts/bench-cloudtrail.sh"]
fn read_given_paths() {
    let Some(paths) = std::env::var_os("CLOUDTRAIL_BENCH_READ") else {
        return;
    };
    let paths: Vec<PathBuf> = std::env::split_paths(&paths).collect();
    let threads = std::env::var("CLOUDTRAIL_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let started = Instant::now();
    let data = read_paths_on(&paths, &ReadOptions::default(), threads).expect("read");
    let seconds = started.elapsed().as_secs_f64();
    let bytes: u64 = data.sources.iter().map(|s| s.bytes).sum();
    println!(
        "credaudit-read seconds={seconds:.4} records={} files={} bytes={bytes} peak_kb={} \
         threads={threads} reset={reset}",
        data.records,
        data.files.len(),
        status_kb("VmHWM:").unwrap_or(0),
    );
}

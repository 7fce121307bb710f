#!/usr/bin/env bash
# Benchmark of the CloudTrail reader (benches/cloudtrail_read.rs): generates CloudTrail logs
# (plain and gzipped) into a temp dir, reads them, prints MB/s, records/s and peak memory.
# Usage: scripts/bench-cloudtrail.sh [MEGABYTES ...]   (default: 1024; e.g. "128 1024" shows
# that peak memory does not grow with the size of the logs). CLOUDTRAIL_BENCH_DIR picks the disk.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(1024)
cargo bench --no-run --bench cloudtrail_read
for mb in "${sizes[@]}"; do
  echo "== ${mb} MB"
  CLOUDTRAIL_BENCH_MB="$mb" cargo bench --bench cloudtrail_read -- --ignored --nocapture --test-threads 1 2>&1 \
    | grep -E 'generated|^(plain|gzip|aggregates)|panicked|FAILED'
done

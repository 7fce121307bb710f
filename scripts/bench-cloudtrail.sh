#!/usr/bin/env bash
# Benchmark of the CloudTrail reader on real records: the invictus-ir CloudTrail logs
# (fixtures/cloudtrail/invictus-aws-dataset, 55 files, 3.7 MB) replicated to about 200 MB and
# 1 GB (hard links into numbered folders), plain and gzipped. Prints one table: credaudit's
# ingest (benches/cloudtrail_read.rs, read_given_paths: on every core, and on one thread) beside
# Python's json module and jq on the same files, with MB/s, records/s, peak RSS and the time
# relative to credaudit's, all measured in this run (median of RUNS runs).
#
# Usage: scripts/bench-cloudtrail.sh [MEGABYTES ...]       (default: 200 1024)
#        scripts/bench-cloudtrail.sh --generated [MB ...]  (the synthetic-fleet benchmark)
# Environment: CLOUDTRAIL_BENCH_DIR (where the copies go; default /tmp/credaudit-bench-cloudtrail),
# RUNS (credaudit runs per row, default 3), OTHER_RUNS (Python and jq runs, default 1),
# SKIP_OTHERS=1 (credaudit only), BENCH_BIN (a benchmark binary already built, e.g. a copy of
# target/release/deps/cloudtrail_read-*, to compare two builds).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--generated" ]; then
  shift
  sizes=("$@")
  [ ${#sizes[@]} -eq 0 ] && sizes=(1024)
  cargo bench --no-run --bench cloudtrail_read
  for mb in "${sizes[@]}"; do
    echo "== ${mb} MB"
    CLOUDTRAIL_BENCH_MB="$mb" cargo bench --bench cloudtrail_read -- --ignored --nocapture \
      --test-threads 1 --exact read_generated_cloudtrail_logs 2>&1 \
      | grep -E 'generated|^(plain|gzip|aggregates)|panicked|FAILED'
  done
  exit 0
fi

sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(200 1024)
runs=${RUNS:-3}
other_runs=${OTHER_RUNS:-1}
root=${CLOUDTRAIL_BENCH_DIR:-/tmp/credaudit-bench-cloudtrail}
source_dir=fixtures/cloudtrail/invictus-aws-dataset/CloudTrail
for tool in python3 jq /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

bench=${BENCH_BIN:-}
[ -n "$bench" ] || bench=$(cargo bench --no-run --bench cloudtrail_read --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "cloudtrail_read" and m.get("executable"):
        print(m["executable"])')
[ -x "$bench" ] || { echo "benchmark binary not built" >&2; exit 1; }

# One copy of the logs, plain and gzipped; then COPIES hard links of each in c0001/, c0002/, ...
mkdir -p "$root/base/plain" "$root/base/gzip"
for f in "$source_dir"/*.json; do
  name=$(basename "$f")
  [ -f "$root/base/plain/$name" ] || cp "$f" "$root/base/plain/$name"
  [ -f "$root/base/gzip/$name.gz" ] || gzip -c "$f" >"$root/base/gzip/$name.gz"
done
base_bytes=$(cat "$root"/base/plain/*.json | wc -c)
replicate() { # KIND MB -> prints the folder
  local kind=$1 mb=$2 copies dir
  copies=$(( (mb * 1000000 + base_bytes - 1) / base_bytes ))
  dir="$root/$kind-$mb"
  if [ "$(find "$dir" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)" != "$copies" ]; then
    rm -rf "$dir"
    for i in $(seq -f '%04g' 1 "$copies"); do
      mkdir -p "$dir/c$i"
      ln "$root/base/$kind"/* "$dir/c$i/"
    done
  fi
  echo "$dir"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Runs "$@" under /usr/bin/time OTHER_RUNS times; prints "seconds cpu_seconds peak_kb"
# (medians of the times, the largest peak).
time_tool() {
  local out i
  out=$(mktemp)
  for i in $(seq "$other_runs"); do
    /usr/bin/time -f '%e %U %S %M' -o "$out.$i" "$@" >/dev/null
  done
  local seconds cpu peak
  seconds=$(for i in $(seq "$other_runs"); do cut -d' ' -f1 "$out.$i"; done | median)
  cpu=$(for i in $(seq "$other_runs"); do awk '{print $2 + $3}' "$out.$i"; done | median)
  peak=$(for i in $(seq "$other_runs"); do cut -d' ' -f4 "$out.$i"; done | sort -g | tail -1)
  rm -f "$out" "$out".*
  echo "$seconds $cpu $peak"
}

# credaudit on THREADS threads: "seconds cpu_seconds peak_kb records" (medians of RUNS; the
# seconds are those of the read alone, the CPU time the process's).
time_credaudit() {
  local dir=$1 threads=$2 i line times
  local -a seconds=() cpus=() peaks=()
  local records=0
  times=$(mktemp)
  for i in $(seq "$runs"); do
    line=$(CLOUDTRAIL_BENCH_READ="$dir" CLOUDTRAIL_BENCH_THREADS="$threads" \
      /usr/bin/time -f '%U %S' -o "$times" \
      "$bench" --ignored --nocapture --exact read_given_paths 2>&1 | grep '^credaudit-read')
    seconds+=("$(sed -E 's/.*seconds=([0-9.]+).*/\1/' <<<"$line")")
    cpus+=("$(awk '{print $1 + $2}' "$times")")
    peaks+=("$(sed -E 's/.*peak_kb=([0-9]+).*/\1/' <<<"$line")")
    records=$(sed -E 's/.*records=([0-9]+).*/\1/' <<<"$line")
  done
  rm -f "$times"
  echo "$(printf '%s\n' "${seconds[@]}" | median) $(printf '%s\n' "${cpus[@]}" | median)" \
    "$(printf '%s\n' "${peaks[@]}" | sort -g | tail -1) $records"
}

cores=$(nproc)
tab=$'\t'
# Python and jq get the paths through xargs, up to half of ARG_MAX per process.
arg_max=$(( $(getconf ARG_MAX) / 2 ))
printf '%-10s %-24s %8s %8s %9s %10s %12s %8s %7s\n' \
  "logs" "reader" "seconds" "MB/s" "MB/s JSON" "CPU MB/s" "records/s" "peak MB" "× time"
for mb in "${sizes[@]}"; do
  for kind in plain gzip; do
    dir=$(replicate "$kind" "$mb")
    plain_dir=$(replicate plain "$mb")
    disk_bytes=$(find "$dir" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
    json_bytes=$(find "$plain_dir" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
    read -r c_seconds c p records < <(time_credaudit "$dir" "$cores")
    rows=("credaudit ($cores threads)${tab}$c_seconds${tab}$c${tab}$p")
    read -r s c p _ < <(time_credaudit "$dir" 1)
    rows+=("credaudit (1 thread)${tab}$s${tab}$c${tab}$p")
    if [ "${SKIP_OTHERS:-0}" != 1 ]; then
      list=$(mktemp)
      find "$dir" -type f -print0 | sort -z >"$list"
      if [ "$kind" = plain ]; then
        read -r s c p < <(time_tool xargs -0 -s "$arg_max" -a "$list" python3 -c \
          'import json,sys; [json.load(open(f)) for f in sys.argv[1:]]')
        rows+=("python3 json.load${tab}$s${tab}$c${tab}$p")
        read -r s c p < <(time_tool xargs -0 -s "$arg_max" -a "$list" jq -c .)
        rows+=("jq -c .${tab}$s${tab}$c${tab}$p")
      else
        read -r s c p < <(time_tool xargs -0 -s "$arg_max" -a "$list" python3 -c \
          'import gzip,json,sys; [json.load(gzip.open(f)) for f in sys.argv[1:]]')
        rows+=("python3 json.load(gzip)${tab}$s${tab}$c${tab}$p")
        read -r s c p < <(time_tool sh -c "xargs -0 -s $arg_max -a '$list' zcat | jq -c .")
        rows+=("zcat | jq -c .${tab}$s${tab}$c${tab}$p")
      fi
      rm -f "$list"
    fi
    for row in "${rows[@]}"; do
      IFS=$'\t' read -r name s c p <<<"$row"
      awk -v logs="$kind-$mb" -v name="$name" -v s="$s" -v c="$c" -v p="$p" \
        -v disk="$disk_bytes" -v json="$json_bytes" -v rec="$records" -v base="$c_seconds" 'BEGIN {
          printf "%-10s %-24s %8.3f %8.0f %9.0f %10.0f %12.0f %8.0f %7.2f\n", logs, name, s,
            disk / 1e6 / s, json / 1e6 / s, json / 1e6 / c, rec / s, p / 1024, s / base }'
    done
  done
done
echo "MB/s: bytes on disk per second; MB/s JSON: the same records as plain JSON; CPU MB/s: plain"
echo "JSON per CPU second (user + system, all threads), which other work on the machine disturbs"
echo "less than wall time. × time: seconds relative to credaudit on every core, same logs. Peak"
echo "MB: peak RSS (credaudit: VmHWM reset before the read; others: /usr/bin/time's maximum RSS)."

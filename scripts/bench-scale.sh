#!/usr/bin/env bash
# Fleet-scale benchmark: one table of wall time, peak memory and snapshot growth for a full
# `credaudit scan --out` (ingest, evaluate, record, render) on generated fleets.
#
#   scripts/bench-scale.sh                      the whole matrix (takes a while, needs ~20 GB of disk)
#   SIZES="1000 15000" EVENTS="0 1000000" scripts/bench-scale.sh     a part of it
#
# For every size (credentials) and CloudTrail volume (events) it generates a fleet with a year of
# rotation history (`generate --credentials N --days 365 --cloudtrail-events E`), then measures:
#   first       the first scan of that fleet into a new snapshot, with the bundle
#   unchanged   the same fleet scanned again the next day, into the same snapshot
#   year-late   the same fleet scanned a year later (every rotation overdue: the high-finding case)
# and, on the first fleet with INGEST_EVENTS events (default 1000000), CloudTrail ingest alone
# beside Python's json module and jq on the same files, decompressed (the ratio is measured in
# the same run). "growth" is what the run added to the snapshot.
# BENCH_DIR picks the disk (default: a temporary folder, removed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=(${SIZES:-1000 15000 150000 1000000})
events=(${EVENTS:-0 1000000 10000000})
seed=${SEED:-7}
ingest_events=${INGEST_EVENTS:-1000000}
as_of=2026-11-01T00:00:00Z
next_day=2026-11-02T00:00:00Z
year_late=2027-11-01T00:00:00Z

cargo build --release --quiet --bin credaudit
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/credaudit
if [ -n "${BENCH_DIR:-}" ]; then
  work=$BENCH_DIR
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# run NAME FLEET DB AS_OF: one timed scan with the bundle; prints a table row.
run() {
  local name=$1 fleet=$2 db=$3 at=$4 before=0 after status secs kb findings html
  [ -f "$db" ] && before=$(stat -c %s "$db")
  rm -rf "$work/out"
  status=0
  /usr/bin/time -f "%e %M" -o "$work/time" "$bin" scan --from "$fleet" --db "$db" --as-of "$at" \
    --out "$work/out" --quiet >/dev/null 2>"$work/stderr" || status=$?
  if [ "$status" -ge 2 ]; then
    # Killed (137: out of memory) or refused: say so in the table and go on with the next fleet.
    read -r secs kb < <(tail -1 "$work/time") || true
    printf '| %-9s | %9s | %10s | %-9s | %s |\n' "$credentials" "$generated_events" "$history_events" \
      "$name" "failed with exit $status after ${secs:-?} s: $(tail -1 "$work/stderr")"
    return 1
  fi
  read -r secs kb <"$work/time"
  after=$(stat -c %s "$db")
  findings=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["findings"]))' "$work/out/findings.json")
  html=$(stat -c %s "$work/out/index.html")
  printf '| %-9s | %9s | %10s | %-9s | %8s s | %9s MiB | %9s MiB | %9s MiB | %8s | %8s MiB |\n' \
    "$credentials" "$generated_events" "$history_events" "$name" "$secs" "$(mib $((kb * 1024)))" \
    "$(mib "$after")" "$(mib $((after - before)))" "$findings" "$(mib "$html")"
}

# ingest NAME FLEET: CloudTrail ingest alone, beside Python's json module and jq.
ingest() {
  local fleet=$1 files bytes
  mapfile -t files < <(find "$fleet/cloudtrail" -type f -name '*.json.gz' | sort)
  [ ${#files[@]} -gt 0 ] || return 0
  mkdir -p "$work/plain"
  rm -f "$work/plain"/*
  local i=0
  for f in "${files[@]}"; do
    gzip -dc "$f" >"$work/plain/$i.json"
    i=$((i + 1))
  done
  bytes=$(du -cb "$work/plain" | tail -1 | cut -f1)
  local t_ours t_py t_jq
  # A scan of an empty export with only these logs: the ingest, and a few milliseconds around it.
  mkdir -p "$work/empty"
  rm -f "$work/ingest.db"
  t_ours=$( { /usr/bin/time -f "%e" "$bin" scan --from "$work/empty" --cloudtrail "$work/plain" \
    --db "$work/ingest.db" --as-of "$as_of" --quiet >/dev/null; } 2>&1 | tail -1)
  t_py=$( { /usr/bin/time -f "%e" python3 -c 'import json,sys
for f in sys.argv[1:]:
    json.load(open(f))' "$work/plain"/*.json; } 2>&1 | tail -1)
  t_jq=$( { /usr/bin/time -f "%e" jq -c . "$work/plain"/*.json >/dev/null; } 2>&1 | tail -1)
  printf '\nCloudTrail ingest, %s events, %s MiB of plain JSON: credaudit %s s (%s MB/s), python json %s s (%.1fx), jq %s s (%.1fx)\n\n' \
    "$generated_events" "$(mib "$bytes")" "$t_ours" "$(awk -v b="$bytes" -v t="$t_ours" 'BEGIN{printf "%.0f", b/1e6/t}')" \
    "$t_py" "$(awk -v a="$t_py" -v b="$t_ours" 'BEGIN{print a/b}')" "$t_jq" "$(awk -v a="$t_jq" -v b="$t_ours" 'BEGIN{print a/b}')"
  rm -rf "$work/plain"
}

echo "credaudit $("$bin" --version | cut -d' ' -f2), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; as-of $as_of, history 365 days"
echo
printf '| %-9s | %9s | %10s | %-9s | %10s | %13s | %13s | %13s | %8s | %12s |\n' \
  credentials events history run wall "peak RSS" snapshot growth findings index.html
echo '|---|---|---|---|---|---|---|---|---|---|'
for credentials in "${sizes[@]}"; do
  for generated_events in "${events[@]}"; do
    fleet="$work/fleet"
    rm -rf "$fleet" "$work"/*.db
    "$bin" generate --out "$fleet" --credentials "$credentials" --days 365 \
      --cloudtrail-events "$generated_events" --seed "$seed" --as-of "$as_of" --quiet >/dev/null
    history_events=$(wc -l <"$fleet/history.jsonl")
    run first "$fleet" "$work/nightly.db" "$as_of" &&
      run unchanged "$fleet" "$work/nightly.db" "$next_day" &&
      run year-late "$fleet" "$work/late.db" "$year_late" || true
    if [ "$generated_events" = "$ingest_events" ] && [ ! -f "$work/ingest.txt" ]; then
      ingest "$fleet" >"$work/ingest.txt"
    fi
  done
done
[ -f "$work/ingest.txt" ] && cat "$work/ingest.txt"

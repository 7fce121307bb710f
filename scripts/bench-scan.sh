#!/usr/bin/env bash
# Benchmark of the offline scan: wall time and peak memory of `credaudit scan` (with the full
# bundle) on the demo fleet and on generated fleets of the given agent counts.
#   scripts/bench-scan.sh [AGENTS ...]     default: 500 5000
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/credaudit
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

measure() { # name fleet-dir
  local name=$1 fleet=$2
  rm -f "$work/s.db"; rm -rf "$work/out"
  /usr/bin/time -f "%e %M" -o "$work/time" "$bin" scan --from "$fleet" --db "$work/s.db" \
    --as-of 2026-11-01T00:00:00Z --out "$work/out" --quiet || true
  read -r secs kb < "$work/time"
  local findings
  findings=$(grep -c '"rule":' "$work/out/findings.json" || true)
  printf '%-18s %8s s  %8.1f MiB peak  %7s findings  %6s KiB index.html\n' \
    "$name" "$secs" "$(awk "BEGIN{print $kb/1024}")" "$findings" "$(( $(stat -c %s "$work/out/index.html") / 1024 ))"
}

measure "demo-fleet" fixtures/demo-fleet
for agents in "${@:-500 5000}"; do
  for n in $agents; do
    "$bin" generate --agents "$n" --out "$work/fleet-$n" 2>/dev/null
    measure "$n agents" "$work/fleet-$n"
  done
done

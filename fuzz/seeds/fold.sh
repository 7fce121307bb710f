#!/bin/bash
# usage: fuzz/seeds/fold.sh TARGET — folds fuzz/corpus-run/TARGET into fuzz/corpus/TARGET: libFuzzer
# merges the two (recording each input's edges), then seeds/select.py keeps a greedy edge set
# cover of at most 200 files and 2 MB. Needs the target built (cargo +nightly fuzz build).
set -euo pipefail
t=$1
cd "$(dirname "$0")/.."
bin=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/$t
work=$(mktemp -d)
mkdir -p "$work/all" "$work/empty"
cp corpus/"$t"/* "$work/all/"
cp -n corpus-run/"$t"/* "$work/all/" 2>/dev/null || true
"$bin" -merge=1 -merge_control_file="$work/control" -max_len=131072 -rss_limit_mb=2048 \
    -timeout=10 "$work/empty" "$work/all" > "$work/merge.log" 2>&1
echo "$t: $(ls "$work/all" | wc -l) inputs; kept: $(python3 seeds/select.py "$work/control" "$work/kept")"
rm -rf corpus/"$t" && mv "$work/kept" corpus/"$t" && rm -rf "$work"

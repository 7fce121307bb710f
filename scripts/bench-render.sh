#!/usr/bin/env bash
# Benchmark of the evidence-bundle writers (benches/render_bundle.rs): renders 100,000 findings,
# a 150,000-credential inventory and 2,000,000 rotation events through every writer and prints
# wall time, size and peak memory per file, then for the whole bundle.
# Usage: scripts/bench-render.sh   (RENDER_BENCH_FINDINGS, RENDER_BENCH_CREDENTIALS,
# RENDER_BENCH_EVENTS change the sizes; RENDER_BENCH_OUT=DIR keeps the bundle, e.g. to open
# index.html in a browser).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --no-run --bench render_bundle
cargo bench --bench render_bundle -- --ignored --nocapture --test-threads 1 2>&1 \
  | grep -E 'view:|^bundle|^[a-z-]+\.[a-z]+ |panicked|FAILED'

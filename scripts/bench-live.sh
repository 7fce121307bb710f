#!/usr/bin/env bash
# Benchmark of a live scan against the AWS emulator (moto, from tests/moto/.venv; run
# scripts/test.sh once to install it): a fleet of USERS IAM users with two access keys each and
# SECRETS Secrets Manager secrets over REGIONS regions, made by tests/moto/fleet_server.py.
# Measures `collect --aws`, `collect --aws --precise-last-used` and `scan --aws` (collect +
# evaluate + snapshot + bundle): wall time and peak memory (/usr/bin/time -v), requests per
# operation as the collector counts them and as the emulator received them (its request log,
# retries included). Where `prowler` is on PATH, runs its equivalent checks against the same
# emulator and prints its requests and wall time beside.
# Usage: scripts/bench-live.sh [USERS] [SECRETS]   (default: 1000 1000)
#   BENCH_PROFILE=release|debug (default release), CONCURRENCY=N (default 8),
#   REGIONS=1|2 (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-1000}
secrets=${2:-1000}
profile=${BENCH_PROFILE:-release}
concurrency=${CONCURRENCY:-8}
regions=${REGIONS:-1}
as_of=2026-11-01T00:00:00Z
python=tests/moto/.venv/bin/python
[ -x "$python" ] || { echo "no emulator: run scripts/test.sh first (installs moto into tests/moto/.venv)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package: time)" >&2; exit 2; }

target=${CARGO_TARGET_DIR:-target}
if [ "$profile" = release ]; then
  cargo build --release --bin credaudit
  bin=$target/release/credaudit
else
  cargo build --bin credaudit
  bin=$target/debug/credaudit
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  exec 3>&- 2>/dev/null || true
  [ -n "$server_pid" ] && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkfifo "$work/stdin"
"$python" tests/moto/fleet_server.py --fleet bench --users "$users" --secrets "$secrets" --regions "$regions" \
  --as-of "$as_of" --manifest "$work/fleet.json" --request-log "$work/requests.jsonl" \
  < "$work/stdin" > "$work/port.txt" 2> "$work/moto.stderr" &
server_pid=$!
exec 3> "$work/stdin"
echo "making the fleet: $users users, $((users * 2)) keys, $secrets secrets in $regions region(s) ..." >&2
for _ in $(seq 1 1800); do
  grep -q '^PORT ' "$work/port.txt" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/moto.stderr" >&2; exit 1; }
  sleep 1
done
port=$(awk '/^PORT /{print $2}' "$work/port.txt")
[ -n "$port" ] || { echo "the emulator did not start" >&2; exit 1; }
echo "fleet made in $(python3 -c "import json;print(json.load(open('$work/fleet.json'))['setup_seconds'])") s; emulator on port $port" >&2

aws_env=(env -i PATH="$PATH" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
  AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent
  CREDAUDIT_REQUEST_COUNTS=1 TMPDIR="$work")
region_args=(--region us-east-1)
[ "$regions" = 2 ] && region_args+=(--region eu-west-1)
live=(--aws --endpoint-url "http://127.0.0.1:$port" "${region_args[@]}"
  --cloudtrail-window 0 --concurrency "$concurrency")

report() { # $1 = label, $2 = /usr/bin/time output, $3 = stderr of credaudit
  echo "== $1"
  grep -E 'Elapsed \(wall clock\)|Maximum resident set size|User time|System time' "$2" | sed 's/^\s*/  /'
  grep -E '^requests |^collected ' "$3" | sed 's/^/  /'
  echo "  wire requests (emulator log):"
  python3 - "$work/requests.jsonl" <<'EOF'
import collections, json, sys
counts = collections.Counter(json.loads(l)["operation"] for l in open(sys.argv[1]) if l.strip())
for op, n in sorted(counts.items()):
    print(f"    {op} {n}")
print(f"    total {sum(counts.values())}")
EOF
  : > "$work/requests.jsonl"
}

: > "$work/requests.jsonl"
/usr/bin/time -v -o "$work/time-collect.txt" "${aws_env[@]}" "$bin" collect "${live[@]}" \
  --export "$work/export" 2> "$work/collect.stderr" || { cat "$work/collect.stderr" >&2; exit 1; }
report "collect --aws ($profile, concurrency $concurrency)" "$work/time-collect.txt" "$work/collect.stderr"
echo "  export: $(du -sh "$work/export" | cut -f1), $(find "$work/export" -type f | wc -l) files"

/usr/bin/time -v -o "$work/time-precise.txt" "${aws_env[@]}" "$bin" collect "${live[@]}" \
  --precise-last-used --export "$work/export-precise" 2> "$work/precise.stderr" \
  || { cat "$work/precise.stderr" >&2; exit 1; }
report "collect --aws --precise-last-used ($profile, concurrency $concurrency)" "$work/time-precise.txt" "$work/precise.stderr"

/usr/bin/time -v -o "$work/time-scan.txt" "${aws_env[@]}" "$bin" scan "${live[@]}" --as-of "$as_of" \
  --db "$work/scan.db" --out "$work/bundle" 2> "$work/scan.stderr" || true
report "scan --aws --out ($profile, concurrency $concurrency)" "$work/time-scan.txt" "$work/scan.stderr"
grep -E '^run ' "$work/scan.stderr" | sed 's/^/  /'

if command -v prowler >/dev/null 2>&1; then
  # Prowler's checks that look at the same things: key rotation and use, two active keys, root
  # keys, keys set up at user creation, secret rotation.
  checks=(iam_rotate_access_key_90_days iam_user_accesskey_unused iam_user_two_active_access_key
    iam_no_root_access_key iam_user_no_setup_initial_access_key
    secretsmanager_automatic_rotation_enabled secretsmanager_secret_rotated_periodically)
  /usr/bin/time -v -o "$work/time-prowler.txt" env AWS_ENDPOINT_URL="http://127.0.0.1:$port" \
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 \
    prowler aws --checks "${checks[@]}" --region us-east-1 --output-directory "$work/prowler" \
    --no-banner > "$work/prowler.stdout" 2> "$work/prowler.stderr" || true
  echo "== prowler $(prowler --version 2>/dev/null | head -1) (${#checks[@]} checks)"
  grep -E 'Elapsed \(wall clock\)|Maximum resident set size' "$work/time-prowler.txt" | sed 's/^\s*/  /'
  echo "  wire requests (emulator log):"
  python3 - "$work/requests.jsonl" <<'EOF'
import collections, json, sys
counts = collections.Counter(json.loads(l)["operation"] for l in open(sys.argv[1]) if l.strip())
print(f"    total {sum(counts.values())}")
EOF
else
  echo "== prowler: not installed (pip install prowler) — skipped"
fi

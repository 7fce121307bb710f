#!/usr/bin/env bash
# The whole test suite, as the README gives it: installs what the tests need (headless Chromium
# for the HTML report tests, strace for the read-once test, moto's AWS emulator for the live-collection tests), then runs every
# unit and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# tests/hostile_export.rs traces the scan's file opens: each input is read once.
command -v strace >/dev/null 2>&1 || need_apt+=(strace)
if ((${#need_apt[@]})); then
  echo "installing ${need_apt[*]} (Debian packages)" >&2
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
fi

# The AWS emulator for tests/aws_live.rs: moto's server at the version pinned in
# tests/moto/requirements.txt, in a virtualenv of its own (reinstalled when the pin changes).
venv=tests/moto/.venv
if ! cmp -s tests/moto/requirements.txt "$venv/.installed-requirements.txt" 2>/dev/null \
  || ! "$venv/bin/python" -c 'import moto.server' >/dev/null 2>&1; then
  echo "installing the AWS emulator ($(tr '\n' ' ' < tests/moto/requirements.txt)) into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q -r tests/moto/requirements.txt
  cp tests/moto/requirements.txt "$venv/.installed-requirements.txt"
fi

cargo test --all-targets "$@"

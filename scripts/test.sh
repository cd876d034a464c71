#!/usr/bin/env bash
# Installs what the tests need and runs them all: the Rust unit and integration tests, then the
# end-to-end tests where real OpenTelemetry clients (Python and JS SDKs) talk to a real
# `tracegap serve`, and other engines (pyarrow, DuckDB) read its Parquet.
set -euo pipefail
cd "$(dirname "$0")/.."

# A target directory outside the clone, kept between runs: DataFusion builds are heavy.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/tracegap-target}"
venv="${TRACEGAP_VENV:-/var/tmp/tracegap-venv}"

echo "== installing test dependencies (Chromium, Python venv at $venv, npm packages)"
# The dashboard tests drive Debian's Chromium (Playwright is told to use it, never downloads one).
if [ ! -x /usr/bin/chromium ]; then
  sudo_if_needed=""
  [ "$(id -u)" = 0 ] || sudo_if_needed="sudo"
  $sudo_if_needed apt-get install -y -qq chromium >/dev/null \
    || { $sudo_if_needed apt-get update -qq && $sudo_if_needed apt-get install -y -qq chromium >/dev/null; }
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
(cd tests/e2e/node && npm ci --no-audit --no-fund --loglevel=error)

# Everything is built and tested with the cluster feature (Apache DataFusion Ballista): one build
# serves the Rust tests and the end-to-end tests, cluster tests included.
echo "== building"
cargo build --release --locked --workspace --all-targets --features cluster

echo "== Rust tests"
cargo test --release --locked --workspace --features cluster

echo "== end-to-end tests"
export TRACEGAP_BIN="$CARGO_TARGET_DIR/release/tracegap"
export TRACEGAP_ARTIFACTS="${TRACEGAP_ARTIFACTS:-$PWD/test-artifacts}"
"$venv/bin/python" -m pytest tests/e2e -q -p no:cacheprovider "$@"

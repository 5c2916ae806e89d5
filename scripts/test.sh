#!/usr/bin/env bash
# Runs every test of Cahier on a fresh machine. It installs what the tests need first:
#   - Debian packages: chromium + chromium-driver (browser tests), wrk (benchmarks only, skipped)
#   - a Python virtualenv in .venv with moto (DynamoDB/SES), aiosmtpd (SMTP), cfn-lint
#   - npm packages for the browser tests (axe-core) under tests/browser/
# then checks formatting, lints, and runs the whole workspace's tests.
#
# Environment: CAHIER_SKIP_LINT=1 skips fmt/clippy (local iterations only; CI runs them).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
step() { printf '\n==> %s\n' "$*"; }
started=$SECONDS

step "Debian packages for the browser tests"
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "chromium and chromedriver present"
fi

step "Python virtualenv (.venv) for moto, aiosmtpd and cfn-lint"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! cmp -s tests/requirements.txt .venv/.requirements.installed 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
  cp tests/requirements.txt .venv/.requirements.installed
else
  echo "already installed"
fi

if [ -f tests/browser/package.json ]; then
  step "npm packages for the browser tests"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

export CAHIER_VENV="$root/.venv"
export CARGO_TERM_COLOR=never

if [ "${CAHIER_SKIP_LINT:-0}" != 1 ]; then
  step "cargo fmt --check"
  cargo fmt --all -- --check
  step "cargo clippy -D warnings"
  cargo clippy --workspace --all-targets -- -D warnings
fi

step "cargo test (whole workspace)"
# Everything is built first. The Lambda package test then compiles the function for Lambda's
# target, in its own folder, for minutes: it runs beside the other tests (which mostly wait on
# servers, browsers and paced floods) instead of after them. Its output follows theirs.
cargo test --workspace --no-fail-fast --no-run
lambda_log=$(mktemp)
cargo test --workspace --no-fail-fast --test lambda_package >"$lambda_log" 2>&1 &
lambda_pid=$!
trap 'kill "$lambda_pid" 2>/dev/null || true' EXIT
status=0
cargo test --workspace --no-fail-fast -- --skip package_lambda_builds_a_zip || status=$?
lambda_status=0
wait "$lambda_pid" || lambda_status=$?
step "cargo test --test lambda_package (ran beside the others)"
cat "$lambda_log"
rm -f "$lambda_log"
if [ "$status" != 0 ] || [ "$lambda_status" != 0 ]; then
  echo "tests failed (workspace: exit $status, lambda_package: exit $lambda_status)" >&2
  exit 1
fi

echo
echo "all tests passed in $((SECONDS - started)) s"

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
cargo test --workspace --no-fail-fast

echo
echo "all tests passed in $((SECONDS - started)) s"

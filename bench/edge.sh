#!/usr/bin/env bash
# Sign through the edge harness (CloudFront as deploy/aws/template.yaml configures it) and the
# Lambda runtime emulator, against sign on the plain standalone server: same binary, manifest,
# DynamoDB + SES on one moto, same captcha siteverify, one run, rounds interleaved. One signer
# after another, each from its own network (tests/tests/edge_bench.rs). Prints Markdown.
#
#   bench/edge.sh                       # SIGNS=200 per path and round, ROUNDS=3
#   SIGNS=500 ROUNDS=5 bench/edge.sh
#   PROFILE=release bench/edge.sh       # release build of everything (long on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
export CAHIER_VENV=${CAHIER_VENV:-$PWD/.venv}
export SIGNS=${SIGNS:-200} ROUNDS=${ROUNDS:-3}
profile=()
[ "${PROFILE:-dev}" = release ] && profile=(--release)
cargo test ${profile[@]+"${profile[@]}"} -p cahier-tests --test edge_bench -- --ignored --nocapture 2>&1 \
  | grep -E '^\||^sign through'

#!/usr/bin/env bash
# Transparency log: integration throughput (events/s into tiles) and byte-identical tiles from
# the same events; then the monitor's audit of the whole tree. Prints Markdown.
#   bash bench/tlog.sh [EVENTS]   (default 1,000,000; once without fsync, once with)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
cargo build --release -q -p cahier-tlog --example tlog_bench
target/release/examples/tlog_bench "$n"
echo
target/release/examples/tlog_bench "$n" --durable

#!/usr/bin/env bash
# Rebuild time of `cahier serve` after one petition changes: starts the release binary on a
# copy of the example site, edits one petition N times (default 15), reads the
# "rebuilt in N ms" lines it prints, and reports min / median / max.
#
#   bash bench/serve-rebuild.sh [N]
#
# The rebuild renders the whole site again (Open Graph cards come from the content-hash cache),
# so the figure is what a writer waits between saving and seeing the page reload.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-15}"
bin="${CAHIER_BIN:-$root/target/release/cahier}"
if [ ! -x "$bin" ] || [ -z "${CAHIER_BIN:-}" ]; then
  (cd "$root" && cargo build --release --quiet -p cahier --bin cahier)
fi
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir "$work/site"
cp -r "$root/cahier.toml" "$root/content" "$root/themes" "$work/site/"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$bin" --root "$work/site" serve --port "$port" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do grep -q "Serving http" "$work/serve.log" && break; sleep 0.1; done
grep -q "Serving http" "$work/serve.log" || { cat "$work/serve.log"; echo "serve did not start" >&2; exit 1; }
page="$work/site/content/noel-sans-geant/index.md"
for i in $(seq 1 "$n"); do
  before="$(grep -c 'rebuilt in' "$work/serve.log" || true)"
  printf '\nModification %s.\n' "$i" >>"$page"
  for _ in $(seq 1 200); do
    now="$(grep -c 'rebuilt in' "$work/serve.log" || true)"
    [ "$now" -gt "$before" ] && break
    sleep 0.05
  done
  sleep 0.3
done
grep -o 'rebuilt in [0-9]* ms' "$work/serve.log" | awk '{print $3}' | sort -n >"$work/ms"
count="$(wc -l <"$work/ms")"
[ "$count" -gt 0 ] || { cat "$work/serve.log"; echo "no rebuild seen" >&2; exit 1; }
median="$(awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}' "$work/ms")"
echo "serve rebuild after one petition edit: $count rebuilds, min $(head -1 "$work/ms") ms, median $median ms, max $(tail -1 "$work/ms") ms ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"

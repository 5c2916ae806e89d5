#!/usr/bin/env bash
# Benchmark of the standalone signing server (release build) against a bare axum "hello",
# measured with wrk from a second process over loopback. Prints a Markdown table.
#
#   bench/function.sh            # 10 s per scenario
#   DURATION=20s bench/function.sh
#
# Scenarios:
#   hello  GET /hello on function/examples/hello.rs (the baseline)
#   junk   POST sign with an invalid body: refused with 400 before the rate limiter and captcha
#   valid  POST sign with a valid body: token buckets, captcha (the hcaptcha crate calling the
#          server's own dev siteverify over loopback HTTP; tokens pre-issued by
#          POST /api/__dev/captcha?n=10000 before the run, each used once), age encryption,
#          one SQLite transaction, a mail written to the outbox folder, the audit event, 202.
#          Every request carries its own client address (X-Forwarded-For from the trusted
#          loopback proxy, random 10.x.y.z) and its own e-mail domain, like a real crowd.
#   count  GET count (served from the counter)
# Peak memory: VmHWM of the server process after all scenarios.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }

cargo build --release --quiet -p cahier-function --bin cahier-function --example hello
bin="$root/target/release/cahier-function"
hello="$root/target/release/examples/hello"

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
hport=$(free_port)
base="http://127.0.0.1:$port"

cat >"$work/manifest.json" <<JSON
{"version":1,"site":{"base_url":"$base","api_url":"$base/api","origins":["$base"],
 "default_language":"fr","languages":["fr","en"],"organization":"Bench","captcha_provider":"dev",
 "captcha_sitekey":"10000000-ffff-ffff-ffff-000000000001","protected_domains":["senat.fr"],
 "allowed_domains":["gmail.com"],"retention_days":365,"age_recipient":null},
 "petitions":[{"slug":"bench","languages":["fr","en"],"titles":{"fr":"Banc d'essai"},"opens_at":null,
 "closes_at":null,"goal":1000,"fields":[],"public_signers":false,"newsletter":false,
 "text_sha256":{},"consent_sha256":{}}]}
JSON

RUST_LOG=error "$bin" --listen "127.0.0.1:$port" --manifest "$work/manifest.json" \
  --store "sqlite:$work/signatures.sqlite3" --mailer "outbox:$work/outbox" \
  --dev-secrets "$work/secrets" --trusted-proxies 127.0.0.1 >"$work/server.log" 2>&1 &
server=$!; pids+=("$server")
"$hello" "127.0.0.1:$hport" & pids+=("$!")
for _ in $(seq 100); do
  curl -sf "$base/api/health" >/dev/null 2>&1 && curl -sf "http://127.0.0.1:$hport/hello" >/dev/null 2>&1 && break
  sleep 0.1
done

# Captcha tokens for the valid run, issued before it (single use, 120 s lifetime).
: >"$work/tokens.txt"
for _ in $(seq ${TOKEN_BATCHES:-8}); do
  curl -sf -X POST -H 'content-type: application/json' \
    -d '{"sitekey":"10000000-ffff-ffff-ffff-000000000001"}' "$base/api/__dev/captcha?n=10000" |
    python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["tokens"]))' >>"$work/tokens.txt"
done

cat >"$work/junk.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"name":"","email":"not-an-address","consent":"no","h-captcha-response":""}'
LUA

cat >"$work/valid.lua" <<LUA
local tokens = {}
local counter = 0
local nthreads = $THREADS
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(id * 7919 + os.time())
  local i = 0
  for line in io.lines("$work/tokens.txt") do
    if i % nthreads == id then table.insert(tokens, line) end
    i = i + 1
  end
end
function request()
  counter = counter + 1
  local t = tokens[counter]
  if t == nil then t = "exhausted" end
  local ip = string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
  local body = string.format(
    '{"name":"Banc %d %d","email":"b%dx%d@d%d.example","consent":"yes","h-captcha-response":"%s","lang":"fr","fill_ms":5000}',
    id, counter, id, counter, counter % 5000, t)
  return wrk.format("POST", "/api/petitions/bench/sign",
    {["Content-Type"] = "application/json", ["X-Forwarded-For"] = ip}, body)
end
LUA

run() { # name url [script]
  local name=$1 url=$2 script=${3:-}
  local args=(-t"$THREADS" -c"$CONNS" -d"$DURATION" --latency)
  [ -n "$script" ] && args+=(-s "$script")
  local out; out=$(wrk "${args[@]}" "$url")
  echo "$out" >"$work/$name.txt"
  local rps p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  printf '| %s | %s | %s | %s |\n' "$name" "$rps" "$p99" "${non2xx:-0}"
}

echo "Cahier signing function benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "wrk -t$THREADS -c$CONNS -d$DURATION over loopback; release build"
echo
echo "| scenario | requests/s | p99 | non-2xx responses |"
echo "|---|---|---|---|"
run hello "http://127.0.0.1:$hport/hello"
run junk "$base/api/petitions/bench/sign" "$work/junk.lua"
run valid "$base/api/petitions/bench/sign" "$work/valid.lua"
run count "$base/api/petitions/bench/count"
echo
stored=$(python3 -c "import sqlite3; c=sqlite3.connect('$work/signatures.sqlite3'); print(c.execute('select count(*) from signatures').fetchone()[0], c.execute(\"select count(*) from signatures where status='pending'\").fetchone()[0])")
mails=$(find "$work/outbox" -name '*.eml' | wc -l)
echo "valid run: signatures stored (all, pending) = $stored; mails written = $mails"
echo "server peak RSS (VmHWM): $(awk '/VmHWM/ {print $2, $3}' "/proc/$server/status")"

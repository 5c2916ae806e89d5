#!/usr/bin/env bash
# Benchmark of the standalone signing server (release build, SQLite store, outbox mailer, dev
# captcha) against a bare axum "hello" route, measured with wrk from a second process over
# loopback. The scenarios run interleaved, ROUNDS times: hello, junk, valid, count, hello, ...
# and every rate is also given as a ratio to hello's rate in the same round. Prints Markdown.
#
#   bench/function.sh                       # ROUNDS=3, 10 s per scenario
#   ROUNDS=5 DURATION=20s bench/function.sh
#   BIN=/tmp/other/cahier-function bench/function.sh   # another build of the server, to compare
#   BENCH_TMP=/var/tmp bench/function.sh                # database and outbox on disk, not tmpfs
#
# Scenarios:
#   hello  GET /hello on function/examples/hello.rs (the baseline)
#   junk   POST sign with a malformed body (bad e-mail, no consent, no captcha): refused with
#          400 in step 1 of the sign path, before the rate limiter and the captcha
#   valid  POST sign with a valid body: token buckets, captcha (the hcaptcha crate calling the
#          server's own dev siteverify over loopback HTTP; tokens issued by
#          POST /api/__dev/captcha?n=10000 just before the run, each used once), age encryption,
#          one SQLite transaction, a mail written to the outbox folder, the audit event, 202.
#          Every request carries its own client address (X-Forwarded-For from the trusted
#          loopback proxy, random 10.x.y.z) and its own e-mail, like a real crowd. The site's
#          per-petition surge budget is raised (a viral petition's setting), so every signature
#          takes the full pending + mail path; the budgets are still taken in the same write.
#   confirm POST confirm with the tokens of the valid scenario's mails (read from the outbox),
#          each used once, for CONFIRM_DURATION (1 s: a round's mails last that long): the
#          state change, the counter, the give-back of the network units and the
#          transparency-log event in one transaction, fsynced (synchronous=FULL).
#   count  GET count (served from the counter)
# Peak memory: the server's VmHWM, reset (clear_refs 5) before each scenario and read after it;
# "overall" is the VmHWM since start without reset, read before the first reset.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-1}
CONNS=${CONNS:-32}
TOKENS=${TOKENS:-40000}
CONFIRM_DURATION=${CONFIRM_DURATION:-1s}
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }

# Always (re)built: a stale release binary would measure old code.
cargo build --release --quiet -p cahier-function --features dev --bin cahier-function --example hello
bin="${BIN:-$root/target/release/cahier-function}"
hello="$root/target/release/examples/hello"

raw="$root/bench/out/function"
rm -rf "$raw"
mkdir -p "$raw"
# The database and the outbox live in a tmpfs when there is one (BENCH_TMP to choose): on ext4,
# creating one outbox file per mail serialises on the directory's inode allocation, and a
# profile of the valid scenario showed that kernel path, not the function, setting its rate
# (and its noise). SQLite commits without fsync here either way (WAL, synchronous=NORMAL).
bench_tmp=${BENCH_TMP:-}
if [ -z "$bench_tmp" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then bench_tmp=/dev/shm; fi
work=$(mktemp -d ${bench_tmp:+-p "$bench_tmp"})
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
 "allowed_domains":["gmail.com"],"retention_days":365,"age_recipient":null,
 "budgets":{"per_petition":[{"limit":50000000,"window_secs":3600}]}},
 "petitions":[{"slug":"bench","languages":["fr","en"],"titles":{"fr":"Banc d'essai"},"opens_at":null,
 "closes_at":null,"goal":1000,"fields":[],"public_signers":false,"newsletter":false,
 "text_sha256":{"fr":"$(printf a%.0s {1..64})"},"consent_sha256":{"fr":"$(printf b%.0s {1..64})"}}]}
JSON

RUST_LOG=error "$bin" --listen "127.0.0.1:$port" --manifest "$work/manifest.json" \
  --store "sqlite:$work/signatures.sqlite3" --mailer "outbox:$work/outbox" \
  --dev-secrets "$work/secrets" --trusted-proxies 127.0.0.1 >"$raw/server.log" 2>&1 &
server=$!; pids+=("$server")
"$hello" "127.0.0.1:$hport" & hello_pid=$!; pids+=("$hello_pid")
for _ in $(seq 100); do
  curl -sf "$base/api/health" >/dev/null 2>&1 && curl -sf "http://127.0.0.1:$hport/hello" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$base/api/health" >/dev/null || { echo "the server did not start:" >&2; cat "$raw/server.log" >&2; exit 1; }

cat >"$work/junk.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"name":"","email":"not-an-address","consent":"no","h-captcha-response":""}'
LUA

# valid.lua for round $1: e-mails unique across rounds, tokens from $work/tokens.txt.
valid_lua() {
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
  math.randomseed(id * 7919 + $1 * 104729 + os.time())
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
    '{"name":"Camille Dupont-Lefèvre %d %d","email":"r$1t%dx%d@d%d-r$1.example","consent":"yes","h-captcha-response":"%s","lang":"fr","fill_ms":5000}',
    id, counter, id, counter, counter % 5000, t)
  return wrk.format("POST", "/api/petitions/bench/sign",
    {["Content-Type"] = "application/json", ["X-Forwarded-For"] = ip}, body)
end
LUA
}

# confirm.lua: one confirm token per request from $work/confirm-tokens.txt, split by thread.
cat >"$work/confirm.lua" <<LUA
local tokens = {}
local counter = 0
local nthreads = $THREADS
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  local i = 0
  for line in io.lines("$work/confirm-tokens.txt") do
    if i % nthreads == id then table.insert(tokens, line) end
    i = i + 1
  end
end
function request()
  counter = counter + 1
  local t = tokens[counter] or "exhausted"
  return wrk.format("POST", "/api/confirm", {["Content-Type"] = "application/json"},
    string.format('{"token":"%s"}', t))
end
LUA

# The confirm tokens of the mails not confirmed yet (each mail is read once, then moved).
confirm_tokens() {
  mkdir -p "$work/outbox-read"
  python3 - "$work/outbox" "$work/outbox-read" >"$work/confirm-tokens.txt" <<'PY'
import email, email.policy, os, re, sys
src, done = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(src)):
    if not name.endswith(".eml"):
        continue
    with open(os.path.join(src, name), "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    text = msg.get_body(preferencelist=("plain",)).get_content()
    m = re.search(r"/confirm/#t=([A-Za-z0-9_.~-]+)", text)
    if m:
        print(m.group(1))
    os.rename(os.path.join(src, name), os.path.join(done, name))
PY
}

issue_tokens() {
  : >"$work/tokens.txt"
  local left=$TOKENS
  while [ "$left" -gt 0 ]; do
    local n=$((left > 10000 ? 10000 : left))
    curl -sf -X POST -H 'content-type: application/json' \
      -d '{"sitekey":"10000000-ffff-ffff-ffff-000000000001"}' "$base/api/__dev/captcha?n=$n" |
      python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["tokens"]))' >>"$work/tokens.txt"
    left=$((left - n))
  done
}

hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
# CPU time (user + system, in clock ticks) of a process and all its threads so far: the cost
# per request, which depends far less on the host's load than the rate does.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
reset_hwm() { echo 5 >"/proc/$1/clear_refs"; }

overall_server=$(hwm "$server")
results="$raw/results.tsv"
: >"$results"
# run NAME ROUND PID URL [SCRIPT]: appends "name round rps p99 non2xx hwm_kb requests cpu_us".
run() {
  local name=$1 round=$2 pid=$3 url=$4 script=${5:-}
  local args=(-t"$THREADS" -c"$CONNS" -d"$DURATION" --latency)
  [ -n "$script" ] && args+=(-s "$script")
  reset_hwm "$pid"
  local t0; t0=$(cpu_ticks "$pid")
  local out; out=$(wrk "${args[@]}" "$url")
  local t1; t1=$(cpu_ticks "$pid")
  echo "$out" >"$raw/$name-$round.txt"
  local rps p99 non2xx reqs
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  local cpu_us=$(( (t1 - t0) * 1000000 / hz ))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$rps" "$p99" "${non2xx:-0}" "$(hwm "$pid")" "$reqs" "$cpu_us" >>"$results"
  echo "  $name round $round: $rps req/s, p99 $p99, non-2xx ${non2xx:-0}, server CPU $cpu_us µs" >&2
}

for r in $(seq "$ROUNDS"); do
  run hello "$r" "$hello_pid" "http://127.0.0.1:$hport/hello"
  run junk "$r" "$server" "$base/api/petitions/bench/sign" "$work/junk.lua"
  issue_tokens
  valid_lua "$r"
  run valid "$r" "$server" "$base/api/petitions/bench/sign" "$work/valid.lua"
  confirm_tokens
  DURATION=$CONFIRM_DURATION run confirm "$r" "$server" "$base/api/confirm" "$work/confirm.lua"
  run count "$r" "$server" "$base/api/petitions/bench/count"
done
final_server=$(hwm "$server")

stored=$(python3 -c "import sqlite3; c=sqlite3.connect('$work/signatures.sqlite3'); print(c.execute('select count(*) from signatures').fetchone()[0], c.execute(\"select count(*) from signatures where status='pending'\").fetchone()[0], c.execute(\"select count(*) from signatures where status='confirmed'\").fetchone()[0])")
mails=$(find "$work/outbox" "$work/outbox-read" -name '*.eml' | wc -l)

python3 - "$results" <<PY
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
def ms(s):
    for suf, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if s.endswith(suf):
            return float(s[: -len(suf)]) * f
    return float(s)
by = {}
for name, rnd, rps, p99, non2xx, hwm, reqs, cpu in rows:
    by.setdefault(name, {})[int(rnd)] = (float(rps), ms(p99), int(non2xx), int(hwm), int(reqs), int(cpu) / max(int(reqs), 1))
print("wrk -t$THREADS -c$CONNS -d$DURATION --latency over loopback, release build; $ROUNDS interleaved rounds")
print("(hello, junk, valid, count, hello, ...); medians, and each round's rate divided by hello's in the same round.\n")
print("| scenario | requests/s (median) | ÷ hello (median of rounds) | p99 ms (median) | non-2xx (all rounds) | server peak RSS (MB, max) | CPU µs/request (median) |")
print("|---|---|---|---|---|---|---|")
for name in ("hello", "junk", "valid", "confirm", "count"):
    rs = by[name]
    ratios = [rs[r][0] / by["hello"][r][0] for r in rs]
    print(f"| {name} | {statistics.median(v[0] for v in rs.values()):,.0f} | {statistics.median(ratios):.2f} | "
          f"{statistics.median(v[1] for v in rs.values()):.2f} | {sum(v[2] for v in rs.values())} | "
          f"{max(v[3] for v in rs.values()) / 1024:.1f} | {statistics.median(v[5] for v in rs.values()):.1f} |")
print("\nEvery round (requests/s, p99 ms, non-2xx, VmHWM KB during the scenario):\n")
for name, rnd, rps, p99, non2xx, hwm, reqs, cpu in rows:
    print(f"- {name} #{rnd}: {rps} req/s ({reqs} requests), p99 {p99}, non-2xx {non2xx}, {hwm} KB, CPU {int(cpu) / max(int(reqs), 1):.1f} µs/request")
PY
echo
echo "Signatures stored (all, pending, confirmed) = $stored; mails written = $mails."
echo "Server peak RSS at start, before any load: $((overall_server / 1024)) MB; at the end, since the last reset: $((final_server / 1024)) MB."
echo "The peak-RSS column of hello is the hello process's; the others are the signing server's."
echo "Dev captcha tokens are self-contained (MAC-signed); the server remembers only the nonces of redeemed ones, for 120 s."

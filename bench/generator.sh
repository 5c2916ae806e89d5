#!/usr/bin/env bash
# The generator against Hugo on the same synthetic corpus (bench/gen-corpus.py: N petitions x
# 2 languages, the same pages and template work on both sides). Prints a Markdown section.
#
#   bench/generator.sh                 # N=10000, ROUNDS=3
#   N=1000 ROUNDS=2 bench/generator.sh
#
# Runs, all with the release `cahier` and Debian's `hugo`, timed by /usr/bin/time:
#   cold   `cahier build` with an empty Open Graph cache (every card rendered to PNG) — COLD_ROUNDS
#   warm   `cahier build` with the cache filled by the cold run (cards copied from the cache)
#   hugo   `hugo` (no Open Graph images: Hugo has no equivalent)
# warm and hugo are interleaved (warm, hugo, warm, hugo, ...). Before every timed build the
# previous output is removed (untimed), so both tools write into an empty destination.
# Pages = HTML files written; pages/s = pages / wall time; peak memory = max RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
N=${N:-10000}
ROUNDS=${ROUNDS:-3}
COLD_ROUNDS=${COLD_ROUNDS:-1}
out="$root/bench/out"
corpus="$out/corpus"
raw="$out/generator"
mkdir -p "$raw"
cahier="$root/target/release/cahier"
[ -x "$cahier" ] || cargo build --release --quiet -p cahier --bin cahier
command -v hugo >/dev/null || { echo "hugo is required (apt-get install hugo)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is required (apt-get install time)" >&2; exit 1; }

[ -n "${KEEP_CORPUS:-}" ] && [ -d "$corpus/cahier/content" ] ||
  python3 bench/gen-corpus.py --n "$N" --out "$corpus" --repo "$root" >&2

results="$raw/results.tsv"
[ -n "${KEEP_RESULTS:-}" ] || : >"$results"
# Removing 140,000 files takes minutes on a busy disk: old outputs are moved aside (one
# rename) before each build and deleted after the last measurement.
trash="$out/trash"
mkdir -p "$trash"

# timed NAME ROUND DEST -- command...: one build, appends "name round wall rss_kb user sys pages".
timed() {
  local name=$1 round=$2 dest=$3; shift 4
  [ -e "$dest" ] && mv "$dest" "$(mktemp -d "$trash/old.XXXXXX")/"
  local t="$raw/$name-$round.time"
  /usr/bin/time -f '%e %M %U %S' -o "$t" "$@" >"$raw/$name-$round.log" 2>&1 ||
    { echo "$name round $round failed:" >&2; cat "$raw/$name-$round.log" >&2; exit 1; }
  local pages
  pages=$(find "$dest" -name '*.html' | wc -l)
  read -r wall rss user sys <"$t"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$wall" "$rss" "$user" "$sys" "$pages" >>"$results"
  echo "  $name round $round: ${wall}s, $pages pages, max RSS ${rss} KB" >&2
}

cahier_build() { timed "$1" "$2" "$raw/cahier-public" -- "$cahier" build --root "$corpus/cahier" --out "$raw/cahier-public"; }
hugo_build() { timed hugo "$1" "$raw/hugo-public" -- hugo --quiet --source "$corpus/hugo" --destination "$raw/hugo-public"; }

for r in $(seq "$COLD_ROUNDS"); do
  [ -e "$corpus/cahier/.cahier/og-cache" ] && mv "$corpus/cahier/.cahier/og-cache" "$(mktemp -d "$trash/og.XXXXXX")/"
  cahier_build cold "$r"
done
for r in $(seq "$ROUNDS"); do
  cahier_build warm "$r"
  hugo_build "$r"
done

grep -h '^Built' "$raw"/cold-1.log "$raw"/warm-1.log 2>/dev/null >"$raw/cahier-summary.txt" || true

python3 - "$results" "$N" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
n = int(sys.argv[2])
by = {}
for name, rnd, wall, rss, user, sys_, pages in rows:
    by.setdefault(name, []).append((float(wall), int(rss), float(user), float(sys_), int(pages)))
def med(name, i):
    return statistics.median(r[i] for r in by[name])
print(f"Corpus: {n} petitions x 2 languages (bench/gen-corpus.py). Median of the rounds; every round below.\n")
print("| build | rounds | wall (s) | HTML pages | pages/s | peak RSS (MB) | CPU user+sys (s) |")
print("|---|---|---|---|---|---|---|")
label = {"cold": "cahier build, cold (all OG cards rendered)", "warm": "cahier build, warm (OG cards cached)", "hugo": "hugo"}
for name in ("cold", "warm", "hugo"):
    if name not in by:
        continue
    w = med(name, 0); p = med(name, 4)
    print(f"| {label[name]} | {len(by[name])} | {w:.2f} | {p:.0f} | {p / w:,.0f} | {med(name, 1) / 1024:.0f} | {statistics.median(r[2] + r[3] for r in by[name]):.1f} |")
if "warm" in by and "hugo" in by:
    ratios = [h[0] / c[0] for c, h in zip(by["warm"], by["hugo"])]
    print(f"\nCahier warm / Hugo speed ratio (Hugo wall ÷ Cahier wall, per interleaved round): "
          + ", ".join(f"{r:.2f}" for r in ratios) + f"; median **{statistics.median(ratios):.2f}×**.")
    mr = [c[1] / h[1] for c, h in zip(by["warm"], by["hugo"])]
    print(f"Peak memory Cahier warm / Hugo: median {statistics.median(mr):.2f}.")
print("\nEvery round (wall s, max RSS KB, user s, sys s, HTML pages):\n")
for name, rnd, wall, rss, user, sys_, pages in rows:
    print(f"- {name} #{rnd}: {wall} s, {rss} KB, user {user} s, sys {sys_} s, {pages} pages")
PY
if [ -s "$raw/cahier-summary.txt" ]; then
  echo
  echo "Cahier's own summary lines (cold, warm):"
  echo
  sed 's/^/    /' "$raw/cahier-summary.txt"
fi

#!/usr/bin/env bash
# The generator against Hugo on the same synthetic corpus (bench/gen-corpus.py: N petitions x
# 2 languages, the same pages and template work on both sides). Prints a Markdown section.
#
#   bench/generator.sh                 # N=10000, ROUNDS=3
#   N=1000 ROUNDS=2 bench/generator.sh
#   IMAGES=1 N=2000 ROUNDS=3 bench/generator.sh   # every petition with a cover photo (below)
#   CAHIER_BIN=path/to/cahier bench/generator.sh   # another build of cahier
#
# Runs, all with the release `cahier` and Debian's `hugo`, timed by /usr/bin/time:
#   cold   `cahier build` with an empty Open Graph cache (every card rendered to PNG) — COLD_ROUNDS
#   warm   `cahier build` with the cache filled by the cold run (cards copied from the cache)
#   hugo   `hugo` (no Open Graph images: Hugo has no equivalent)
# warm and hugo are interleaved (warm, hugo, warm, hugo, ...). Before every timed build the
# previous output is removed (untimed), so both tools write into an empty destination.
# Pages = HTML files written; pages/s = pages / wall time; peak memory = max RSS.
#
# IMAGES=1: the corpus of `gen-corpus.py --images` (a 2400x1600 JPEG cover per petition, in
# bench/out/corpus-images; Pillow installed into the scratch venv bench/out/pyenv), results in
# bench/out/generator-images/ (the plain run's files are left alone). Runs:
#   cahier-cold  `cahier build` with no .cahier/ (every derivative and OG card made)
#   hugo-cold    `hugo` with no resources/ (every derivative made by Hugo's image processing)
#   cahier-warm  `cahier build` with .cahier/ kept (derivatives and cards linked from it)
#   hugo-warm    `hugo` with resources/_gen kept (derivatives copied from it)
# cold: COLD_ROUNDS x (cahier-cold, hugo-cold); then ROUNDS x (cahier-warm, hugo-warm). It
# needs about 6 MB of free disk per petition (checked first); an output holds 15+ GB at
# N=10000, so both tools' outputs are moved aside and deleted, and `sync` is run, before every
# timed build (untimed): neither the disk use nor the write-back of the previous build's files
# falls into the next build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
N=${N:-10000}
ROUNDS=${ROUNDS:-3}
COLD_ROUNDS=${COLD_ROUNDS:-1}
IMAGES=${IMAGES:-}
out="$root/bench/out"
if [ -n "$IMAGES" ]; then
  corpus="$out/corpus-images"
  raw="$out/generator-images"
else
  corpus="$out/corpus"
  raw="$out/generator"
fi
mkdir -p "$raw"
cahier=${CAHIER_BIN:-$root/target/release/cahier}
[ -x "$cahier" ] || cargo build --release --quiet -p cahier --bin cahier
command -v hugo >/dev/null || { echo "hugo is required (apt-get install hugo)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is required (apt-get install time)" >&2; exit 1; }

if [ -n "$IMAGES" ]; then
  # About 6 MB per petition on disk at the peak (corpus, both caches, both outputs: 40 GB
  # were in use when Hugo's first cold build at N=10000 ran out of space): refuse early.
  need_kb=$((N * 6 * 1024))
  free_kb=$(df -Pk "$out" | awk 'NR==2 {print $4}')
  if [ "$free_kb" -lt "$need_kb" ]; then
    echo "IMAGES=1 N=$N needs about $((need_kb / 1024 / 1024)) GB free in $out; $((free_kb / 1024 / 1024)) GB are" >&2
    exit 1
  fi
  py="$out/pyenv/bin/python"
  if ! { [ -x "$py" ] && "$py" -c 'import PIL' 2>/dev/null; }; then
    python3 -m venv "$out/pyenv" >&2
    "$out/pyenv/bin/pip" install --quiet 'pillow==13.0.0' >&2
  fi
  [ -n "${KEEP_CORPUS:-}" ] && [ -d "$corpus/cahier/content" ] ||
    "$py" bench/gen-corpus.py --n "$N" --out "$corpus" --repo "$root" --images >&2
else
  [ -n "${KEEP_CORPUS:-}" ] && [ -d "$corpus/cahier/content" ] ||
    python3 bench/gen-corpus.py --n "$N" --out "$corpus" --repo "$root" >&2
fi

results="$raw/results.tsv"
[ -n "${KEEP_RESULTS:-}" ] || : >"$results"
# Removing 140,000 files takes minutes on a busy disk: old outputs are moved aside (one
# rename) before each build and deleted after the last measurement.
trash="$out/trash"
[ -z "$IMAGES" ] || trash="$raw/trash"
mkdir -p "$trash"

# timed NAME ROUND DEST -- command...: one build, appends "name round wall rss_kb user sys pages".
timed() {
  local name=$1 round=$2 dest=$3; shift 4
  [ -e "$dest" ] && mv "$dest" "$(mktemp -d "$trash/old.XXXXXX")/"
  if [ -n "$IMAGES" ]; then
    # Both outputs go, not only this build's own: at N=10000 the other tool's 16+ GB would
    # otherwise stay on disk through this build.
    local o
    for o in "$raw/cahier-public" "$raw/hugo-public"; do
      [ -e "$o" ] && mv "$o" "$(mktemp -d "$trash/old.XXXXXX")/"
    done
    rm -rf "$trash"/*
    sync
  fi
  local t="$raw/$name-$round.time"
  /usr/bin/time -f '%e %M %U %S' -o "$t" "$@" >"$raw/$name-$round.log" 2>&1 ||
    { echo "$name round $round failed:" >&2; cat "$raw/$name-$round.log" >&2; exit 1; }
  local pages
  pages=$(find "$dest" -name '*.html' | wc -l)
  read -r wall rss user sys <"$t"
  if [ -n "$IMAGES" ]; then
    # JPEG files written (the originals and their derivatives; not Cahier's og.png cards).
    local jpgs
    jpgs=$(find "$dest" -name '*.jpg' | wc -l)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$wall" "$rss" "$user" "$sys" "$pages" "$jpgs" >>"$results"
    echo "  $name round $round: ${wall}s, $pages pages, $jpgs JPEGs, max RSS ${rss} KB" >&2
  else
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$wall" "$rss" "$user" "$sys" "$pages" >>"$results"
    echo "  $name round $round: ${wall}s, $pages pages, max RSS ${rss} KB" >&2
  fi
}

cahier_build() { timed "$1" "$2" "$raw/cahier-public" -- "$cahier" build --root "$corpus/cahier" --out "$raw/cahier-public"; }
hugo_build() { timed hugo "$1" "$raw/hugo-public" -- hugo --quiet --source "$corpus/hugo" --destination "$raw/hugo-public"; }

if [ -n "$IMAGES" ]; then
  # Same as cahier_build / hugo_build, under the images mode's names.
  for r in $(seq "$COLD_ROUNDS"); do
    [ -e "$corpus/cahier/.cahier" ] && mv "$corpus/cahier/.cahier" "$(mktemp -d "$trash/cache.XXXXXX")/"
    cahier_build cahier-cold "$r"
    [ -e "$corpus/hugo/resources" ] && mv "$corpus/hugo/resources" "$(mktemp -d "$trash/res.XXXXXX")/"
    timed hugo-cold "$r" "$raw/hugo-public" -- hugo --quiet --source "$corpus/hugo" --destination "$raw/hugo-public"
  done
  for r in $(seq "$ROUNDS"); do
    cahier_build cahier-warm "$r"
    timed hugo-warm "$r" "$raw/hugo-public" -- hugo --quiet --source "$corpus/hugo" --destination "$raw/hugo-public"
  done
  grep -h '^Built' "$raw"/cahier-cold-1.log "$raw"/cahier-warm-1.log 2>/dev/null >"$raw/cahier-summary.txt" || true
  python3 - "$results" "$N" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
n = int(sys.argv[2])
by = {}
for name, rnd, wall, rss, user, sys_, pages, jpgs in rows:
    by.setdefault(name, []).append((float(wall), int(rss), float(user), float(sys_), int(pages), int(jpgs)))
def med(name, i):
    return statistics.median(r[i] for r in by[name])
print(f"Corpus: {n} petitions x 2 languages, each with a 2400x1600 JPEG cover "
      "(bench/gen-corpus.py --images). Median of the rounds; every round below.\n")
print("| build | rounds | wall (s) | HTML pages | JPEG files | pages/s | peak RSS (MB) | CPU user+sys (s) |")
print("|---|---|---|---|---|---|---|---|")
label = {"cahier-cold": "cahier build, cold (no .cahier/: every derivative and OG card made)",
         "hugo-cold": "hugo, cold (no resources/: every derivative made)",
         "cahier-warm": "cahier build, warm (.cahier/ kept)",
         "hugo-warm": "hugo, warm (resources/_gen kept)"}
for name in ("cahier-cold", "hugo-cold", "cahier-warm", "hugo-warm"):
    if name not in by:
        continue
    w = med(name, 0); p = med(name, 4)
    print(f"| {label[name]} | {len(by[name])} | {w:.2f} | {p:.0f} | {med(name, 5):.0f} | {p / w:,.0f} | "
          f"{med(name, 1) / 1024:.0f} | {statistics.median(r[2] + r[3] for r in by[name]):.1f} |")
for kind in ("cold", "warm"):
    c, h = by.get("cahier-" + kind), by.get("hugo-" + kind)
    if c and h:
        ratios = [b[0] / a[0] for a, b in zip(c, h)]
        cpu = [(b[2] + b[3]) / (a[2] + a[3]) for a, b in zip(c, h)]
        print(f"\n{kind.capitalize()}: Hugo wall ÷ Cahier wall per interleaved round: "
              + ", ".join(f"{r:.2f}" for r in ratios) + f"; median **{statistics.median(ratios):.2f}×** "
              f"(CPU time: median {statistics.median(cpu):.2f}×).")
        mr = [a[1] / b[1] for a, b in zip(c, h)]
        print(f"Peak memory Cahier / Hugo ({kind}): median {statistics.median(mr):.2f}.")
print("\nEvery round (wall s, max RSS KB, user s, sys s, HTML pages, JPEG files):\n")
for name, rnd, wall, rss, user, sys_, pages, jpgs in rows:
    print(f"- {name} #{rnd}: {wall} s, {rss} KB, user {user} s, sys {sys_} s, {pages} pages, {jpgs} JPEGs")
PY
  if [ -s "$raw/cahier-summary.txt" ]; then
    echo
    echo "Cahier's own summary lines (cold, warm):"
    echo
    sed 's/^/    /' "$raw/cahier-summary.txt"
  fi
  rm -rf "$trash"/*
  exit 0
fi

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

#!/usr/bin/env bash
# Builds the AWS Lambda package of the signing function:
#   target/lambda/cahier-function/bootstrap.zip  =  bootstrap (the function, for provided.al2023)
#                                                 + manifest.json (the petition manifest)
# (under $CARGO_TARGET_DIR instead of target/ when it is set, like the build itself)
#
# Usage: scripts/package-lambda.sh [MANIFEST]   (default: public/api/manifest.json, from `cahier build`)
# Env:   CAHIER_LAMBDA_ARCH=x86_64|arm64 (default x86_64; arm64 needs `rustup target add
#        aarch64-unknown-linux-gnu`), CAHIER_VENV (default .venv: zig comes from its `ziglang`
#        package, pinned in tests/requirements.txt), CAHIER_LAMBDA_PROFILE=release|dev (default
#        release; `dev` is the same link, unoptimised, for a quicker check).
#
# The binary is linked with cargo-zigbuild (from the venv, see tests/requirements.txt; else
# installed with `cargo install`) against
# glibc 2.34, the glibc of Amazon Linux 2023, so it runs on Lambda whatever the build machine's
# glibc (a plain `cargo build` here would link against the build machine's newer glibc symbols).
# Built with `--no-default-features --features dynamodb,ses,secretsmanager,s3`: no development captcha in the
# package. The script checks both claims on the result (glibc symbols, no dev captcha route)
# before zipping.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "package-lambda: $*" >&2; exit 1; }

manifest=${1:-public/api/manifest.json}
arch=${CAHIER_LAMBDA_ARCH:-x86_64}
venv=${CAHIER_VENV:-.venv}
case "$arch" in
  x86_64) triple=x86_64-unknown-linux-gnu ;;
  arm64) triple=aarch64-unknown-linux-gnu ;;
  *) die "CAHIER_LAMBDA_ARCH must be x86_64 or arm64, not $arch" ;;
esac
glibc=2.34

[ -f "$manifest" ] || die "no petition manifest at $manifest (run \`cahier build\` first, or pass its path)"
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); assert isinstance(m, dict)' "$manifest" \
  || die "$manifest is not a JSON object"

profile=${CAHIER_LAMBDA_PROFILE:-release}
case "$profile" in
  release) profile_flag=--release; profile_dir=release ;;
  dev) profile_flag=; profile_dir=debug ;;
  *) die "CAHIER_LAMBDA_PROFILE must be release or dev, not $profile" ;;
esac

# zig: from the venv's `ziglang` package (cargo-zigbuild runs `python3 -m ziglang`).
if ! "$venv/bin/python" -c 'import ziglang' 2>/dev/null; then
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "$(grep -E '^ziglang==' tests/requirements.txt | cut -d' ' -f1)" \
    || die "could not install ziglang into $venv (run scripts/test.sh)"
fi
case "$venv" in /*) venv_abs=$venv ;; *) venv_abs=$PWD/$venv ;; esac
export PATH="$venv_abs/bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! cargo zigbuild --help >/dev/null 2>&1; then
  cargo install --locked cargo-zigbuild || die "could not install cargo-zigbuild"
fi
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$triple"; then
  rustup target add "$triple" || die "the Rust target $triple is not installed and cannot be added here"
fi

start=$(date +%s)
CARGO_PROFILE_RELEASE_STRIP=symbols CARGO_PROFILE_DEV_STRIP=symbols CARGO_PROFILE_DEV_DEBUG=0 \
  cargo zigbuild $profile_flag --locked \
  -p cahier-function --bin cahier-function --no-default-features --features dynamodb,ses,secretsmanager,s3 \
  --target "$triple.$glibc"
target_dir=${CARGO_TARGET_DIR:-target}
built=$target_dir/$triple/$profile_dir/cahier-function
[ -f "$built" ] || die "cargo-zigbuild produced no $built"

out=$target_dir/lambda/cahier-function
rm -rf "$out" && mkdir -p "$out"
# Deterministic zip: fixed order and timestamps, bootstrap executable.
python3 - "$built" "$manifest" "$out/bootstrap.zip" "$glibc" <<'PY'
import re, sys, zipfile
binary, manifest, zip_path, glibc = sys.argv[1:]
data = open(binary, "rb").read()
assert data[:4] == b"\x7fELF", f"{binary} is not an ELF executable"
versions = {tuple(map(int, v.split(b"."))) for v in re.findall(rb"GLIBC_(\d+\.\d+(?:\.\d+)?)", data)}
need = max(versions) if versions else ()
limit = tuple(map(int, glibc.split(".")))
assert need <= limit, f"bootstrap needs glibc {need}, Amazon Linux 2023 has {glibc}"
assert b"/__dev/captcha" not in data, "the development captcha is compiled into the Lambda package"
def add(z, name, payload, mode):
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, payload, compresslevel=9)
with zipfile.ZipFile(zip_path, "w") as z:
    add(z, "bootstrap", data, 0o755)
    add(z, "manifest.json", open(manifest, "rb").read(), 0o644)
print(f"bootstrap: {len(data)} bytes, needs glibc {'.'.join(map(str, need)) or 'none'}")
PY
size=$(stat -c %s "$out/bootstrap.zip")
echo "package-lambda: $out/bootstrap.zip ($size bytes, $triple, $profile, built in $(( $(date +%s) - start )) s)"

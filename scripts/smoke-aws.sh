#!/usr/bin/env bash
# Smoke test of a real Cahier stack on AWS (what the edge harness of the tests cannot prove):
#
#   scripts/smoke-aws.sh https://petitions.example.org [FUNCTION_URL]
#
# 1. GET /api/whoami through CloudFront: the address the function believes you have. It must be
#    your own public address (compare with what your machine shows), never one of CloudFront's,
#    and never "unknown": otherwise every per-address limit and budget keys on the edge.
# 2. An unsigned POST (no x-amz-content-sha256) to /api/confirm through CloudFront: with
#    ApiAuth=AWS_IAM, CloudFront's origin access control cannot sign it for the function URL and
#    the answer is 403; a signed one reaches the function (400 for the dummy token).
# 3. With FUNCTION_URL (the stack's FunctionUrl output): a request straight to the function URL,
#    bypassing CloudFront and the WAF, must be refused (403) in both ApiAuth modes.
#
# Nothing is written: the confirm token is invalid, so no signature changes. Exit status 0 only
# when every check passes.
set -euo pipefail
site=${1:?usage: scripts/smoke-aws.sh https://petitions.example.org [FUNCTION_URL]}
site=${site%/}
function_url=${2:-}
failed=0
check() { # name, expected, actual
  if [ "$2" = "$3" ]; then
    printf 'ok    %s (%s)\n' "$1" "$3"
  else
    printf 'FAIL  %s: expected %s, got %s\n' "$1" "$2" "$3"
    failed=1
  fi
}

whoami=$(curl -fsS --max-time 10 "$site/api/whoami")
echo "the function sees you as: $whoami"
case $whoami in
  *'"known":true'*) check "the function knows your address" known known ;;
  *) check "the function knows your address" known unknown ;;
esac

body='{"token":"smoke-test"}'
hash=$(printf '%s' "$body" | sha256sum | cut -d' ' -f1)
unsigned=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
  -H 'content-type: application/json' --data "$body" "$site/api/confirm")
signed=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
  -H 'content-type: application/json' -H "x-amz-content-sha256: $hash" \
  --data "$body" "$site/api/confirm")
echo "unsigned POST through CloudFront: $unsigned (403 with ApiAuth=AWS_IAM)"
check "a signed POST reaches the function (invalid token)" 400 "$signed"

if [ -n "$function_url" ]; then
  direct=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "${function_url%/}/api/health")
  check "the function URL refuses requests that bypass CloudFront" 403 "$direct"
fi
exit $failed

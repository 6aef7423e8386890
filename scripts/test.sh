#!/usr/bin/env bash
# `npm test`: installs what is missing, then type-checks, lints and runs Jest.
# Extra arguments go to Jest (npm test -- test/unit). All three steps run even when one
# fails, and the script exits non-zero if any did. The last line is a plain
# "N passed, N failed" summary of the Jest run.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/ensure-deps.sh || exit 1
bash scripts/ensure-temporal.sh >/dev/null || exit 1
# Schemathesis (PyPI, pinned) for test/fuzz/schemathesis.test.ts, into the same .venv.
bash scripts/ensure-schemathesis.sh >/dev/null || exit 1
# For the browser test of the Temporal UI (test/ui/); installs Debian's chromium when root.
# Without one (not root, no apt) the browser tests fail, saying how to get one: they are never skipped.
if CHROMIUM_PATH="$(bash scripts/ensure-chromium.sh)"; then export CHROMIUM_PATH; else unset CHROMIUM_PATH; fi

BIN="$ROOT/node_modules/.bin"
failed=()

echo "== typecheck (tsc --noEmit)"
"$BIN/tsc" --noEmit -p . || failed+=(typecheck)

echo "== lint (eslint)"
"$BIN/eslint" --max-warnings=0 . || failed+=(lint)

echo "== format (prettier --check; npm run format fixes it)"
"$BIN/prettier" --check --log-level warn . || failed+=(format)

echo "== jest"
mkdir -p .data
results=".data/jest-results-$$.json"
jest_args=()
if [[ -n "${CI:-}" ]]; then jest_args+=(--ci); fi
"$BIN/jest" "${jest_args[@]}" --json --outputFile="$results" "$@" || failed+=(jest)

if [[ -f "$results" ]]; then
  node -e '
    const r = require(process.argv[1]);
    const failed = r.numFailedTests + (r.numRuntimeErrorTestSuites || 0);
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`jest: ${r.numPassedTests} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
  ' "$ROOT/$results" || true
  rm -f "$results"
fi

if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi

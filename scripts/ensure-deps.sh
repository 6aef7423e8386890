#!/usr/bin/env bash
# Installs npm dependencies when node_modules is missing: `npm ci` with a lock file,
# `npm install` without. When `npm ci` refuses because the lock file is out of step with
# package.json, falls back to `npm install --no-save` (which leaves package-lock.json as
# it is) and says so. Quiet when the dependencies are already there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -d node_modules && -x node_modules/.bin/tsx ]]; then exit 0; fi
if [[ ! -f package-lock.json ]]; then
  echo "[ensure-deps] node_modules missing: npm install" >&2
  npm install --no-audit --no-fund >&2
  exit 0
fi
echo "[ensure-deps] node_modules missing: npm ci" >&2
log="$(mktemp)"
if npm ci --no-audit --no-fund >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  exit 0
fi
if grep -q "can only install packages when your package.json and package-lock.json" "$log"; then
  grep -m 3 "Missing:\|Invalid:" "$log" >&2 || true
  echo "[ensure-deps] package-lock.json is out of step with package.json (run 'npm install' and commit the lock);" \
    "installing with 'npm install --no-save' for now" >&2
  rm -f "$log"
  npm install --no-save --no-audit --no-fund >&2
  exit 0
fi
cat "$log" >&2
rm -f "$log"
exit 1

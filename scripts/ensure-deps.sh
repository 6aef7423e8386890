#!/usr/bin/env bash
# Installs npm dependencies when node_modules is missing, exactly as package-lock.json pins them
# (`npm ci`). A lock file out of step with package.json stops the run: run `npm install`, commit
# the lock, and try again. Quiet when the dependencies are already there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -d node_modules && -x node_modules/.bin/tsx ]]; then exit 0; fi
echo "[ensure-deps] node_modules missing: npm ci" >&2
if ! npm ci --no-audit --no-fund >&2; then
  echo "[ensure-deps] npm ci failed. If it says package.json and package-lock.json are out of step," \
    "run 'npm install' and commit package-lock.json." >&2
  exit 1
fi

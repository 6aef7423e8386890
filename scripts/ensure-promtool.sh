#!/usr/bin/env bash
# Prints the path of a usable `promtool` (Prometheus's rule checker, for test/deploy/alert-rules.test.ts):
#   1. $PROMTOOL when set (must run),
#   2. `promtool` on PATH,
#   3. <repo>/.venv/prometheus/usr/bin/promtool, unpacked first when missing from Debian's `prometheus`
#      package (`apt-get download`, then `dpkg-deb -x`: nothing is installed system-wide and no
#      Prometheus server is started; promtool is one static binary).
# Idempotent; only the path on stdout, progress on stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/.venv/prometheus"
BIN="$DIR/usr/bin/promtool"

works() { "$1" --version >/dev/null 2>&1; }
log() { echo "[ensure-promtool] $*" >&2; }

if [[ -n "${PROMTOOL:-}" ]]; then
  if works "$PROMTOOL"; then echo "$PROMTOOL"; exit 0; fi
  log "PROMTOOL=$PROMTOOL is not an executable promtool"
  exit 1
fi
if on_path="$(command -v promtool 2>/dev/null)" && works "$on_path"; then echo "$on_path"; exit 0; fi
if works "$BIN"; then echo "$BIN"; exit 0; fi

for tool in apt-get dpkg-deb; do
  command -v "$tool" >/dev/null 2>&1 || { log "$tool is needed to fetch Debian's prometheus package (or put promtool on PATH, or set PROMTOOL)"; exit 1; }
done
# Serialise concurrent runs (Jest workers) on one lock, as ensure-venv-package.sh does.
mkdir -p "$ROOT/.data"
exec 9>"$ROOT/.data/ensure-promtool.lock"
flock 9
if works "$BIN"; then echo "$BIN"; exit 0; fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "downloading Debian's prometheus package for promtool"
# apt-get download writes into the current directory; _apt may not write into a root-owned mktemp dir.
chmod 0777 "$work"
(cd "$work" && apt-get download -q prometheus >&2) || { log "apt-get download prometheus failed (try apt-get update first)"; exit 1; }
mkdir -p "$DIR"
dpkg-deb -x "$work"/prometheus_*.deb "$DIR"
works "$BIN" || { log "promtool unpacked to $BIN does not run"; exit 1; }
echo "$BIN"

#!/usr/bin/env bash
# Prints the path of a usable Chromium, for the browser test of the Temporal UI
# (test/ui/temporal-ui.test.ts drives it with playwright-core).
#
#   1. $CHROMIUM_PATH when set (must run),
#   2. /usr/bin/chromium,
#   3. `chromium` on PATH,
#   4. otherwise installs Debian's `chromium` package with apt-get, when running as
#      root on a system with apt-get (CI); exits non-zero with what to do otherwise.
#
# We use the distribution's build rather than `npx playwright install`: it is kept up to
# date by Debian, and the downloaded Playwright builds are not reachable from CI.
#
# Idempotent; prints only the path on stdout, progress goes to stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { echo "[ensure-chromium] $*" >&2; }

works() { "$1" --version >/dev/null 2>&1; }

found() {
  echo "$1"
  exit 0
}

if [[ -n "${CHROMIUM_PATH:-}" ]]; then
  if [[ -x "$CHROMIUM_PATH" ]] && works "$CHROMIUM_PATH"; then found "$CHROMIUM_PATH"; fi
  log "CHROMIUM_PATH=$CHROMIUM_PATH is not an executable Chromium"
  exit 1
fi

find_chromium() {
  if [[ -x /usr/bin/chromium ]] && works /usr/bin/chromium; then found /usr/bin/chromium; fi
  local on_path
  if on_path="$(command -v chromium 2>/dev/null)" && works "$on_path"; then found "$on_path"; fi
}

find_chromium

if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  log "no Chromium found (set CHROMIUM_PATH, or install Debian's package: sudo apt-get install -y chromium)"
  exit 1
fi

# Serialise concurrent installs (two `npm test` runs on a fresh machine): apt holds its own
# lock, but the second run would fail on it rather than wait.
mkdir -p "$ROOT/.data"
exec 9>"$ROOT/.data/.ensure-chromium.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
find_chromium

export DEBIAN_FRONTEND=noninteractive
# Without recommends (upower, udev, printer tools...), but with a font: a container may have
# none, and the UI would then render as empty boxes in screenshots.
apt_install() {
  apt-get install -y --no-install-recommends -o Dpkg::Use-Pty=0 chromium fonts-liberation >&2
}
started=$SECONDS
log "installing Debian's chromium package with apt-get (about 100 MB, a minute or two)"
if ! apt_install; then
  # A fresh container has no package lists yet.
  log "refreshing package lists (apt-get update) and retrying"
  apt-get update -qq >&2
  apt_install
fi

if ! works /usr/bin/chromium; then
  log "chromium was installed but /usr/bin/chromium --version fails"
  exit 1
fi
log "installed $(/usr/bin/chromium --version 2>/dev/null | head -n1) in $((SECONDS - started)) s"
echo /usr/bin/chromium

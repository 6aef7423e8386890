#!/usr/bin/env bash
# Prints the path of `kubernetes-validate` (PyPI, pinned), which checks Kubernetes manifests
# against the Kubernetes JSON schemas it ships, offline. Installs it into the project's .venv
# (the one scripts/ensure-temporal.sh uses) when missing. Idempotent, no stdin; only the path on
# stdout, progress on stderr.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/ensure-venv-package.sh" kubernetes-validate 1.37.0 kubernetes-validate

#!/usr/bin/env bash
# Prints the path of the Schemathesis CLI (`st`, PyPI, pinned) that test/fuzz/schemathesis.test.ts
# runs against the API, installing it into the project's .venv when missing.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/ensure-venv-package.sh" schemathesis 4.32.5 st

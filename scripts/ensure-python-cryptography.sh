#!/usr/bin/env bash
# Prints the path of the project's .venv Python with the `cryptography` package (PyPI, pinned): what
# test/outsider/verify_tenant.py (an outsider's verifier of a tenant's audit data) needs for Ed25519.
# Installs it when missing; test/integration/outsider-verifier.test.ts runs it.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/ensure-venv-package.sh" cryptography 50.0.2 python

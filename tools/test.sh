#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what it needs, builds with the
# `ci` preset (warnings are errors) and runs every ctest test (unit, integration, hostile).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
cmake --preset ci
cmake --build --preset ci
ctest --preset ci "$@"

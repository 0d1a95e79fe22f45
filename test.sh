#!/usr/bin/env bash
# Runs the test suite in the project's virtual environment (created on first use).
# Extra arguments go to pytest, e.g. `bash test.sh -m "not slow"` or `bash test.sh -k fbi`.
set -euo pipefail
source "$(dirname "$0")/tools/env.sh"
cd "$ROOT"
exec python -m pytest "$@"

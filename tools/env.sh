# Creates or reuses the project's virtual environment in .venv and installs the
# project into it when setup.py changed. Sourced by quickstart.sh and test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 && \
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY="$candidate"; break
    fi
  done
fi
if [ -z "$PY" ]; then
  echo "fbi3d needs Python 3.11 (python3.11 or python3 on PATH, or set PYTHON=...)." >&2
  exit 1
fi
STAMP="$VENV/.fbi3d-installed"
WANT="$(sha256sum "$ROOT/setup.py" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating virtual environment in $VENV"
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "== installing fbi3d and its pinned dependencies (first run: a few minutes)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # pip compiles every installed module one by one; compileall does the same work on
  # every core (15 s against pip's 24 s for the compiling alone on two cores; whole
  # installs, four fresh pairs alternating: 42 to 58 s against 54 to 74 s).
  "$VENV/bin/python" -m pip install --quiet --no-compile -e "$ROOT"
  "$VENV/bin/python" -m compileall -qq -j 0 \
    "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    >/dev/null || true
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"

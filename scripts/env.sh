#!/usr/bin/env bash
# Creates .venv (if missing) with a supported Python and installs a requirements file into it.
# Usage: scripts/env.sh requirements.txt|requirements-test.txt
# Sourced by scripts/app.sh and scripts/test.sh; the interpreter can be chosen with PYTHON=...
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="${1:-requirements.txt}"
VENV="$ROOT/.venv"

find_python() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  for candidate in python3.11 python3.10 python3.9 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1; then echo "$candidate"; return; fi
  done
  echo ""
}

check_version() {
  # PyCaret 3.3.2 supports Python 3.9 to 3.11 only.
  "$1" - <<'PY'
import sys
ok = (3, 9) <= sys.version_info[:2] <= (3, 11)
if not ok:
    v = ".".join(map(str, sys.version_info[:3]))
    sys.stderr.write(
        f"Kobe Workbench needs Python 3.9, 3.10 or 3.11 (PyCaret 3.3.2 supports no other), "
        f"but {sys.executable} is Python {v}.\n"
        "Install Python 3.11 (for example with pyenv or your package manager) and run again, "
        "or point to it with PYTHON=/path/to/python3.11.\n")
    sys.exit(3)
PY
}

if [ -x "$VENV/bin/python" ]; then
  check_version "$VENV/bin/python" || { echo "Remove .venv and run again with a supported Python." >&2; exit 3; }
else
  PY="$(find_python)"
  if [ -z "$PY" ]; then
    echo "No Python found. Kobe Workbench needs Python 3.9, 3.10 or 3.11." >&2; exit 3
  fi
  check_version "$PY"
  echo "Creating virtual environment in .venv with $("$PY" --version 2>&1)"
  "$PY" -m venv "$VENV"
fi

# Install only when the requirement files changed since the last successful install.
STAMP="$VENV/.installed-$(basename "$REQ")"
SUM="$(cat "$ROOT"/requirements*.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$SUM" ]; then
  echo "Installing $REQ into .venv (first time takes about 2 minutes)..."
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/$REQ"
  echo "$SUM" > "$STAMP"
fi

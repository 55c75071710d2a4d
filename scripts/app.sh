#!/usr/bin/env bash
# One command: install (if needed) and start the workbench on http://127.0.0.1:8501
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/env.sh" requirements.txt
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"
echo "Starting Kobe Workbench on http://127.0.0.1:${WORKBENCH_APP_PORT:-8501} (Ctrl+C to stop)"
exec "$ROOT/.venv/bin/python" -m streamlit run app.py \
  --server.address "${WORKBENCH_APP_HOST:-127.0.0.1}" --server.port "${WORKBENCH_APP_PORT:-8501}"

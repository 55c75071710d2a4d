#!/usr/bin/env bash
# One command: install (if needed) and start the workbench on http://127.0.0.1:8501
# (scripts/serve_app.sh runs the app, and stops the model servers its pages started when it stops).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/env.sh" requirements.txt
exec bash "$ROOT/scripts/serve_app.sh"

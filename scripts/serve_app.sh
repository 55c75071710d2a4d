#!/usr/bin/env bash
# Runs the workbench (already installed in .venv) until Ctrl+C or a TERM, then stops the model
# servers that the app's pages started: they run in their own process group (a page reload or a
# closed tab does not stop them), so without this they would outlive the app (about 830 MiB).
# A `python -m core serve` running in another terminal is not the app's and keeps running.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"
PY="$ROOT/.venv/bin/python"
echo "Starting Kobe Workbench on http://127.0.0.1:${WORKBENCH_APP_PORT:-8501} (Ctrl+C to stop)"
"$PY" -m streamlit run app.py \
  --server.address "${WORKBENCH_APP_HOST:-127.0.0.1}" --server.port "${WORKBENCH_APP_PORT:-8501}" &
APP=$!
# A background command ignores Ctrl+C in a script, so pass it (and a TERM) on to the app.
trap 'kill -TERM "$APP" 2>/dev/null' INT TERM
while kill -0 "$APP" 2>/dev/null; do
  wait "$APP"  # returns early when a signal arrives: wait until the app has really stopped
done
wait "$APP"
status=$?
trap - INT TERM
echo "Stopping the model servers the app started ..."
"$PY" -m core serve stop --all --app-only >/dev/null || echo "could not stop them: see python -m core serve status" >&2
exit "$status"

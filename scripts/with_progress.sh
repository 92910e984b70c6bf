#!/usr/bin/env bash
# Runs a long, quiet command and says it is alive: one line as it starts, then one every
# PROGRESS_INTERVAL seconds (default 30) while it runs. Its output is kept aside and shown
# only when it fails; this script exits with its exit code.
# Usage: scripts/with_progress.sh "Building llama.cpp (first time: ~15 min)" pip install ...
# The heartbeat uses the label up to " (": "still building llama.cpp, 3 min so far".
set -euo pipefail

label=$1
shift
interval=${PROGRESS_INTERVAL:-30}
short=${label%% (*}

log=$(mktemp)
echo "$label..."
start=$SECONDS
"$@" >"$log" 2>&1 &
pid=$!
# Ctrl-C or a kill stops the command too: a background job of a script ignores SIGINT itself.
trap 'kill "$pid" 2>/dev/null; rm -f "$log"; exit 130' INT TERM
trap 'rm -f "$log"' EXIT

elapsed() {
  local seconds=$((SECONDS - start))
  if ((seconds < 60)); then
    echo "$seconds s"
  elif ((seconds % 60 == 0)); then
    echo "$((seconds / 60)) min"
  else
    echo "$((seconds / 60)) min $((seconds % 60)) s"
  fi
}

next=$interval
while kill -0 "$pid" 2>/dev/null; do
  # Short naps: a command that ends early is not waited for a whole interval.
  sleep 1
  if ((SECONDS - start >= next)) && kill -0 "$pid" 2>/dev/null; then
    echo "  still ${short,}, $(elapsed) so far"
    next=$((next + interval))
  fi
done

if wait "$pid"; then
  status=0
else
  status=$?
fi
if ((status != 0)); then
  cat "$log" >&2
  echo "$short failed (exit code $status) after $(elapsed)." >&2
  exit "$status"
fi

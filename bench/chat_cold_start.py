"""Benchmark: `manage.py chat --json -m "!ask ..."` from start to exit, LLM down, no OpenAI key.

Issue 2 asks for a fallback reply from the database in under one second with nothing on
port 1234. This times the whole command, Python start-up included, on a migrated SQLite.

    .venv/bin/python bench/chat_cold_start.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="serdabot-bench-") as local:
        scrub = ("LLM_", "OPENAI_", "DATABASE_", "REDIS_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(scrub)}
        env.update(SERDABOT_LOCAL_DIR=local, LLM_ENDPOINT="http://localhost:1234/v1")
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
        times, sources = [], set()
        for _ in range(args.runs):
            started = time.perf_counter()
            done = subprocess.run(
                [*manage, "chat", "--json", "-m", "!ask c'est quoi Python ?"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            times.append(time.perf_counter() - started)
            sources.add(json.loads(done.stdout.strip().splitlines()[-1])["source"])
    median = statistics.median(times)
    print(f"runs: {args.runs}; sources: {sorted(sources)}")
    print(f"wall time: median {median:.3f} s, max {max(times):.3f} s (target < {TARGET_S} s)")
    print("PASS" if median < TARGET_S and sources == {"fallback"} else "FAIL")


if __name__ == "__main__":
    main()

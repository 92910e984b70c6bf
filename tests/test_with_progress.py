"""scripts/with_progress.sh, which keeps scripts/test.sh talking while pip compiles llama.cpp."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.subprocesses import ROOT

SCRIPT = ROOT / "scripts" / "with_progress.sh"


def run(*command: str, interval: str = "1") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *command],
        env={**os.environ, "PROGRESS_INTERVAL": interval},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("script", ["test.sh", "with_progress.sh"])
def test_the_scripts_parse(script: str) -> None:
    result = subprocess.run(["bash", "-n", str(ROOT / "scripts" / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_it_says_what_runs_then_that_it_still_does(tmp_path: Path) -> None:
    result = run("Sleeping a while (test: ~3 s)", "bash", "-c", "echo pip-chatter; sleep 3")

    assert result.returncode == 0, result.stderr
    first, *heartbeats = result.stdout.splitlines()
    assert first == "Sleeping a while (test: ~3 s)..."
    assert heartbeats, "no heartbeat while the command ran"
    assert all(line.startswith("  still sleeping a while, ") for line in heartbeats), heartbeats
    assert all(line.endswith(" s so far") for line in heartbeats), heartbeats
    assert "pip-chatter" not in result.stdout + result.stderr  # quiet when all goes well


def test_a_failing_command_fails_it_with_its_output_shown() -> None:
    result = run("Building", "bash", "-c", "echo compiler says no; echo an error >&2; exit 3")

    assert result.returncode == 3
    assert result.stdout == "Building...\n"
    assert "compiler says no" in result.stderr and "an error" in result.stderr
    assert "Building failed (exit code 3)" in result.stderr


def test_test_sh_builds_llama_cpp_through_it() -> None:
    script = (ROOT / "scripts" / "test.sh").read_text()

    assert script.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in script
    assert '"$progress" "$label" .venv/bin/pip install' in script
    assert 'label="Building llama.cpp (first time: ~15 min on 2 cores)"' in script


def test_stopping_it_stops_the_command(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    proc = subprocess.Popen(
        [str(SCRIPT), "Waiting", "bash", "-c", f"echo $$ > {pid_file}; exec sleep 60"],
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    command = int(pid_file.read_text())

    proc.send_signal(signal.SIGINT)  # Ctrl-C

    assert proc.wait(30) == 130
    deadline = time.monotonic() + 30
    while alive(command):
        assert time.monotonic() < deadline, "the command outlived the script"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone too; only its parent's wait removes it.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")

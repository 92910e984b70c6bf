"""What `runbot` says at start: the pages' real addresses, and the account to create first."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import User

from chatbridge.first_run import account_line, address_lines, createsuperuser_command, needs_account
from tests.subprocesses import ROOT, bot_env, free_port, manage, start_runbot, wait_for_port

PAGES = ("/", "/admin/", "/chat/", "/twitch/connect/", "/discord/connect/")


def test_it_lists_every_page_at_the_address_a_browser_opens() -> None:
    lines = address_lines("127.0.0.1", 8123)

    assert [line.split()[-1] for line in lines] == [f"http://localhost:8123{page}" for page in PAGES]
    assert lines[1].startswith("Admin:")


@pytest.mark.parametrize(
    ("host", "shown"), [("0.0.0.0", "localhost"), ("", "localhost"), ("::", "localhost")]
)
def test_every_interface_is_shown_as_this_machine(host: str, shown: str) -> None:
    lines = address_lines(host, 8000)

    assert lines[0].endswith(f" http://{shown}:8000/")
    assert "every interface" in lines[-1] and "ALLOWED_HOSTS" in lines[-1]


def test_a_named_host_is_shown_as_given() -> None:
    assert address_lines("192.168.1.20", 8000)[2].endswith(" http://192.168.1.20:8000/chat/")
    assert address_lines("fd00::20", 8000)[0].endswith(" http://[fd00::20]:8000/")
    assert address_lines("::1", 8000)[0].endswith(" http://localhost:8000/")  # Twitch's one http name
    assert "every interface" not in " ".join(address_lines("localhost", 8000))


def test_the_command_uses_the_projects_own_python() -> None:
    command = createsuperuser_command(
        "/home/ana/serdabot/.venv/bin/python",
        "/home/ana/serdabot",
        "/home/ana/serdabot/manage.py",
        windows=False,
    )

    assert command == ".venv/bin/python manage.py createsuperuser"


def test_on_windows_it_is_the_powershell_command() -> None:
    command = createsuperuser_command(
        r"C:\Users\Ana\serdabot\.venv\Scripts\python.exe",
        r"C:\Users\Ana\serdabot",
        r"C:\Users\Ana\serdabot\manage.py",
        windows=True,
    )

    assert command == r".venv\Scripts\python manage.py createsuperuser"


def test_a_python_outside_the_project_is_named_whole_and_quoted() -> None:
    posix = createsuperuser_command(
        "/opt/my tools/python3", "/home/ana/serdabot", "/home/ana/serdabot/manage.py", windows=False
    )
    windows = createsuperuser_command(
        r"C:\Program Files\Python311\python.exe", r"D:\bot", r"D:\bot\manage.py", windows=True
    )

    assert posix == "'/opt/my tools/python3' manage.py createsuperuser"
    assert windows == r'& "C:\Program Files\Python311\python" manage.py createsuperuser'


def test_run_from_elsewhere_it_names_manage_py_from_there() -> None:
    command = createsuperuser_command(
        "/srv/bot/.venv/bin/python", "/srv", "/srv/bot/manage.py", windows=False
    )

    assert command == "bot/.venv/bin/python bot/manage.py createsuperuser"


@pytest.mark.django_db
def test_only_a_staff_account_counts() -> None:
    User.objects.create_user("viewer", password="x")
    assert needs_account()

    User.objects.create_user("streamer", password="x", is_staff=True)
    assert not needs_account()


def test_the_account_line_names_this_process_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "executable", str(ROOT / ".venv" / "bin" / "python"))

    assert account_line().endswith(" .venv/bin/python manage.py createsuperuser")


# The real process.


def runbot_output(env: dict[str, str], *args: str, check: str = "/admin/login/") -> tuple[int, str]:
    """Start `runbot --platform web *args` on a free port, GET `check` once it listens, stop it:
    its port and whole output (the addresses are logged before it handles the stop)."""
    port = free_port()
    proc = start_runbot(env, port, "--platform", "web", *args)
    try:
        wait_for_port(port, proc=proc)
        assert httpx.get(f"http://127.0.0.1:{port}{check}").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    return port, output


def expected_python() -> str:
    python = Path(sys.executable)
    return str(python.relative_to(ROOT)) if python.is_relative_to(ROOT) else str(python)


def test_runbot_prints_the_pages_and_the_account_to_create(local_dir: Path) -> None:
    # Listening on every interface; the addresses printed are the ones a browser here opens.
    port, output = runbot_output(bot_env(local_dir), "--host", "0.0.0.0")

    for page in PAGES:
        assert f" http://localhost:{port}{page}\n" in output, output
    assert "http://0.0.0.0" not in output
    assert f"{expected_python()} manage.py createsuperuser" in output
    assert "Traceback" not in output


def test_with_a_staff_account_it_does_not_ask_for_one(local_dir: Path) -> None:
    env = bot_env(local_dir, DJANGO_SUPERUSER_PASSWORD="a-long-test-password-42")
    created = manage(env, "createsuperuser", "--noinput", "--username", "streamer", "--email", "s@x.org")
    assert created.returncode == 0, created.stderr

    port, output = runbot_output(env)

    assert f"Connect Discord: http://localhost:{port}/discord/connect/" in output, output
    assert "createsuperuser" not in output

"""`.env.example` lists every setting the code reads from the environment, each with its default."""

from __future__ import annotations

import re
from pathlib import Path

from chatbridge.prompts import DEFAULTS as PROMPTS
from llm.cascade.config import _SETTINGS as LLM_SETTINGS
from serdabot.redact import SECRET_SETTINGS
from tests.subprocesses import ROOT, bot_env, manage

EXAMPLE = ROOT / ".env.example"
NAME = r'"([A-Z][A-Z0-9_]+)"'
# The ways the code reads a variable, its name written out.
READS = [
    re.compile(p)
    for p in (
        rf"\benv_(?:str|bool|int|float|list)\(\s*{NAME}",
        rf"\bos\.environ\.get\(\s*{NAME}",
        rf"\bos\.environ\[\s*{NAME}\s*\]",
        rf"\bgetenv\(\s*{NAME}",
        rf"\b(?:environ|env)\.get\(\s*{NAME}",
        rf"\b(?:environ|env)\[\s*{NAME}\s*\]",
        # The config modules' own readers: `_token("TWITCH_BOT_TOKEN", ...)`, `_snowflakes(...)`.
        r'\b_\w+\(\s*"([A-Z][A-Z0-9]*_[A-Z0-9_]+)"',
    )
]
LISTED = re.compile(r"^# ([A-Z][A-Z0-9_]*)=(.*)$", re.MULTILINE)
# Everything in the project but the tests, the benchmarks and the virtualenv.
SKIPPED = {".venv", "tests", "bench", "migrations", "node_modules"}


def sources() -> list[Path]:
    return [
        path
        for path in ROOT.rglob("*.py")
        if not SKIPPED.intersection(path.relative_to(ROOT).parts)
        and not path.relative_to(ROOT).parts[0].startswith(".")
    ]


def read_by_the_code() -> dict[str, str]:
    """Each variable name, with a file that reads it."""
    names: dict[str, str] = {}
    for path in sources():
        text = path.read_text(encoding="utf-8")
        for pattern in READS:
            for match in pattern.finditer(text):
                names.setdefault(match.group(1), str(path.relative_to(ROOT)))
    # Read through tables, not by a name written at the call.
    for _, variable, _, _ in LLM_SETTINGS:
        names.setdefault(variable, "llm/cascade/config.py")
    for key in PROMPTS:
        names.setdefault(f"PROMPT_{key.upper()}", "chatbridge/prompts.py")
    for variable in SECRET_SETTINGS:
        names.setdefault(variable, "serdabot/redact.py")
    return names


def listed() -> dict[str, str]:
    return dict(LISTED.findall(EXAMPLE.read_text(encoding="utf-8")))


def test_the_scan_finds_each_way_of_reading() -> None:
    names = read_by_the_code()
    # One of each: env_str, env_bool, a config reader, the LLM table, os.environ.get, env.get, the prompts.
    each_way = ("BOT_NAME", "DEBUG", "TWITCH_BOT_TOKEN", "LLM_TIMEOUT", "SERDABOT_ENV_FILE")
    for name in (*each_way, "SERDABOT_CONFIG", "PROMPT_ASK"):
        assert name in names, name
    assert "GET" not in names  # `_request("GET", ...)` is not a setting


def test_every_setting_the_code_reads_is_listed() -> None:
    missing = {name: where for name, where in read_by_the_code().items() if name not in listed()}
    assert not missing, f"add these to .env.example (name: a file that reads it): {missing}"


def test_it_lists_nothing_the_code_does_not_read() -> None:
    assert not set(listed()) - set(read_by_the_code())


def test_each_setting_is_commented_out_under_a_comment_of_its_own() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    assert not [line for line in lines if re.match(r"^[A-Z][A-Z0-9_]*=", line)], "every line commented out"
    for i, line in enumerate(lines):
        if LISTED.match(line):
            above = lines[i - 1]
            assert above.startswith("# ") and not LISTED.match(above), f"no comment above {line!r}"
    assert len(listed()) == len(LISTED.findall(EXAMPLE.read_text(encoding="utf-8"))), "a name listed twice"


def test_its_defaults_are_the_codes_own(local_dir: Path, tmp_path: Path) -> None:
    """Every line uncommented changes nothing: the settings, the platforms', the LLM's, the prompts."""
    uncommented = re.sub(r"^# ([A-Z][A-Z0-9_]*=)", r"\1", EXAMPLE.read_text(encoding="utf-8"), flags=re.M)
    as_env = tmp_path / "all.env"
    as_env.write_text(uncommented, encoding="utf-8")
    dump = (
        "import dataclasses; from django.conf import settings; "
        "from chatbridge.config import DiscordConfig, TwitchConfig; "
        "from chatbridge.prompts import load_prompts; from llm.cascade.config import load_config; "
        "print(sorted((k, repr(getattr(settings, k))) for k in dir(settings) if k.isupper())); "
        "print(dataclasses.asdict(TwitchConfig.from_env())); "
        "print(dataclasses.asdict(DiscordConfig.from_env())); "
        "print(dataclasses.asdict(load_config())); print(load_prompts())"
    )

    env = bot_env(local_dir)
    del env["LLM_ENDPOINT"]  # the tests' closed port would win over the example's value: not read here

    defaults = manage(env, "shell", "-c", dump)
    example = manage({**env, "SERDABOT_ENV_FILE": str(as_env)}, "shell", "-c", dump)

    assert defaults.returncode == 0, defaults.stderr
    assert example.returncode == 0, example.stderr
    assert same(example.stdout) == same(defaults.stdout)


def same(output: str) -> str:
    return re.sub(r" at 0x[0-9a-f]+", "", output)  # a function's repr differs by its address

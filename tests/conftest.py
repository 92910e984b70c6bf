"""Shared fixtures. Fakes of network peers live in tests/fakes/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm.cascade.config import load_config
from llm.cascade.service import LLMService
from llm.history.recorder import HistoryRecorder
from tests.subprocesses import bot_env, manage, migrated_copy


@pytest.fixture(autouse=True)
def english_ui(settings: Any) -> None:
    """Pages, labels and messages in English, which the tests' assertions are written in.

    French is the default (LANGUAGE_CODE = "fr"); tests/test_i18n.py overrides this fixture
    to check the French pages, and the English ones after switching.
    """
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite database, copied for each process-level test."""
    local = tmp_path_factory.mktemp("template-local")
    result = manage(bot_env(local), "migrate", "--noinput")
    assert result.returncode == 0, result.stderr
    return local


@pytest.fixture
def local_dir(migrated_template: Path, tmp_path: Path) -> Path:
    return migrated_copy(migrated_template, tmp_path / "local")


@pytest.fixture
def warm_phrases(db: None) -> None:
    """Seeded phrases loaded into memory, as the bot does at start."""
    from fallbacks import cache, services

    cache.clear()
    services.warm()


def disabled_llm() -> LLMService:
    """A real LLMService that never calls a model (LLM_MODE=disabled), recording nowhere shared."""
    return LLMService(load_config({"LLM_MODE": "disabled"}), HistoryRecorder(use_default_layer=False))


@pytest.fixture(autouse=True)
def forget_claims() -> None:
    """Tests reuse message ids and ports; on Redis a claim or a tier's state would outlive the test.

    A claimed id stays claimed for an hour, and a fake server on a port an earlier test
    used would inherit that test's shared breaker state.
    """
    from django.conf import settings

    if not settings.REDIS_URL:
        return
    import redis

    from chatbridge.claims import KEY_PREFIX
    from llm.cascade.budget import KEY_PREFIX as BUDGET_PREFIX
    from llm.cascade.shared import PREFIX as LLM_PREFIX

    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = [
        *client.scan_iter(f"{KEY_PREFIX}*"),
        *client.scan_iter(f"{LLM_PREFIX}:*"),
        *client.scan_iter(f"{BUDGET_PREFIX}:*"),
    ]
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def fresh_moderation_caches() -> Iterator[None]:
    """The channel-settings defaults and no blocked term at the start, and left so at the end."""
    from chatbridge.channel_settings import settings_cache
    from chatbridge.moderation.models import BlockedTerm
    from chatbridge.moderation.terms import blocked_terms

    settings_cache.clear()
    blocked_terms.load()
    yield
    settings_cache.clear()
    BlockedTerm.objects.all().delete()
    blocked_terms.load()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `own_processes` the tests that only start processes on a database and layer of their
    own (the `local_dir` fixture: tests/subprocesses.py bot_env drops DATABASE_URL and
    REDIS_URL), touching none in this process: they run the same whatever the environment
    says, so CI's PostgreSQL + Redis pass skips them (.ci/run)."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "local_dir" in fixtures and item.get_closest_marker("django_db") is None and "db" not in fixtures:
            item.add_marker(pytest.mark.own_processes)

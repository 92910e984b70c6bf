"""The dashboard's "OpenAI today" panel: requests, tokens and estimated cost against the limits."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from llm.dashboard import stats
from llm.models import BudgetSettings, ModelPrice, TierEvent, Usage
from tests.dashboard_history import event, staff_client
from tests.test_dashboard_views import text_of

pytestmark = pytest.mark.django_db
__all__ = ["staff_client"]


def local_midnight(now: datetime) -> datetime:
    local = timezone.localtime(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def usage(
    at: datetime, model: str, prompt: int, completion: int, *, tier: str = "openai", reported: bool = True
):
    return Usage.objects.create(
        created=at,
        tier=tier,
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        reported=reported,
    )


def todays_usage(now: datetime) -> None:
    ModelPrice.objects.update_or_create(
        model="gpt-4o-mini", defaults={"input_per_million": "0.15", "output_per_million": "0.60"}
    )
    ModelPrice.objects.update_or_create(
        model="gpt-4o", defaults={"input_per_million": "2.50", "output_per_million": "10.00"}
    )
    usage(now, "gpt-4o-mini", 150_000, 60_000)
    usage(now, "gpt-4o-mini", 50_000, 40_000, reported=False)  # 0.2 M in, 0.1 M out: $0.09
    usage(now, "gpt-4o-2024-08-06", 100_000, 10_000)  # OpenAI's dated name, gpt-4o's price: $0.35
    usage(now, "o9-preview", 1_000, 1_000)  # no price for it
    # Not today's OpenAI usage: yesterday's, and the local tier's.
    usage(local_midnight(now) - timedelta(seconds=1), "gpt-4o-mini", 9_000_000, 9_000_000)
    usage(now, "fake-model", 9_000_000, 9_000_000, tier="local")


def test_todays_usage_is_summed_per_model_with_its_price() -> None:
    now = timezone.now()
    todays_usage(now)

    today = stats.openai_today(now, env_requests=100, env_tokens=None)

    assert (today.requests, today.prompt_tokens, today.completion_tokens) == (4, 301_000, 111_000)
    assert today.estimated == 1
    assert today.cost == Decimal("0.44")
    assert today.unpriced == ["o9-preview"]
    assert [(m.model, m.requests) for m in today.models] == [
        ("gpt-4o-2024-08-06", 1),
        ("gpt-4o-mini", 2),
        ("o9-preview", 1),
    ]
    assert (today.request_limit, today.token_limit) == (100, None)


def test_the_admins_limits_win_over_the_environments() -> None:
    BudgetSettings.objects.create(daily_requests=None, daily_tokens=5_000)

    today = stats.openai_today(timezone.now(), env_requests=100, env_tokens=1_000_000)

    assert (today.request_limit, today.token_limit) == (100, 5_000)


def test_the_panel_shows_todays_requests_tokens_and_cost(
    staff_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_DAILY_TOKENS", "1000000")
    monkeypatch.delenv("OPENAI_DAILY_REQUESTS", raising=False)
    monkeypatch.delenv("SERDABOT_CONFIG", raising=False)
    BudgetSettings.objects.create(daily_requests=50)
    todays_usage(timezone.now())

    response = staff_client.get("/")

    assert response.status_code == 200
    text = text_of(response.content)
    assert "OpenAI today" in text
    assert "Requests 4 / 50" in text
    assert "Tokens 412000 / 1000000" in text
    assert "Estimated cost $0.4400" in text
    assert "No price: o9-preview" in text
    assert "301000 prompt tokens, 111000 answer tokens" in text
    assert "usage for 1 request: its tokens are estimated" in text


def test_the_panel_says_when_there_is_no_limit(staff_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_DAILY_TOKENS", "OPENAI_DAILY_REQUESTS", "SERDABOT_CONFIG"):
        monkeypatch.delenv(name, raising=False)

    text = text_of(staff_client.get("/?partial=1").content)

    assert "Requests 0 no limit" in text
    assert "Tokens 0 no limit" in text
    assert "Estimated cost $0.0000" in text
    assert "No price" not in text


def test_a_tier_over_its_budget_shows_that_state(staff_client: Client) -> None:
    event(timezone.now(), "openai", TierEvent.State.BUDGET)

    response = staff_client.get("/")

    assert response.context["tiers"][1]["state"].label == "Daily budget reached"
    assert (
        'class="state tone-grey state-budget" data-state-for="openai">Daily budget reached<'
        in response.content.decode()
    )


def test_the_migration_seeded_the_list_prices() -> None:
    prices = {p.model: (p.input_per_million, p.output_per_million) for p in ModelPrice.objects.all()}

    assert prices["gpt-4o-mini"] == (Decimal("0.15"), Decimal("0.60"))
    assert prices["gpt-4.1"] == (Decimal("2.00"), Decimal("8.00"))
    assert {"gpt-4o", "gpt-4.1-mini", "gpt-4.1-nano"} <= prices.keys()

"""OpenAI's moderation endpoint, for MODERATION=openai.

The official SDK at the configured OpenAI base URL, with no retry and one clock over
the whole call: an answer waits for this check before it goes out. Each request that
reached the server counts in the paid tier's daily budget (llm/cascade/budget.py), like
a chat completion: one request, the text's estimated tokens. A budget already spent is
a check that cannot be made.
"""

from __future__ import annotations

import asyncio
import logging

import httpx2
import openai
from openai import AsyncOpenAI

from llm.cascade.cascade import Budget
from llm.cascade.errors import ProviderError
from llm.cascade.providers import map_error
from serdabot.redact import register_secret

log = logging.getLogger("chatbridge.moderation")

MODEL = "omni-moderation-latest"
TIMEOUT = 3.0  # seconds for the whole call: past this, the answer is held (or sent, fail-open)
CONNECT_TIMEOUT = 1.0
# The request never left: nothing to count against the budget.
_NOT_SENT = frozenset({"ConnectError", "ConnectTimeout", "Budget"})
CATEGORY_LIMIT = 200  # HeldReply.term


class OpenAIModeration:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        budget: Budget | None = None,
        model: str = MODEL,
        timeout: float = TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        trust_env: bool = True,
    ) -> None:
        self.url = base_url.rstrip("/")
        self.model = model
        self.budget = budget
        self.timeout = timeout
        register_secret(api_key)  # an error body may echo it: redacted wherever it is logged
        self._client = AsyncOpenAI(
            base_url=self.url,
            api_key=api_key,
            max_retries=0,
            timeout=httpx2.Timeout(timeout, connect=min(connect_timeout, timeout)),
            default_headers={"User-Agent": "SerdaBot"},
            http_client=openai.DefaultAsyncHttpxClient(trust_env=trust_env),
        )

    def __repr__(self) -> str:
        return f"<OpenAIModeration {self.url}>"

    async def aclose(self) -> None:
        await self._client.close()

    async def flagged(self, text: str) -> tuple[str, ...]:
        """The categories OpenAI flags `text` for; () when it flags nothing.

        Raises ProviderError when the check could not be made (down, slow, refused,
        malformed reply, budget spent).
        """
        if self.budget is not None and not await self.budget.allows():
            raise ProviderError("Budget", "the OpenAI daily budget is spent")
        error: ProviderError | None = None
        try:
            # The SDK's timeouts are per read: a server dripping bytes would outlast them.
            async with asyncio.timeout(self.timeout):
                response = await self._client.moderations.create(input=text, model=self.model)
        except TimeoutError:
            error = ProviderError(
                "Timeout", f"no verdict from {self.url}/moderations in time", timed_out=True
            )
        except Exception as exc:
            error = map_error(exc, self.url, "/moderations")
        await self._spent(text, error)
        if error is not None:
            raise error
        results = getattr(response, "results", None)
        if not results:
            raise ProviderError("MalformedJSON", "a moderation reply without results")
        if not any(result.flagged for result in results):
            return ()
        categories = sorted(
            {
                name
                for result in results
                for name, on in result.categories.model_dump(by_alias=True).items()
                if on is True
            }
        )
        return tuple(categories) or ("flagged",)

    async def _spent(self, text: str, error: ProviderError | None) -> None:
        if self.budget is None or (error is not None and error.kind in _NOT_SENT):
            return
        try:
            await self.budget.record(
                model=self.model, prompt_tokens=None, completion_tokens=None, prompt_text=text
            )
        except Exception:  # counting must never cost the reply
            log.exception("recording the moderation request in the OpenAI budget failed")


def describe_categories(categories: tuple[str, ...]) -> str:
    """What HeldReply.term shows for a flagged answer."""
    return ", ".join(categories)[:CATEGORY_LIMIT]

"""The verdict on one answer before it goes out (and on a question before it goes in).

In order: links are removed unless the channel allows them, then the answer that would
be sent is held when it contains a blocked term, when it repeats the system prompt, or,
with MODERATION=openai, when OpenAI's moderation endpoint flags it or cannot say
(fail closed; MODERATION_FAIL_OPEN=1 sends it instead).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from chatbridge.moderation.leak import leaks_prompt
from chatbridge.moderation.links import strip_links
from chatbridge.moderation.models import HeldReply
from chatbridge.moderation.openai_check import OpenAIModeration, describe_categories
from chatbridge.moderation.terms import BlockedTerms, blocked_terms
from llm.cascade.cascade import Budget
from llm.cascade.config import LLMConfig, load_config
from llm.cascade.errors import ProviderError
from llm.cascade.service import LLMService
from serdabot.outage import Outage

log = logging.getLogger("chatbridge.moderation")

Reason = HeldReply.Reason


@dataclass(frozen=True)
class Verdict:
    held: bool
    reason: str  # a HeldReply.Reason value, "" when not held
    term: str  # the blocked term, the moderation categories, or why the check failed
    text: str  # the answer as it may be sent: without links unless the channel allows them


class Moderator:
    def __init__(
        self,
        *,
        terms: BlockedTerms | None = None,
        remote: OpenAIModeration | None = None,
        fail_open: bool = False,
    ) -> None:
        self.terms = blocked_terms if terms is None else terms
        self.remote = remote
        self.fail_open = fail_open
        self.outage = Outage("OpenAI moderation", remote.url if remote else "-", log)

    @classmethod
    def from_settings(cls, llm: LLMService | None = None) -> Moderator:
        """From MODERATION and MODERATION_FAIL_OPEN, with the LLM service's OpenAI settings and
        daily budget, so moderation requests and chat count against the same day."""
        if llm is None:
            return cls.from_config(load_config())
        return cls.from_config(llm.config, llm.budget)

    @classmethod
    def from_config(cls, config: LLMConfig, budget: Budget | None = None) -> Moderator:
        """Blocked terms always; OpenAI too with MODERATION=openai and a key."""
        mode = settings.MODERATION
        fail_open = settings.MODERATION_FAIL_OPEN
        if mode not in ("", "openai"):
            log.warning("MODERATION=%s is not a known moderation (openai): blocked terms only", mode)
            return cls(fail_open=fail_open)
        if mode != "openai":
            return cls(fail_open=fail_open)
        if not config.openai_enabled:
            log.warning(
                "MODERATION=openai needs OPENAI_API_KEY: answers are checked against blocked terms only"
            )
            return cls(fail_open=fail_open)
        remote = OpenAIModeration(
            base_url=config.openai_base_url, api_key=config.openai_api_key, budget=budget
        )
        log.info(
            "moderation: blocked terms and OpenAI (%s), %s",
            remote.model,
            "sent unchecked when OpenAI cannot say" if fail_open else "held when OpenAI cannot say",
        )
        return cls(remote=remote, fail_open=fail_open)

    async def aclose(self) -> None:
        if self.remote is not None:
            await self.remote.aclose()

    async def check_answer(
        self, *, platform: str, channel: str, answer: str, system_prompt: str, allow_links: bool
    ) -> Verdict:
        text = answer if allow_links else strip_links(answer)
        term = self.terms.match(platform, channel, text)
        if term is not None:
            return Verdict(True, Reason.BLOCKED_TERM.value, term, text)
        if system_prompt and leaks_prompt(text, system_prompt):
            return Verdict(True, Reason.PROMPT_LEAK.value, "", text)
        if self.remote is not None and text.strip():
            try:
                categories = await self.remote.flagged(text)
            except ProviderError as exc:
                self.outage.failed(exc)  # one line per outage, however many answers it holds
                if self.fail_open:
                    return Verdict(False, "", "", text)
                return Verdict(True, Reason.MODERATION_UNAVAILABLE.value, exc.kind, text)
            self.outage.recovered()
            if categories:
                return Verdict(True, Reason.MODERATION.value, describe_categories(categories), text)
        return Verdict(False, "", "", text)

    def check_question(self, platform: str, channel: str, question: str) -> str | None:
        """The blocked term (one checked against questions too) the question contains, or None."""
        return self.terms.match_question(platform, channel, question)

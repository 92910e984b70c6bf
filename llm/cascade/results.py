"""Plain results the llm app hands to the rest of the project."""

from __future__ import annotations

from dataclasses import dataclass, field

ASK = "ask"
ASK_TIMEOUT = "ask_timeout"
ASK_ERROR = "ask_error"


@dataclass(frozen=True, slots=True)
class CascadeResult:
    """What the cascade produced for one message.

    `text` is None when no tier answered; the caller then picks a fallback phrase.
    `attempted` is False when no tier was even tried (all known down, not configured,
    or LLM_MODE=disabled): the caller answers with the intent's own phrases at once.
    """

    text: str | None
    source: str  # "local", "openai" or "fallback"
    latency_ms: float
    errors: dict[str, str] = field(default_factory=dict)  # tier -> error class
    timed_out: bool = False
    attempted: bool = False
    # Time to the first streamed token of the answer (None when no model answered).
    first_token_ms: float | None = None
    # Every tier tried or skipped for this message, in cascade order.
    tiers: tuple[TierAttempt, ...] = ()

    def fallback_intent(self, intent: str) -> str | None:
        """The phrase set that answers when no model did (None when one did).

        Only a question (`ask`) gets the "I tried and failed" sets; a mention or a custom
        command keeps its own phrases whatever went wrong ("salut" never gets "j'ai
        réfléchi trop longtemps").
        """
        if self.text:
            return None
        if intent == ASK and self.attempted:
            return ASK_TIMEOUT if self.timed_out else ASK_ERROR
        return intent


@dataclass(frozen=True, slots=True)
class TierAttempt:
    """What one tier did for one message."""

    tier: str
    # "answered", "failed" (a request went out and failed), "timeout" (cut by a clock),
    # "skipped" (known down, cooling, over budget or saturated: no request went out)
    outcome: str
    error: str = ""
    latency_ms: float | None = None
    first_token_ms: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "tier": self.tier,
            "outcome": self.outcome,
            "error": self.error,
            "ms": self.latency_ms,
            "first_token_ms": self.first_token_ms,
        }


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One health check of one tier."""

    tier: str
    url: str
    ok: bool
    latency_ms: float | None
    models: tuple[str, ...] = ()
    error: str = ""  # error class, e.g. "ConnectError", "ReadTimeout", "HTTP503"
    detail: str = ""  # human-readable message (never a secret)
    kind: str = "models"  # "boot", "models" or "completion"
    # For the tier's breaker: a failure retrying will not fix, and a 429's Retry-After.
    opens_at_once: bool = False
    retry_after: float | None = None

"""Plain results the llm app hands to the rest of the project."""

from __future__ import annotations

from dataclasses import dataclass, field


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

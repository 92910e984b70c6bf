"""Why a tier could not answer, named by class so history and logs can group them.

Transport errors keep httpx's class name (`ConnectError`, `ReadTimeout`,
`RemoteProtocolError`); HTTP and content errors get a short name of their own
(`HTTP503`, `RateLimited`, `ModelNotFound`, `MalformedJSON`, `EmptyChoices`, `EmptyAnswer`).
The cascade adds `BreakerOpen`, `Cooling`, `Warming`, `Budget`, `Stuck` (a call in flight looks stuck:
skipped rather than queued behind), `Saturated` and `Deadline` for tiers it skipped or cut.
"""

from __future__ import annotations

from serdabot.redact import redact


class ProviderError(Exception):
    """A tier failed one request. `kind` is the error class recorded in the history."""

    def __init__(
        self,
        kind: str,
        detail: str = "",
        *,
        timed_out: bool = False,
        opens_at_once: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{kind}: {redact(detail)[:300]}" if detail else kind)
        self.kind = kind
        # Some proxies echo the API key in their error bodies: it never leaves this object.
        self.detail = redact(detail)[:300]
        self.timed_out = timed_out
        # Failures that retrying will not fix (nothing listening, unknown model, bad key).
        self.opens_at_once = opens_at_once
        self.retry_after = retry_after

    @property
    def rate_limited(self) -> bool:
        return self.kind == "RateLimited"


class InvalidAnswer(ProviderError):
    """The tier answered, but with nothing usable for chat."""

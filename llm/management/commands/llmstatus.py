"""`python manage.py llmstatus [--json]`: probe every configured LLM tier now and say what answered."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from llm.cascade.results import ProbeResult
from llm.cascade.service import LLMService
from serdabot.process import set_role
from serdabot.redact import redact, register_config_secrets


class Command(BaseCommand):
    help = "Probe every configured LLM tier now (URL, models listed, latency or the error) and record it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        # A check by hand, like `chat`: its probes and state changes are console history, and
        # its breakers its own, so it never closes or opens the running bot's incidents.
        set_role("console")
        service = LLMService.from_settings()
        results = asyncio.run(self.probe(service))
        report = status_report(service, results)
        if options["json"]:
            self.stdout.write(json.dumps(report, ensure_ascii=False))
            return
        for line in render(report):
            self.stdout.write(line)

    @staticmethod
    async def probe(service: LLMService) -> list[ProbeResult]:
        try:
            return await service.probe_all()
        finally:
            await service.stop()  # closes the HTTP clients and writes the probes


def status_report(service: LLMService, results: list[ProbeResult]) -> dict[str, Any]:
    # Only the fields below are printed: the config (and its API keys) never is, and an
    # error body that echoes a key (some proxies do) is redacted.
    config = service.config
    register_config_secrets(config)
    tiers: list[dict[str, Any]] = [
        {
            "tier": r.tier,
            "url": redact(r.url),
            "kind": r.kind,
            "ok": r.ok,
            "latency_ms": r.latency_ms,
            "models": list(r.models),
            "error": redact(r.error),
            "detail": redact(r.detail),
        }
        for r in results
    ]
    if service.openai is None:
        tiers.append({"tier": "openai", "ok": False, "error": "NotConfigured", "detail": "no OPENAI_API_KEY"})
    return {
        "mode": config.mode,
        "probe": config.probe_kind,
        "fallback_mode": config.fallback_mode,
        "tiers": tiers,
    }


def render(report: dict[str, Any]) -> list[str]:
    lines = [f"LLM_MODE={report['mode']}  probe={report['probe']}  fallback={report['fallback_mode']}"]
    for tier in report["tiers"]:
        if tier["error"] == "NotConfigured":
            lines.append(f"{tier['tier']:<7} not configured ({tier['detail']})")
        elif tier["ok"]:
            models = ", ".join(tier["models"][:10]) or "-"
            lines.append(
                f"{tier['tier']:<7} OK    {tier['url']}  {tier['latency_ms']:.0f} ms  models: {models}"
            )
        else:
            latency = f"{tier['latency_ms']:.0f} ms" if tier["latency_ms"] is not None else "-"
            detail = tier["detail"] or "no detail"
            lines.append(f"{tier['tier']:<7} DOWN  {tier['url']}  {latency}  {tier['error']}: {detail}")
    if report["mode"] == "disabled":
        lines.append("LLM_MODE=disabled: the bot calls none of these, it answers with fallback phrases only.")
    return lines

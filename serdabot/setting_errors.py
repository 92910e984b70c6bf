"""A page instead of a server error when a setting is wrong.

`runbot` refuses to start on a bad setting, but a web process serving alone (or a value
read only when a page asks for it, such as the Twitch settings) meets it on a request.
The message names the setting and the fix, never a secret's value (serdabot/env.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from serdabot.env import SettingError

log = logging.getLogger("serdabot.settings")


class SettingErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, SettingError):
            return None
        log.error("Configuration error on %s: %s", request.path, exception)
        return render(request, "serdabot/setting_error.html", {"problem": str(exception)}, status=503)

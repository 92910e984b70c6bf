"""The login throttle (django-axes): its authentication backend and its lockout page."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


class LoginThrottleBackend(AxesStandaloneBackend):
    """Refuses a locked-out login; leaves logins without a request to the next backend.

    Throttling counts failures per client, so it needs the request. Every web login (the
    admin's form, which the dashboard uses) passes it. A login without one (Django's test
    `Client.login()`, a shell) has no client to count against; axes would refuse it outright.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> AbstractBaseUser | None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def lockout_response(request: HttpRequest, *args: object) -> HttpResponse:
    """The page a locked-out login gets (AXES_LOCKOUT_CALLABLE), with the lock's length in minutes.

    django-axes passes the response it replaces and the credentials, in an order that differs
    between its sync and async paths: neither is needed here.
    """
    cool_off = get_cool_off(request)
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        # None: locked until an administrator resets it (no AXES_COOLOFF_TIME).
        "minutes": max(1, round(cool_off.total_seconds() / 60)) if cool_off else None,
    }
    return render(request, "registration/login_locked.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)

"""The "Connect with Twitch" pages: the application's credentials, the OAuth
authorization-code flow for the bot account and for a broadcaster's channel, and the
channel list.

The flow: a button POSTs to `authorize`, which keeps a random state in the session
and sends the browser to Twitch; Twitch sends it back to `callback` with a code. The
state is single use, so a forged or replayed callback is refused.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.request import split_domain_port
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from chatbridge.config import TwitchConfig
from chatbridge.models import ChannelSettings, Platform, TwitchApp
from chatbridge.setup import twitch_accounts, twitch_oauth
from chatbridge.setup.twitch_accounts import CHANGED, MissingScopes
from chatbridge.setup.twitch_forms import ChannelAddForm, TwitchAppForm
from chatbridge.setup.twitch_oauth import TwitchError
from chatbridge.stored_config import twitch_config
from serdabot.broadcast import notify_changed
from serdabot.encryption import Unreadable

log = logging.getLogger("chatbridge.setup")

# What each button asks Twitch for.
PURPOSES = {"bot": twitch_accounts.BOT_SCOPES, "channel": twitch_accounts.CHANNEL_SCOPES}
STATES = "twitch_oauth_states"  # session key: {state: purpose}
# Flows started and not finished (another tab, a back button): the oldest are forgotten.
KEPT_STATES = 5


@staff_member_required
def connect(request: HttpRequest) -> HttpResponse:
    return _page(request, _app_form(), ChannelAddForm())


def _page(
    request: HttpRequest, app_form: TwitchAppForm, channel_form: ChannelAddForm, status: int = 200
) -> HttpResponse:
    env = TwitchConfig.from_env()
    config = twitch_config()
    app = TwitchApp.objects.filter(pk=1).first() or TwitchApp()
    if env.client_secret:
        secret = "environment"
    elif isinstance(app.client_secret, Unreadable):
        secret = "unreadable"
    else:
        secret = "set" if app.client_secret else "not_set"
    status_of_bot = twitch_accounts.bot_status(config)
    context: dict[str, Any] = {
        "app_form": app_form,
        "channel_form": channel_form,
        "env_client_id": bool(env.client_id),
        "env_client_secret": bool(env.client_secret),
        "env_bot_id": env.bot_id,
        "client_id": config.client_id,
        "secret": secret,
        "can_authorize": bool(config.client_id and config.client_secret),
        "redirect_url": _redirect_uri(request),
        "redirect_warning": _localhost_instead(request),
        "bot": status_of_bot,
        "bot_state": status_of_bot.state.value,
        # TWITCH_BOT_ID wins over the account connected here: say so when they differ.
        "bot_overridden": bool(env.bot_id and app.bot_id and env.bot_id != app.bot_id),
        "channels": ChannelSettings.objects.filter(platform=Platform.TWITCH).order_by("channel"),
    }
    return render(request, "chatbridge/setup/twitch_connect.html", context, status=status)


@staff_member_required
@require_POST
def save_app(request: HttpRequest) -> HttpResponse:
    env = TwitchConfig.from_env()
    form = TwitchAppForm(
        request.POST, env_client_id=bool(env.client_id), env_client_secret=bool(env.client_secret)
    )
    if not form.is_valid():
        return _page(request, form, ChannelAddForm(), status=400)
    app = TwitchApp.load()
    changed = []
    if "client_id" in form.fields and form.cleaned_data["client_id"] != app.client_id:
        app.client_id = form.cleaned_data["client_id"]
        changed.append("client_id")
    if "client_secret" in form.fields and form.cleaned_data["client_secret"]:
        app.client_secret = form.cleaned_data["client_secret"]
        changed.append("client_secret")
    if changed:
        app.save(update_fields=[*changed, "updated"])
        notify_changed(CHANGED)
        messages.success(request, _("The Twitch application is saved."))
    else:
        messages.info(request, _("Nothing changed."))
    return redirect("twitch-connect")


@staff_member_required
@require_POST
def authorize(request: HttpRequest, purpose: str) -> HttpResponse:
    if purpose not in PURPOSES:
        raise Http404
    config = twitch_config()
    if not (config.client_id and config.client_secret):
        messages.error(request, _("Enter the application's client ID and secret first."))
        return redirect("twitch-connect")
    state = secrets.token_urlsafe(32)
    states: dict[str, str] = dict(request.session.get(STATES, {}))
    states[state] = purpose
    request.session[STATES] = dict(list(states.items())[-KEPT_STATES:])
    url = twitch_oauth.authorize_url(
        config, redirect_uri=_redirect_uri(request), scopes=PURPOSES[purpose], state=state
    )
    return HttpResponseRedirect(url)


@staff_member_required
def callback(request: HttpRequest) -> HttpResponse:
    states: dict[str, str] = dict(request.session.get(STATES, {}))
    # Popped on first use: a replayed or forged state finds nothing.
    purpose = states.pop(request.GET.get("state", ""), None)
    request.session[STATES] = states
    if purpose not in PURPOSES:
        return _refused(
            request,
            _(
                "This authorization answer does not match a connection started from this page, or it "
                "was already used. Start again from the connect page."
            ),
        )
    error = request.GET.get("error", "")
    if error == "access_denied":
        messages.warning(request, _("Authorization was declined on Twitch: nothing changed."))
        return redirect("twitch-connect")
    if error:
        messages.error(
            request,
            _("Twitch answered with an error: %(error)s.")
            % {"error": request.GET.get("error_description", error)[:200]},
        )
        return redirect("twitch-connect")
    code = request.GET.get("code", "")
    if not code:
        return _refused(request, _("Twitch's answer had no authorization code. Start again."))
    config = twitch_config()
    try:
        grant = twitch_oauth.exchange_code(config, code, _redirect_uri(request))
        identity = twitch_oauth.validate(config, grant.access_token)
        if purpose == "bot":
            twitch_accounts.connect_bot(grant, identity)
            messages.success(request, _("Bot account connected: %(login)s.") % {"login": identity.login})
        else:
            twitch_accounts.authorize_channel(identity)
            messages.success(
                request,
                _("Channel %(login)s authorized: the bot joins it and may post there.")
                % {"login": identity.login},
            )
    except (TwitchError, MissingScopes) as exc:
        # The message is page text, in the viewer's language: the log names the kind only.
        log.warning("Twitch authorization (%s) failed: %s", purpose, type(exc).__name__)
        messages.error(request, str(exc))
    return redirect("twitch-connect")


@staff_member_required
@require_POST
def add_channel(request: HttpRequest) -> HttpResponse:
    form = ChannelAddForm(request.POST)
    if not form.is_valid():
        return _page(request, _app_form(), form, status=400)
    try:
        broadcaster_id, login = twitch_accounts.lookup_channel(twitch_config(), form.cleaned_data["login"])
    except TwitchError as exc:
        form.add_error("login", str(exc))
        return _page(request, _app_form(), form, status=400)
    twitch_accounts.add_channel(broadcaster_id, login)
    messages.success(request, _("Channel %(login)s added.") % {"login": login})
    return redirect("twitch-connect")


@staff_member_required
@require_POST
def set_joined(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(ChannelSettings, pk=pk, platform=Platform.TWITCH)
    row.joined = request.POST.get("joined") == "1"
    row.save(update_fields=["joined", "updated"])
    notify_changed(CHANGED)
    if row.joined:
        messages.success(request, _("Channel %(login)s resumed.") % {"login": row.channel})
    else:
        messages.success(request, _("Channel %(login)s paused.") % {"login": row.channel})
    return redirect("twitch-connect")


@staff_member_required
@require_POST
def remove_channel(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(ChannelSettings, pk=pk, platform=Platform.TWITCH)
    row.delete()
    notify_changed(CHANGED)
    messages.success(request, _("Channel %(login)s removed.") % {"login": row.channel})
    return redirect("twitch-connect")


def _app_form() -> TwitchAppForm:
    env = TwitchConfig.from_env()
    return TwitchAppForm(env_client_id=bool(env.client_id), env_client_secret=bool(env.client_secret))


def _localhost_instead(request: HttpRequest) -> str:
    """This page at localhost, when it is open over http at another name (127.0.0.1, a LAN
    address): Twitch refuses an http redirect URL anywhere but localhost. "" otherwise."""
    domain, port = split_domain_port(request.get_host())
    if request.is_secure() or domain == "localhost":
        return ""
    return f"http://localhost{':' + port if port else ''}{reverse('twitch-connect')}"


def _redirect_uri(request: HttpRequest) -> str:
    # The same string in the authorize request, the token request and Twitch's console.
    return request.build_absolute_uri(reverse("twitch-callback"))


def _refused(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "chatbridge/setup/twitch_error.html", {"message": message}, status=400)

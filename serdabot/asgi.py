"""ASGI entry point: Django for HTTP, channels consumers for websockets."""

from __future__ import annotations

import os
import sys

from django.core.asgi import get_asgi_application

from serdabot.env import SettingError
from serdabot.env_file import load_env_file
from serdabot.process import set_default_role

set_default_role("web")  # runbot, serving this application too, has set its own
# Django must be set up before the routing modules import models.
try:
    # `.env` first, as manage.py does: uvicorn imports this module without it.
    load_env_file()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "serdabot.settings")
    django_asgi_app = get_asgi_application()
except SettingError as exc:
    # uvicorn imports this module: one line naming the setting, as manage.py prints, no traceback.
    print(f"Configuration error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from serdabot.origins import OriginValidator  # noqa: E402
from serdabot.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Scheme, host and port of the Origin checked (serdabot/origins.py), then the session.
        "websocket": OriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

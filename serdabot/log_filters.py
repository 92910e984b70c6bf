"""Log filters that keep out lines which would mislead or repeat (see LOGGING in settings.py)."""

from __future__ import annotations

import logging

# uvicorn's access line: client, method, path, HTTP version, status.
ACCESS_ARGS = 5
NOT_FOUND = 404


class TwitchioStarletteHint(logging.Filter):
    """Drops twitchio's warning, at every client start, that its Starlette adapter needs
    `pip install twitchio[starlette]`. The bot reads chat over the EventSub websocket and
    needs no web adapter: the hint only sends streamers to install something for nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "twitchio[starlette]" not in record.getMessage()


class AccessNotFound(logging.Filter):
    """Drops uvicorn's access line for a 404: every 404 the application answers goes through
    Django, whose django.request logger has said it once already ("Not Found: /path")."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, tuple) and len(args) == ACCESS_ARGS and args[-1] == NOT_FOUND)

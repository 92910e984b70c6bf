"""The admin, web chat and dashboard served from inside `runbot`'s event loop."""

from __future__ import annotations

import contextlib
from collections.abc import Generator

import uvicorn


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # runbot owns SIGINT/SIGTERM and stops every part itself, the web server included.
        yield


class WebServer:
    def __init__(self, host: str, port: int) -> None:
        config = uvicorn.Config(
            "serdabot.asgi:application",
            host=host,
            port=port,
            lifespan="off",
            log_level="warning",
            ws="websockets-sansio",
        )
        self.server = _Server(config)
        self.url = f"http://{host}:{port}/"

    async def serve(self) -> None:
        await self.server.serve()

    def stop(self) -> None:
        self.server.should_exit = True

"""WhiteNoise's static files, streamed the way the server calling Django needs.

WhiteNoise answers with a FileResponse, a synchronous iterator. Under ASGI (runbot's web
server, uvicorn) Django then warns ("StreamingHttpResponse must consume synchronous
iterators...") and reads the whole file into memory in a thread before sending a byte.
Here an ASGI request gets the same file read chunk by chunk in a thread instead; a WSGI
request (the test client) keeps WhiteNoise's response as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import IO, Any

from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, HttpRequest
from whitenoise.middleware import WhiteNoiseMiddleware


async def chunks(file: IO[bytes] | None, size: int) -> AsyncIterator[bytes]:
    if file is None:
        return  # a 304 or a HEAD: headers only
    while chunk := await asyncio.to_thread(file.read, size):
        yield chunk


class AsgiWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    @staticmethod
    def serve(static_file: Any, request: HttpRequest) -> FileResponse:
        response: FileResponse = WhiteNoiseMiddleware.serve(static_file, request)
        if isinstance(request, ASGIRequest):
            # The file stays in the response's closers: Django closes it once sent.
            response.streaming_content = chunks(response.file_to_stream, response.block_size)
        return response

"""Lines typed at the terminal (or piped in), read without holding up the event loop or the exit.

`asyncio.to_thread(sys.stdin.readline)` kept a pool thread blocked in the read: on Ctrl-C,
`asyncio.run` waited for it to finish, so the console hung until Enter was pressed. Here one
daemon thread reads, and the process may end while it waits. It reads the raw stream, not
`sys.stdin` itself: a daemon thread still holding sys.stdin's lock at exit makes the
interpreter abort ("could not acquire lock for <stdin> at interpreter shutdown").
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import sys
import threading
from typing import BinaryIO, TextIO

CHUNK = 4096


class TerminalLines:
    """`await lines.get()`: the next line without its line break; None once the input has ended."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdin
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.thread = threading.Thread(target=self._read, name="terminal-lines", daemon=True)
        self.thread.start()

    async def get(self) -> str | None:
        line = await self.queue.get()
        if line is None:
            self.queue.put_nowait(None)  # every later call sees the end too
        return line

    def _read(self) -> None:
        try:
            raw = self._raw()
            if raw is None:
                for line in self.stream:
                    self._put(line.rstrip("\r\n"))
            else:
                self._read_raw(raw)
        except (OSError, ValueError):
            pass  # the input was closed under us: the same as its end
        finally:
            self._put(None)

    def _raw(self) -> BinaryIO | None:
        """The stream under sys.stdin's buffer (a file, or the Windows console, UTF-8), if any."""
        buffer = getattr(self.stream, "buffer", None)
        raw = getattr(buffer, "raw", None)
        return raw if raw is not None and hasattr(raw, "read") else None

    def _read_raw(self, raw: BinaryIO) -> None:
        decoder = codecs.getincrementaldecoder(self.stream.encoding or "utf-8")(errors="replace")
        pending = ""
        while True:
            # One read call: a terminal returns each line as it is typed, a pipe what it holds.
            chunk = raw.read(CHUNK)
            if not chunk:
                break
            pending += decoder.decode(chunk)
            *lines, pending = pending.split("\n")
            for line in lines:
                self._put(line.rstrip("\r"))
        pending += decoder.decode(b"", final=True)
        if pending:
            self._put(pending.rstrip("\r"))

    def _put(self, line: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody reads any more
            self.loop.call_soon_threadsafe(self.queue.put_nowait, line)

"""Lines read from a real pipe by the console's reader thread."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import TextIO

import pytest

from chatbridge.terminal import TerminalLines


@pytest.fixture
def pipe() -> Iterator[tuple[TextIO, int]]:
    """A text stream to read (as sys.stdin is) and the descriptor that writes to it."""
    read_end, write_end = os.pipe()
    with open(read_end, encoding="utf-8") as stream:
        yield stream, write_end


async def test_it_gives_each_line_as_written_then_the_end(pipe: tuple[TextIO, int]) -> None:
    stream, write_end = pipe
    lines = TerminalLines(stream)
    # A line cut inside "é" (two bytes in UTF-8), Windows line ends, an empty line, and a
    # last line with no line break.
    for chunk in (b"bonjour\n!ask caf\xc3", b"\xa9 ?\r\n\nsans fin"):
        os.write(write_end, chunk)
        await asyncio.sleep(0.05)
    os.close(write_end)

    got = [await asyncio.wait_for(lines.get(), 10) for _ in range(5)]

    assert got == ["bonjour", "!ask café ?", "", "sans fin", None]
    assert await lines.get() is None  # the end, however often it is asked


async def test_waiting_for_a_line_can_be_cancelled(pipe: tuple[TextIO, int]) -> None:
    stream, write_end = pipe
    lines = TerminalLines(stream)
    waiting = asyncio.create_task(lines.get())
    await asyncio.sleep(0.05)

    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)

    assert waiting.cancelled()
    assert lines.thread.daemon  # still blocked in its read: it must not keep the process alive
    os.write(write_end, b"later\n")
    assert await asyncio.wait_for(lines.get(), 10) == "later"
    os.close(write_end)

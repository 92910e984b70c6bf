"""Does an answer repeat the system prompt? (A viewer asked the model to recite its rules.)

Both texts are compared lowercased with whitespace runs as single spaces. Any common run
of `run` characters or more counts. Rather than every window of the prompt, only its
chunks of `(run + 1) // 2` characters that start at multiples of that size are looked
for in the answer: a common run of `run` characters always covers one of them whole.
Each place a chunk is found is then extended both ways to measure the run.
"""

from __future__ import annotations

from functools import lru_cache

DEFAULT_RUN = 30


def _flat(text: str) -> str:
    return " ".join(text.lower().split())


def leaks_prompt(answer: str, system_prompt: str, run: int = DEFAULT_RUN) -> bool:
    """True when `answer` holds `run` or more consecutive characters of `system_prompt`."""
    run = max(run, 1)
    said = _flat(answer)
    if len(said) < run:
        return False
    prompt, chunks = _chunks(system_prompt, (run + 1) // 2)
    size = (run + 1) // 2  # a run of `run` characters covers an aligned chunk of this size
    for chunk, start in chunks:
        # str.find scans in C: one pass over the answer per chunk, no slicing per position.
        i = said.find(chunk)
        while i != -1:
            if _common_length(said, i, prompt, start, size) >= run:
                return True
            i = said.find(chunk, i + 1)
    return False


@lru_cache(maxsize=64)
def _chunks(system_prompt: str, size: int) -> tuple[str, tuple[tuple[str, int], ...]]:
    """The flattened prompt and its chunks of `size` characters at multiples of `size`
    (a channel has a few prompts: each is cut once, not per answer)."""
    prompt = _flat(system_prompt)
    return prompt, tuple(
        (prompt[start : start + size], start) for start in range(0, len(prompt) - size + 1, size)
    )


def _common_length(said: str, i: int, prompt: str, start: int, size: int) -> int:
    """Length of the common run through said[i:i+size] == prompt[start:start+size]."""
    before = 0
    while i - before > 0 and start - before > 0 and said[i - before - 1] == prompt[start - before - 1]:
        before += 1
    after = 0
    end_said, end_prompt = i + size, start + size
    while (
        end_said + after < len(said)
        and end_prompt + after < len(prompt)
        and said[end_said + after] == prompt[end_prompt + after]
    ):
        after += 1
    return before + size + after

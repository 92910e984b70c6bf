"""Keys seen lately, bounded by count and by age: the one memory behind the adapters' taken
message ids, the Discord adapter's seen channels and the local claims."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable


class Recent:
    """An LRU of keys that forgets a key `keep_for` seconds after it was noted.

    `renew`: a key noted again starts its age over (an idle expiry); otherwise its age
    counts from the first time it was noted.
    """

    def __init__(self, clock: Callable[[], float], *, keep_for: float, at_most: int, renew: bool) -> None:
        self.clock = clock
        self.keep_for = keep_for
        self.at_most = at_most
        self.renew = renew
        self._noted: OrderedDict[str, float] = OrderedDict()  # key -> when noted, oldest first

    def __len__(self) -> int:
        return len(self._noted)

    def note(self, key: str) -> bool:
        """Remember `key`; whether it was remembered already."""
        now = self.clock()
        # Kept in noted order: the expired ones are all at the front.
        while self._noted and next(iter(self._noted.values())) + self.keep_for <= now:
            self._noted.popitem(last=False)
        known = key in self._noted
        if known and not self.renew:
            return True
        self._noted[key] = now
        self._noted.move_to_end(key)
        while len(self._noted) > self.at_most:
            self._noted.popitem(last=False)
        return known

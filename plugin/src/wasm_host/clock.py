"""The host's clock: what `proxy_get_current_time_nanoseconds` and WASI `clock_time_get` read.

Envoy answers both from its dispatcher's time source; tests inject a ManualClock to drive time.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def realtime_ns(self) -> int:
        """Nanoseconds since the Unix epoch (wall clock)."""
        ...

    def monotonic_ns(self) -> int:
        """Nanoseconds on a clock that never goes back."""
        ...


class SystemClock:
    def realtime_ns(self) -> int:
        return time.time_ns()

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()


class ManualClock:
    """A clock that moves only when told to; wall and monotonic time move together."""

    def __init__(self, start_ns: int = 1_700_000_000_000_000_000) -> None:
        self._start_ns = start_ns
        self._elapsed_ns = 0

    def advance(self, *, ms: float = 0, ns: int = 0) -> None:
        step_ns = ns + round(ms * 1_000_000)
        if step_ns < 0:
            raise ValueError("a clock does not go back")
        self._elapsed_ns += step_ns

    def realtime_ns(self) -> int:
        return self._start_ns + self._elapsed_ns

    def monotonic_ns(self) -> int:
        return 1_000_000_000 + self._elapsed_ns

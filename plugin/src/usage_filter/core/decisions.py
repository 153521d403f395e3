"""What the per-stream state machine tells the host binding to do after each event.

These are plain values; the binding (or any host) turns them into ABI calls:

- `HeadersDecision`: header edits on the current header map, then StopIteration when `pause`
  (the headers are held until a later body decision continues), else Continue.
- `BodyDecision`: when `pause`, return StopIterationAndBuffer and let the host keep buffering
  (the next callback's buffer holds everything since the last Continue). Otherwise, when `body`
  is not None, replace the host's whole current body buffer (everything since the last Continue)
  with `body`; apply the header edits to the held headers of the same direction; Continue.
- `error`: one line for the binding to log at error level (the stream has gone pass-through).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HeadersDecision", "BodyDecision", "CONTINUE_HEADERS", "CONTINUE_BODY"]


@dataclass(frozen=True, slots=True)
class HeadersDecision:
    set_headers: tuple[tuple[str, str], ...] = ()  # replace (or add) these, lower-case names
    remove_headers: tuple[str, ...] = ()  # lower-case names
    pause: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class BodyDecision:
    body: bytes | None = None  # replacement for everything buffered since the last Continue
    pause: bool = False
    set_headers: tuple[tuple[str, str], ...] = ()
    remove_headers: tuple[str, ...] = ()
    error: str | None = None


CONTINUE_HEADERS = HeadersDecision()
CONTINUE_BODY = BodyDecision()

"""Incremental Server-Sent Events framer: response body chunks in, complete raw events out.

It never changes a byte: every byte fed in comes out exactly once, in order, as part of some
piece. A piece is either a complete event (its lines up to and including the blank line that
ends it) or raw pass-through bytes (a line feed that completes a CR seen in the previous chunk,
an oversized event being flushed, or what remains at end of stream).

Line endings follow the WHATWG rules: CRLF, LF or a lone CR each end a line. A CR at the very
end of a chunk ends its line at once; when the next chunk starts with LF, that LF belongs to
the same line ending (`_pending_cr`).

Held bytes (an incomplete trailing event) never exceed `max_event_bytes`. Past the cap the held
bytes are flushed as pass-through and the framer is in RESYNC: it forwards bytes as they come
until the blank line that ends the oversized event, then frames normally again.
"""

from __future__ import annotations

__all__ = ["SseFramer", "Piece"]

# (is_event, raw bytes)
Piece = tuple[bool, bytes]

_FRAME, _RESYNC = 0, 1


class SseFramer:
    __slots__ = (
        "max_event_bytes",
        "_held",
        "_scan",
        "_line_start",
        "_pending_cr",
        "_state",
    )

    def __init__(self, max_event_bytes: int) -> None:
        self.max_event_bytes = max_event_bytes
        self._held = b""  # bytes of the current, incomplete event (or RESYNC line)
        self._scan = 0  # offset in _held up to which line endings are known
        self._line_start = 0  # offset in _held where the current line starts
        self._pending_cr = False  # the last byte seen was a CR ending a line
        self._state = _FRAME

    @property
    def held(self) -> bytes:
        """The incomplete trailing event held back (at most max_event_bytes)."""
        return self._held

    @property
    def resyncing(self) -> bool:
        return self._state == _RESYNC

    def feed(self, chunk: bytes) -> list[Piece]:
        """Split what is complete; hold the incomplete trailing event."""
        pieces: list[Piece] = []
        if not chunk:
            return pieces
        if self._pending_cr and not self._held and chunk[:1] == b"\n":
            # The LF of a CRLF whose CR ended the previous piece: pass it on at once.
            pieces.append((False, b"\n"))
            chunk = chunk[1:]
            self._pending_cr = False
            if not chunk:
                return pieces
        buf = self._held + chunk if self._held else chunk
        start = 0  # start of the current event within buf
        i = self._scan
        line_start = self._line_start
        pending_cr = self._pending_cr
        n = len(buf)
        find = buf.find
        while i < n:
            if pending_cr:
                pending_cr = False
                if buf[i] == 0x0A:  # LF completing a CRLF
                    i += 1
                    line_start = i
                    continue
            lf = find(b"\n", i)
            cr = find(b"\r", i, lf if lf >= 0 else n)
            if cr >= 0:
                end = cr
                if cr + 1 < n:
                    nxt = cr + 2 if buf[cr + 1] == 0x0A else cr + 1
                else:
                    nxt = cr + 1
                    pending_cr = True
            elif lf >= 0:
                end = lf
                nxt = lf + 1
            else:
                i = n
                break
            blank = end == line_start
            i = line_start = nxt
            if self._state == _RESYNC:
                if blank:
                    pieces.append((False, buf[start:i]))
                    start = i
                    self._state = _FRAME
                continue
            if blank:
                pieces.append((True, buf[start:i]))
                start = i
        rest = buf[start:] if start else buf
        self._pending_cr = pending_cr
        if self._state == _RESYNC:
            # Forward everything now; remember only whether the current line is empty so far
            # (_line_start 0: a line ending at offset 0 of the next chunk is a blank line;
            # -1: the current line already has bytes).
            if rest:
                pieces.append((False, rest))
            self._held = b""
            self._scan = 0
            self._line_start = 0 if line_start >= n else -1
            return pieces
        if len(rest) > self.max_event_bytes:
            pieces.append((False, rest))
            self._state = _RESYNC
            self._held = b""
            self._scan = 0
            self._line_start = 0 if line_start >= n else -1
            return pieces
        self._held = rest
        self._scan = i - start
        self._line_start = line_start - start
        return pieces

    def flush(self) -> bytes:
        """End of stream: everything held, as it came (an unterminated event is not an event)."""
        rest = self._held
        self._held = b""
        self._scan = 0
        self._line_start = 0
        self._state = _FRAME
        return rest

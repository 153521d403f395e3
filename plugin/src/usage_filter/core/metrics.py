"""The statistics, in exact integer arithmetic (no float can be NaN, infinite or mis-rounded).

Times are integer nanoseconds from the host clock. Rates and per-token times are kept as
hundredths and rounded half away from zero; `format_hundredths` prints them as JSON numbers
with at most two decimals and no fraction for whole values (`45`, `45.5`, `45.25`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StreamStats", "stream_stats", "body_tokens_per_second", "format_hundredths"]

_NS_PER_MS = 1_000_000


def _div_round(num: int, den: int) -> int:
    """num / den rounded half away from zero, for num >= 0 and den > 0."""
    return (2 * num + den) // (2 * den)


def format_hundredths(h: int) -> str:
    whole, frac = divmod(h, 100)
    if frac == 0:
        return "%d" % whole
    if frac % 10 == 0:
        return "%d.%d" % (whole, frac // 10)
    return "%d.%02d" % (whole, frac)


@dataclass(frozen=True, slots=True)
class StreamStats:
    time_to_first_token_ms: int
    time_per_output_token_ms_x100: int
    tokens_per_second_x100: int

    def fields(self) -> list[tuple[str, str]]:
        """The three usage keys with their JSON-encoded values, in injection order."""
        return [
            ("time_to_first_token_ms", "%d" % self.time_to_first_token_ms),
            ("time_per_output_token_ms", format_hundredths(self.time_per_output_token_ms_x100)),
            ("tokens_per_second", format_hundredths(self.tokens_per_second_x100)),
        ]


def stream_stats(start_ns: int, first_ns: int, last_ns: int, output_tokens: int) -> StreamStats:
    """TTFT = first - start; TPOT = (last - first) / (N - 1); TPS = (N - 1) / (last - first)."""
    ttft = _div_round(max(0, first_ns - start_ns), _NS_PER_MS)
    span_ns = max(0, last_ns - first_ns)
    steps = output_tokens - 1
    if steps < 1 or span_ns == 0:
        return StreamStats(ttft, 0, 0)
    tpot_x100 = _div_round(span_ns * 100, _NS_PER_MS * steps)
    tps_x100 = _div_round(steps * 100 * 1_000_000_000, span_ns)
    return StreamStats(ttft, tpot_x100, tps_x100)


def body_tokens_per_second(start_ns: int, end_ns: int, output_tokens: int) -> str:
    """Non-streaming: N * 1000 / (end - start in ms); 0 when the duration is 0."""
    span_ns = max(0, end_ns - start_ns)
    if span_ns == 0 or output_tokens <= 0:
        return "0"
    return format_hundredths(_div_round(output_tokens * 100 * 1_000_000_000, span_ns))

from __future__ import annotations

import pytest

from usage_filter.core.metrics import body_tokens_per_second, format_hundredths, stream_stats

MS = 1_000_000


@pytest.mark.parametrize("h,text", [(0, "0"), (4500, "45"), (4550, "45.5"), (4505, "45.05"), (1, "0.01"), (10, "0.1")])
def test_format_hundredths(h: int, text: str) -> None:
    assert format_hundredths(h) == text


def test_stream_stats_formulas() -> None:
    s = stream_stats(0, 120 * MS, 180 * MS, 7)
    assert (s.time_to_first_token_ms, s.time_per_output_token_ms_x100, s.tokens_per_second_x100) == (120, 1000, 10000)


def test_half_away_from_zero() -> None:
    # TTFT 0.5 ms -> 1; TPOT 0.005 ms -> 0.01 (x100: 0.5 -> 1)
    s = stream_stats(0, 500_000, 500_000 + 5_000, 2)
    assert s.time_to_first_token_ms == 1
    assert s.time_per_output_token_ms_x100 == 1
    # 0.4999 ms rounds down
    assert stream_stats(0, 499_999, 499_999, 1).time_to_first_token_ms == 0


@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_tokens_is_zero(n: int) -> None:
    s = stream_stats(0, 10 * MS, 50 * MS, n)
    assert (s.time_per_output_token_ms_x100, s.tokens_per_second_x100) == (0, 0)


def test_zero_or_negative_duration_is_zero_never_negative() -> None:
    assert stream_stats(0, 50 * MS, 50 * MS, 10).tokens_per_second_x100 == 0
    s = stream_stats(100 * MS, 50 * MS, 10 * MS, 10)  # a clock going backwards
    assert s.time_to_first_token_ms == 0 and s.tokens_per_second_x100 == 0


def test_huge_counts_stay_finite() -> None:
    s = stream_stats(0, 1, 2, 10**40)
    assert s.tokens_per_second_x100 > 0
    assert format_hundredths(s.tokens_per_second_x100).isdigit()


def test_body_tokens_per_second() -> None:
    assert body_tokens_per_second(0, 500 * MS, 2) == "4"
    assert body_tokens_per_second(0, 300 * MS, 1) == "3.33"
    assert body_tokens_per_second(0, 0, 5) == "0"

"""Arbitration between policies: older wins, winners never overlap, losers name a winner."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from usage_operator.conflicts import arbitrate, claim_for
from usage_operator.models import Targets

_targets = st.builds(
    Targets,
    ingresses=st.lists(st.sampled_from(["r1", "r2", "r3"]), unique=True, max_size=2),
    domains=st.lists(st.sampled_from(["a.example.com", "b.example.com"]), unique=True, max_size=2),
    services=st.lists(st.sampled_from(["s1:80", "s2:80"]), unique=True, max_size=1),
)
_claims = st.lists(
    st.tuples(st.sampled_from("abc"), st.sampled_from("xyz"), st.integers(0, 3), _targets),
    max_size=12,
    unique_by=lambda t: (t[0], t[1]),
).map(
    lambda items: [
        claim_for((ns, name), f"2026-01-01T00:00:0{sec}Z", targets) for ns, name, sec, targets in items
    ]
)


@given(_claims)
def test_arbitration_invariants(claims: list) -> None:  # type: ignore[type-arg]
    verdicts = arbitrate(claims)
    by_key = {c.key: c for c in claims}
    assert set(verdicts) == set(by_key)
    winners = [by_key[k] for k, v in verdicts.items() if v is None]
    for i, w in enumerate(winners):
        for other in winners[i + 1 :]:
            assert not w.overlaps(other)
    for key, blocker in verdicts.items():
        if blocker is not None:
            assert verdicts[blocker] is None
            assert by_key[blocker].overlaps(by_key[key])
            assert by_key[blocker].order < by_key[key].order
        else:  # a winner overlaps no older winner
            assert not any(
                w.overlaps(by_key[key]) and w.order < by_key[key].order for w in winners
            )


def test_order_is_independent_of_input_order() -> None:
    a = claim_for(("n", "a"), "2026-01-01T00:00:01Z", Targets())
    b = claim_for(("n", "b"), "2026-01-01T00:00:00Z", Targets())
    assert arbitrate([a, b]) == arbitrate([b, a]) == {("n", "b"): None, ("n", "a"): ("n", "b")}


def test_domains_compare_case_insensitively() -> None:
    a = claim_for(("n", "a"), "1", Targets(domains=["a.example.com"]))
    b = claim_for(("n", "b"), "2", Targets(domains=["a.example.com"]))
    assert arbitrate([a, b])[("n", "b")] == ("n", "a")

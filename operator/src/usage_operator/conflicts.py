"""Which policies take effect when several claim the same place. Pure functions, no I/O.

Two policies conflict when both are gateway-wide, or when they share an ingress, a domain or a
service. The older one (creationTimestamp, then namespace/name) wins. Arbitration is greedy in
that order against the winners only: a policy blocked by an older one claims nothing, so it
does not block a younger policy that only overlaps with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .models import Targets

__all__ = ["Claim", "PolicyKey", "arbitrate", "claim_for"]

PolicyKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class Claim:
    """What one valid, live policy asks for."""

    key: PolicyKey
    created: str  # RFC 3339 creationTimestamp (sorts by time as text: same format, UTC "Z")
    gateway_wide: bool
    ingresses: frozenset[str] = field(default_factory=frozenset)
    domains: frozenset[str] = field(default_factory=frozenset)
    services: frozenset[str] = field(default_factory=frozenset)

    @property
    def order(self) -> tuple[str, str, str]:
        return (self.created, self.key[0], self.key[1])

    def targets(self) -> tuple[tuple[str, frozenset[str]], ...]:
        return (("ingress", self.ingresses), ("domain", self.domains), ("service", self.services))

    def overlaps(self, other: Claim) -> bool:
        if self.gateway_wide or other.gateway_wide:
            return self.gateway_wide and other.gateway_wide
        return bool(
            self.ingresses & other.ingresses
            or self.domains & other.domains
            or self.services & other.services
        )


def claim_for(key: PolicyKey, created: str, targets: Targets) -> Claim:
    return Claim(
        key=key,
        created=created,
        gateway_wide=targets.gateway_wide,
        ingresses=frozenset(targets.ingresses),
        domains=frozenset(t.lower() for t in targets.domains),
        services=frozenset(targets.services),
    )


def arbitrate(claims: Iterable[Claim]) -> Mapping[PolicyKey, PolicyKey | None]:
    """For every claim: None when it takes effect, else the key of the winner that blocks it."""
    gateway_wide_winner: PolicyKey | None = None
    orders: dict[PolicyKey, tuple[str, str, str]] = {}
    owners: dict[tuple[str, str], PolicyKey] = {}  # (kind, target) -> winner
    result: dict[PolicyKey, PolicyKey | None] = {}
    for claim in sorted(claims, key=lambda c: c.order):
        if claim.gateway_wide:
            result[claim.key] = gateway_wide_winner
            if gateway_wide_winner is None:
                gateway_wide_winner = claim.key
            continue
        wanted = [(kind, t) for kind, ts in claim.targets() for t in ts]
        # the oldest winner among those holding any wanted target blocks it
        holders = {owners[w] for w in wanted if w in owners}
        blocker = min(holders, key=lambda k: orders[k]) if holders else None
        result[claim.key] = blocker
        if blocker is None:
            for w in wanted:
                owners[w] = claim.key
        orders[claim.key] = claim.order
    return result

"""SportRadar-id matching and the fetch queue: pure functions over discovered events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from engine.bookmakers._models import DiscoveredEvent
from engine.config import BOOKS


@dataclass
class MatchedEvent:
    sr_id: str
    kickoff: datetime
    listings: dict[str, DiscoveredEvent] = field(default_factory=dict)  # book -> its listing

    @property
    def books(self) -> tuple[str, ...]:
        return tuple(b for b in BOOKS if b in self.listings)


def match_events(listings: list[DiscoveredEvent]) -> list[MatchedEvent]:
    """Events keyed by SR id, soonest kickoff first (then more books, then BetPawa present).

    The kickoff is BetPawa's when it lists the event, else the first competitor's: BetPawa
    is the reference book.
    """
    by_id: dict[str, MatchedEvent] = {}
    for ev in sorted(listings, key=lambda e: BOOKS.index(e.book)):
        m = by_id.get(ev.sr_id)
        if m is None:
            by_id[ev.sr_id] = m = MatchedEvent(sr_id=ev.sr_id, kickoff=ev.kickoff)
        m.listings.setdefault(ev.book, ev)
    return sorted(
        by_id.values(),
        key=lambda m: (m.kickoff, -len(m.listings), "betpawa" not in m.listings, m.sr_id),
    )


def batches(events: list[MatchedEvent], size: int) -> list[list[MatchedEvent]]:
    return [events[i : i + size] for i in range(0, len(events), size)]

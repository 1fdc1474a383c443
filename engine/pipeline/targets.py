"""Runs that skip discovery: retry the failed events of a run, refresh one event.

The app asks for these from another process through ``run_requests``; what to fetch is
rebuilt from what the store already knows (book event ids, kickoff, teams).
"""

from __future__ import annotations

import json
from datetime import timezone

from engine.bookmakers._models import DiscoveredEvent
from engine.pipeline.matching import MatchedEvent, match_events
from engine.store import Store


def _listings(store: Store, pairs: list[tuple[str, str, str]]) -> list[MatchedEvent]:
    """(sr_id, book, book_event_id) triples → matched events with the stored event facts."""
    if not pairs:
        return []
    ids = sorted({p[0] for p in pairs})
    events = store.query(
        "SELECT sr_id, kickoff, country, tournament, home, away FROM events WHERE sr_id IN ("
        + ",".join("?" * len(ids)) + ")", ids,
    )
    facts = {r["sr_id"]: r for r in events.iter_rows(named=True)}
    listings = []
    for sr_id, book, book_event_id in pairs:
        f = facts.get(sr_id)
        if f is None:
            continue
        kickoff = f["kickoff"]
        if kickoff.tzinfo is None:
            kickoff = kickoff.replace(tzinfo=timezone.utc)
        listings.append(DiscoveredEvent(book=book, book_event_id=book_event_id, sr_id=sr_id, kickoff=kickoff,
                                        country=f["country"], tournament=f["tournament"],
                                        home=f["home"], away=f["away"]))
    return match_events(listings)


def failed_targets(store: Store, run_id: int) -> list[MatchedEvent]:
    rows = store.event_status(run_id)
    pairs = []
    for r in rows.iter_rows(named=True):
        failed = r["books_failed"]
        if isinstance(failed, str):
            failed = json.loads(failed)
        ids = r.get("book_event_ids") or {}
        if isinstance(ids, str):
            ids = json.loads(ids)
        pairs.extend((r["sr_id"], b, ids[b]) for b in failed or [] if b in ids)
    return _listings(store, pairs)


def event_targets(store: Store, sr_id: str) -> list[MatchedEvent]:
    rows = store.query("SELECT bookmaker, book_event_id FROM bookmaker_events WHERE sr_id = ?", [sr_id])
    return _listings(store, [(sr_id, r["bookmaker"], r["book_event_id"]) for r in rows.iter_rows(named=True)])

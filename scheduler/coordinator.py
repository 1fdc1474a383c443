"""The tier coordinator: one scheduler job that refreshes each event as often as its tier asks.

Every tick (``tier_tick_s``, default 15 s) it

1. runs a *discovery* run when the last one (or full cycle) is older than
   ``discovery_interval_min``: the books' event lists (kickoffs, book event ids) are stored,
   no detail is fetched;
2. reads the upcoming events each book listed at its last successful discovery, and when the
   store last confirmed a price of each (event, book);
3. asks ``tiers.due_work`` what is due and fits each book's budget, publishes how many due
   events each tier left behind (the sidebar shows it), and runs those pairs as one ordinary
   run of kind ``tier:<names>`` through ``SchedulerService.run``: the same cycle code and
   single writer, never two cycles at once.

A tier run issues all its requests at once (at most ``FETCH_AHEAD + 1`` batches), so its
request times measure each book's service time, which sizes the next budgets; each request
gets two ticks, after which it fails and is retried later: a slow book slips alone instead of
holding the tick. A pair asked for and not stored waits ``RETRY_TICKS`` ticks (at most its tier
interval) before the next try, so a book that is down is not hammered every tick.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import polars as pl

from engine.bookmakers._models import DiscoveredEvent
from engine.config import BOOKS, Settings
from engine.pipeline.cycle import FETCH_AHEAD
from engine.pipeline.matching import MatchedEvent
from engine.pipeline.summary import RunSummary
from engine.pipeline.tiers import (
    DEFAULT_LATENCY_S,
    DueWork,
    Listed,
    Pick,
    due_work,
    service_seconds,
    tick_budget,
    tiers_from,
)

if TYPE_CHECKING:
    from scheduler.main import SchedulerService

log = logging.getLogger("oddsdesk.tiers")
#: Largest batch of a tier run (one store transaction).
MAX_BATCH_EVENTS = 500
#: Ticks a pair asked for and not stored waits before it is asked for again.
RETRY_TICKS = 4
#: Weight of the newest measurement in a book's service time.
SMOOTHING = 0.5
#: Statuses after which every listing of a reachable book was stored.
DISCOVERED = frozenset({"COMPLETED", "PARTIAL", "CONNECTION_FAILED"})


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --- pure helpers ----------------------------------------------------------------------------


def _summary(value: Any) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def last_discovery(runs: pl.DataFrame) -> datetime | None:
    """When the newest discovery (or full cycle) started, whatever its outcome."""
    return runs["started_at"].max() if runs.height else None


def discovery_cutoffs(runs: pl.DataFrame) -> dict[str, datetime]:
    """Per book, the start of its newest discovery that reached it and stored every listing:
    listings older than that are no longer listed by the book."""
    cutoffs: dict[str, datetime] = {}
    for r in runs.sort("id", descending=True).iter_rows(named=True):
        if r["status"] not in DISCOVERED:
            continue
        books = _summary(r.get("summary")).get("books") or {}
        for book in BOOKS:
            stats = books.get(book)
            if book not in cutoffs and stats is not None and not stats.get("unreachable"):
                cutoffs[book] = r["started_at"]
    return cutoffs


def current_listings(frame: pl.DataFrame, cutoffs: dict[str, datetime]
                     ) -> tuple[list[Listed], dict[tuple[str, str], DiscoveredEvent], dict[tuple[str, str], datetime]]:
    """``Store.tier_listings`` rows → the upcoming events (kickoff order), each pair's listing
    (the book's newest id for the event) and when the store last saw a price of each pair."""
    listings: dict[tuple[str, str], DiscoveredEvent] = {}
    seen: dict[tuple[str, str], datetime] = {}
    order: dict[str, tuple[datetime, list[str]]] = {}
    for r in frame.iter_rows(named=True):
        cutoff = cutoffs.get(r["bookmaker"])
        if cutoff is None or r["listed_at"] < cutoff:
            continue
        key = (r["sr_id"], r["bookmaker"])
        listings[key] = DiscoveredEvent(  # rows come oldest listing first: the newest id wins
            book=r["bookmaker"], book_event_id=r["book_event_id"], sr_id=r["sr_id"], kickoff=r["kickoff"],
            country=r["country"], tournament=r["tournament"], home=r["home"], away=r["away"])
        if r["seen_at"] is not None:
            seen[key] = r["seen_at"]
        books = order.setdefault(r["sr_id"], (r["kickoff"], []))[1]
        if r["bookmaker"] not in books:
            books.append(r["bookmaker"])
    events = [Listed(sr_id, kickoff, tuple(b for b in BOOKS if b in books))
              for sr_id, (kickoff, books) in order.items()]
    return events, listings, seen


def targets_for(picks: list[Pick], listings: dict[tuple[str, str], DiscoveredEvent]) -> list[MatchedEvent]:
    """The picked (event, books) as the cycle's targets, in pick order (soonest kickoff first)."""
    targets = []
    for p in picks:
        first = listings[(p.sr_id, p.books[0])]
        targets.append(MatchedEvent(sr_id=p.sr_id, kickoff=first.kickoff,
                                    listings={b: listings[(p.sr_id, b)] for b in p.books}))
    return targets


def run_kind(work: DueWork) -> str:
    return "tier:" + "+".join(work.tier_names)


def tier_batch_size(events: int, batch_size: int) -> int:
    """Batches of a tier run: the configured size, or larger so that all of them are in flight
    at once (``FETCH_AHEAD + 1``) up to ``MAX_BATCH_EVENTS`` events each."""
    return max(1, min(MAX_BATCH_EVENTS, max(batch_size, math.ceil(events / (FETCH_AHEAD + 1)))))


# --- the job ---------------------------------------------------------------------------------


class TierCoordinator:
    def __init__(self, service: SchedulerService):
        self.service = service
        self.retry_at: dict[tuple[str, str], datetime] = {}  # pairs asked for: not due again before
        self.service_s: dict[str, float] = {}  # measured seconds per request slot, per book
        self.last: dict[str, Any] = {}  # what status() publishes

    # budget ---------------------------------------------------------------------------------
    def budget(self, settings: Settings) -> dict[str, int]:
        out = {}
        for book in BOOKS:
            cfg = settings.book(book)
            service = self.service_s.get(book, DEFAULT_LATENCY_S + cfg.delay_s)
            out[book] = tick_budget(cfg.concurrency, service, settings.tier_tick_s)
        return out

    def learn(self, summary: RunSummary, settings: Settings) -> None:
        """Update each book's service time from a tier run whose requests were all issued at
        once (see tiers.py)."""
        if not 1 <= summary.batches_total <= FETCH_AHEAD + 1:
            return
        for book, stats in summary.books.items():
            measured = service_seconds(stats.requested, stats.fetch_s, settings.book(book).concurrency)
            if measured is not None:
                old = self.service_s.get(book)
                self.service_s[book] = measured if old is None else (1 - SMOOTHING) * old + SMOOTHING * measured

    # one tick -------------------------------------------------------------------------------
    def tick(self) -> None:
        settings = self.service.settings
        if settings.refresh_mode != "tiers" or self.service.cancel.is_set() or self.service.cycle_lock.locked():
            return
        try:
            self._tick(settings)
        except Exception:  # a failed tick is logged and the next one tries again
            log.exception("tier tick failed")

    def _tick(self, settings: Settings) -> None:
        store = self.service.store
        runs = store.discovery_runs()
        last = last_discovery(runs)
        if last is None or utcnow() - last >= timedelta(minutes=settings.discovery_interval_min):
            if self.service.run("schedule", kind="discovery", discover_only=True) is None:
                return
            runs = store.discovery_runs()
        now = utcnow()
        events, listings, seen = current_listings(store.tier_listings(now), discovery_cutoffs(runs))
        self.retry_at = {k: v for k, v in self.retry_at.items() if k in listings and v > now}
        budget = self.budget(settings)
        tiers = tiers_from(settings)
        work = due_work(events, seen, now, budget, tiers, slack_s=settings.tier_tick_s / 2, not_before=self.retry_at)
        self._note(work, budget, now, settings)
        if work.behind:
            log.warning("behind: %s", ", ".join(f"{n} events ({name} tier)" for name, n in work.behind.items()))
        if not work.picks:
            return
        targets = targets_for(work.picks, listings)
        run_settings = settings.model_copy(update={"batch_size": tier_batch_size(len(targets), settings.batch_size)})
        summary = self.service.run("schedule", targets=targets, kind=run_kind(work), settings=run_settings,
                                   request_limit_s=2 * settings.tier_tick_s)
        if summary is None:
            return
        interval = {t.name: t.interval_s for t in tiers}
        for p in work.picks:
            wait = timedelta(seconds=min(interval[p.tier], RETRY_TICKS * settings.tier_tick_s))
            for book in p.books:
                self.retry_at[(p.sr_id, book)] = now + wait
        self.learn(summary, run_settings)
        self.last["last_run_id"] = summary.run_id

    def _note(self, work: DueWork, budget: dict[str, int], now: datetime, settings: Settings) -> None:
        self.last = {
            "tick_at": now.isoformat(), "tick_s": settings.tier_tick_s,
            "tiers": [t.as_json() for t in work.tiers.values()],
            "behind": work.behind, "budget": budget, "requests": work.requests,
            "service_ms": {b: round(1000 * s) for b, s in self.service_s.items()},
            "discovery_interval_min": settings.discovery_interval_min,
        }
        try:
            self.service.publish_status()
        except Exception:  # the status row is informative; a busy store must not cost the tick
            log.warning("could not publish the tier status", exc_info=True)

    def status(self) -> dict[str, Any]:
        """The last tick's plan as the sidebar shows it (published in ``scheduler_status``)."""
        return dict(self.last)

"""Refresh tiers by time to kickoff, and which due work fits one coordinator tick.

Prices move most in the last hours before kickoff, so an event is refreshed as often as its
tier asks (defaults: kickoff within 2 h → every minute, within 24 h → every 5 minutes, later →
every 15 minutes). Each tick the coordinator asks ``due_work`` which (event, book) pairs are
due and fit the tick's per-book request budget. Pure functions: the scheduler supplies the
clock, the listings and what the store last saw.

Budget (requests per book per tick): the whole waves of the book's concurrency slots that fit
80% of a tick at its service time — one request's latency + pacing as a slot sees it. The
service time is measured from the last tier runs: a tier run issues all its requests at once
and they wait for a slot in order, so request k of n ends after ``k // concurrency + 1``
services and the summed request time is ``service × waves(n, concurrency)``
(``service_seconds`` inverts that); before any measurement it is 0.5 s + pacing. A slow book
thus gets a small budget and slips alone; the others keep their cadence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

#: A price is stale once it is older than its tier's interval times this.
STALE_FACTOR = 1.5
#: Share of a tick the budget plans to fill, so a tier run normally ends before the next tick.
UTILISATION = 0.8
#: Service time assumed for a book before any tier run measured it (seconds, before pacing).
DEFAULT_LATENCY_S = 0.5


@dataclass(frozen=True)
class Tier:
    name: str
    within_s: float | None  # kickoff at most this far ahead; None = any later kickoff
    interval_s: float

    @property
    def promise_s(self) -> float:
        """Age beyond which a price of this tier is shown as stale."""
        return self.interval_s * STALE_FACTOR


def tiers_from(settings) -> tuple[Tier, ...]:
    """The tiers of these settings, nearest first (``Settings`` validated the boundaries)."""
    return (
        Tier("near", settings.tier_near_hours * 3600, settings.tier_near_interval_min * 60),
        Tier("day", settings.tier_day_hours * 3600, settings.tier_day_interval_min * 60),
        Tier("far", None, settings.tier_far_interval_min * 60),
    )


def tier_of(kickoff: datetime, now: datetime, tiers: Sequence[Tier]) -> Tier | None:
    """The tier of an event kicking off at ``kickoff``; None once it has started (pre-match only).

    A boundary belongs to the nearer tier: exactly 2 h before kickoff is still "within 2 h".
    """
    ahead = (kickoff - now).total_seconds()
    if ahead <= 0:
        return None
    for tier in tiers:
        if tier.within_s is None or ahead <= tier.within_s:
            return tier
    return tiers[-1]


def promise_expr(kickoff: pl.Expr, now: datetime, tiers: Sequence[Tier]) -> pl.Expr:
    """``tier_of(...).promise_s`` for a kickoff column (null for started events)."""
    ahead = (kickoff - pl.lit(now)).dt.total_seconds()
    expr = pl.when(ahead <= 0).then(None)
    for tier in tiers:
        expr = expr.when(ahead <= tier.within_s if tier.within_s is not None else pl.lit(True)).then(tier.promise_s)
    return expr.otherwise(tiers[-1].promise_s).cast(pl.Float64)


@dataclass(frozen=True)
class Listed:
    """An upcoming event as discovery last listed it: which books carry it."""

    sr_id: str
    kickoff: datetime
    books: tuple[str, ...]


@dataclass
class TierLoad:
    """One tier in one tick: its events, how many were due, taken, and left behind."""

    name: str
    interval_s: float
    events: int = 0
    due: int = 0
    picked: int = 0
    behind: int = 0  # due events with at least one due book left out of the tick

    def as_json(self) -> dict:
        return {"name": self.name, "interval_min": round(self.interval_s / 60, 3), "events": self.events,
                "due": self.due, "picked": self.picked, "behind": self.behind}


@dataclass(frozen=True)
class Pick:
    sr_id: str
    books: tuple[str, ...]
    tier: str


@dataclass
class DueWork:
    picks: list[Pick] = field(default_factory=list)  # soonest kickoff first
    tiers: dict[str, TierLoad] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)  # per book

    @property
    def behind(self) -> dict[str, int]:
        return {name: t.behind for name, t in self.tiers.items() if t.behind}

    @property
    def tier_names(self) -> list[str]:
        """The tiers this tick refreshes, nearest first (for the run's kind)."""
        present = {p.tier for p in self.picks}
        return [name for name in self.tiers if name in present]


def is_due(last: datetime | None, now: datetime, interval_s: float, slack_s: float = 0.0) -> bool:
    """Never refreshed, or refreshed at least ``interval_s - slack_s`` ago.

    The slack (half a tick) lets a pair refreshed just after one tick be due at the tick that
    falls one interval later, instead of a tick after that.
    """
    return last is None or (now - last).total_seconds() >= interval_s - slack_s


def due_work(events: Sequence[Listed], last_refreshed: Mapping[tuple[str, str], datetime], now: datetime,
             budget: Mapping[str, int], tiers: Sequence[Tier], slack_s: float = 0.0,
             not_before: Mapping[tuple[str, str], datetime] | None = None) -> DueWork:
    """The (event, books) pairs to refresh this tick and, per tier, what was left behind.

    Due pairs are taken nearest tier first, then soonest kickoff, while their book's budget
    lasts; each book has its own budget, so a book that ran out never holds back the others.
    Far tiers therefore slip first, and every due event left out counts as behind. A pair is
    not due before its ``not_before``, less the slack (asked for recently: a failed fetch waits
    before its retry).
    """
    not_before = not_before or {}
    work = DueWork(tiers={t.name: TierLoad(t.name, t.interval_s) for t in tiers})
    rank = {t.name: i for i, t in enumerate(tiers)}
    due: list[tuple[int, datetime, str, Tier, tuple[str, ...]]] = []
    for ev in events:
        tier = tier_of(ev.kickoff, now, tiers)
        if tier is None:
            continue
        work.tiers[tier.name].events += 1
        books = tuple(b for b in ev.books
                      if is_due(last_refreshed.get((ev.sr_id, b)), now, tier.interval_s, slack_s)
                      and (now - not_before.get((ev.sr_id, b), now)).total_seconds() >= -slack_s)
        if books:
            due.append((rank[tier.name], ev.kickoff, ev.sr_id, tier, books))
    due.sort(key=lambda d: d[:3])
    left = dict(budget)
    for _, _, sr_id, tier, books in due:
        load = work.tiers[tier.name]
        load.due += 1
        took = tuple(b for b in books if left.get(b, 0) > 0)
        for b in took:
            left[b] -= 1
            work.requests[b] = work.requests.get(b, 0) + 1
        if took:
            load.picked += 1
            work.picks.append(Pick(sr_id, took, tier.name))
        if len(took) < len(books):
            load.behind += 1
    return work


def waves(n: int, concurrency: int) -> float:
    """Σ over n requests started at once of the services each waits for, its own included:
    request k (0-based) ends after ``k // concurrency + 1`` services."""
    full, rest = divmod(n, concurrency)
    return concurrency * full * (full + 1) / 2 + rest * (full + 1)


def service_seconds(requests: int, summed_s: float, concurrency: int) -> float | None:
    """One request's service time (latency + pacing) from a run that issued ``requests`` at
    once and whose request times sum to ``summed_s``; None without requests."""
    if requests <= 0 or summed_s <= 0:
        return None
    return summed_s / waves(requests, max(1, concurrency))


def tick_budget(concurrency: int, service_s: float, tick_s: float) -> int:
    """Requests one book can serve in a tick at this service time: whole waves of its slots
    that fit the tick; a book slower than a tick gets part of one wave (at least one request)."""
    fit = UTILISATION * tick_s / max(service_s, 1e-3)
    return concurrency * math.floor(fit) if fit >= 1 else max(1, math.floor(fit * concurrency))


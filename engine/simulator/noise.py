"""Unmapped "noise" markets the simulated books carry beside the catalogue's markets.

Real books offer far more than our catalogue knows (player props, bet-builder keys, Asian
totals...): the earlier tool's audit counted ≈56 BetPawa market types, ≈193 SportyBet and ≈168
Bet9ja market instances per event, and could map only about half. Without that noise the
parsers' unmapped-market path, payload sizes and parse times would never be exercised, so
every simulated event is topped up to those volumes from ``unmapped-markets-sample.csv`` (the
audit's real unmapped ids, weighted by how often each occurred).

BetPawa is the reference book and has no unmapped sample; its extra market types reuse the
SportyBet sample's descriptions under ids of the form ``7`` + six digits, a range the catalogue
does not use. Every candidate whose id (or Bet9ja ``S_`` key) the catalogue knows is dropped,
so noise can never turn into a mapped price.

Noise is a pure function of (book, SportRadar id, mapped volume): the same event always carries
the same noise, whatever the epoch.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from engine.bookmakers._models import Price
from engine.markets.catalogue import load_catalogue

SAMPLE_EVENTS = 199  # events in the audit the sample's occurrence counts come from
#: Per-event volume of the real books (market types for BetPawa, market x line instances otherwise).
TARGET_VOLUME = {"betpawa": 56, "sportybet": 193, "bet9ja": 168}
MIN_SHARE = 0.1  # noise never falls below this share of the target, so unmapped markets always show

# Outcome names per shape and book; lines are added for the "ou" shape only.
_SHAPES: dict[str, dict[str, tuple[str, ...]]] = {
    "yn": {"betpawa": ("Yes", "No"), "sportybet": ("Yes", "No"), "bet9ja": ("Y", "N")},
    "ou": {"betpawa": ("Over", "Under"), "sportybet": ("Over", "Under"), "bet9ja": ("O", "U")},
    "oe": {"betpawa": ("Odd", "Even"), "sportybet": ("Odd", "Even"), "bet9ja": ("OD", "EV")},
    "1x2": {"betpawa": ("1", "X", "2"), "sportybet": ("Home", "Draw", "Away"), "bet9ja": ("1", "X", "2")},
    "dc": {"betpawa": ("1X", "X2", "12"), "sportybet": ("Home or Draw", "Draw or Away", "Home or Away"),
           "bet9ja": ("1X", "X2", "12")},
    "player": {b: ("Adeyemi", "Okafor", "Balogun", "Mensah", "Diallo", "Traore") for b in
               ("betpawa", "sportybet", "bet9ja")},
}
_GROUPS = {
    "Cards/Bookings": "cards", "Goals": "goals", "Over/Under": "goals", "BTTS": "goals",
    "Half-Based": "halves", "Combo Markets": "combos", "Match Result": "specials",
    "Player Props": "specials",
}


@dataclass(frozen=True)
class NoiseSource:
    """One unmapped market of the sample: what it is called and how often it occurs per event."""

    book: str
    market_id: str  # SportyBet id, Bet9ja key without "S_", BetPawa marketType id
    name: str
    group: str  # BetPawa tab / SportyBet group the market is shown under
    shape: str  # key of _SHAPES
    per_event: float  # expected instances per event in the audit


@dataclass(frozen=True)
class NoiseMarket:
    """One noise market instance as a book shows it: raw id, optional line, named outcomes."""

    market_id: str
    name: str
    group: str
    line: float | None
    outcomes: tuple[tuple[str, float], ...]  # (the book's outcome name, decimal odds)


def _shape(book: str, market_id: str, name: str) -> str:
    if book == "bet9ja":
        key = market_id.upper()
        if "OU" in key:
            return "ou"
        if "1X2" in key:
            return "1x2"
        if key.startswith("DC") or "CHANCE" in key:
            return "dc"
        if "OE" in key:
            return "oe"
        return "yn"
    lowered = name.lower()
    if "player" in lowered or "goalscorer" in lowered or lowered.startswith("to score"):
        return "player"
    if "odd or even" in lowered or "odd/even" in lowered:
        return "oe"
    if "over/under" in lowered or "total" in lowered:
        return "ou"
    if "double chance" in lowered:
        return "dc"
    if "1x2" in lowered or "result" in lowered:
        return "1x2"
    return "yn"


@lru_cache(maxsize=None)
def noise_sources(book: str) -> tuple[NoiseSource, ...]:
    """The sample's markets a book can carry as noise, none of them known to the catalogue."""
    cat = load_catalogue()
    known = {m.ids[book] for m in cat.markets.values() if m.ids[book]}
    text = resources.files("engine.simulator").joinpath("unmapped-markets-sample.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    source_book = "sportybet" if book == "betpawa" else book
    sources: list[NoiseSource] = []
    for row in rows:
        if row["bookmaker"] != source_book:
            continue
        raw = row["market_id"].strip()
        if book == "betpawa":
            if not raw.isdigit() or row["error_code"] != "UNKNOWN_MARKET":
                continue
            market_id = "7" + raw.zfill(6)
        else:
            market_id = raw
        book_key = "S_" + market_id if book == "bet9ja" else market_id
        if book_key in known or "_" in market_id:
            continue
        name = row["market_desc"].strip() or market_id
        sources.append(NoiseSource(
            book=book,
            market_id=market_id,
            name=name,
            group=_GROUPS.get(row["category"].strip(), "other"),
            shape=_shape(book, market_id, name),
            per_event=int(row["occurrences_in_199_events"]) / SAMPLE_EVENTS,
        ))
    return tuple(sources)


def mapped_volume(book: str, prices: Sequence[Price]) -> int:
    """How much of the book's per-event volume the catalogue prices already fill.

    Counted the way the audit counted: BetPawa market types, SportyBet market objects (one per
    line), Bet9ja (key, @param) groups — where home and away team totals share one ``S_HAOU``
    group per line.
    """
    cat = load_catalogue()
    if book == "betpawa":
        return len({p.market for p in prices if cat.markets[p.market].ids["betpawa"]})
    if book == "sportybet":
        return len({(p.market, p.line) for p in prices if cat.markets[p.market].ids["sportybet"]})
    return len({(cat.markets[p.market].ids["bet9ja"], p.line) for p in prices if cat.markets[p.market].ids["bet9ja"]})


def _odds(rng: random.Random, n: int) -> list[float]:
    weights = [rng.uniform(0.2, 1.0) for _ in range(n)]
    total = sum(weights)
    margin = rng.uniform(1.05, 1.12)
    return [max(1.01, round(total / (w * margin), 2)) for w in weights]


def _instances(rng: random.Random, source: NoiseSource, book: str) -> list[NoiseMarket]:
    names = _SHAPES[source.shape][book]
    if source.shape != "ou":
        return [NoiseMarket(source.market_id, source.name, source.group, None,
                            tuple(zip(names, _odds(rng, len(names)))))]
    count = max(1, round(source.per_event * rng.uniform(0.8, 1.2)))
    step = 0.25 if source.market_id.upper() == "OUA" else 1.0
    first = rng.choice((0.5, 1.5)) if step == 1.0 else rng.choice((1.5, 1.75, 2.0))
    out = []
    for i in range(count):
        line = round(first + i * step, 2)
        out.append(NoiseMarket(source.market_id, source.name, source.group, line,
                               tuple(zip(names, _odds(rng, len(names))))))
    return out


def noise_for_event(book: str, sr_id: str, prices: Sequence[Price]) -> tuple[NoiseMarket, ...]:
    """The noise markets one book shows on one event, topping its volume up to the real one's.

    Sources are drawn by weighted sampling without replacement (in a per-event order, so a
    slightly different mapped volume only changes the tail), until the event reaches a target
    jittered ±10% around ``TARGET_VOLUME``.
    """
    rng = random.Random(f"noise:{book}:{sr_id}")
    target = TARGET_VOLUME[book] * rng.uniform(0.9, 1.1)
    wanted = max(TARGET_VOLUME[book] * MIN_SHARE, target - mapped_volume(book, prices))
    sources = noise_sources(book)
    order = sorted(sources, key=lambda s: rng.random() ** (1.0 / max(s.per_event, 1e-6)), reverse=True)
    chosen: list[NoiseMarket] = []
    volume = 0
    for source in order:
        if volume >= wanted:
            break
        markets = _instances(rng, source, book)
        chosen.extend(markets)
        volume += 1 if book == "betpawa" else len(markets)
    return tuple(chosen)

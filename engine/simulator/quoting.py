"""How each simulated bookmaker turns the true probabilities into its own prices, and how
those prices drift from one epoch to the next.

A book sees the truth through its own noise, offers its own subset of markets and lines
(BetPawa fewer than SportyBet or Bet9ja, minor leagues fewer than top ones), and puts its own
margin on with the power method (q = p^t, Σ q = 1 + margin): favourites get relatively less
margin than longshots, as in real football books, and no implied probability can exceed 1, so
even a 1.02 favourite stays coherent. Outcomes that can win together (double chance, Bet9ja's
overlapping multigoal ranges) are priced one by one against their complement; a book whose list
leaves results out (correct score by half) is priced as if the missing results were listed.

Drift has to be cheap at any epoch (the server asks for epoch N directly, possibly thousands of
cycles in) and exactly reproducible, so it is stateless: every market instance is re-quoted
every ``period`` epochs at a fixed phase (≈ DRIFT_SHARE of instances per epoch), and a
re-quote is a hash of (event, book, instance, block) — no walk to replay. Each re-quote moves
every price of the instance by at most ``swing``, a third of the instance's overround, so a
market's margin stays positive whatever the draw.
"""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from engine.bookmakers._models import Price
from engine.markets.catalogue import Market, load_catalogue, normalize_line
from engine.simulator.goals import BALANCE_MARKET, LINES, RANGES, Table, book_view, overlapping

DRIFT_SHARE = 0.05  # share of a book's market instances re-quoted at each epoch
MIN_ODDS = 1.01
P_MIN = 0.03  # a line is offered only while both sides are at least this likely
TIER_DEPTH = {1: 1.0, 2: 0.85, 3: 0.65}  # how much of its market list a book shows per tournament tier

# Formats that cannot carry a line the catalogue gives: Bet9ja's S_OUGGNG has no @param
# (reference/market-mapping.md §2.4), so its O/U & BTTS could never round-trip with a line.
UNQUOTABLE = frozenset({("bet9ja", "over_under_btts_ft")})

_MASK = (1 << 64) - 1


def mix(*parts: int) -> int:
    """A 64-bit hash of integers (splitmix64 steps): stable across runs and platforms."""
    x = 0x243F6A8885A308D3
    for part in parts:
        x = ((x ^ (part & _MASK)) + 0x9E3779B97F4A7C15) & _MASK
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
        x ^= x >> 31
    return x


@dataclass(frozen=True)
class BookProfile:
    book: str
    margin: float  # overround on the full-time 1X2
    noise: float  # sd of the book's own (log-scale) error on each probability
    suspended: float  # share of outcomes suspended at any epoch; 0 for a book without the flag
    max_odds: float
    offer: dict[str, float]  # first catalogue category -> chance a market of it is offered (top tier)
    lines: dict[str, int]  # line family -> lines offered around the balanced one (top tier)
    asian_step: float  # 0.25 = quarter lines


PROFILES: dict[str, BookProfile] = {
    "betpawa": BookProfile(
        "betpawa", margin=0.062, noise=0.03, suspended=0.02, max_odds=1000.0,
        offer={"popular": 1.0, "goals": 0.45, "handicaps": 0.8, "combos": 0.45, "halves": 0.4,
               "corners": 0.35, "cards": 0.25, "specials": 0.4, "other": 0.0},
        lines={"goals": 5, "half": 2, "team": 2, "combo": 2, "ah": 3, "ah_half": 1, "eh": 2, "eh_half": 1,
               "corners": 2, "corners_team": 1, "corners_ah": 1, "cards": 2, "cards_team": 1},
        asian_step=0.5,
    ),
    "sportybet": BookProfile(
        "sportybet", margin=0.05, noise=0.025, suspended=0.015, max_odds=1000.0,
        offer={"popular": 1.0, "goals": 0.8, "handicaps": 1.0, "combos": 0.8, "halves": 0.75,
               "corners": 0.7, "cards": 0.55, "specials": 0.7, "other": 0.55},
        lines={"goals": 7, "half": 3, "team": 3, "combo": 3, "ah": 7, "ah_half": 3, "eh": 4, "eh_half": 2,
               "corners": 5, "corners_team": 3, "corners_ah": 3, "cards": 4, "cards_team": 2},
        asian_step=0.25,
    ),
    "bet9ja": BookProfile(
        "bet9ja", margin=0.078, noise=0.04, suspended=0.0, max_odds=500.0,
        offer={"popular": 1.0, "goals": 0.7, "handicaps": 0.9, "combos": 0.7, "halves": 0.65,
               "corners": 0.5, "cards": 0.4, "specials": 0.55, "other": 0.5},
        lines={"goals": 6, "half": 3, "team": 2, "combo": 2, "ah": 5, "ah_half": 2, "eh": 3, "eh_half": 2,
               "corners": 3, "corners_team": 2, "corners_ah": 2, "cards": 3, "cards_team": 1},
        asian_step=0.25,
    ),
}
BOOK_INDEX = {book: i + 1 for i, book in enumerate(PROFILES)}

# Margin of a market relative to the book's 1X2 margin: exotic markets carry more.
_MARGIN_BY_MARKET = {
    "1x2_ft": 1.0, "double_chance_ft": 1.0, "draw_no_bet_ft": 1.0, "over_under_ft": 0.95,
    "asian_handicap_ft": 0.9, "btts_ft": 1.1, "htft": 2.4, "correct_score_ft": 3.0, "correct_score_1h": 2.2,
    "correct_score_2h": 2.2, "htft_correct_score": 4.0, "htft_over_under": 2.6, "multiscores_ft": 2.5,
    "winning_margin": 2.2,
}
_MARGIN_BY_CATEGORY = {
    "popular": 1.0, "goals": 1.4, "handicaps": 1.2, "combos": 2.0, "halves": 1.4, "corners": 1.6,
    "cards": 1.8, "specials": 1.8, "other": 1.6,
}


def margin_factor(market: Market) -> float:
    if market.key in _MARGIN_BY_MARKET:
        return _MARGIN_BY_MARKET[market.key]
    if market.key in RANGES:
        return 2.0
    return _MARGIN_BY_CATEGORY.get(market.categories[0], 1.6)


def line_family(market: Market) -> str:
    key, kind = market.key, market.line_kind
    if kind == "european_handicap":
        return "eh" if key.endswith("_ft") else "eh_half"
    if kind == "asian_handicap":
        return "corners_ah" if key.startswith("corner") else ("ah" if key.endswith("_ft") else "ah_half")
    team = key.startswith(("home_", "away_"))
    if "corners" in key:
        return "corners_team" if team else "corners"
    if "bookings" in key:
        return "cards_team" if team else "cards"
    if key in BALANCE_MARKET:
        return "combo"
    if team:
        return "team"
    return "goals" if key == "over_under_ft" else "half"


@lru_cache(maxsize=None)
def quotable_outcomes(book: str, market_key: str) -> tuple[str, ...]:
    """Canonical outcomes ``book`` can express for a market, in catalogue order (empty: none)."""
    market = load_catalogue().markets[market_key]
    if not market.ids.get(book) or (book, market_key) in UNQUOTABLE:
        return ()
    return tuple(o.key for o in market.outcomes if o.names.get(book))


def offer_chance(profile: BookProfile, market: Market, tier: int) -> float:
    category = market.categories[0]
    if category == "popular":
        return 1.0
    depth = TIER_DEPTH.get(tier, TIER_DEPTH[3])
    if category in ("corners", "cards"):
        depth *= depth
    return profile.offer.get(category, profile.offer["other"]) * depth


def _lines_offered(profile: BookProfile, market: Market, table: Table, tier: int, rng: random.Random) -> list[float]:
    """A window of the ladder around the most balanced line, among lines both sides make sense on."""
    family = line_family(market)
    k = profile.lines[family]
    k = max(1, round(k * TIER_DEPTH.get(tier, TIER_DEPTH[3])))
    ladder = LINES[market.key]
    if market.line_kind == "asian_handicap" and family != "corners_ah":
        ladder = tuple(x for x in ladder if (x / profile.asian_step).is_integer())
    ref_key = BALANCE_MARKET.get(market.key, market.key)
    ref = load_catalogue().markets[ref_key]
    first, last = ref.outcomes[0].key, ref.outcomes[-1].key
    viable = []
    for line in ladder:
        probs = table.get((ref_key, line))
        if probs and probs[first] >= P_MIN and probs[last] >= P_MIN:
            viable.append((abs(probs[first] - probs[last]), line))
    if not viable:
        return []
    lines = [line for _, line in viable]
    centre = lines.index(min(viable)[1])
    shift = rng.choice((-1, 0, 1)) if k >= 3 else 0
    start = min(max(0, centre - (k - 1) // 2 + shift), max(0, len(lines) - k))
    return lines[start:start + k]


def power_margin(probs: list[float], margin: float) -> list[float]:
    """q_i = p_i^t with Σ q = 1 + margin; safeguarded Newton (the sum is convex and falling in t)."""
    logs = [math.log(max(p, 1e-12)) for p in probs]
    target = 1.0 + margin
    lo, hi, t = 0.0, 1.0, 1.0
    for _ in range(60):
        qs = [math.exp(t * lg) for lg in logs]
        f = sum(qs) - target
        if abs(f) < 1e-10:
            break
        if f > 0:
            lo = t
        else:
            hi = t
        slope = sum(q * lg for q, lg in zip(qs, logs))
        step = t - f / slope if slope else -1.0
        t = step if lo < step < hi else (lo + hi) / 2
    return [math.exp(t * lg) for lg in logs]


def _noisy(probs: list[float], sigma: float, rng: random.Random) -> list[float]:
    seen = [p * math.exp(sigma * rng.gauss(0.0, 1.0)) for p in probs]
    s = sum(seen)
    return [p / s for p in seen]


def _odds(q: float, max_odds: float) -> float:
    return min(max_odds, max(MIN_ODDS, round(1.0 / q, 2)))


def quote_instance(probs: list[float], exclusive: bool, margin: float, profile: BookProfile,
                   rng: random.Random) -> tuple[list[float], float] | None:
    """Base odds and swing for one market instance, or None when the book would not offer it
    (rounding and the 1.01 floor left no real margin on a complete market)."""
    if not exclusive:
        odds = []
        for p in probs:
            yes, _ = power_margin(_noisy([p, 1.0 - p], profile.noise, rng), margin)
            odds.append(_odds(yes, profile.max_odds))
        return odds, min(0.04, margin / 3)
    rest = 1.0 - sum(probs)
    elements = probs + [rest] if rest > 1e-9 else list(probs)
    qs = power_margin(_noisy(elements, profile.noise, rng), margin)
    odds = [_odds(q, profile.max_odds) for q in qs[:len(probs)]]
    if rest > 1e-9:
        return odds, min(0.04, margin / 3)
    overround = sum(1.0 / o for o in odds) - 1.0
    if overround < 0.015:
        return None
    return odds, min(0.04, overround / 3)


class BookQuotes:
    """One book's prices for one event: base odds per market instance and the drift schedule.

    Stored flat (arrays, shared outcome tuples) because a full-size world keeps ~4,500 of these.
    """

    __slots__ = ("book", "key", "markets", "lines", "outcomes", "starts", "base", "periods", "phases",
                 "swings", "suspend", "max_odds")

    def __init__(self, book: str, key: int, suspend: float, max_odds: float):
        self.book = book
        self.key = key
        self.markets: list[str] = []
        self.lines: list[float | None] = []
        self.outcomes: list[tuple[str, ...]] = []
        self.starts = array("I", [0])
        self.base = array("d")
        self.periods = array("H")
        self.phases = array("H")
        self.swings = array("d")
        self.suspend = int(suspend * 65536)
        self.max_odds = max_odds

    def add(self, market: str, line: float | None, outcomes: tuple[str, ...], odds: list[float], swing: float,
            period: int, phase: int) -> None:
        self.markets.append(market)
        self.lines.append(line)
        self.outcomes.append(outcomes)
        self.base.extend(odds)
        self.starts.append(len(self.base))
        self.swings.append(swing)
        self.periods.append(period)
        self.phases.append(phase)

    def __len__(self) -> int:
        return len(self.markets)

    def block(self, i: int, epoch: int) -> int:
        return (epoch + self.phases[i]) // self.periods[i]

    def values(self, i: int, block: int) -> tuple[list[float], list[bool]]:
        """Odds and availability of instance ``i`` during one re-quote block (block 0 = base)."""
        start, end = self.starts[i], self.starts[i + 1]
        ikey = mix(self.key, i, block)
        whole_up = self.suspend == 0 or (ikey & 0xFFFF) >= self.suspend // 2
        odds: list[float] = []
        avail: list[bool] = []
        swing, cap = self.swings[i], self.max_odds
        for j in range(start, end):
            h = mix(ikey, j)
            avail.append(whole_up and (self.suspend == 0 or ((h >> 8) & 0xFFFF) >= self.suspend))
            if block == 0:
                odds.append(self.base[j])
            else:
                u = (h >> 24) / float(1 << 40)
                odds.append(min(cap, max(MIN_ODDS, round(self.base[j] * (1.0 + swing * (2.0 * u - 1.0)), 2))))
        return odds, avail

    def prices(self, epoch: int) -> list[Price]:
        out: list[Price] = []
        for i in range(len(self.markets)):
            odds, avail = self.values(i, self.block(i, epoch))
            market, line = self.markets[i], self.lines[i]
            out.extend(Price(market, line, o, x, a) for o, x, a in zip(self.outcomes[i], odds, avail))
        return out

    def changed(self, epoch: int) -> set[tuple[str, float | None, str]]:
        """Keys whose odds or availability differ from the previous epoch."""
        out: set[tuple[str, float | None, str]] = set()
        if epoch <= 0:
            return out
        for i in range(len(self.markets)):
            now, before = self.block(i, epoch), self.block(i, epoch - 1)
            if now == before:
                continue
            new, old = self.values(i, now), self.values(i, before)
            for j, outcome in enumerate(self.outcomes[i]):
                if new[0][j] != old[0][j] or new[1][j] != old[1][j]:
                    out.add((self.markets[i], self.lines[i], outcome))
        return out


def _drift_schedule(rng: random.Random) -> tuple[int, int]:
    low, high = round(0.65 / DRIFT_SHARE), round(1.5 / DRIFT_SHARE)
    period = rng.randint(low, high)
    return period, rng.randrange(period)


def quote_book(book: str, table: Table, *, tier: int, key: int) -> BookQuotes:
    """Everything ``book`` quotes on one event, from the event's true table.

    ``key`` seeds every choice (markets, lines, noise, drift), so the same (world seed, book,
    event) always gives the same quotes, whatever else was computed before.
    """
    profile = PROFILES[book]
    rng = random.Random(key)
    cat = load_catalogue()
    event_margin = profile.margin * rng.uniform(0.9, 1.1)
    quotes = BookQuotes(book, key, profile.suspended, profile.max_odds)
    for market in cat.markets.values():
        outcomes = quotable_outcomes(book, market.key)
        modelled = market.key in LINES if market.has_line else (market.key, None) in table
        if not outcomes or not modelled:
            continue
        if rng.random() >= offer_chance(profile, market, tier):
            continue
        lines: Iterable[float | None] = (
            _lines_offered(profile, market, table, tier, rng) if market.has_line else (None,))
        exclusive = not overlapping(market.key, outcomes)
        for line in lines:
            view = book_view(market.key, table[(market.key, line)], outcomes)
            margin = event_margin * margin_factor(market) * rng.uniform(0.95, 1.05)
            quoted = quote_instance([view[o] for o in outcomes], exclusive, margin, profile, rng)
            if quoted is None:
                continue
            odds, swing = quoted
            quotes.add(market.key, normalize_line(line), outcomes, odds, swing, *_drift_schedule(rng))
    return quotes

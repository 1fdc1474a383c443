"""The simulated match and the TRUE probability of every catalogue outcome it implies.

Goals, corners and cards are independent Poisson counts per team and per half. Independence
between the halves is what makes half-time/full-time, "win both halves" or "highest scoring
half" exact products of two small tables instead of a simulation, so one event's whole table
(≈300 market instances) costs a few milliseconds of pure Python and is exactly reproducible.

Markets that refund stakes (Asian handicaps, draw no bet, home/away no bet) carry the
push-adjusted probability: the share of won stake among non-refunded stake, quarter lines
settled as half-stakes on the two neighbouring lines. That is the price a margin-free book
would quote for the two sides, so the two sides still sum to 1.

Lines are canonical ladders (``LINES``): totals on .5 lines only, Asian handicaps on quarter
steps from the home side, European handicaps as whole numbers — what all three books' formats
carry (reference/market-mapping.md §1.4).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

Line = float | None
Probs = dict[str, float]
Table = dict[tuple[str, Line], Probs]

_PRUNE = 1e-13  # score cells below this carry no visible odds


@dataclass(frozen=True)
class Pair:
    """Expected counts of the home and the away team over one stretch of the match."""

    home: float
    away: float

    def scaled(self, factor: float) -> Pair:
        return Pair(self.home * factor, self.away * factor)


@dataclass(frozen=True)
class MatchRates:
    goals_1h: Pair
    goals_2h: Pair
    corners_1h: Pair
    corners_2h: Pair
    cards_1h: Pair
    cards_2h: Pair
    reds: Pair  # whole match


class Dist:
    """A distribution on the consecutive integers ``lo``, ``lo + 1``, …"""

    __slots__ = ("lo", "p", "_tail")

    def __init__(self, lo: int, p: list[float]):
        self.lo = lo
        self.p = p
        tail = [0.0] * (len(p) + 1)
        acc = 0.0
        for i in range(len(p) - 1, -1, -1):
            acc += p[i]
            tail[i] = acc
        self._tail = tail

    def at(self, k: int) -> float:
        i = k - self.lo
        return self.p[i] if 0 <= i < len(self.p) else 0.0

    def above(self, x: float) -> float:
        """P(X > x)."""
        i = math.floor(x) + 1 - self.lo
        if i <= 0:
            return 1.0
        return self._tail[i] if i < len(self._tail) else 0.0

    def between(self, lo: int, hi: float) -> float:
        """P(lo <= X <= hi); ``hi`` may be ``math.inf``."""
        return self.above(lo - 1) - (0.0 if hi == math.inf else self.above(hi))

    def odd(self) -> float:
        return sum(q for i, q in enumerate(self.p) if (self.lo + i) % 2)


def poisson(lam: float) -> Dist:
    """Truncated where the tail no longer shows in two-decimal odds, renormalised to sum 1."""
    lam = max(lam, 1e-6)
    n = int(lam + 9 * math.sqrt(lam) + 9)
    p = [math.exp(-lam)]
    for k in range(1, n + 1):
        p.append(p[-1] * lam / k)
    s = sum(p)
    return Dist(0, [q / s for q in p])


def _combine(x: Dist, y: Dist, sign: int) -> Dist:
    lo = x.lo + sign * (y.lo if sign > 0 else y.lo + len(y.p) - 1)
    out = [0.0] * (len(x.p) + len(y.p) - 1)
    for i, a in enumerate(x.p):
        if a < _PRUNE:
            continue
        for j, b in enumerate(y.p):
            k = i + j if sign > 0 else i + len(y.p) - 1 - j
            out[k] += a * b
    return Dist(lo, out)


def add(x: Dist, y: Dist) -> Dist:
    return _combine(x, y, 1)


def sub(x: Dist, y: Dist) -> Dist:
    return _combine(x, y, -1)


def _result(diff: int) -> int:
    """0 home win, 1 draw, 2 away win."""
    return 0 if diff > 0 else (1 if diff == 0 else 2)


class Period:
    """Home and away counts over one period (a half, or the match), independent of each other."""

    def __init__(self, home: Dist, away: Dist):
        self.home = home
        self.away = away

    @classmethod
    def of(cls, rates: Pair) -> Period:
        return cls(poisson(rates.home), poisson(rates.away))

    @cached_property
    def total(self) -> Dist:
        return add(self.home, self.away)

    @cached_property
    def diff(self) -> Dist:
        return sub(self.home, self.away)

    @cached_property
    def result(self) -> tuple[float, float, float]:
        d = self.diff
        home = d.above(0)
        draw = d.at(0)
        return home, draw, 1.0 - home - draw

    def score(self, h: int, a: int) -> float:
        return self.home.at(h) * self.away.at(a)

    @cached_property
    def cells(self) -> list[tuple[int, int, float]]:
        return [(h, a, ph * pa) for h, ph in enumerate(self.home.p) for a, pa in enumerate(self.away.p)
                if ph * pa >= _PRUNE]

    @cached_property
    def joint(self) -> _Joint:
        return _Joint.of(self.cells, len(self.total.p))

    @property
    def btts(self) -> float:
        return (1.0 - self.home.at(0)) * (1.0 - self.away.at(0))


@dataclass(frozen=True)
class _Joint:
    """Result × total, result × both-score, both-score × total, result × any clean sheet."""

    res_total: list[list[float]]
    res_btts: list[list[float]]
    btts_total: list[list[float]]
    res_clean: list[list[float]]

    @classmethod
    def of(cls, cells: list[tuple[int, int, float]], totals: int) -> _Joint:
        rt = [[0.0] * totals for _ in range(3)]
        rb = [[0.0, 0.0] for _ in range(3)]
        bt = [[0.0] * totals for _ in range(2)]
        rc = [[0.0, 0.0] for _ in range(3)]
        for h, a, p in cells:
            r = _result(h - a)
            b = 1 if h and a else 0
            rt[r][h + a] += p
            rb[r][b] += p
            bt[b][h + a] += p
            rc[r][0 if b else 1] += p
        return cls(rt, rb, bt, rc)


def _above(row: list[float], line: float) -> float:
    return sum(row[math.floor(line) + 1:])


@dataclass
class Match:
    """Every period the markets need, built lazily from the rates."""

    rates: MatchRates

    @cached_property
    def h1(self) -> Period:
        return Period.of(self.rates.goals_1h)

    @cached_property
    def h2(self) -> Period:
        return Period.of(self.rates.goals_2h)

    @cached_property
    def ft(self) -> Period:
        return Period(add(self.h1.home, self.h2.home), add(self.h1.away, self.h2.away))

    @cached_property
    def corners_1h(self) -> Period:
        return Period.of(self.rates.corners_1h)

    @cached_property
    def corners_ft(self) -> Period:
        c1, c2 = self.rates.corners_1h, self.rates.corners_2h
        return Period.of(Pair(c1.home + c2.home, c1.away + c2.away))

    @cached_property
    def cards_1h(self) -> Period:
        return Period.of(self.rates.cards_1h)

    @cached_property
    def cards_ft(self) -> Period:
        c1, c2 = self.rates.cards_1h, self.rates.cards_2h
        return Period.of(Pair(c1.home + c2.home, c1.away + c2.away))

    def window(self, minutes: float) -> Period:
        """The first ``minutes`` of the match; early minutes see fewer goals than the average."""
        return Period.of(self.rates.goals_1h.scaled(minutes / 45.0 * 0.85))


# Ladders ----------------------------------------------------------------------------------

def _ladder(lo: float, hi: float, step: float) -> tuple[float, ...]:
    n = round((hi - lo) / step)
    return tuple(round(lo + i * step, 2) + 0.0 for i in range(n + 1))


_GOALS_FT = _ladder(0.5, 6.5, 1)
_GOALS_1H = _ladder(0.5, 3.5, 1)
_GOALS_2H = _ladder(0.5, 4.5, 1)
_TEAM_FT = _ladder(0.5, 4.5, 1)
_TEAM_HALF = _ladder(0.5, 2.5, 1)
_COMBO = _ladder(1.5, 4.5, 1)
_AH_FT = _ladder(-3.0, 3.0, 0.25)
_AH_HALF = _ladder(-1.5, 1.5, 0.25)
_EH_FT = (-3.0, -2.0, -1.0, 1.0, 2.0, 3.0)
_EH_HALF = (-2.0, -1.0, 1.0, 2.0)

LINES: dict[str, tuple[float, ...]] = {
    "over_under_ft": _GOALS_FT, "over_under_1h": _GOALS_1H, "over_under_2h": _GOALS_2H,
    "home_over_under_ft": _TEAM_FT, "away_over_under_ft": _TEAM_FT,
    "home_over_under_1h": _TEAM_HALF, "away_over_under_1h": _TEAM_HALF,
    "home_over_under_2h": _TEAM_HALF, "away_over_under_2h": _TEAM_HALF,
    "1x2_over_under_ft": _COMBO, "double_chance_over_under_ft": _COMBO,
    "over_under_btts_ft": _COMBO, "htft_over_under": _COMBO,
    "asian_handicap_ft": _AH_FT, "asian_handicap_1h": _AH_HALF, "asian_handicap_2h": _AH_HALF,
    "handicap_3way_ft": _EH_FT, "handicap_3way_1h": _EH_HALF, "handicap_3way_2h": _EH_HALF,
    "corners_over_under_ft": _ladder(6.5, 13.5, 1), "corners_over_under_1h": _ladder(2.5, 6.5, 1),
    "home_corners_ft": _ladder(2.5, 8.5, 1), "away_corners_ft": _ladder(2.5, 8.5, 1),
    "home_corners_1h": _ladder(0.5, 4.5, 1), "away_corners_1h": _ladder(0.5, 4.5, 1),
    "corner_handicap_ft": _ladder(-5.0, 5.0, 0.5), "corner_handicap_1h": _ladder(-2.5, 2.5, 0.5),
    "bookings_over_under_ft": _ladder(1.5, 7.5, 1), "bookings_over_under_1h": _ladder(0.5, 3.5, 1),
    "home_bookings_ft": _ladder(0.5, 4.5, 1), "away_bookings_ft": _ladder(0.5, 4.5, 1),
    "home_bookings_1h": _ladder(0.5, 2.5, 1), "away_bookings_1h": _ladder(0.5, 2.5, 1),
}

#: A line market's balance is read on this market's first and last outcome (combos follow the total).
BALANCE_MARKET = {
    "1x2_over_under_ft": "over_under_ft", "double_chance_over_under_ft": "over_under_ft",
    "over_under_btts_ft": "over_under_ft", "htft_over_under": "over_under_ft",
}


# Building blocks ---------------------------------------------------------------------------

def _yes(p: float) -> Probs:
    return {"yes": p, "no": 1.0 - p}


def _hda(r: tuple[float, float, float]) -> Probs:
    return {"home": r[0], "draw": r[1], "away": r[2]}


def _dc(r: tuple[float, float, float]) -> Probs:
    return {"home_draw": r[0] + r[1], "draw_away": r[1] + r[2], "home_away": r[0] + r[2]}


def _no_bet(win: float, lose: float) -> tuple[float, float]:
    return win / (win + lose), lose / (win + lose)


def _ou(d: Dist, lines: Iterable[float]) -> dict[Line, Probs]:
    out: dict[Line, Probs] = {}
    for line in lines:
        over = d.above(line)
        out[line] = {"over": over, "under": 1.0 - over}
    return out


def _odd_even(d: Dist) -> Probs:
    odd = d.odd()
    return {"odd": odd, "even": 1.0 - odd}


def _asian(diff: Dist, lines: Iterable[float]) -> dict[Line, Probs]:
    out: dict[Line, Probs] = {}
    for line in lines:
        parts = (line - 0.25, line + 0.25) if (line * 4) % 2 else (line,)
        win = lose = 0.0
        for part in parts:
            w = diff.above(-part)
            push = diff.at(int(-part)) if float(part).is_integer() else 0.0
            win += w
            lose += 1.0 - w - push
        home, away = _no_bet(win, lose)
        out[line] = {"home": home, "away": away}
    return out


def _european(diff: Dist, lines: Iterable[float]) -> dict[Line, Probs]:
    out: dict[Line, Probs] = {}
    for line in lines:
        home = diff.above(-line)
        draw = diff.at(int(-line))
        out[line] = {"home": home, "draw": draw, "away": 1.0 - home - draw}
    return out


def _scores(p: Period, keys: Iterable[str]) -> Probs:
    out = {}
    for key in keys:
        h, a = key.split("_")
        out[key] = p.score(int(h), int(a))
    return out


_CS_FT_BETPAWA = ("0_0", "0_1", "0_2", "0_3", "0_4", "0_5", "0_6", "1_0", "1_1", "1_2", "1_3", "1_4", "1_5",
                  "2_0", "2_1", "2_2", "2_3", "2_4", "3_0", "3_1", "3_2", "3_3", "4_0", "4_1", "4_2", "5_0",
                  "5_1", "6_0")
_CS_FT_ALL = _CS_FT_BETPAWA + ("3_4", "4_3", "4_4")
_CS_HALF = ("0_0", "1_0", "0_1", "1_1")


def _correct_score_ft(ft: Period) -> Probs:
    """``other`` is relative to the reference book's list; ``book_view`` recomputes it per book."""
    out = _scores(ft, _CS_FT_ALL)
    out["other"] = 1.0 - sum(out[k] for k in _CS_FT_BETPAWA)
    return out


# Goal-count ranges: exact goals and multigoals outcomes are intervals of one count.
_INF = math.inf
RANGES: dict[str, dict[str, tuple[int, float]]] = {
    "exact_goals_ft": {**{str(k): (k, k) for k in range(6)}, "6+": (6, _INF)},
    "exact_goals_1h": {"0": (0, 0), "1": (1, 1), "2+": (2, _INF), "2": (2, 2), "3+": (3, _INF)},
    "exact_goals_2h": {"0": (0, 0), "1": (1, 1), "2+": (2, _INF)},
    "home_exact_goals_ft": {"0": (0, 0), "1": (1, 1), "2": (2, 2), "3+": (3, _INF)},
    "away_exact_goals_ft": {"0": (0, 0), "1": (1, 1), "2": (2, 2), "3+": (3, _INF)},
    "multigoals_ft": {"0_1": (0, 1), "2_3": (2, 3), "4_5": (4, 5), "6+": (6, _INF)},
    "multigoals_1h": {"0_1": (0, 1), "2_3": (2, 3), "4+": (4, _INF)},
    "multigoals_2h": {"0_1": (0, 1), "2_3": (2, 3), "4+": (4, _INF)},
    "home_multigoals_ft": {"0": (0, 0), "1_2": (1, 2), "1_3": (1, 3), "2_3": (2, 3), "3+": (3, _INF)},
    "away_multigoals_ft": {"0": (0, 0), "1_2": (1, 2), "1_3": (1, 3), "2_3": (2, 3), "3+": (3, _INF)},
}

#: Markets whose outcomes each cover more than one result (every result lies in two of them).
DOUBLE_COVER = frozenset({
    "double_chance_ft", "double_chance_1h", "double_chance_2h", "double_chance_btts_ft",
    "double_chance_btts_1h", "double_chance_btts_2h", "double_chance_over_under_ft",
})


def overlapping(market: str, outcomes: Iterable[str]) -> bool:
    """Whether some of these outcomes can win together (so they are priced one by one)."""
    if market in DOUBLE_COVER:
        return True
    ranges = RANGES.get(market)
    if ranges is None:
        return False
    spans = sorted(ranges[o] for o in outcomes)
    return any(nxt[0] <= cur[1] for cur, nxt in zip(spans, spans[1:]))


def _ranges(market: str, d: Dist) -> Probs:
    return {key: d.between(lo, hi) for key, (lo, hi) in RANGES[market].items()}


def _htft(h1: Period, h2: Period) -> Probs:
    acc = [[0.0] * 3 for _ in range(3)]
    d1, d2 = h1.diff, h2.diff
    for i, p1 in enumerate(d1.p):
        if p1 < _PRUNE:
            continue
        x = d1.lo + i
        r1 = _result(x)
        for j, p2 in enumerate(d2.p):
            acc[r1][_result(x + d2.lo + j)] += p1 * p2
    names = ("1", "x", "2")
    return {f"{names[a]}_{names[b]}": acc[a][b] for a in range(3) for b in range(3)}


def _htft_over_under(h1: Period, h2: Period, lines: Iterable[float]) -> dict[Line, Probs]:
    totals = len(h1.total.p) + len(h2.total.p)
    acc = [[[0.0] * totals for _ in range(3)] for _ in range(3)]
    second = [(h - a, h + a, p) for h, a, p in h2.cells if p >= 1e-11]
    for h, a, p1 in h1.cells:
        if p1 < 1e-11:
            continue
        d1, t1 = h - a, h + a
        row = acc[_result(d1)]
        for d2, t2, p2 in second:
            row[_result(d1 + d2)][t1 + t2] += p1 * p2
    names = ("1", "x", "2")
    out: dict[Line, Probs] = {}
    for line in lines:
        probs: Probs = {}
        for a in range(3):
            for b in range(3):
                over = _above(acc[a][b], line)
                probs[f"{names[a]}_{names[b]}_over"] = over
                probs[f"{names[a]}_{names[b]}_under"] = sum(acc[a][b]) - over
        out[line] = probs
    return out


def _htft_correct_score(h1: Period, h2: Period, keys: Iterable[str]) -> Probs:
    """``a-b_c-d`` (half time a-b, full time c-d), ``a-b_4+`` (full time 4+ goals), ``4+_4+``."""
    t1, t2 = h1.total, h2.total
    out: Probs = {}
    for key in keys:
        ht, ft = key.split("_")
        if ht == "4+":
            out[key] = t1.above(3)
            continue
        h, a = (int(x) for x in ht.split("-"))
        if ft == "4+":
            out[key] = h1.score(h, a) * t2.above(3 - h - a)
        else:
            fh, fa = (int(x) for x in ft.split("-"))
            out[key] = h1.score(h, a) * h2.score(fh - h, fa - a)
    return out


_HTFT_CS = tuple(
    f"{ht}_{ft}"
    for ht, fts in (
        ("0-0", ("0-0", "0-1", "0-2", "0-3", "1-0", "1-1", "1-2", "2-0", "2-1", "3-0", "4+")),
        ("0-1", ("0-1", "0-2", "0-3", "1-1", "1-2", "2-1", "4+")), ("0-2", ("0-2", "0-3", "1-2", "4+")),
        ("0-3", ("0-3", "4+")), ("1-0", ("1-0", "1-1", "1-2", "2-0", "2-1", "3-0", "4+")),
        ("1-1", ("1-1", "1-2", "2-1", "4+")), ("1-2", ("1-2", "4+")), ("2-0", ("2-0", "2-1", "3-0", "4+")),
        ("2-1", ("2-1", "4+")), ("3-0", ("3-0", "4+")), ("4+", ("4+",)),
    )
    for ft in fts
)

_MULTISCORES = {
    "home_123": ((1, 0), (2, 0), (3, 0)), "away_123": ((0, 1), (0, 2), (0, 3)),
    "home_456": ((4, 0), (5, 0), (6, 0)), "away_456": ((0, 4), (0, 5), (0, 6)),
    "home_2141": ((2, 1), (3, 1), (4, 1)), "away_1214": ((1, 2), (1, 3), (1, 4)),
    "home_3243": ((3, 2), (4, 2), (4, 3), (5, 1)), "away_2334": ((2, 3), (2, 4), (3, 4), (1, 5)),
}


def _multiscores(ft: Period) -> Probs:
    out = {k: sum(ft.score(h, a) for h, a in scores) for k, scores in _MULTISCORES.items()}
    home, draw, away = ft.result
    out["draw"] = draw
    out["other_home"] = home - sum(out[k] for k in _MULTISCORES if k.startswith("home"))
    out["other_away"] = away - sum(out[k] for k in _MULTISCORES if k.startswith("away"))
    return out


def _first_to(periods: tuple[Pair, ...]) -> Probs:
    """Which team has the first arrival, scanning the periods in the given order.

    Arrivals are Poisson with team shares that differ by period: the first period with any
    arrival decides, in proportion to the two teams' rates there. Scanning the halves backwards
    gives "last goal" / "last corner".
    """
    home = away = 0.0
    nothing_yet = 1.0
    for rates in periods:
        total = rates.home + rates.away
        some = nothing_yet * (1.0 - math.exp(-total))
        home += some * rates.home / total
        away += some * rates.away / total
        nothing_yet *= math.exp(-total)
    return {"home": home, "none": 1.0 - home - away, "away": away}


def _highest_half(first: Dist, second: Dist) -> Probs:
    diff = sub(first, second)
    one = diff.above(0)
    equal = diff.at(0)
    return {"1st": one, "equal": equal, "2nd": 1.0 - one - equal}


# The market table --------------------------------------------------------------------------

def _goal_markets(m: Match) -> Table:
    ft, h1, h2 = m.ft, m.h1, m.h2
    hw, dr, aw = ft.result
    jt = ft.joint
    t: Table = {}

    def put(key: str, probs: Probs, line: Line = None) -> None:
        t[(key, line)] = probs

    def put_lines(key: str, by_line: dict[Line, Probs]) -> None:
        for line, probs in by_line.items():
            t[(key, line)] = probs

    for suffix, p in (("ft", ft), ("1h", h1), ("2h", h2)):
        put(f"1x2_{suffix}", _hda(p.result))
        put(f"double_chance_{suffix}", _dc(p.result))
        put(f"btts_{suffix}", _yes(p.btts))
        put(f"odd_even_{suffix}", _odd_even(p.total))
        put_lines(f"over_under_{suffix}", _ou(p.total, LINES[f"over_under_{suffix}"]))
        put_lines(f"home_over_under_{suffix}", _ou(p.home, LINES[f"home_over_under_{suffix}"]))
        put_lines(f"away_over_under_{suffix}", _ou(p.away, LINES[f"away_over_under_{suffix}"]))
        put_lines(f"asian_handicap_{suffix}", _asian(p.diff, LINES[f"asian_handicap_{suffix}"]))
        put_lines(f"handicap_3way_{suffix}", _european(p.diff, LINES[f"handicap_3way_{suffix}"]))
        home, away = _no_bet(p.result[0], p.result[2])
        put(f"draw_no_bet_{suffix}", {"home": home, "away": away})
        put(f"home_clean_sheet_{suffix}", _yes(p.away.at(0)))
        put(f"away_clean_sheet_{suffix}", _yes(p.home.at(0)))
        rb = p.joint.res_btts
        put(f"double_chance_btts_{suffix}", {
            "1x_yes": rb[0][1] + rb[1][1], "1x_no": rb[0][0] + rb[1][0],
            "x2_yes": rb[1][1] + rb[2][1], "x2_no": rb[1][0] + rb[2][0],
            "12_yes": rb[0][1] + rb[2][1], "12_no": rb[0][0] + rb[2][0],
        })
    put("correct_score_ft", _correct_score_ft(ft))
    put("correct_score_1h", _scores(h1, _CS_HALF))
    put("correct_score_2h", _scores(h2, _CS_HALF))
    put("1x2_10min", _hda(m.window(10).result))
    put("1x2_5min", _hda(m.window(5).result))
    put("htft", _htft(h1, h2))
    put("home_odd_even_ft", _odd_even(ft.home))
    put("away_odd_even_ft", _odd_even(ft.away))
    for key in RANGES:
        side = ft.home if key.startswith("home") else ft.away if key.startswith("away") else None
        period = h1 if key.endswith("1h") else h2 if key.endswith("2h") else ft
        put(key, _ranges(key, side if side is not None else period.total))

    put("home_win_to_nil_ft", _yes(ft.away.at(0) * (1.0 - ft.home.at(0))))
    put("away_win_to_nil_ft", _yes(ft.home.at(0) * (1.0 - ft.away.at(0))))
    put("highest_scoring_half", _highest_half(h1.total, h2.total))
    put("home_highest_scoring_half", _highest_half(h1.home, h2.home))
    put("away_highest_scoring_half", _highest_half(h1.away, h2.away))
    put("home_win_both_halves", _yes(h1.result[0] * h2.result[0]))
    put("away_win_both_halves", _yes(h1.result[2] * h2.result[2]))
    put("home_win_either_half", _yes(1.0 - (1.0 - h1.result[0]) * (1.0 - h2.result[0])))
    put("away_win_either_half", _yes(1.0 - (1.0 - h1.result[2]) * (1.0 - h2.result[2])))
    put("home_score_both_halves", _yes((1.0 - h1.home.at(0)) * (1.0 - h2.home.at(0))))
    put("away_score_both_halves", _yes((1.0 - h1.away.at(0)) * (1.0 - h2.away.at(0))))
    h0, a0 = ft.home.at(0), ft.away.at(0)
    put("which_team_to_score", {
        "home_only": (1.0 - h0) * a0, "away_only": h0 * (1.0 - a0),
        "both": (1.0 - h0) * (1.0 - a0), "neither": h0 * a0,
    })
    d = ft.diff
    put("winning_margin", {
        "home_1": d.at(1), "home_2": d.at(2), "home_3+": d.above(2), "draw": d.at(0),
        "away_1": d.at(-1), "away_2": d.at(-2), "away_3+": 1.0 - d.above(-3),
    })
    names = ("home", "draw", "away")
    combos: dict[Line, Probs] = {}
    dc_combos: dict[Line, Probs] = {}
    ou_btts: dict[Line, Probs] = {}
    for line in LINES["1x2_over_under_ft"]:
        over = [_above(jt.res_total[r], line) for r in range(3)]
        under = [sum(jt.res_total[r]) - over[r] for r in range(3)]
        combos[line] = {f"{names[r]}_{side}": (over if side == "over" else under)[r]
                        for r in range(3) for side in ("over", "under")}
        dc_combos[line] = {
            "1x_over": over[0] + over[1], "1x_under": under[0] + under[1],
            "x2_over": over[1] + over[2], "x2_under": under[1] + under[2],
            "12_over": over[0] + over[2], "12_under": under[0] + under[2],
        }
        yes_over = _above(jt.btts_total[1], line)
        no_over = _above(jt.btts_total[0], line)
        ou_btts[line] = {"over_yes": yes_over, "over_no": no_over,
                         "under_yes": sum(jt.btts_total[1]) - yes_over, "under_no": sum(jt.btts_total[0]) - no_over}
    put_lines("1x2_over_under_ft", combos)
    put_lines("double_chance_over_under_ft", dc_combos)
    put_lines("over_under_btts_ft", ou_btts)
    rb = jt.res_btts
    put("1x2_btts_ft", {f"{names[r]}_{'yes' if b else 'no'}": rb[r][b] for r in range(3) for b in (1, 0)})
    put("htft_correct_score", _htft_correct_score(h1, h2, _HTFT_CS))
    put_lines("htft_over_under", _htft_over_under(h1, h2, LINES["htft_over_under"]))
    put("multiscores_ft", _multiscores(ft))

    first = _first_to((m.rates.goals_1h, m.rates.goals_2h))
    last = _first_to((m.rates.goals_2h, m.rates.goals_1h))
    put("first_goal_ft", first)
    put("last_goal_ft", last)
    put("last_score_ft", dict(last))
    put("home_no_bet_ft", dict(zip(("yes", "no"), _no_bet(dr, aw))))
    put("away_no_bet_ft", dict(zip(("yes", "no"), _no_bet(dr, hw))))
    put("home_win_1plus_ft", _yes(hw))
    put("home_win_2plus_ft", _yes(d.above(1)))
    rc = jt.res_clean
    any_clean = rc[0][1] + rc[1][1] + rc[2][1]
    put("home_or_clean_sheet_ft", _yes(hw + any_clean - rc[0][1]))
    put("draw_or_clean_sheet_ft", _yes(dr + any_clean - rc[1][1]))
    put("away_or_clean_sheet_ft", _yes(aw + any_clean - rc[2][1]))
    put("home_to_score_ft", _yes(1.0 - h0))
    put("away_to_score_ft", _yes(1.0 - a0))
    put("btts_2plus_ft", _yes(ft.home.above(1) * ft.away.above(1)))
    put("btts_both_halves", _yes(h1.btts * h2.btts))
    put("no_draw_btts_ft", _yes(rb[0][1] + rb[2][1]))
    rt = jt.res_total
    over25 = [_above(rt[r], 2.5) for r in range(3)]
    put("home_or_over_25_ft", _yes(hw + over25[1] + over25[2]))
    put("draw_or_over_25_ft", _yes(dr + over25[0] + over25[2]))
    put("away_or_over_25_ft", _yes(aw + over25[0] + over25[1]))
    put("home_or_btts_ft", _yes(hw + rb[1][1] + rb[2][1]))
    put("both_halves_over_15", _yes(h1.total.above(1.5) * h2.total.above(1.5)))
    return t


def _corner_and_card_markets(m: Match) -> Table:
    t: Table = {}

    def put_lines(key: str, by_line: dict[Line, Probs]) -> None:
        for line, probs in by_line.items():
            t[(key, line)] = probs

    r = m.rates
    for prefix, ft, h1 in (("corners", m.corners_ft, m.corners_1h), ("bookings", m.cards_ft, m.cards_1h)):
        put_lines(f"{prefix}_over_under_ft", _ou(ft.total, LINES[f"{prefix}_over_under_ft"]))
        put_lines(f"{prefix}_over_under_1h", _ou(h1.total, LINES[f"{prefix}_over_under_1h"]))
        t[(f"{prefix}_1x2_ft", None)] = _hda(ft.result)
        t[(f"{prefix}_1x2_1h", None)] = _hda(h1.result)
        for side in ("home", "away"):
            for suffix, p in (("ft", ft), ("1h", h1)):
                key = f"{side}_{prefix}_{suffix}"
                put_lines(key, _ou(getattr(p, side), LINES[key]))
    put_lines("corner_handicap_ft", _asian(m.corners_ft.diff, LINES["corner_handicap_ft"]))
    put_lines("corner_handicap_1h", _asian(m.corners_1h.diff, LINES["corner_handicap_1h"]))
    t[("corners_odd_even_ft", None)] = _odd_even(m.corners_ft.total)
    t[("corners_odd_even_1h", None)] = _odd_even(m.corners_1h.total)
    t[("last_corner_ft", None)] = _first_to((r.corners_2h, r.corners_1h))
    t[("first_corner_ft", None)] = _first_to((r.corners_1h, r.corners_2h))
    t[("last_corner_1h", None)] = _first_to((r.corners_1h,))
    t[("first_card_ft", None)] = _first_to((r.cards_1h, r.cards_2h))
    home_red = 1.0 - math.exp(-r.reds.home)
    away_red = 1.0 - math.exp(-r.reds.away)
    t[("sending_off_ft", None)] = _yes(1.0 - (1.0 - home_red) * (1.0 - away_red))
    t[("home_sending_off_ft", None)] = _yes(home_red)
    t[("away_sending_off_ft", None)] = _yes(away_red)
    return t


_BUILDERS: tuple[Callable[[Match], Table], ...] = (_goal_markets, _corner_and_card_markets)


def market_table(rates: MatchRates) -> Table:
    """True probabilities of every modelled (market, line): canonical outcome key -> probability."""
    m = Match(rates)
    table: Table = {}
    for build in _BUILDERS:
        table.update(build(m))
    return table


def book_view(market: str, probs: Probs, outcomes: Iterable[str]) -> Probs:
    """The probabilities of the outcomes one book lists; its ``other`` is what its list leaves out."""
    keys = list(outcomes)
    view = {k: probs[k] for k in keys if k != "other"}
    if "other" in keys:
        view["other"] = max(0.0, 1.0 - sum(view.values()))
    return view

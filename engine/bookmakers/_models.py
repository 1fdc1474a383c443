"""What every bookmaker module produces, whatever its book's JSON looks like.

Plain frozen dataclasses: these cross from the parsers into the pipeline and the store, and
are compared by value in the round-trip tests against the simulator's ground truth.
"""

from __future__ import annotations

import math
import re
import reprlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

FailureKind = Literal["http_status", "timeout", "transport", "malformed", "not_found", "business"]

# Reasons a raw market (or one of its outcomes) was not turned into canonical prices.
UNKNOWN_MARKET = "UNKNOWN_MARKET"  # id / key prefix not in the catalogue
UNKNOWN_PARAM = "UNKNOWN_PARAM"  # a specifier / @param the market does not take
INVALID_SPECIFIER = "INVALID_SPECIFIER"  # a line that does not parse
UNKNOWN_OUTCOME = "UNKNOWN_OUTCOME"  # outcome name / suffix not in the catalogue entry
BAD_ODDS = "BAD_ODDS"  # odds missing, not a number, <= 1.0, NaN / inf
MALFORMED_MARKET = "MALFORMED_MARKET"  # structure of the market object is wrong


#: Longest text a report keeps. Reports (unmapped entries, failure messages) quote the payload;
#: a hostile one (a 1 MB team name, odds nested 1,000 lists deep) must not flood the unmapped
#: table, the run's error details or the logs.
REPORT_LIMITS = {"market_id": 120, "detail": 300, "name": 200}
MESSAGE_LIMIT = 500

_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 2, 80, 80, 40


def shown(value: Any) -> str:
    """``repr`` for reports, bounded in length and depth: plain ``repr`` of a deeply nested
    value raises RecursionError, and of a huge string copies it whole."""
    try:
        return _SHOWN.repr(value)
    except (ValueError, RecursionError):  # an int past Python's 4,300-digit str limit, a cycle
        return f"<{type(value).__name__}>"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)


def decimal_odds(value: Any) -> float | None:
    """Decimal odds from a number or a plain decimal string, or None unless finite and above
    1.0 (the books send both). Only plain decimals: ``float()`` alone would also read "nan",
    "1e3" and "1_0" (= 10), and raise OverflowError on a huge integer."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if len(value) > 40 or not _DECIMAL.fullmatch(value):
            return None
    elif not isinstance(value, (int, float)):
        return None
    try:
        odds = float(value)
    except OverflowError:
        return None
    return odds if math.isfinite(odds) and odds > 1.0 else None


@dataclass(frozen=True, order=True)
class Price:
    """One canonical price: catalogue market key, line from the home side (None if the
    market has none), canonical outcome key, decimal odds, and whether it can be bet now."""

    market: str
    line: float | None
    outcome: str
    odds: float
    available: bool = True


@dataclass(frozen=True)
class Unmapped:
    """A raw market (or outcome) the parser could not map, with the reason; never dropped."""

    market_id: str  # the book's raw market id / Bet9ja key prefix (e.g. "900069", "S_OUA")
    reason: str  # one of the constants above
    detail: str = ""  # e.g. the specifier, the outcome name, the bad odds value
    name: str = ""  # the book's market description, when it has one

    def __post_init__(self) -> None:
        for attr, limit in REPORT_LIMITS.items():
            value = getattr(self, attr)
            if len(value) > limit:
                object.__setattr__(self, attr, clip(value, limit))


@dataclass(frozen=True)
class Tournament:
    book: str
    tournament_id: str  # the book's own id (BetPawa competition id, "sr:tournament:N", Bet9ja G key)
    name: str
    country: str


@dataclass(frozen=True)
class DiscoveredEvent:
    book: str
    book_event_id: str  # the id the detail endpoint takes ("33100001", "sr:match:61234567", "709000001")
    sr_id: str  # SportRadar match id as a numeric string
    kickoff: datetime  # aware, UTC
    country: str
    tournament: str
    home: str
    away: str
    tournament_id: str = ""


@dataclass
class ParsedEvent:
    """An event detail payload turned into canonical prices (plus what could not be mapped)."""

    book: str
    book_event_id: str
    sr_id: str
    kickoff: datetime
    country: str
    tournament: str
    home: str
    away: str
    prices: list[Price] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    raw_markets: int = 0  # market instances seen in the payload (each line counts once)


@dataclass(frozen=True)
class FetchFailure:
    """Why one request for one book did not give a usable payload."""

    book: str
    kind: FailureKind
    message: str
    status: int | None = None
    book_event_id: str | None = None
    attempts: int = 1

    def __post_init__(self) -> None:
        if len(self.message) > MESSAGE_LIMIT:
            object.__setattr__(self, "message", clip(self.message, MESSAGE_LIMIT))


@dataclass
class Discovery:
    """One book's discovery: events found, plus failures of individual tournaments / the tree."""

    book: str
    events: list[DiscoveredEvent] = field(default_factory=list)
    failures: list[FetchFailure] = field(default_factory=list)
    tournaments: int = 0
    tree_failed: bool = False  # the sport tree itself could not be fetched: the book is unreachable
    seconds: float = 0.0


class MalformedPayload(ValueError):
    """The payload as a whole (an event, a tree) does not have the book's shape.

    The one exception a parser raises for what a book sent; the message is clipped because it
    quotes the payload and ends up in the run's error details and the logs."""

    def __init__(self, message: str) -> None:
        super().__init__(clip(message, MESSAGE_LIMIT))

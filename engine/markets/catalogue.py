"""The canonical market catalogue, loaded once from the packaged ``market-map.csv``.

Every book's market id / key and outcome name is indexed here so parsers never guess. The CSV
is validated at load: two catalogue entries claiming the same (book market id, outcome name)
would make one of them silently lose prices, so that is an error, not a last-one-wins.

Bet9ja's ``S_HAOU``/``S_HA1HOU``/``S_HA2HOU`` carry home and away team totals in one key family;
the home and away entries share the key with disjoint outcome suffixes, which is how the split
is expressed. ``haou_combined`` is a routing-only row (no BetPawa or SportyBet id, outcomes that
duplicate the split rows) and is kept out of the Bet9ja index.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

BOOK_COLUMNS = {"betpawa": "bp", "sportybet": "sb", "bet9ja": "b9"}
ROUTING_ONLY = {"haou_combined"}
CATEGORY_ORDER = ("popular", "goals", "handicaps", "combos", "halves", "corners", "cards", "specials", "other")


class CatalogueError(ValueError):
    pass


@dataclass(frozen=True)
class Outcome:
    key: str
    names: dict[str, str | None]  # book -> that book's outcome name / desc / suffix

    def name(self, book: str) -> str | None:
        return self.names.get(book)


@dataclass(frozen=True)
class Market:
    key: str
    name: str
    categories: tuple[str, ...]
    ids: dict[str, str | None]  # book -> BetPawa marketType.id / SportyBet id / Bet9ja key prefix
    has_line: bool
    line_kind: str  # none | total | asian_handicap | european_handicap | variant_specifier | time_window_specifier
    outcomes: tuple[Outcome, ...]

    def id_for(self, book: str) -> str | None:
        return self.ids.get(book)

    def outcome_names(self, book: str) -> dict[str, str]:
        """Book outcome name -> canonical outcome key, for the outcomes this book can express."""
        return {o.names[book]: o.key for o in self.outcomes if o.names.get(book)}


@dataclass(frozen=True)
class Catalogue:
    markets: dict[str, Market]
    by_book_id: dict[str, dict[str, tuple[Market, ...]]] = field(repr=False)

    def lookup(self, book: str, market_id: str) -> tuple[Market, ...]:
        return self.by_book_id[book].get(market_id, ())

    def __len__(self) -> int:
        return len(self.markets)


_OUTCOME = re.compile(r"^(?P<key>[^\[]+)\[bp=(?P<bp>.*?);sb=(?P<sb>.*?);b9=(?P<b9>.*?)\]$")


def _parse_outcomes(raw: str, market_key: str) -> tuple[Outcome, ...]:
    outcomes = []
    # Outcome entries are '|'-separated, but SportyBet names may hold '|'-free commas only.
    for part in raw.split("]|"):
        part = part if part.endswith("]") else part + "]"
        m = _OUTCOME.match(part.strip())
        if not m:
            raise CatalogueError(f"{market_key}: cannot read outcome entry {part!r}")
        names = {
            book: (None if m.group(col) in ("", "-") else m.group(col))
            for book, col in BOOK_COLUMNS.items()
        }
        outcomes.append(Outcome(key=m.group("key"), names=names))
    keys = [o.key for o in outcomes]
    if len(keys) != len(set(keys)):
        raise CatalogueError(f"{market_key}: duplicate canonical outcome key")
    return tuple(outcomes)


def parse_catalogue(text: str) -> Catalogue:
    markets: dict[str, Market] = {}
    for row in csv.DictReader(text.splitlines()):
        key = row["canonical_key"].strip()
        if key in markets:
            raise CatalogueError(f"duplicate canonical_key {key!r}")
        cats = row["category_groups"].strip()
        markets[key] = Market(
            key=key,
            name=row["name"].strip(),
            categories=tuple(c for c in cats.split("|") if c and c != "n/a") or ("other",),
            ids={
                "betpawa": row["betpawa_market_id"].strip() or None,
                "sportybet": row["sportybet_market_id"].strip() or None,
                "bet9ja": row["bet9ja_key"].strip() or None,
            },
            has_line=row["has_line"].strip().lower() == "true",
            line_kind=row["line_kind"].strip(),
            outcomes=_parse_outcomes(row["outcomes"], key),
        )

    by_book_id: dict[str, dict[str, tuple[Market, ...]]] = {}
    for book in BOOK_COLUMNS:
        index: dict[str, list[Market]] = {}
        claimed: dict[tuple[str, str], str] = {}
        for m in markets.values():
            mid = m.ids[book]
            if not mid or m.key in ROUTING_ONLY:
                continue
            for o in m.outcomes:
                name = o.names[book]
                if not name:
                    continue
                norm = normalize_outcome_name(book, name)
                other = claimed.get((mid, norm))
                if other is not None:
                    raise CatalogueError(
                        f"{book} market {mid!r} outcome {name!r} is claimed by both {other!r} and {m.key!r}"
                    )
                claimed[(mid, norm)] = m.key
            index.setdefault(mid, []).append(m)
        by_book_id[book] = {k: tuple(v) for k, v in index.items()}
    return Catalogue(markets=markets, by_book_id=by_book_id)


def outcome_label(market: Market, outcome: str) -> str:
    """The label analysts know (BetPawa's name first), unique within the market."""
    for o in market.outcomes:
        if o.key == outcome:
            return o.name("betpawa") or o.name("sportybet") or o.name("bet9ja") or o.key
    return outcome


@lru_cache(maxsize=65536)
def normalize_outcome_name(book: str, name: str) -> str:
    """The form in which a book's outcome name is compared.

    SportyBet descriptions match case-insensitively; BetPawa combos are written with either
    ``" - "`` or ``" & "``; Bet9ja suffixes are exact.
    """
    name = " ".join(str(name).split())
    if book == "sportybet":
        return name.casefold()
    if book == "betpawa":
        return name.replace(" - ", " & ")
    return name


def normalize_line(value: float | None) -> float | None:
    """Lines are compared at two decimals (quarter lines stay distinct, float noise does not)."""
    if value is None:
        return None
    v = round(float(value), 2)
    return 0.0 if v == 0 else v


@lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    text = resources.files("engine.markets").joinpath("market-map.csv").read_text(encoding="utf-8")
    return parse_catalogue(text)

"""Bet9ja's payloads (GetSports, GetEventsInGroupV2, GetEvent) from simulator data.

Shapes follow reference/bookmaker-apis.md §4 and examples/bet9ja-*.json. Odds travel as one
flat dict of ``S_<MKT>[@<PARAM>]_<OUTCOME>`` keys with string values; the line is the ``@``
param (home side for handicaps, so a 3-way −1 is ``S_1X2HND@-1_1H``). Home and away team
totals share one key family per line (``S_HAOU@1.5_OH`` … ``_UA``) simply because both
catalogue rows carry the ``S_HAOU`` key with disjoint suffixes. Bet9ja has no suspension flag:
an unavailable price is left out. ``EXTID`` must be a string, ``ID`` a number.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from engine.bookmakers._models import Price
from engine.markets.catalogue import load_catalogue
from engine.simulator.noise import NoiseMarket

if TYPE_CHECKING:
    from engine.simulator.world import SimEvent, SimTournament

BOOK = "bet9ja"
DEFAULT_MARKET = "S_1X2"  # what GROUPMARKETID=1 embeds in the events list
_GCAT = {"popular": "POPULAR", "goals": "GOAL", "handicaps": "HANDICAP", "combos": "COMBINED",
         "halves": "HALF", "corners": "CORNERS", "cards": "BOOKINGS", "specials": "SPECIALS"}


def _num(x: float) -> str:
    return f"{x:g}" if x != 0 else "0"


def ok(data: Any) -> dict[str, Any]:
    return {"R": "OK", "D": data}


def not_found() -> dict[str, Any]:
    return {"R": "E", "D": None}


def sports(tournaments: Sequence[tuple[SimTournament, int]]) -> dict[str, Any]:
    """``GetSports``: ``D.PAL["1"].SG[<country id>].G[<group id>]``."""
    groups: dict[str, dict[str, Any]] = {}
    for t, count in tournaments:
        sg = groups.setdefault(t.bet9ja_country_id, {"SG_DESC": t.country, "NUM": 0, "G": {}})
        sg["NUM"] += count
        sg["G"][t.bet9ja_id] = {"G_DESC": t.name, "NUM": count}
    soccer = {"S_DESC": "Soccer", "NUM": sum(sg["NUM"] for sg in groups.values()), "SG": groups}
    return ok({"PAL": {"1": soccer, "2": {"S_DESC": "Basketball", "NUM": 0, "SG": {}}}})


def odds(prices: Iterable[Price], noise: Sequence[NoiseMarket] = (), only: str | None = None) -> dict[str, str]:
    """The flat ``O`` dict: available catalogue prices key family by key family, line by line
    (home and away team totals of one line side by side), then the noise keys."""
    cat = load_catalogue()
    position = {key: i for i, key in enumerate(cat.markets)}
    cells: list[tuple[str, float | None, int, int, str, str]] = []
    first: dict[str, int] = {}
    for p in prices:
        market = cat.markets[p.market]
        prefix = market.ids[BOOK]
        if not prefix or not p.available or (only is not None and prefix != only):
            continue
        idx = next(i for i, o in enumerate(market.outcomes) if o.key == p.outcome)
        suffix = market.outcomes[idx].names[BOOK]
        if not suffix:
            continue
        param = "" if p.line is None else "@" + _num(p.line)
        first[prefix] = min(first.get(prefix, len(position)), position[p.market])
        cells.append((prefix, p.line, position[p.market], idx, f"{prefix}{param}_{suffix}", f"{p.odds:.2f}"))
    cells.sort(key=lambda c: (first[c[0]], c[1] is not None, c[1] or 0.0, c[2], c[3]))
    out = {key: value for *_, key, value in cells}
    if only is None:
        for m in noise:
            param = "" if m.line is None else "@" + _num(m.line)
            for name, price in m.outcomes:
                out[f"S_{m.market_id}{param}_{name}"] = f"{price:.2f}"
    return out


def _mk(prices: Iterable[Price], noise: Sequence[NoiseMarket]) -> list[dict[str, Any]]:
    cat = load_catalogue()
    seen: dict[str, dict[str, Any]] = {}
    wanted = {p.market for p in prices}
    for market in cat.markets.values():
        prefix = market.ids[BOOK]
        if not prefix or market.key not in wanted:
            continue
        entry = seen.setdefault(prefix, {
            "ID": prefix, "DS": market.name, "GCAT": _GCAT.get(market.categories[0], "OTHER"),
            "MARKETID": str(len(seen) + 1), "SGN": [], "SGNK": []})
        for o in market.outcomes:
            suffix = o.names[BOOK]
            if suffix and suffix not in entry["SGNK"]:
                entry["SGNK"].append(suffix)
                entry["SGN"].append(o.names["betpawa"] or suffix)
    for m in noise:
        key = f"S_{m.market_id}"
        if key not in seen:
            seen[key] = {"ID": key, "DS": m.name, "GCAT": _GCAT.get(m.group, "OTHER"),
                         "MARKETID": str(len(seen) + 1), "SGN": [n for n, _ in m.outcomes],
                         "SGNK": [n for n, _ in m.outcomes]}
    return list(seen.values())


def _ids(event: SimEvent) -> dict[str, Any]:
    event_id = int(event.book_ids[BOOK])
    return {
        "ID": event_id,
        "C": str(1000 + event_id % 9000),
        "EXTID": str(event.sr_id),
        "DS": f"{event.home} - {event.away}",
        "STARTDATE": event.kickoff.strftime("%Y-%m-%d %H:%M:%S"),
        "SID": 1,
    }


def list_item(event: SimEvent, prices: Iterable[Price]) -> dict[str, Any]:
    t = event.tournament
    return {**_ids(event), "GID": int(t.bet9ja_id), "GN": t.name, "SG": t.country,
            "O": odds(prices, only=DEFAULT_MARKET)}


def events_in_group(items: Sequence[tuple[SimEvent, Iterable[Price]]]) -> dict[str, Any]:
    """``GetEventsInGroupV2``: the group's events, each with the 1X2 odds only."""
    return ok({"E": [list_item(e, prices) for e, prices in items]})


def event_detail(event: SimEvent, prices: Sequence[Price], noise: Sequence[NoiseMarket] = ()) -> dict[str, Any]:
    """``GetEvent?EVENTID=N``: the event with every odds key."""
    t = event.tournament
    return ok({
        **_ids(event),
        "SGID": int(t.bet9ja_country_id), "SG": t.country,
        "GID": int(t.bet9ja_id), "GN": t.name,
        "O": odds(prices, noise),
        "MK": _mk(prices, noise),
    })

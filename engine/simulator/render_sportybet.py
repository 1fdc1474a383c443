"""SportyBet's payloads (sport tree, ``pcEvents``, event detail) from simulator data.

Shapes follow reference/bookmaker-apis.md §3 and examples/sportybet-*.json. SportyBet's
validation is strict on types, so the renderer is too: market and outcome ``id`` and ``odds``
are strings, ``estimateStartTime`` is a number of epoch milliseconds, and every key the earlier
tool's model required (``product``, ``desc``, ``status``, ``favourite``, ``banned``,
``probability`` ...) is always present. Lines travel in ``specifier``: ``total=2.5``,
``hcp=-0.5`` (Asian, home side), ``hcp=0:1`` (3-way: home −1 is a one-goal start for the away
side), ``variant=sr:exact_goals:6+`` and ``from=1|to=10``.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from engine.bookmakers._models import Price
from engine.markets.catalogue import Market, load_catalogue
from engine.simulator.noise import NoiseMarket

if TYPE_CHECKING:
    from engine.simulator.world import SimEvent, SimTournament

BOOK = "sportybet"
OK = 10000
NOT_FOUND = 19000
SPORT = {"id": "sr:sport:1", "name": "Football"}
_GROUPS = {
    "popular": ("Main", "1001"), "goals": ("Goals", "1002"), "halves": ("Half", "1003"),
    "handicaps": ("Handicap", "1004"), "combos": ("Combo", "1005"), "corners": ("Corners", "1006"),
    "cards": ("Bookings", "1007"), "specials": ("Specials", "1008"), "other": ("Other", "1009"),
}
_PERIOD_PREFIX = {"Full Time": "", "First Half": "1st Half - ", "Second Half": "2nd Half - "}
_VARIANT = {"winning_margin": "sr:winning_margin:3+"}


def _num(x: float) -> str:
    return f"{x:g}" if x != 0 else "0"


def _ms(event: SimEvent) -> int:
    return int(event.kickoff.timestamp() * 1000)


def envelope(data: Any) -> dict[str, Any]:
    return {"bizCode": OK, "message": "0#0", "data": data}


def not_found() -> dict[str, Any]:
    """Unknown event: HTTP 200 with a business code other than 10000."""
    return {"bizCode": NOT_FOUND, "message": "Event not found", "data": None}


def bad_request(message: str) -> dict[str, Any]:
    return {"bizCode": 4000, "message": message, "data": None}


def sport_tree(tournaments: Sequence[tuple[SimTournament, int]]) -> dict[str, Any]:
    """``GET /api/ng/factsCenter/popularAndSportList``: categories (countries) and tournaments."""
    categories: dict[str, dict[str, Any]] = {}
    for t, count in tournaments:
        cat = categories.setdefault(t.sportybet_category_id, {
            "id": t.sportybet_category_id, "name": t.country, "eventSize": 0, "tournaments": []})
        cat["eventSize"] += count
        cat["tournaments"].append({"id": t.sportybet_id, "name": t.name, "eventSize": count})
    total = sum(c["eventSize"] for c in categories.values())
    return envelope({"sportList": [
        {**SPORT, "eventSize": total, "categories": list(categories.values())},
        {"id": "sr:sport:2", "name": "Basketball", "eventSize": 0, "categories": []},
    ]})


def _competitor(name: str) -> str:
    return f"sr:competitor:{100000 + zlib.crc32(name.encode()) % 900000}"


def _event(event: SimEvent, market_list: list[dict[str, Any]]) -> dict[str, Any]:
    t = event.tournament
    return {
        "eventId": event.book_ids[BOOK],
        "gameId": str(10000 + int(event.sr_id) % 90000),
        "productStatus": "0#0",
        "estimateStartTime": _ms(event),
        "status": 0,
        "matchStatus": "Not start",
        "homeTeamId": _competitor(event.home),
        "homeTeamName": event.home,
        "awayTeamId": _competitor(event.away),
        "awayTeamName": event.away,
        "sport": {**SPORT, "category": {"id": t.sportybet_category_id, "name": t.country,
                                        "tournament": {"id": t.sportybet_id, "name": t.name}}},
        "markets": market_list,
    }


# Markets ----------------------------------------------------------------------------------

def _desc(market: Market) -> str:
    base, _, period = market.name.rpartition(" - ")
    if not base or period not in _PERIOD_PREFIX:
        return market.name
    return _PERIOD_PREFIX[period] + base


def _specifier(market: Market, line: float | None) -> str | None:
    kind = market.line_kind
    if kind == "total" and line is not None:
        return f"total={_num(line)}"
    if kind == "asian_handicap" and line is not None:
        return f"hcp={_num(line)}"
    if kind == "european_handicap" and line is not None:
        return f"hcp={_num(line)}:0" if line >= 0 else f"hcp=0:{_num(-line)}"
    if kind == "variant_specifier":
        names = [o.names[BOOK] or "" for o in market.outcomes if o.names[BOOK]]
        last = names[-1].split()[0] if names else "0"
        return "variant=" + _VARIANT.get(market.key, f"sr:exact_goals:{last}")
    if kind == "time_window_specifier":
        return "from=1|to=10"
    return None


def _outcome(oid: str, desc: str, odds: float, active: bool) -> dict[str, Any]:
    return {
        "id": oid, "odds": f"{odds:.2f}", "probability": f"{min(1.0, 1 / odds):.4f}",
        "voidProbability": "0E-10", "isActive": 1 if active else 0, "desc": desc,
    }


def _market(mid: str, desc: str, group: str, specifier: str | None, changed_ms: int,
            outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    name, gid = _GROUPS.get(group, _GROUPS["other"])
    market: dict[str, Any] = {
        "id": mid, "product": 3, "desc": desc, "status": 0, "group": name, "groupId": gid,
        "marketGuide": "", "title": ",".join(o["desc"] for o in outcomes), "name": desc,
    }
    if specifier is not None:
        market["specifier"] = specifier
    market.update({
        "favourite": 0, "farNearOdds": 0, "sourceType": "BET_RADAR", "lastOddsChangeTime": changed_ms,
        "banned": False, "outcomes": outcomes,
    })
    return market


def markets(event: SimEvent, prices: Iterable[Price], noise: Sequence[NoiseMarket] = (),
            only: Collection[str] | None = None) -> list[dict[str, Any]]:
    """One market object per (market, line), catalogue order, then noise; ``only`` = the
    ``marketId`` filter of ``pcEvents``."""
    cat = load_catalogue()
    changed_ms = _ms(event) - 86_400_000
    grouped: dict[tuple[str, float | None], list[Price]] = {}
    for p in prices:
        mid = cat.markets[p.market].ids[BOOK]
        if mid and (only is None or mid in only):
            grouped.setdefault((p.market, p.line), []).append(p)
    position = {key: i for i, key in enumerate(cat.markets)}
    out = []
    for key, line in sorted(grouped, key=lambda k: (position[k[0]], k[1] is not None, k[1] or 0.0)):
        market = cat.markets[key]
        order = {o.key: i for i, o in enumerate(market.outcomes)}
        outcomes = [
            _outcome(str(order[p.outcome] + 1), market.outcomes[order[p.outcome]].names[BOOK] or "", p.odds,
                     p.available)
            for p in sorted(grouped[(key, line)], key=lambda p: order[p.outcome])
            if market.outcomes[order[p.outcome]].names[BOOK]
        ]
        if outcomes:
            out.append(_market(market.ids[BOOK] or "", _desc(market), market.categories[0],
                               _specifier(market, line), changed_ms, outcomes))
    for m in noise:
        if only is not None and m.market_id not in only:
            continue
        specifier = None if m.line is None else f"total={_num(m.line)}"
        outcomes = [_outcome(str(i + 1), name, odds, True) for i, (name, odds) in enumerate(m.outcomes)]
        out.append(_market(m.market_id, m.name, m.group, specifier, changed_ms, outcomes))
    return out


def event_detail(event: SimEvent, prices: Iterable[Price], noise: Sequence[NoiseMarket] = ()) -> dict[str, Any]:
    """``GET /api/ng/factsCenter/event?eventId=sr:match:N``."""
    return envelope(_event(event, markets(event, prices, noise)))


def events_block(tournament: SimTournament | None,
                 items: Sequence[tuple[SimEvent, Iterable[Price]]],
                 only: Collection[str] | None) -> dict[str, Any]:
    """One element of the ``pcEvents`` ``data`` list: a tournament with its events."""
    block: dict[str, Any] = {}
    if tournament is not None:
        block = {"id": tournament.sportybet_id, "name": tournament.name, "categoryName": tournament.country}
    block["events"] = [_event(e, markets(e, prices, only=only)) for e, prices in items]
    return block


def pc_events(blocks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``POST /api/ng/factsCenter/pcEvents``: ``data`` is a list, one block per request element."""
    return envelope(list(blocks))

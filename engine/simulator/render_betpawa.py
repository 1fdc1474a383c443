"""BetPawa's payloads (sport tree, events of competitions, event detail) from simulator data.

Shapes follow reference/bookmaker-apis.md §2 and examples/betpawa-*.json field for field, so a
parser that works here works on the real site. The parts our parsers rely on are the ones the
earlier tool learned the hard way: only ``withRegions[0]`` and ``responses[0]`` are read, the SR
id sits in a ``SPORTRADAR`` widget as a bare 8-digit string, O/U lines live in
``prices[].handicap`` with ``formattedHandicap`` null, and handicap rows carry the home side's
line in ``formattedHandicap``. Everything else is plausible filler.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from engine.bookmakers._models import Price
from engine.markets.catalogue import Market, load_catalogue
from engine.simulator.noise import NoiseMarket

if TYPE_CHECKING:
    from engine.simulator.world import SimEvent, SimTournament

BOOK = "betpawa"
CATEGORY = {"id": "2", "name": "Football"}
_HANDICAP_TYPE = {"total": "NORMAL", "asian_handicap": "ASIAN", "european_handicap": "EUROPEAN"}
_PERIODS = {"Full Time": "FT", "First Half": "1H", "Second Half": "2H"}


def _num(x: float) -> str:
    return f"{x:g}" if x != 0 else "0"


def _team_id(name: str) -> str:
    return str(700000 + zlib.crc32(name.encode()) % 300000)


def _region(t: SimTournament) -> dict[str, str]:
    return {"id": t.betpawa_region_id, "name": t.country}


def _competition(t: SimTournament) -> dict[str, str]:
    return {"id": t.betpawa_id, "name": t.name}


def _start(event: SimEvent) -> str:
    return event.kickoff.strftime("%Y-%m-%dT%H:%M:%SZ")


def categories(tournaments: Sequence[tuple[SimTournament, int]]) -> dict[str, Any]:
    """``GET /api/sportsbook/v3/categories/list/2``: competitions grouped by region."""
    regions: dict[str, dict[str, Any]] = {}
    for t, count in tournaments:
        region = regions.setdefault(t.betpawa_region_id, {"region": _region(t), "competitions": []})
        region["competitions"].append({"competition": _competition(t), "eventCount": count})
    return {"withRegions": [{"category": dict(CATEGORY), "regions": list(regions.values())}]}


def _head(event: SimEvent) -> dict[str, Any]:
    return {
        "id": event.book_ids[BOOK],
        "name": f"{event.home} - {event.away}",
        "startTime": _start(event),
    }


def _participants(event: SimEvent) -> list[dict[str, Any]]:
    return [
        {"id": _team_id(event.home), "name": event.home, "position": 1},
        {"id": _team_id(event.away), "name": event.away, "position": 2},
    ]


def _widgets(event: SimEvent) -> list[dict[str, str]]:
    return [
        {"id": event.sr_id, "type": "SPORTRADAR", "retention": "PREMATCH"},
        {"id": f"gs-{event.sr_id}", "type": "GENIUSSPORTS", "retention": "INPLAY"},
    ]


def list_item(event: SimEvent) -> dict[str, Any]:
    t = event.tournament
    return {
        **_head(event),
        "participants": _participants(event),
        "competition": _competition(t),
        "region": _region(t),
        "category": dict(CATEGORY),
        "widgets": _widgets(event),
    }


def events_lists(per_query: Sequence[Sequence[SimEvent]]) -> dict[str, Any]:
    """``GET /api/sportsbook/v3/events/lists/by-queries``: one response per query."""
    return {"responses": [{"responses": [list_item(e) for e in events]} for events in per_query]}


def not_found(event_id: str) -> dict[str, Any]:
    """Body of the 404 for an unknown event (the client only looks at the status)."""
    return {"error": "NOT_FOUND", "message": f"Event {event_id} not found"}


# Markets ----------------------------------------------------------------------------------

def _names(market: Market) -> tuple[str, str]:
    base, _, period = market.name.rpartition(" - ")
    if not base or period not in _PERIODS:
        return market.name, market.name
    return f"{base} - {_PERIODS[period]}", f"{base} | {period}"


def _probability(odds: float) -> str:
    return base64.b64encode(f"{1 / odds:.3f}".encode()).decode()


def _price(pid: str, name: str, type_id: str, odds: float, suspended: bool, handicap: str | None,
           display: str) -> dict[str, Any]:
    return {
        "id": pid, "name": name, "typeId": type_id, "price": round(odds, 2), "suspended": suspended,
        "handicap": handicap, "displayName": display,
        "additionalInfo": {"hot": False, "twoUp": False, "anyUp": "NO_UP"},
        "probability": _probability(odds),
    }


def _european(line: float) -> str:
    """Home handicap -1 is a 0:1 head start for the away side."""
    return f"{_num(line)}:0" if line >= 0 else f"0:{_num(-line)}"


def _market_type(mid: str, name: str, display: str, priority: int, tabs: list[str], handicap_type: str,
                 columns: int) -> dict[str, Any]:
    return {
        "id": mid, "name": name, "displayName": display, "explainer": "", "priority": priority,
        "tabs": tabs, "handicapType": handicap_type, "priceColumnCount": columns,
        "priceSortingMethod": "DEFAULT",
    }


def _catalogue_market(market: Market, priority: int, prices: Sequence[Price]) -> dict[str, Any]:
    mid = market.ids[BOOK]
    assert mid is not None
    name, display = _names(market)
    order = {o.key: i for i, o in enumerate(market.outcomes)}
    outcome_names = {o.key: o.names[BOOK] for o in market.outcomes}
    by_line: dict[float | None, list[Price]] = {}
    for p in prices:
        if outcome_names.get(p.outcome):
            by_line.setdefault(p.line, []).append(p)
    rows, row_labels = [], []
    for r, line in enumerate(sorted(by_line, key=lambda x: (x is not None, x or 0.0))):
        kind = market.line_kind
        row_handicap: float | None = None
        formatted: str | None = None
        label: str | None = None
        if line is not None and kind == "total":
            label = _num(line)
        elif line is not None and kind in ("asian_handicap", "european_handicap"):
            row_handicap, formatted = float(line), _num(line)
            label = _european(line) if kind == "european_handicap" else formatted
        cells = []
        for c, p in enumerate(sorted(by_line[line], key=lambda p: order[p.outcome])):
            oname = outcome_names[p.outcome]
            assert oname is not None
            handicap: str | None = None
            if line is not None and kind == "total":
                handicap = _num(line)
            elif line is not None and kind == "asian_handicap":
                handicap = _num(line if order[p.outcome] == 0 else -line)
            elif line is not None and kind == "european_handicap":
                handicap = _european(line)
            display_name = oname if handicap is None else (
                f"{oname} {handicap}" if kind == "total" else f"{oname} ({handicap})")
            cells.append(_price(f"p-{mid}-{r}-{c}", oname, str(int(mid) + order[p.outcome] + 1), p.odds,
                                not p.available, handicap, display_name))
        rows.append({"id": f"r-{mid}-{r}", "handicap": row_handicap, "formattedHandicap": formatted,
                     "prices": cells})
        if label is not None:
            row_labels.append(label)
    columns = [outcome_names[o.key] for o in market.outcomes if outcome_names[o.key]]
    return {
        "marketType": _market_type(mid, name, display, priority, ["all", *market.categories],
                                   _HANDICAP_TYPE.get(market.line_kind, ""), len(columns)),
        "row": rows,
        "displayNameRows": row_labels,
        "displayNameColumns": columns,
        "additionalInfo": {"boosted": False, "cashoutable": True, "twoUp": market.key == "1x2_ft"},
    }


def _noise_market(instances: Sequence[NoiseMarket], priority: int) -> dict[str, Any]:
    first = instances[0]
    rows = []
    for r, inst in enumerate(sorted(instances, key=lambda m: m.line or 0.0)):
        handicap = None if inst.line is None else _num(inst.line)
        rows.append({
            "id": f"r-{first.market_id}-{r}", "handicap": None, "formattedHandicap": None,
            "prices": [
                _price(f"p-{first.market_id}-{r}-{c}", name, str(int(first.market_id) + c + 1), odds, False,
                       handicap, f"{name} {handicap}" if handicap else name)
                for c, (name, odds) in enumerate(inst.outcomes)
            ],
        })
    return {
        "marketType": _market_type(first.market_id, first.name, first.name, priority, ["all", first.group],
                                   "NORMAL" if first.line is not None else "", len(first.outcomes)),
        "row": rows,
        "displayNameRows": [_num(m.line) for m in instances if m.line is not None],
        "displayNameColumns": [name for name, _ in first.outcomes],
        "additionalInfo": {"boosted": False, "cashoutable": False, "twoUp": False},
    }


def markets(prices: Iterable[Price], noise: Sequence[NoiseMarket] = ()) -> list[dict[str, Any]]:
    """Catalogue prices as BetPawa market types (one row per line), then the noise markets."""
    cat = load_catalogue()
    grouped: dict[str, list[Price]] = {}
    for p in prices:
        if cat.markets[p.market].ids[BOOK]:
            grouped.setdefault(p.market, []).append(p)
    out = []
    for priority, (key, market) in enumerate(cat.markets.items(), start=1):
        if key in grouped:
            out.append(_catalogue_market(market, priority, grouped[key]))
    noise_by_id: dict[str, list[NoiseMarket]] = {}
    for m in noise:
        noise_by_id.setdefault(m.market_id, []).append(m)
    for i, instances in enumerate(noise_by_id.values()):
        out.append(_noise_market(instances, 900 + i))
    return out


def event_detail(event: SimEvent, prices: Iterable[Price], noise: Sequence[NoiseMarket] = ()) -> dict[str, Any]:
    """``GET /api/sportsbook/v3/events/{id}``: the event with all its markets."""
    t = event.tournament
    return {
        **_head(event),
        "results": None,
        "category": dict(CATEGORY),
        "region": _region(t),
        "competition": _competition(t),
        "participants": _participants(event),
        "widgets": _widgets(event),
        "markets": markets(prices, noise),
    }

"""BetPawa, the reference book: its HTTP client and the parser of its JSON.

BetPawa's market model is already close to ours (market type id, a line per row, outcome
names), but the line hides in different fields per market family (``formattedHandicap`` for
handicaps, ``prices[].handicap`` for totals, sometimes ``"H:A"``), and one market may be split
over several rows or records. So the line is resolved per price, prices are keyed by
(market, line, outcome) so split parts merge instead of overwriting each other, and everything
that does not become a price is reported with a reason.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StringConstraints, ValidationError

from engine.bookmakers._client import USER_AGENT_144, BookClient, FetchError, decode_json
from engine.bookmakers._models import (
    BAD_ODDS,
    INVALID_SPECIFIER,
    MALFORMED_MARKET,
    UNKNOWN_MARKET,
    UNKNOWN_OUTCOME,
    DiscoveredEvent,
    Discovery,
    FetchFailure,
    MalformedPayload,
    ParsedEvent,
    Price,
    Tournament,
    Unmapped,
    clip,
    decimal_odds,
    shown,
)
from engine.markets.catalogue import Market, load_catalogue, normalize_line, normalize_outcome_name

NAME = "betpawa"
HEADERS: dict[str, str] = {
    "accept": "*/*",
    "accept-language": "en-GB,en-US;q=0.9,en;q=0.8",
    "user-agent": USER_AGENT_144,
    "x-pawa-brand": "betpawa-nigeria",
    "devicetype": "web",
}

TREE_PATH = "/api/sportsbook/v3/categories/list/2"
EVENT_LIST_PATH = "/api/sportsbook/v3/events/lists/by-queries"
EVENT_PATH = "/api/sportsbook/v3/events/{event_id}"
PAGE_SIZE = 100
MAX_PAGES = 100  # a safety stop (10,000 events in one competition), never reached in practice

_LINED_KINDS = frozenset({"total", "asian_handicap", "european_handicap"})
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$", re.ASCII)
_SCORE = re.compile(r"^(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)$", re.ASCII)


# ---------------------------------------------------------------------------------------------
# Request shapes


def event_list_path(competition_id: str, skip: int = 0, take: int = PAGE_SIZE) -> str:
    """The by-queries URL path: BetPawa wants the query JSON with Python's default separators,
    percent-encoded with ``quote`` and appended by hand (httpx params would encode it otherwise)."""
    query = {
        "queries": [
            {
                "query": {
                    "eventType": "UPCOMING",
                    "categories": ["2"],
                    "zones": {"competitions": [str(competition_id)]},
                    "hasOdds": True,
                },
                "view": {},
                "skip": skip,
                "take": take,
            }
        ]
    }
    return f"{EVENT_LIST_PATH}?q={quote(json.dumps(query))}"


def event_path(event_id: str) -> str:
    return EVENT_PATH.format(event_id=quote(str(event_id), safe=""))


# ---------------------------------------------------------------------------------------------
# Boundary models: lenient (extra fields allowed), validated one market / one event at a time


def _scalar_text(value: Any) -> Any:
    """Ids, names and handicaps arrive as strings or numbers; compare them as text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # an int past Python's 4,300-digit limit: left for the type check to refuse
            return value
    return value


def _not_blank(value: str) -> str:
    if not value:
        raise ValueError("must not be blank")
    return value


Text = Annotated[str, BeforeValidator(_scalar_text)]
# Not StringConstraints(min_length=1): after a BeforeValidator pydantic checks the length before
# stripping, so " " would pass as an empty id.
Id = Annotated[str, BeforeValidator(_scalar_text), StringConstraints(strip_whitespace=True), AfterValidator(_not_blank)]
Flag = Annotated[bool, BeforeValidator(lambda v: False if v is None else v)]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class _MarketType(_Lenient):
    id: Id
    name: str | None = None
    displayName: str | None = None


class _PriceIn(_Lenient):
    name: Text
    price: Any = None  # checked per outcome so one bad price is BAD_ODDS, not a broken market
    suspended: Flag = False
    handicap: Text | None = None


class _Row(_Lenient):
    formattedHandicap: Text | None = None
    prices: list[_PriceIn]


class _MarketIn(_Lenient):
    marketType: _MarketType
    row: list[_Row]


class _Participant(_Lenient):
    name: str
    position: int | None = None


class _Named(_Lenient):
    id: Text | None = None
    name: str | None = None


class _Competition(_Lenient):
    id: Id
    name: str | None = None


class _EventIn(_Lenient):
    id: Id
    name: str | None = None
    startTime: datetime
    participants: list[_Participant] = []
    widgets: list[Any] = []
    competition: _Named | None = None
    region: _Named | None = None


@dataclass(frozen=True)
class _Head:
    """What identifies an event, read the same way from list items and event details."""

    event_id: str
    kickoff: datetime
    home: str
    away: str
    sr_id: str  # "" when the payload carries no SPORTRADAR widget
    country: str
    tournament: str


def _text_id(value: Any) -> str:
    """An id as text for a report, whatever the payload put there."""
    text = _scalar_text(value)
    return text if isinstance(text, str) else shown(value)


def _brief(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:3]]
    return "; ".join(parts)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _sr_id(widgets: list[Any]) -> str:
    for widget in widgets:
        if isinstance(widget, dict) and widget.get("type") == "SPORTRADAR":
            raw = _scalar_text(widget.get("id"))
            raw = raw.strip().removeprefix("sr:match:") if isinstance(raw, str) else ""
            if raw.isascii() and raw.isdigit():
                return raw
    return ""


def _teams(event: _EventIn) -> tuple[str, str] | None:
    """Participants by position (1 = home); the ``"Home - Away"`` name only if they are absent."""
    by_position = {p.position: p.name.strip() for p in event.participants if p.name.strip()}
    if by_position.get(1) and by_position.get(2):
        return by_position[1], by_position[2]
    if not event.participants and event.name and " - " in event.name:
        home, away = (part.strip() for part in event.name.split(" - ", 1))
        if home and away:
            return home, away
    return None


def _read_head(payload: Any) -> _Head:
    if not isinstance(payload, dict):
        raise MalformedPayload(f"event is a {type(payload).__name__}, not an object")
    try:
        event = _EventIn.model_validate(payload)
    except ValidationError as exc:
        raise MalformedPayload(f"event {shown(payload.get('id'))}: {_brief(exc)}") from None
    teams = _teams(event)
    if teams is None:
        raise MalformedPayload(f"event {event.id}: no home/away participants")
    try:
        kickoff = _utc(event.startTime)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before the first UTC datetime
        raise MalformedPayload(f"event {event.id}: startTime {event.startTime} is out of range") from None
    return _Head(
        event_id=event.id,
        kickoff=kickoff,
        home=teams[0],
        away=teams[1],
        sr_id=_sr_id(event.widgets),
        country=(event.region.name or "") if event.region else "",
        tournament=(event.competition.name or "") if event.competition else "",
    )


# ---------------------------------------------------------------------------------------------
# Sport tree and event lists


def parse_tree(payload: Any) -> list[Tournament]:
    """Football competitions of ``withRegions[0]``; entries without an id cannot be queried."""
    if not isinstance(payload, dict) or not isinstance(payload.get("withRegions"), list):
        raise MalformedPayload("category tree has no 'withRegions' list")
    if not payload["withRegions"]:
        return []
    first = payload["withRegions"][0]
    regions = first.get("regions") if isinstance(first, dict) else None
    if not isinstance(regions, list):
        raise MalformedPayload("category tree has no 'withRegions[0].regions' list")
    tournaments: dict[str, Tournament] = {}
    for region in regions:
        if not isinstance(region, dict):
            continue
        try:
            country = _Named.model_validate(region.get("region") or {}).name or ""
        except ValidationError:
            country = ""
        entries = region.get("competitions")
        for entry in entries if isinstance(entries, list) else []:
            try:
                comp = _Competition.model_validate(entry.get("competition") if isinstance(entry, dict) else None)
            except ValidationError:
                continue
            tournaments.setdefault(comp.id, Tournament(book=NAME, tournament_id=comp.id, name=comp.name or "",
                                                       country=country))
    return list(tournaments.values())


@dataclass
class _ListPage:
    events: list[DiscoveredEvent] = field(default_factory=list)
    without_sr: list[DiscoveredEvent] = field(default_factory=list)  # upcoming, but no SPORTRADAR widget
    rejected: list[tuple[str | None, str]] = field(default_factory=list)  # (event id, why)
    ids: list[str] = field(default_factory=list)  # every readable id on the page, for paging
    size: int = 0  # raw items on the page: a short page is the last one


def _read_event_list(payload: Any, tournament: Tournament, now: datetime) -> _ListPage:
    responses = payload.get("responses") if isinstance(payload, dict) else None
    if not isinstance(responses, list):
        raise MalformedPayload(f"event list of competition {tournament.tournament_id} has no 'responses' list")
    inner = responses[0].get("responses") if responses and isinstance(responses[0], dict) else []
    if not isinstance(inner, list):
        raise MalformedPayload(f"event list of competition {tournament.tournament_id}: 'responses[0].responses' "
                               "is not a list")
    page = _ListPage(size=len(inner))
    now = _utc(now)
    for item in inner:
        try:
            head = _read_head(item)
        except MalformedPayload as exc:
            raw_id = item.get("id") if isinstance(item, dict) else None
            page.rejected.append((None if raw_id is None else clip(_text_id(raw_id), 120), str(exc)))
            continue
        page.ids.append(head.event_id)
        if head.kickoff <= now:
            continue
        event = DiscoveredEvent(
            book=NAME, book_event_id=head.event_id, sr_id=head.sr_id, kickoff=head.kickoff,
            country=tournament.country, tournament=tournament.name, home=head.home, away=head.away,
            tournament_id=tournament.tournament_id,
        )
        (page.events if head.sr_id else page.without_sr).append(event)
    return page


def parse_event_list(payload: Any, tournament: Tournament, now: datetime) -> list[DiscoveredEvent]:
    """Upcoming events of one competition page that carry a SportRadar id (the client fetches
    the detail of the others to read it)."""
    return _read_event_list(payload, tournament, now).events


# ---------------------------------------------------------------------------------------------
# Event detail → canonical prices


@lru_cache(maxsize=1)
def _outcome_index() -> dict[str, tuple[tuple[Market, dict[str, str]], ...]]:
    """BetPawa market id → candidate markets with their normalised outcome name → key."""
    catalogue = load_catalogue()
    return {
        market_id: tuple(
            (m, {normalize_outcome_name(NAME, n): k for n, k in m.outcome_names(NAME).items()}) for m in markets
        )
        for market_id, markets in catalogue.by_book_id[NAME].items()
    }


def _number(text: str) -> float | None:
    if not _NUMBER.match(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _line(kind: str, formatted: str | None, handicap: str | None, outcome: str) -> float | None:
    """The line from the home side: the row's ``formattedHandicap`` if it reads, else the price's
    own ``handicap``, where a 2-way away price carries the away side's number and ``"H:A"``
    (goals head start) means home H−A whichever outcome carries it."""
    for raw, from_price in ((formatted, False), (handicap, True)):
        text = (raw or "").strip()
        if not text:
            continue
        score = _SCORE.match(text)
        if score:
            diff = float(score[1]) - float(score[2])
            if kind == "total" or not math.isfinite(diff):
                continue
            return diff
        value = _number(text)
        if value is None:
            continue
        if from_price and kind != "total" and outcome == "away":
            value = -value
        return value
    return None


def _raw_market_id(raw: Any) -> str:
    market_type = raw.get("marketType") if isinstance(raw, dict) else None
    value = _scalar_text(market_type.get("id")) if isinstance(market_type, dict) else None
    return value.strip() if isinstance(value, str) else ""


def _raw_market_name(raw: Any) -> str:
    market_type = raw.get("marketType") if isinstance(raw, dict) else None
    if not isinstance(market_type, dict):
        return ""
    name = market_type.get("displayName") or market_type.get("name")
    return name if isinstance(name, str) else ""


def _raw_row_line(row: _Row) -> str:
    """How a row names its line before we know the market (to count unknown markets per line)."""
    for text in (row.formattedHandicap, *(p.handicap for p in row.prices)):
        if text and text.strip():
            return text.strip()
    return ""


@dataclass
class _Collected:
    """Prices keyed by (market, line, outcome), so split rows and records merge; a second,
    different quote for the same key is reported, never silently preferred."""

    prices: dict[tuple[str, float | None, str], Price] = field(default_factory=dict)
    unmapped: list[Unmapped] = field(default_factory=list)
    instances: set[tuple[str, Any]] = field(default_factory=set)
    malformed: int = 0

    def add(self, price: Price, market_id: str, name: str) -> None:
        key = (price.market, price.line, price.outcome)
        kept = self.prices.setdefault(key, price)
        if kept != price:
            self.unmapped.append(Unmapped(
                market_id, MALFORMED_MARKET,
                f"conflicting quotes for {price.outcome}{_at_line(price)}: kept {_quote(kept)}, "
                f"ignored {_quote(price)}",
                name,
            ))


def _at_line(price: Price) -> str:
    return "" if price.line is None else f" at line {price.line:g}"


def _quote(price: Price) -> str:
    return f"{price.odds:g}" + ("" if price.available else " (suspended)")


def _collect_market(market: _MarketIn, into: _Collected) -> None:
    market_id = market.marketType.id
    name = market.marketType.displayName or market.marketType.name or ""
    if not any(row.prices for row in market.row):
        into.malformed += 1
        into.unmapped.append(Unmapped(market_id, MALFORMED_MARKET, "no prices", name))
        return
    candidates = _outcome_index().get(market_id, ())
    for row in market.row:
        for price in row.prices:
            if candidates:
                _collect_price(market_id, name, candidates, row, price, into)
                continue
            instance = (market_id, _raw_row_line(row))
            if instance not in into.instances:
                into.instances.add(instance)
                detail = f"line {instance[1]}" if instance[1] else ""
                into.unmapped.append(Unmapped(market_id, UNKNOWN_MARKET, detail, name))


def _collect_price(market_id: str, name: str, candidates: tuple[tuple[Market, dict[str, str]], ...],
                   row: _Row, price: _PriceIn, into: _Collected) -> None:
    wanted = normalize_outcome_name(NAME, price.name)
    found = next(((m, names[wanted]) for m, names in candidates if wanted in names), None)
    market, outcome = found or (candidates[0][0], "")
    line: float | None = None
    if market.line_kind in _LINED_KINDS:
        line = normalize_line(_line(market.line_kind, row.formattedHandicap, price.handicap, outcome))
        into.instances.add((market_id, _raw_row_line(row) if line is None else line))
    else:
        into.instances.add((market_id, None))
    if found is None:
        into.unmapped.append(Unmapped(market_id, UNKNOWN_OUTCOME, price.name, name))
        return
    if market.line_kind in _LINED_KINDS and line is None:
        into.unmapped.append(Unmapped(
            market_id, INVALID_SPECIFIER,
            f"{price.name}: formattedHandicap={shown(row.formattedHandicap)}, handicap={shown(price.handicap)}", name,
        ))
        return
    odds = decimal_odds(price.price)
    if odds is None:
        into.unmapped.append(Unmapped(market_id, BAD_ODDS, f"{price.name}: {shown(price.price)}", name))
        return
    into.add(Price(market=market.key, line=line, outcome=outcome, odds=odds, available=not price.suspended),
             market_id, name)


def parse_event(payload: Any, hint: DiscoveredEvent | None = None) -> ParsedEvent:
    """One event detail as canonical prices; a broken market costs only that market.

    ``hint`` (the listing from discovery) fills what the detail may lack: the SportRadar id,
    country and tournament.
    """
    head = _read_head(payload)
    sr_id = head.sr_id or (hint.sr_id if hint else "")
    if not sr_id:
        raise MalformedPayload(f"event {head.event_id}: no SPORTRADAR widget")
    raw_markets = payload.get("markets")
    if raw_markets is None:
        raw_markets = []
    if not isinstance(raw_markets, list):
        raise MalformedPayload(f"event {head.event_id}: 'markets' is a {type(raw_markets).__name__}")
    collected = _Collected()
    for raw in raw_markets:
        try:
            market = _MarketIn.model_validate(raw)
        except ValidationError as exc:
            collected.malformed += 1
            collected.unmapped.append(Unmapped(_raw_market_id(raw), MALFORMED_MARKET, _brief(exc),
                                               _raw_market_name(raw)))
            continue
        _collect_market(market, collected)
    return ParsedEvent(
        book=NAME,
        book_event_id=head.event_id,
        sr_id=sr_id,
        kickoff=head.kickoff,
        country=head.country or (hint.country if hint else ""),
        tournament=head.tournament or (hint.tournament if hint else ""),
        home=head.home,
        away=head.away,
        prices=list(collected.prices.values()),
        unmapped=collected.unmapped,
        raw_markets=len(collected.instances) + collected.malformed,
    )


# ---------------------------------------------------------------------------------------------
# Client


class BetPawaClient(BookClient):
    """Discovery (tree → competitions → paged event lists) and event details for BetPawa."""

    name = NAME
    headers = HEADERS

    def _failure(self, exc: FetchError, context: str, event_id: str | None = None) -> FetchFailure:
        return FetchFailure(book=NAME, kind=exc.kind, message=f"{context}: {exc}",  # type: ignore[arg-type]
                            status=exc.status, book_event_id=event_id, attempts=exc.attempts)

    async def discover(self, now: datetime | None = None) -> Discovery:
        started = time.monotonic()
        now = _utc(now) if now else datetime.now(timezone.utc)
        found = Discovery(book=NAME)
        try:
            tree, _ = await self.request_json("GET", TREE_PATH)
            tournaments = parse_tree(tree)
        except FetchError as exc:
            found.failures.append(self._failure(exc, "category tree"))
            tournaments = None
        except MalformedPayload as exc:
            found.failures.append(FetchFailure(book=NAME, kind="malformed", message=f"category tree: {exc}"))
            tournaments = None
        if tournaments is None:
            found.tree_failed = True
            found.seconds = time.monotonic() - started
            return found
        found.tournaments = len(tournaments)
        results = await asyncio.gather(*(self._discover_competition(t, now) for t in tournaments))
        seen: set[str] = set()
        for events, failures in results:
            found.failures.extend(failures)
            for event in events:
                if event.book_event_id not in seen:
                    seen.add(event.book_event_id)
                    found.events.append(event)
        found.seconds = time.monotonic() - started
        return found

    async def _discover_competition(self, tournament: Tournament, now: datetime
                                    ) -> tuple[list[DiscoveredEvent], list[FetchFailure]]:
        """Every page of one competition (the earlier tool stopped at 100 events), then the
        detail of each upcoming event whose list entry lacks the SportRadar widget."""
        context = f"competition {tournament.tournament_id} ({tournament.name})"
        events: list[DiscoveredEvent] = []
        without_sr: list[DiscoveredEvent] = []
        failures: list[FetchFailure] = []
        seen: set[str] = set()
        for number in range(MAX_PAGES):
            try:
                payload, _ = await self.request_json("GET", event_list_path(tournament.tournament_id,
                                                                             skip=number * PAGE_SIZE))
                page = _read_event_list(payload, tournament, now)
            except FetchError as exc:
                failures.append(self._failure(exc, f"{context} page {number + 1}"))
                break
            except MalformedPayload as exc:
                failures.append(FetchFailure(book=NAME, kind="malformed", message=f"{context}: {exc}"))
                break
            failures.extend(
                FetchFailure(book=NAME, kind="malformed", message=f"{context}: {why}", book_event_id=event_id)
                for event_id, why in page.rejected
            )
            new_ids = set(page.ids) - seen
            seen |= new_ids
            events += [e for e in page.events if e.book_event_id in new_ids]
            without_sr += [e for e in page.without_sr if e.book_event_id in new_ids]
            if page.size < PAGE_SIZE or not new_ids:
                break
        else:
            failures.append(FetchFailure(book=NAME, kind="business",
                                         message=f"{context}: stopped paging after {MAX_PAGES} full pages"))
        for result in await asyncio.gather(*(self._sr_from_detail(e) for e in without_sr)):
            if isinstance(result, FetchFailure):
                failures.append(result)
            elif result is not None:
                events.append(result)
        return events, failures

    async def _sr_from_detail(self, event: DiscoveredEvent) -> DiscoveredEvent | FetchFailure | None:
        """The listing with its SportRadar id read from the detail; None if the detail has none
        either (such an event cannot be matched across books)."""
        context = f"event {event.book_event_id} (SportRadar id lookup)"
        try:
            payload, _ = await self.request_json("GET", event_path(event.book_event_id))
            head = _read_head(payload)
        except FetchError as exc:
            return self._failure(exc, context, event.book_event_id)
        except MalformedPayload as exc:
            return FetchFailure(book=NAME, kind="malformed", message=f"{context}: {exc}",
                                book_event_id=event.book_event_id)
        return replace(event, sr_id=head.sr_id) if head.sr_id else None

    def event_request(self, event: DiscoveredEvent) -> tuple[str, dict[str, Any] | None]:
        return event_path(event.book_event_id), None

    def request_failure(self, exc: FetchError, event: DiscoveredEvent) -> FetchFailure:
        return self._failure(exc, f"event {event.book_event_id}", event.book_event_id)


def decode_event(content: bytes, event: DiscoveredEvent, attempts: int) -> ParsedEvent | FetchFailure:
    """An event-detail body → canonical prices, or the typed failure (pure: runs in a worker)."""
    context = f"event {event.book_event_id}"
    try:
        return parse_event(decode_json(content, attempts), hint=event)
    except FetchError as exc:
        return FetchFailure(book=NAME, kind=exc.kind, message=f"{context}: {exc}",  # type: ignore[arg-type]
                            status=exc.status, book_event_id=event.book_event_id, attempts=attempts)
    except MalformedPayload as exc:
        return FetchFailure(book=NAME, kind="malformed", message=f"{context}: {exc}",
                            book_event_id=event.book_event_id, attempts=attempts)

"""Bet9ja: the palimpsest API client and the parser of its flat odds-key dictionary.

Bet9ja packs market, line and outcome into one string per price (``S_OU@2.5_O``), so the
parser's job is mostly grammar and routing: split each key, group keys into market instances
(one per line), route each instance by the catalogue entry's ``line_kind`` and each suffix to
the catalogue market that names it. Everything that does not map is returned as ``Unmapped``
with a reason; the earlier tool lost a third of Bet9ja silently at exactly these steps.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from engine.bookmakers._client import USER_AGENT_144, BookClient, FetchError, decode_json
from engine.bookmakers._models import (
    BAD_ODDS,
    INVALID_SPECIFIER,
    MALFORMED_MARKET,
    UNKNOWN_MARKET,
    UNKNOWN_OUTCOME,
    UNKNOWN_PARAM,
    DiscoveredEvent,
    Discovery,
    FetchFailure,
    MalformedPayload,
    ParsedEvent,
    Price,
    Tournament,
    Unmapped,
    decimal_odds,
    shown,
)
from engine.markets.catalogue import Market, load_catalogue, normalize_line, normalize_outcome_name

NAME = "bet9ja"
HEADERS: dict[str, str] = {
    "accept": "*/*",
    "accept-language": "en-GB,en-US;q=0.9,en;q=0.8",
    "user-agent": USER_AGENT_144,
}
CACHE_VERSION = "1.301.2.225"
TREE_PATH = "/desktop/feapi/PalimpsestAjax/GetSports"
EVENTS_PATH = "/desktop/feapi/PalimpsestAjax/GetEventsInGroupV2"
EVENT_PATH = "/desktop/feapi/PalimpsestAjax/GetEvent"
FOOTBALL = "1"
STARTDATE_FORMAT = "%Y-%m-%d %H:%M:%S"

log = logging.getLogger(__name__)

# S_ + MARKET (no "_", so the first "_" ends it) + optional @PARAM (up to the next "_") + _OUTCOME.
_KEY = re.compile(r"S_(?P<market>[A-Z0-9-]+)(?:@(?P<param>[^_]*))?_(?P<outcome>\S+)")
_MAX_KEY = 500
# Plain decimals only: float() would also take "nan", "inf", "1e3" and "1_0".
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_NO_LINE_KINDS = frozenset({"none", "variant_specifier", "time_window_specifier"})
_LINE_KINDS = frozenset({"total", "asian_handicap", "european_handicap"})
# Team-total families whose suffixes come in either letter order (OH/HO, UA/AU ...).
_EITHER_ORDER = frozenset({"S_HAOU", "S_HA1HOU", "S_HA2HOU"})


# --- payload shapes --------------------------------------------------------------------


class _EventHead(BaseModel):
    """The event fields shared by list items and the detail payload."""

    model_config = ConfigDict(extra="ignore")

    ID: str
    DS: str
    STARTDATE: datetime
    EXTID: str | None = None
    SG: str | None = None
    GN: str | None = None

    @field_validator("ID", mode="before")
    @classmethod
    def _id(cls, v: Any) -> str:
        text = _id_text(v)
        if not text:
            raise ValueError("event ID must be a non-empty number or string")
        return text

    @field_validator("EXTID", mode="before")
    @classmethod
    def _extid(cls, v: Any) -> str | None:
        # A numeric EXTID would not merge with the other books' string ids: normalise it here.
        text = _id_text(v)
        return text if text and text.isascii() and text.isdigit() else None

    @field_validator("DS")
    @classmethod
    def _teams(cls, v: str) -> str:
        home, sep, away = v.partition(" - ")
        if not sep or not home.strip() or not away.strip():
            raise ValueError(f"DS {shown(v)} is not 'Home - Away'")
        return v

    @field_validator("STARTDATE", mode="before")
    @classmethod
    def _kickoff(cls, v: Any) -> datetime:
        if not isinstance(v, str):
            raise ValueError("STARTDATE must be a string")
        return datetime.strptime(v.strip(), STARTDATE_FORMAT).replace(tzinfo=UTC)

    @field_validator("SG", "GN", mode="before")
    @classmethod
    def _text_or_none(cls, v: Any) -> str | None:
        return v.strip() if isinstance(v, str) and v.strip() else None

    @property
    def home(self) -> str:
        return self.DS.partition(" - ")[0].strip()

    @property
    def away(self) -> str:
        return self.DS.partition(" - ")[2].strip()


def _id_text(v: Any) -> str | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, (int, str)):
        return str(v).strip() or None
    return None


def _head(obj: Any) -> _EventHead:
    if not isinstance(obj, dict):
        raise MalformedPayload(f"event is a {type(obj).__name__}, not an object")
    try:
        return _EventHead.model_validate(obj)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise MalformedPayload(f"bet9ja event: {problems}") from None


def _unwrap(payload: Any, ok: frozenset[str] = frozenset({"OK"}),
            not_found: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``D`` of a Bet9ja envelope; a refusal becomes the FetchError the client reports."""
    if not isinstance(payload, dict) or "R" not in payload:
        raise MalformedPayload("response is not a Bet9ja envelope (no R)")
    result = payload["R"]
    if not isinstance(result, str):
        raise MalformedPayload(f"Bet9ja envelope R is {shown(result)}, not a code")
    if result in not_found:
        raise FetchError("not_found", f"Bet9ja R={shown(result)}: event not found")
    if result not in ok:
        raise FetchError("business", f"Bet9ja R={shown(result)}")
    data = payload.get("D")
    if not isinstance(data, dict):
        raise MalformedPayload(f"Bet9ja envelope D is a {type(data).__name__}, not an object")
    return data


# --- discovery -------------------------------------------------------------------------


def parse_tree(payload: Any) -> list[Tournament]:
    """Football groups of the sport tree; a group is a tournament, its sub-group the country."""
    pal = _unwrap(payload).get("PAL")
    if not isinstance(pal, dict):
        raise MalformedPayload("GetSports D.PAL is not an object")
    football = pal.get(FOOTBALL)
    if football is None:
        return []
    countries = football.get("SG", {}) if isinstance(football, dict) else None
    if not isinstance(countries, dict):
        raise MalformedPayload("GetSports PAL['1'].SG is not an object")
    tournaments: dict[str, Tournament] = {}
    for sg_id, sub in countries.items():
        groups = sub.get("G", {}) if isinstance(sub, dict) else None
        if not isinstance(groups, dict):
            log.warning("bet9ja tree: sub-group %s has no readable G, skipped", shown(sg_id))
            continue
        country = sub.get("SG_DESC") if isinstance(sub.get("SG_DESC"), str) else ""
        for g_id, group in groups.items():
            name = group.get("G_DESC") if isinstance(group, dict) else None
            group_id = str(g_id).strip()
            if group_id:  # a blank id cannot be queried
                tournaments.setdefault(group_id, Tournament(book=NAME, tournament_id=group_id,
                                                            name=name.strip() if isinstance(name, str) else "",
                                                            country=country.strip()))
    return list(tournaments.values())


def parse_event_list(payload: Any, tournament: Tournament, now: datetime) -> list[DiscoveredEvent]:
    """Upcoming events of one group that carry a SportRadar id (the cross-book key)."""
    items = _unwrap(payload).get("E") or []
    if not isinstance(items, list):
        raise MalformedPayload("GetEventsInGroupV2 D.E is not a list")
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    events = []
    for item in items:
        try:
            head = _head(item)
        except MalformedPayload as exc:
            log.warning("bet9ja group %s: event skipped: %s", tournament.tournament_id, exc)
            continue
        if head.EXTID is None or head.STARTDATE <= now:
            continue
        events.append(DiscoveredEvent(
            book=NAME, book_event_id=head.ID, sr_id=head.EXTID, kickoff=head.STARTDATE,
            country=tournament.country, tournament=tournament.name, home=head.home, away=head.away,
            tournament_id=tournament.tournament_id,
        ))
    return events


# --- odds keys -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    raw: str
    market: str  # catalogue id: "S_" + MARKET
    param: str | None
    outcome: str


@dataclass(frozen=True)
class _Route:
    """How one Bet9ja key prefix maps: its line kind and suffix -> (market, outcome key)."""

    line_kind: str | None  # None when the entries sharing the prefix disagree or the kind is unknown
    outcomes: dict[str, tuple[Market, str]]


class _Reject(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _split_key(raw: str) -> _Key | None:
    """A Bet9ja odds key split into market, param and outcome; None if it breaks the grammar.

    The same few thousand keys come back in every event, so splits are remembered (keys of a
    plausible length only: a hostile payload must not fill the cache with megabyte strings)."""
    return _split_known(raw) if len(raw) <= 2 * _MAX_KEY else None


@lru_cache(maxsize=16384)
def _split_known(raw: str) -> _Key | None:
    key = raw.strip()
    if len(key) > _MAX_KEY:
        return None
    m = _KEY.fullmatch(key)
    if not m:
        return None
    return _Key(raw=key, market="S_" + m["market"], param=m["param"], outcome=m["outcome"])


@lru_cache(maxsize=512)
def _route(market_id: str) -> _Route | None:
    markets = load_catalogue().lookup(NAME, market_id)
    if not markets:
        return None
    outcomes: dict[str, tuple[Market, str]] = {}
    for market in markets:
        for name, key in market.outcome_names(NAME).items():
            outcomes[normalize_outcome_name(NAME, name)] = (market, key)
    if market_id in _EITHER_ORDER:
        for name, target in list(outcomes.items()):
            outcomes.setdefault(name[::-1], target)
    kinds = {m.line_kind for m in markets}
    kind = kinds.pop() if len(kinds) == 1 else None
    return _Route(line_kind=kind if kind in _NO_LINE_KINDS | _LINE_KINDS else None, outcomes=outcomes)


def _line(kind: str, param: str | None) -> float | None:
    """The instance's line from the home side, or _Reject with why it cannot have one."""
    if kind in _NO_LINE_KINDS:
        if param is not None:
            raise _Reject(UNKNOWN_PARAM, f"@{param}")
        return None
    if param is None or not _NUMBER.fullmatch(param):
        raise _Reject(INVALID_SPECIFIER, "no @param" if param is None else f"@{param}")
    value = float(param)
    if not math.isfinite(value):
        raise _Reject(INVALID_SPECIFIER, f"@{param} (not finite)")
    if kind == "total" and value < 0:
        raise _Reject(INVALID_SPECIFIER, f"@{param} (negative total)")
    return normalize_line(value)


def _sample(keys: list[tuple[_Key, Any]], param: str | None) -> str:
    outcomes = ",".join(k.outcome for k, _ in keys)
    text = outcomes if param is None else f"@{param} {outcomes}"
    return text[:200]


def _market_names(data: dict[str, Any]) -> dict[str, str]:
    """Display names from ``D.MK`` for the unmapped report; the shape is a guess, so lenient."""
    mk = data.get("MK")
    if not isinstance(mk, list):
        return {}
    return {m["ID"]: m["DS"] for m in mk
            if isinstance(m, dict) and isinstance(m.get("ID"), str) and isinstance(m.get("DS"), str)}


def _parse_odds_dict(odds: dict[Any, Any], names: dict[str, str] | None = None,
                     ) -> tuple[list[Price], list[Unmapped], int]:
    """Prices, unmapped entries and the number of market instances of one ``D.O`` dict."""
    names = names or {}
    prices: list[Price] = []
    unmapped: list[Unmapped] = []
    groups: dict[tuple[str, str | None], list[tuple[_Key, Any]]] = {}
    instances = 0
    for raw, value in odds.items():
        key = _split_key(raw) if isinstance(raw, str) else None
        if key is None:
            text = raw if isinstance(raw, str) else shown(raw)
            unmapped.append(Unmapped(market_id=text.strip()[:120], reason=MALFORMED_MARKET,
                                     detail=f"key {shown(text)} is not S_<MARKET>[@<PARAM>]_<OUTCOME>"))
            instances += 1
            continue
        groups.setdefault((key.market, key.param), []).append((key, value))

    seen: dict[tuple[str, float | None, str], str] = {}
    for (market_id, param), keys in groups.items():
        instances += 1
        name = names.get(market_id, "")
        route = _route(market_id)
        if route is None or route.line_kind is None:
            unmapped.append(Unmapped(market_id, UNKNOWN_MARKET, _sample(keys, param), name))
            continue
        try:
            line = _line(route.line_kind, param)
        except _Reject as rej:
            unmapped.append(Unmapped(market_id, rej.reason, rej.detail, name))
            continue
        for key, value in keys:
            target = route.outcomes.get(normalize_outcome_name(NAME, key.outcome))
            if target is None:
                unmapped.append(Unmapped(market_id, UNKNOWN_OUTCOME, key.raw, name))
                continue
            price = decimal_odds(value)
            if price is None:
                unmapped.append(Unmapped(market_id, BAD_ODDS, f"{key.raw}={shown(value)}", name))
                continue
            market, outcome = target
            ident = (market.key, line, outcome)
            if ident in seen:
                # Same canonical price twice (e.g. @2.5 and @2.50, or OH and HO): first one stands.
                unmapped.append(Unmapped(market_id, MALFORMED_MARKET,
                                         f"{key.raw} duplicates {seen[ident]}", name))
                continue
            seen[ident] = key.raw
            prices.append(Price(market=market.key, line=line, outcome=outcome, odds=price, available=True))
    return prices, unmapped, instances


# --- event detail ----------------------------------------------------------------------


def parse_event(payload: Any, hint: DiscoveredEvent | None = None) -> ParsedEvent:
    """The ``D`` object of GetEvent as canonical prices; a bad market never rejects the event."""
    head = _head(payload)
    sr_id = head.EXTID or (hint.sr_id if hint else None)
    if not sr_id:
        raise MalformedPayload(f"bet9ja event {head.ID}: no SportRadar id (EXTID)")
    odds = payload.get("O")
    if odds is None:
        odds = {}
    if not isinstance(odds, dict):
        raise MalformedPayload(f"bet9ja event {head.ID}: O is a {type(odds).__name__}, not an object")
    prices, unmapped, instances = _parse_odds_dict(odds, _market_names(payload))
    return ParsedEvent(
        book=NAME, book_event_id=head.ID, sr_id=sr_id, kickoff=head.STARTDATE,
        country=head.SG or (hint.country if hint else ""),
        tournament=head.GN or (hint.tournament if hint else ""),
        home=head.home, away=head.away,
        prices=prices, unmapped=unmapped, raw_markets=instances,
    )


# --- client ----------------------------------------------------------------------------


class Bet9jaClient(BookClient):
    """Discovery (sport tree -> groups -> events) and event detail for Bet9ja."""

    name = NAME
    headers = HEADERS

    async def discover(self, now: datetime | None = None) -> Discovery:
        started = time.perf_counter()
        now = now or datetime.now(UTC)
        found = Discovery(book=NAME)
        attempts = 0
        try:
            body, attempts = await self.request_json("GET", TREE_PATH,
                                                     params={"DISP": "0", "v_cache_version": CACHE_VERSION})
            tournaments = parse_tree(body)
        except (FetchError, MalformedPayload) as exc:
            found.failures.append(_failure(exc, context="sport tree", attempts=attempts))
            found.tree_failed = True
            found.seconds = time.perf_counter() - started
            return found
        found.tournaments = len(tournaments)
        results = await asyncio.gather(*(self._events_of(t, now) for t in tournaments))
        ids: set[str] = set()
        for result in results:
            if isinstance(result, FetchFailure):
                found.failures.append(result)
                continue
            for event in result:
                if event.book_event_id not in ids:  # an event listed under two groups is one event
                    ids.add(event.book_event_id)
                    found.events.append(event)
        found.seconds = time.perf_counter() - started
        return found

    async def _events_of(self, tournament: Tournament, now: datetime) -> list[DiscoveredEvent] | FetchFailure:
        params = {"GROUPID": tournament.tournament_id, "DISP": "0", "GROUPMARKETID": "1",
                  "v_cache_version": CACHE_VERSION}
        attempts = 0
        try:
            body, attempts = await self.request_json("GET", EVENTS_PATH, params=params)
            return parse_event_list(body, tournament, now)
        except (FetchError, MalformedPayload) as exc:
            return _failure(exc, context=f"group {tournament.tournament_id} ({tournament.name})",
                                 attempts=attempts)

    def event_request(self, event: DiscoveredEvent) -> tuple[str, dict[str, Any] | None]:
        return EVENT_PATH, {"EVENTID": event.book_event_id, "v_cache_version": CACHE_VERSION}

    def request_failure(self, exc: FetchError, event: DiscoveredEvent) -> FetchFailure:
        return _failure(exc, context=f"event {event.book_event_id}", book_event_id=event.book_event_id)


def _failure(exc: FetchError | MalformedPayload, context: str,
             book_event_id: str | None = None, attempts: int = 0) -> FetchFailure:
    """``attempts``: from the body's request when one arrived, else as counted by request_json."""
    if isinstance(exc, MalformedPayload):
        exc = FetchError("malformed", str(exc))
    attempts = attempts or exc.attempts
    return FetchFailure(book=NAME, kind=exc.kind, message=f"{context}: {exc}",  # type: ignore[arg-type]
                        status=exc.status, book_event_id=book_event_id, attempts=attempts)


def decode_event(content: bytes, event: DiscoveredEvent, attempts: int) -> ParsedEvent | FetchFailure:
    """An event-detail body → canonical prices, or the typed failure (pure: runs in a worker)."""
    try:
        data = _unwrap(decode_json(content, attempts), ok=frozenset({"OK", "D"}), not_found=frozenset({"E"}))
        return parse_event(data, hint=event)
    except (FetchError, MalformedPayload) as exc:
        return _failure(exc, context=f"event {event.book_event_id}", book_event_id=event.book_event_id,
                        attempts=attempts)

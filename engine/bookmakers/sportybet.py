"""SportyBet: the request shapes of its factsCenter API and the parser into canonical prices.

SportyBet ids are SportRadar ids (``sr:tournament:N``, ``sr:match:N``), so discovery needs no
extra lookup to key an event. Every response is wrapped in a ``bizCode`` envelope; a non-10000
code on the event endpoint is how SportyBet says "no such event", so it is a ``not_found``
failure, never a retry.

Markets are parsed one at a time: a market the catalogue does not know, a specifier that does
not give a line, an outcome description the catalogue does not list, or unusable odds each
become an ``Unmapped`` entry with its reason, so the desk can see what is missing and why.
Outcomes are matched by description only: the earlier tool's fallback to the outcome's position
turned unknown correct scores and team names into wrong prices.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from engine.bookmakers._client import USER_AGENT_144, BookClient, FetchError, decode_json, now_ms
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
from engine.markets.catalogue import Catalogue, Market, load_catalogue, normalize_line, normalize_outcome_name

NAME = "sportybet"
HEADERS: dict[str, str] = {
    "accept": "*/*",
    "accept-language": "en",
    "user-agent": USER_AGENT_144.replace("Chrome/144.0.0.0", "Chrome/143.0.0.0"),
    "clientid": "web",
    "operid": "2",
    "platform": "web",
}

TREE_PATH = "/api/ng/factsCenter/popularAndSportList"
EVENTS_PATH = "/api/ng/factsCenter/pcEvents"
EVENT_PATH = "/api/ng/factsCenter/event"
FOOTBALL = "sr:sport:1"
PRODUCT_PREMATCH = 3
BIZ_OK = 10000
# The markets pcEvents embeds per listed event; discovery ignores them, the site always sends them.
LIST_MARKET_IDS = "1,18,10,29,11,26,36,14"
MAX_SPECIFIER = 1000

log = logging.getLogger(__name__)


# Envelope ----------------------------------------------------------------------------------


class EnvelopeError(MalformedPayload):
    """The envelope's ``bizCode`` is not 10000: SportyBet refused the request in a 200 body."""

    def __init__(self, code: Any, message: Any):
        super().__init__(f"bizCode={shown(code)}: {message if isinstance(message, str) else shown(message)}")
        self.code = code


def envelope_data(body: Any) -> Any:
    """The ``data`` of a SportyBet response body."""
    if not isinstance(body, dict) or "bizCode" not in body:
        raise MalformedPayload("response is not a bizCode envelope")
    if body["bizCode"] != BIZ_OK:
        raise EnvelopeError(body["bizCode"], body.get("message", ""))
    if body.get("data") is None:
        raise MalformedPayload("envelope has no data")
    return body["data"]


def _unwrap(payload: Any) -> Any:
    """Parsers take either a whole response body or its ``data``: callers hold one or the other."""
    if isinstance(payload, dict) and "bizCode" in payload:
        return envelope_data(payload)
    return payload


# Event header (list item or detail) ---------------------------------------------------------

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
_MATCH_ID = re.compile(r"sr:match:\d+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def kickoff_from_ms(value: Any) -> datetime:
    """``estimateStartTime`` is epoch ms; a numeric string is accepted rather than losing the event."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"kickoff {shown(value)} is not epoch milliseconds")
    try:
        ms = float(value.strip()) if isinstance(value, str) else float(value)
        if not math.isfinite(ms):
            raise ValueError
        return _EPOCH + timedelta(milliseconds=ms)
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"kickoff {shown(value)} is not epoch milliseconds") from None


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, frozen=True)


class _EventHead(_Lenient):
    event_id: _Text = Field(alias="eventId")
    home: _Text = Field(alias="homeTeamName")
    away: _Text = Field(alias="awayTeamName")
    kickoff: datetime = Field(alias="estimateStartTime")
    sport: Any = None

    @field_validator("event_id")
    @classmethod
    def _sr_match(cls, v: str) -> str:
        if not _MATCH_ID.fullmatch(v):
            raise ValueError(f"{shown(v)} is not an sr:match id")
        return v

    @field_validator("kickoff", mode="before")
    @classmethod
    def _ms(cls, v: Any) -> datetime:
        return kickoff_from_ms(v)

    @property
    def sr_id(self) -> str:
        return self.event_id.removeprefix("sr:match:")

    def category(self) -> tuple[str, str]:
        """(country, tournament) from ``sport.category``; empty where the payload has none."""
        cat = self.sport.get("category") if isinstance(self.sport, dict) else None
        cat = cat if isinstance(cat, dict) else {}
        tour = cat.get("tournament") if isinstance(cat.get("tournament"), dict) else {}
        return _plain(cat.get("name")), _plain(tour.get("name"))


def _plain(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "payload"
    return f"{where}: {err['msg']}"


# Tree and event list ------------------------------------------------------------------------


def parse_tree(payload: Any) -> list[Tournament]:
    """The football tournaments of ``popularAndSportList`` (category name = country)."""
    data = _unwrap(payload)
    sports = data.get("sportList") if isinstance(data, dict) else None
    if not isinstance(sports, list):
        raise MalformedPayload("sport tree has no sportList")
    football = next((s for s in sports if isinstance(s, dict) and s.get("id") == FOOTBALL), None)
    if football is None:
        return []
    categories = football.get("categories") or []
    if not isinstance(categories, list):
        raise MalformedPayload("football categories is not a list")
    found: dict[str, Tournament] = {}
    for cat in categories:
        tours = cat.get("tournaments") if isinstance(cat, dict) else None
        if not isinstance(tours, list):
            log.debug("sportybet tree: skipping category %s", shown(cat))
            continue
        for tour in tours:
            tid = _plain(tour.get("id")) if isinstance(tour, dict) else ""
            if not tid.startswith("sr:tournament:"):
                log.debug("sportybet tree: skipping tournament %s", shown(tour))
                continue
            found.setdefault(tid, Tournament(NAME, tid, _plain(tour.get("name")), _plain(cat.get("name"))))
    return list(found.values())


def events_request(tournament_id: str) -> list[dict[str, Any]]:
    """The ``pcEvents`` POST body for one tournament."""
    return [{"sportId": FOOTBALL, "marketId": LIST_MARKET_IDS, "tournamentId": [[tournament_id]]}]


def parse_event_list(payload: Any, tournament: Tournament, now: datetime) -> list[DiscoveredEvent]:
    """Upcoming events of one tournament from ``pcEvents`` (``data[0].events``).

    Items without an ``sr:match`` id, teams or a kickoff cannot be matched or scheduled, and
    events at or before ``now`` have started: both are left out.
    """
    data = _unwrap(payload)
    if not isinstance(data, list):
        raise MalformedPayload("pcEvents data is not a list")
    if not data:
        return []
    block = data[0]
    events = block.get("events") if isinstance(block, dict) else None
    if events is None:
        if not isinstance(block, dict):
            raise MalformedPayload("pcEvents data[0] is not an object")
        return []
    if not isinstance(events, list):
        raise MalformedPayload("pcEvents events is not a list")
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    found = []
    for item in events:
        try:
            head = _EventHead.model_validate(item)
        except ValidationError as exc:
            log.debug("sportybet %s: skipping listed event (%s)", tournament.tournament_id, _problem(exc))
            continue
        if head.kickoff <= now:
            continue
        found.append(DiscoveredEvent(
            book=NAME, book_event_id=head.event_id, sr_id=head.sr_id, kickoff=head.kickoff,
            country=tournament.country, tournament=tournament.name, home=head.home, away=head.away,
            tournament_id=tournament.tournament_id,
        ))
    return found


# Markets ------------------------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, reason: str, why: str):
        super().__init__(why)
        self.reason = reason
        self.why = why


def parse_specifier(text: str | None) -> dict[str, str]:
    """``key=value`` pairs of a ``|``-separated specifier, keys lower-cased.

    A key given twice with different values is refused rather than letting the last one win.
    """
    if not text or not text.strip():
        return {}
    if len(text) > MAX_SPECIFIER:
        raise _Refused(INVALID_SPECIFIER, f"specifier of {len(text)} characters")
    pairs: dict[str, str] = {}
    for part in text.split("|"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip().casefold(), value.strip()
        if not sep or not key:
            raise _Refused(INVALID_SPECIFIER, f"{part.strip()!r} is not key=value")
        if pairs.setdefault(key, value) != value:
            raise _Refused(INVALID_SPECIFIER, f"{key} given twice")
    return pairs


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _Refused(INVALID_SPECIFIER, f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise _Refused(INVALID_SPECIFIER, f"{what} {text!r} is not finite")
    return value


def market_line(line_kind: str, spec: dict[str, str]) -> float | None:
    """The line of a market instance from the home side, per the catalogue entry's line kind."""
    if line_kind == "none":
        if spec:
            raise _Refused(UNKNOWN_PARAM, "market takes no specifier")
        return None
    if line_kind in ("variant_specifier", "time_window_specifier"):
        return None  # the specifier lays out the outcomes or names the window; no line
    key = "total" if line_kind == "total" else "hcp"
    if key not in spec:
        raise _Refused(INVALID_SPECIFIER, f"no {key}= for a {line_kind} market")
    value = spec[key]
    if line_kind == "total":
        return normalize_line(_number(value, "total"))
    if line_kind == "asian_handicap":
        return normalize_line(_number(value, "hcp"))
    if line_kind == "european_handicap":
        parts = value.split(":")
        if len(parts) != 2:
            raise _Refused(INVALID_SPECIFIER, f"hcp {shown(value)} is not home:away")
        home, away = (_number(p.strip(), "hcp") for p in parts)
        if not math.isfinite(home - away):
            raise _Refused(INVALID_SPECIFIER, f"hcp {shown(value)} is not finite")
        return normalize_line(home - away)
    raise _Refused(UNKNOWN_PARAM, f"line kind {line_kind!r} is not routed")


def _available(flag: Any) -> bool:
    """``isActive`` 1 = can be bet now; an outcome that does not say is taken as active."""
    if flag is None:
        return True
    if isinstance(flag, str):
        return flag.strip().casefold() in ("1", "true")
    return flag == 1


class _RawOutcome(_Lenient):
    desc: _Text
    odds: Any = None
    is_active: Any = Field(None, alias="isActive")


class _RawMarket(_Lenient):
    id: _Text
    specifier: str | None = None
    desc: str = ""
    outcomes: list[_RawOutcome] = Field(min_length=1)


def _with_spec(specifier: str | None, text: str) -> str:
    return f"{specifier}: {text}" if specifier and specifier.strip() else text


@lru_cache(maxsize=1024)
def _claims(market_id: str) -> dict[str, tuple[Market, str]]:
    """Normalised outcome name -> (market, outcome key) over a catalogued id's entries; the
    same for every instance of the id, so built once (it was a tenth of decoding)."""
    return {normalize_outcome_name(NAME, name): (m, key)
            for m in load_catalogue().lookup(NAME, market_id) for name, key in m.outcome_names(NAME).items()}


def _map_market(raw: _RawMarket, catalogue: Catalogue) -> tuple[list[Price], list[Unmapped]]:
    """One market instance (one line) to prices; whatever cannot be mapped says why."""

    def miss(reason: str, text: str) -> Unmapped:
        return Unmapped(market_id=raw.id, reason=reason, detail=_with_spec(raw.specifier, text), name=raw.desc)

    candidates = catalogue.lookup(NAME, raw.id)
    if not candidates:
        return [], [miss(UNKNOWN_MARKET, raw.desc)]
    try:
        spec = parse_specifier(raw.specifier)
        lines = {m.key: market_line(m.line_kind, spec) for m in candidates}
    except _Refused as exc:
        return [], [miss(exc.reason, exc.why)]

    claims = _claims(raw.id)
    prices: list[Price] = []
    lost: list[Unmapped] = []
    seen: set[tuple[str, str]] = set()
    for out in raw.outcomes:
        claim = claims.get(normalize_outcome_name(NAME, out.desc))
        if claim is None:
            lost.append(miss(UNKNOWN_OUTCOME, out.desc))
            continue
        market, key = claim
        if (market.key, key) in seen:
            return [], [miss(MALFORMED_MARKET, f"outcome {out.desc!r} appears twice")]
        seen.add((market.key, key))
        odds = decimal_odds(out.odds)
        if odds is None:
            lost.append(miss(BAD_ODDS, f"{out.desc}={shown(out.odds)}"))
            continue
        prices.append(Price(market=market.key, line=lines[market.key], outcome=key, odds=odds,
                            available=_available(out.is_active)))
    return prices, lost


def _raw_field(raw: Any, key: str) -> str:
    value = raw.get(key) if isinstance(raw, dict) else None
    return "" if value is None else value if isinstance(value, str) else shown(value)


def map_markets(raw_markets: list[Any]) -> tuple[list[Price], list[Unmapped]]:
    """Prices and unmapped entries of an event's ``markets`` list, each market on its own.

    A market instance that repeats a (market, line) already priced is refused as malformed:
    keeping both would let whichever the store sees last win.
    """
    catalogue = load_catalogue()
    prices: list[Price] = []
    unmapped: list[Unmapped] = []
    priced: set[tuple[str, float | None]] = set()
    for raw in raw_markets:
        try:
            market = _RawMarket.model_validate(raw)
        except ValidationError as exc:
            unmapped.append(Unmapped(market_id=_raw_field(raw, "id"), reason=MALFORMED_MARKET,
                                     detail=_problem(exc), name=_raw_field(raw, "desc")))
            continue
        got, lost = _map_market(market, catalogue)
        lines = {(p.market, p.line) for p in got}
        if lines & priced:
            market_key, line = min(lines & priced, key=str)
            unmapped.append(Unmapped(market_id=market.id, reason=MALFORMED_MARKET, name=market.desc,
                                     detail=_with_spec(market.specifier, f"repeats {market_key} line {line}")))
            continue
        priced |= lines
        prices.extend(got)
        unmapped.extend(lost)
    return prices, unmapped


# Event detail -------------------------------------------------------------------------------


def parse_event(payload: Any, hint: DiscoveredEvent | None = None) -> ParsedEvent:
    """An event detail (the envelope's ``data``, or the whole body) as canonical prices.

    ``hint`` is the listing the event was fetched for: a payload for another event is refused,
    and the listing's country and tournament fill in where the detail has none.
    """
    data = _unwrap(payload)
    if not isinstance(data, dict):
        raise MalformedPayload("event is not an object")
    try:
        head = _EventHead.model_validate(data)
    except ValidationError as exc:
        raise MalformedPayload(f"event {shown(data.get('eventId'))}: {_problem(exc)}") from None
    if hint is not None and hint.book_event_id != head.event_id:
        raise MalformedPayload(f"asked for {hint.book_event_id}, got {head.event_id}")
    raw_markets = data.get("markets")
    if raw_markets is None:
        raw_markets = []
    if not isinstance(raw_markets, list):
        raise MalformedPayload(f"event {head.event_id}: markets is not a list")
    country, tournament = head.category()
    if hint is not None:
        country, tournament = country or hint.country, tournament or hint.tournament
    prices, unmapped = map_markets(raw_markets)
    return ParsedEvent(
        book=NAME, book_event_id=head.event_id, sr_id=head.sr_id, kickoff=head.kickoff,
        country=country, tournament=tournament, home=head.home, away=head.away,
        prices=prices, unmapped=unmapped, raw_markets=len(raw_markets),
    )


# Client -------------------------------------------------------------------------------------


def _payload_failure(exc: MalformedPayload, *, not_found: bool, attempts: int,
                     book_event_id: str | None = None, about: str = "") -> FetchFailure:
    if isinstance(exc, EnvelopeError):
        kind = "not_found" if not_found else "business"
    else:
        kind = "malformed"
    return FetchFailure(book=NAME, kind=kind, message=f"{about}{exc}",  # type: ignore[arg-type]
                        book_event_id=book_event_id, attempts=attempts)


class SportyBetClient(BookClient):
    name = NAME
    headers = HEADERS

    async def discover(self, now: datetime | None = None) -> Discovery:
        """Sport tree, then each tournament's events; one failing tournament costs only itself."""
        now = now or datetime.now(UTC)
        started = time.monotonic()
        result = Discovery(book=NAME)
        try:
            body, attempts = await self.request_json("GET", TREE_PATH, params={
                "sportId": FOOTBALL, "timeline": "", "productId": PRODUCT_PREMATCH, "_t": now_ms(),
            })
        except FetchError as exc:
            result.failures.append(exc.to_failure(NAME))
            result.tree_failed = True
        else:
            try:
                tournaments = parse_tree(envelope_data(body))
            except MalformedPayload as exc:
                result.failures.append(_payload_failure(exc, not_found=False, attempts=attempts,
                                                        about="sport tree: "))
                result.tree_failed = True
            else:
                result.tournaments = len(tournaments)
                listed = await asyncio.gather(*(self._tournament_events(t, now) for t in tournaments))
                seen: set[str] = set()
                for found in listed:
                    if isinstance(found, FetchFailure):
                        result.failures.append(found)
                        continue
                    for ev in found:
                        if ev.book_event_id not in seen:
                            seen.add(ev.book_event_id)
                            result.events.append(ev)
        result.seconds = time.monotonic() - started
        return result

    async def _tournament_events(self, tournament: Tournament, now: datetime) -> list[DiscoveredEvent] | FetchFailure:
        about = f"tournament {tournament.tournament_id}: "
        try:
            body, attempts = await self.request_json(
                "POST", EVENTS_PATH, json_body=events_request(tournament.tournament_id),
                headers={"content-type": "application/json"},
            )
        except FetchError as exc:
            failure = exc.to_failure(NAME)
            return replace(failure, message=about + failure.message)
        try:
            return parse_event_list(envelope_data(body), tournament, now)
        except MalformedPayload as exc:
            return _payload_failure(exc, not_found=False, attempts=attempts, about=about)

    def event_request(self, event: DiscoveredEvent) -> tuple[str, dict[str, Any] | None]:
        return EVENT_PATH, {"eventId": event.book_event_id, "productId": PRODUCT_PREMATCH, "_t": now_ms()}


def decode_event(content: bytes, event: DiscoveredEvent, attempts: int) -> ParsedEvent | FetchFailure:
    """An event-detail body → canonical prices, or the typed failure (pure: runs in a worker)."""
    try:
        body = decode_json(content, attempts)
    except FetchError as exc:
        return exc.to_failure(NAME, event.book_event_id)
    try:
        return parse_event(envelope_data(body), hint=event)
    except MalformedPayload as exc:
        return _payload_failure(exc, not_found=True, attempts=attempts, book_event_id=event.book_event_id)

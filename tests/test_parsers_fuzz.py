"""Hostile payloads into the three books' parsers (property-based, hypothesis).

Valid payloads come from the simulator's renderers (the books' real shapes); hypothesis then
breaks them: wrong types, missing keys, huge strings, NaN/inf/negative/zero odds, deep nesting,
cut or non-UTF-8 bytes. What the parsers promise (``_models.py``) and these tests hold them to:

* ``parse_*`` return their result or raise ``MalformedPayload`` (Bet9ja's envelope readers also
  ``FetchError`` for a refusal ``R``, as ``bet9ja._unwrap`` documents); ``decode_event`` never
  raises: a ``ParsedEvent`` or a ``FetchFailure``;
* every price that comes out is a catalogue price with finite odds > 1;
* a broken market costs only itself: it is counted as unmapped, the good market beside it
  comes out unchanged;
* what is reported stays short (a hostile payload cannot flood the unmapped table or the logs).

Values are what JSON can carry once orjson has decoded it (integers beyond 64 bits arrive as
floats or are refused by the decoder, so Python ints past ``str``'s 4,300-digit limit are out of
scope).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.bookmakers import bet9ja, betpawa, sportybet
from engine.bookmakers._client import FetchError
from engine.bookmakers._models import (
    MESSAGE_LIMIT,
    REPORT_LIMITS,
    DiscoveredEvent,
    FetchFailure,
    MalformedPayload,
    ParsedEvent,
    Price,
    Tournament,
)
from engine.config import BOOKS
from engine.markets.catalogue import load_catalogue
from engine.simulator import render_bet9ja, render_betpawa, render_sportybet
from engine.simulator.world import build_world

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODULES = {"betpawa": betpawa, "sportybet": sportybet, "bet9ja": bet9ja}
WORLD = build_world(seed=5, events=8)
EVENT = next(e for e in WORLD.events if set(e.books) == set(BOOKS))
NOW = datetime(2000, 1, 1, tzinfo=UTC)  # before every simulated kickoff: each listed event is upcoming
FEW_MARKETS = {"1x2_ft", "over_under_ft", "asian_handicap_ft", "handicap_3way_ft", "btts_ft"}


def quotes(book: str, markets: set[str]) -> list[Price]:
    return [p for p in WORLD.quotes(book, EVENT.sr_id) if p.market in markets]


def body(book: str, prices: list[Price]) -> dict[str, Any]:
    """The event-detail response body exactly as the book sends it."""
    render = {"betpawa": render_betpawa, "sportybet": render_sportybet, "bet9ja": render_bet9ja}[book]
    return render.event_detail(EVENT, prices)


def detail(book: str, prices: list[Price]) -> dict[str, Any]:
    """What ``parse_event`` takes: Bet9ja's parser reads the envelope's ``D``."""
    whole = body(book, prices)
    return whole["D"] if book == "bet9ja" else whole


def hint(book: str) -> DiscoveredEvent:
    t = EVENT.tournament
    return DiscoveredEvent(book=book, book_event_id=EVENT.book_ids[book], sr_id=EVENT.sr_id, kickoff=EVENT.kickoff,
                           country=t.country, tournament=t.name, home=EVENT.home, away=EVENT.away)


def tree(book: str) -> dict[str, Any]:
    tournaments = [(t, 3) for t in WORLD.tournaments[:4]]
    return {"betpawa": render_betpawa.categories, "sportybet": render_sportybet.sport_tree,
            "bet9ja": render_bet9ja.sports}[book](tournaments)


def event_list(book: str) -> dict[str, Any]:
    events = [e for e in WORLD.events if book in e.books and e.tournament is EVENT.tournament]
    if book == "betpawa":
        return render_betpawa.events_lists([events])
    if book == "sportybet":
        block = render_sportybet.events_block(EVENT.tournament, [(e, []) for e in events], None)
        return render_sportybet.pc_events([block])
    return render_bet9ja.events_in_group([(e, []) for e in events])


TOURNAMENT = {book: Tournament(book, tid, EVENT.tournament.name, EVENT.tournament.country) for book, tid in (
    ("betpawa", EVENT.tournament.betpawa_id), ("sportybet", EVENT.tournament.sportybet_id),
    ("bet9ja", EVENT.tournament.bet9ja_id))}

# --- hostile values ------------------------------------------------------------------------


def deep(levels: int, leaf: Any = 1.5) -> Any:
    """``levels`` nested lists (Python's repr and json give up near 1,000)."""
    value: Any = leaf
    for _ in range(levels):
        value = [value]
    return value


HUGE = "9" * 100_000
BAD_ODDS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0, 0.0, -0.0, 1, 1.0, -2.5, 0.5, 1e-300, 10**400 / 10**399 - 9,
                     "NaN", "nan", "inf", "-inf", "1e999", "0", "1", "1.0", "-1.85", "", " ", "abc", "1,85", "1_0",
                     "\x00", HUGE, None, True, False, [], {}, [1.85], {"odds": 1.85}, 10**400]),
    st.integers(max_value=1),
    st.floats(max_value=1.0),
    st.builds(deep, st.sampled_from([10, 995, 3_000])),
)
WRONG_TYPES = st.one_of(
    st.none(), st.booleans(), st.sampled_from(["", "   ", HUGE, "\ud800", "null", "[]"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3), st.builds(deep, st.sampled_from([5, 995, 3_000])),
)
#: Text that reads as a number, line or time to a careless parser.
TRICKY_TEXT = ["9" * 400, "9" * 400 + ":1", "1e308:-1e308", "-" + "9" * 400, "0:0", "1_0", "١٫٥", "sr:match:",
               "sr:match:" + "9" * 400, "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00",
               "0000-00-00 00:00:00", "total=" + "9" * 400, "hcp=1e308:-1e308", "A - ", " - B", "S_1X2@2.5_1"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), st.just(HUGE), st.sampled_from(TRICKY_TEXT),
)
HOSTILE = st.one_of(SCALARS, WRONG_TYPES, BAD_ODDS)


def paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every place in a JSON tree (keys of dicts, indexes of lists), parents first."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from paths(value, (*prefix, i))


def mutate(payload: Any, edits: list[tuple[tuple, str, Any]]) -> Any:
    """A copy with each edit applied where its path still exists: replace the node, or delete it
    (from its dict or list)."""
    out = copy.deepcopy(payload)
    for path, action, value in edits:
        if not path:
            out = value
            continue
        parent = out
        try:
            for step in path[:-1]:
                parent = parent[step]
            last = path[-1]
            if isinstance(parent, dict) and last in parent or isinstance(parent, list) and last < len(parent):
                if action == "delete":
                    del parent[last]
                else:
                    parent[last] = value
        except (KeyError, IndexError, TypeError):
            continue
    return out


def edits_of(payload: Any) -> st.SearchStrategy[list[tuple[tuple, str, Any]]]:
    return st.lists(st.tuples(st.sampled_from(list(paths(payload))), st.sampled_from(["replace", "delete"]), HOSTILE),
                    min_size=1, max_size=4)


def mutated(data: st.DataObject, payload: Any) -> Any:
    """``payload`` with one to four hostile edits anywhere in it."""
    return mutate(payload, data.draw(edits_of(payload)))


def each_book(test: Callable) -> Callable:
    """A property test run for each book, with ``data`` to draw from."""
    return pytest.mark.parametrize("book", BOOKS)(FUZZ(given(data=st.data())(test)))


# --- properties ----------------------------------------------------------------------------

CATALOGUE = load_catalogue()


def assert_valid_prices(parsed: ParsedEvent) -> None:
    keys = [(p.market, p.line, p.outcome) for p in parsed.prices]
    assert len(keys) == len(set(keys))
    for p in parsed.prices:
        assert isinstance(p.odds, float) and math.isfinite(p.odds) and p.odds > 1.0, p
        assert p.market in CATALOGUE.markets and p.outcome, p
        assert p.line is None or math.isfinite(p.line), p
        assert isinstance(p.available, bool)


def assert_short_reports(parsed: ParsedEvent) -> None:
    for u in parsed.unmapped:
        assert all(len(getattr(u, attr)) <= limit for attr, limit in REPORT_LIMITS.items()), (u.reason, len(u.detail))


def assert_decoded(book: str, content: bytes, attempts: int) -> None:
    """``decode_event`` returns valid prices or a short, typed failure for this event; it never raises."""
    result = MODULES[book].decode_event(content, hint(book), attempts)
    assert isinstance(result, (ParsedEvent, FetchFailure))
    if isinstance(result, ParsedEvent):
        assert_valid_prices(result)
        assert_short_reports(result)
    else:
        assert result.book == book and result.book_event_id == EVENT.book_ids[book]
        assert result.attempts == attempts and len(result.message) <= MESSAGE_LIMIT


def parse_or_refuse(call: Callable[[], Any], allowed: tuple[type[BaseException], ...] = (MalformedPayload,)) -> Any:
    """The call's result, or None when it refused with an exception its boundary allows."""
    try:
        return call()
    except allowed:
        return None


def envelope_refusals(book: str) -> tuple[type[BaseException], ...]:
    return (MalformedPayload, FetchError) if book == "bet9ja" else (MalformedPayload,)


@pytest.mark.parametrize("book", BOOKS)
def test_the_valid_payloads_parse_to_the_simulators_prices(book):
    """The fuzzing below starts from payloads the parsers read exactly (else it proves nothing)."""
    prices = quotes(book, FEW_MARKETS)
    parsed = MODULES[book].parse_event(detail(book, prices), hint=hint(book))
    assert sorted(parsed.prices) == sorted(prices) and not parsed.unmapped
    assert MODULES[book].parse_tree(tree(book))
    assert EVENT.book_ids[book] in {e.book_event_id for e in
                                    MODULES[book].parse_event_list(event_list(book), TOURNAMENT[book], NOW)}


@each_book
def test_a_mutated_event_parses_or_is_refused_as_malformed(book, data):
    payload = detail(book, quotes(book, FEW_MARKETS))
    bad = mutated(data, payload)
    with_hint = data.draw(st.booleans())
    parsed = parse_or_refuse(lambda: MODULES[book].parse_event(bad, hint=hint(book) if with_hint else None))
    if parsed is not None:
        assert_valid_prices(parsed)
        assert_short_reports(parsed)
        assert parsed.home.strip() and parsed.away.strip() and parsed.sr_id.isdigit()
        assert parsed.kickoff.tzinfo is not None


@each_book
def test_a_mutated_body_decodes_to_prices_or_a_failure_never_an_exception(book, data):
    whole = body(book, quotes(book, FEW_MARKETS))
    bad = mutated(data, whole)
    try:
        content = json.dumps(bad).encode("utf-8", "surrogatepass")
    except (RecursionError, ValueError):
        assume(False)  # not expressible as JSON: the byte-level test covers such bodies
    assert_decoded(book, content, attempts=1)


RAW_SNIPPETS = [b"[" * 1000 + b"]" * 1000, b"[" * 1023 + b"1.5" + b"]" * 1023, b"{" * 600, b"1e999", b"-0",
                b"NaN", b"Infinity", b'"\\ud800"', b'"' + b"x" * 1_000_000 + b'"', b"\xff\xfe", b"\x00", b"",
                b"123456789012345678901234567890", b'{"a":' * 500 + b"1" + b"}" * 500]


@each_book
def test_hostile_bytes_decode_to_prices_or_a_failure_never_an_exception(book, data):
    """Cut, corrupted or non-UTF-8 bodies, and raw JSON no Python object would serialise to
    (depth near the decoder's limit, huge strings) spliced in at any value."""
    whole = body(book, quotes(book, FEW_MARKETS))
    spot = data.draw(st.sampled_from([p for p in paths(whole) if p]))
    content = json.dumps(mutate(whole, [(spot, "replace", "__SPLICE__")])).encode()
    content = content.replace(b'"__SPLICE__"', data.draw(st.sampled_from(RAW_SNIPPETS)))
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(content))))
    if cut is not None:
        content = content[:cut]
    flip = data.draw(st.one_of(st.none(), st.tuples(st.integers(0, max(0, len(content) - 1)), st.integers(128, 255))))
    if flip is not None and content:
        content = content[:flip[0]] + bytes([flip[1]]) + content[flip[0] + 1:]
    assert_decoded(book, content, attempts=2)


# --- a broken market beside a good one -------------------------------------------------------

#: Where each book's market object (of one row / one line) can be broken so that it no longer
#: prices anything, and how (deleting one outcome of several leaves the others good).
STRUCTURE = {
    "betpawa": [(("marketType",), "both"), (("marketType", "id"), "both"), (("row",), "both"), (("row", 0), "both"),
                (("row", 0, "prices"), "both"), (("row", 0, "prices", 0), "replace"),
                (("row", 0, "prices", 0, "name"), "both")],
    "sportybet": [(("id",), "both"), (("outcomes",), "both"), (("outcomes", 0), "replace"),
                  (("outcomes", 0, "desc"), "both"), (("specifier",), "both")],
}


def markets_of(book: str, prices: list[Price]) -> list[Any]:
    payload = detail(book, prices)
    return (payload["data"] if book == "sportybet" else payload)["markets"]


def with_bad_odds(market: Any, book: str, odds: Any) -> Any:
    out = copy.deepcopy(market)
    if book == "betpawa":
        for row in out["row"]:
            for price in row["prices"]:
                price["price"] = odds
    else:
        for outcome in out["outcomes"]:
            outcome["odds"] = odds
    return out


def broken_market(book: str, template: Any) -> st.SearchStrategy[Any]:
    """A market that must not yield a price: not an object, a structural field of the wrong
    type or missing, or every odds value unusable."""
    structural = st.builds(
        lambda where, delete, value: mutate(template, [(where[0], "delete" if delete and where[1] == "both"
                                                        else "replace", value)]),
        st.sampled_from(STRUCTURE[book]), st.booleans(),
        WRONG_TYPES.filter(lambda v: not isinstance(v, str)),
    ).filter(lambda m: m != template)
    return st.one_of(SCALARS, WRONG_TYPES, structural, st.builds(lambda o: with_bad_odds(template, book, o), BAD_ODDS))


@pytest.mark.parametrize("book", ["betpawa", "sportybet"])
@FUZZ
@given(data=st.data())
def test_a_broken_market_is_counted_and_the_good_market_beside_it_survives(book, data):
    good_prices = quotes(book, {"1x2_ft"})
    good = markets_of(book, good_prices)
    other = markets_of(book, [p for p in quotes(book, {"over_under_ft"}) if p.line == 2.5])[0]
    junk = data.draw(st.lists(st.one_of(broken_market(book, good[0]), broken_market(book, other)), min_size=1, max_size=5))
    at = data.draw(st.integers(0, len(junk)))
    payload = detail(book, [])
    payload_data = payload["data"] if book == "sportybet" else payload
    payload_data["markets"] = junk[:at] + good + junk[at:]
    parsed = MODULES[book].parse_event(payload, hint=hint(book))
    assert sorted(parsed.prices) == sorted(good_prices)
    assert len(parsed.unmapped) >= len(junk)
    assert_short_reports(parsed)


BET9JA_KEY_PARTS = st.tuples(
    st.sampled_from(["S_1X2", "S_OU", "S_AH", "S_1X2HND", "S_GGNG", "S_ZZZ", "S_", "X_1X2", "S_1X2 ", " S_OU"]),
    st.sampled_from(["", "@2.5", "@-0.25", "@0:1", "@nan", "@inf", "@1e999", "@" + "9" * 600, "@", "@2.5@3"]),
    st.sampled_from(["_1", "_X", "_O", "_U", "_Z", "", "_", "_1 2", "_" + "O" * 600, "_\x00"]),
)


@FUZZ
@given(junk=st.dictionaries(st.one_of(st.builds("".join, BET9JA_KEY_PARTS), st.text(max_size=40), st.just(HUGE)),
                            BAD_ODDS, min_size=1, max_size=8))
def test_bet9ja_broken_keys_are_counted_and_the_good_keys_survive(junk):
    good_prices = quotes("bet9ja", {"1x2_ft"})
    payload = detail("bet9ja", good_prices)
    good_keys = dict(payload["O"])
    payload["O"] = {**good_keys, **{k: v for k, v in junk.items() if k not in good_keys}}
    parsed = bet9ja.parse_event(payload, hint=hint("bet9ja"))
    assert sorted(parsed.prices) == sorted(good_prices)
    reported = {u.market_id for u in parsed.unmapped}
    for key in junk:
        if key in good_keys:
            continue
        split = bet9ja._split_key(key)
        assert (split.market if split else key.strip()[:120]) in reported, key
    assert_short_reports(parsed)


# --- discovery payloads ----------------------------------------------------------------------


@each_book
def test_a_mutated_tree_gives_tournaments_or_is_refused(book, data):
    payload = tree(book)
    bad = mutated(data, payload)
    found = parse_or_refuse(lambda: MODULES[book].parse_tree(bad), envelope_refusals(book))
    if found is not None:
        assert all(isinstance(t, Tournament) and isinstance(t.tournament_id, str) and t.tournament_id for t in found)
        assert len({t.tournament_id for t in found}) == len(found)


@each_book
def test_a_mutated_event_list_gives_upcoming_matchable_events_or_is_refused(book, data):
    payload = event_list(book)
    bad = mutated(data, payload)
    found = parse_or_refuse(lambda: MODULES[book].parse_event_list(bad, TOURNAMENT[book], NOW), envelope_refusals(book))
    if found is not None:
        for event in found:
            assert isinstance(event, DiscoveredEvent) and event.sr_id.isdigit() and event.book_event_id
            assert event.kickoff.tzinfo is not None and event.kickoff > NOW
            assert event.home.strip() and event.away.strip()

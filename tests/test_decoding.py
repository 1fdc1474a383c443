"""What the decode worker hands the batch: a book's event detail as a price frame (the listing's
event and book on every row) and its unmapped markets counted, nothing lost on the way."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import orjson

from engine.bookmakers._client import decode_event
from engine.bookmakers._models import DiscoveredEvent, FetchFailure
from engine.pipeline.decoding import Decoded, decode_shaped

LISTING = DiscoveredEvent(book="bet9ja", book_event_id="709000001", sr_id="61234567",
                          kickoff=datetime(2026, 5, 1, 15, tzinfo=UTC), country="England",
                          tournament="Premier League", home="Arsenal", away="Chelsea")
DETAIL = {"R": "OK", "D": {
    "ID": "709000001", "DS": "Arsenal - Chelsea", "STARTDATE": "2026-05-01 15:00:00", "EXTID": "61234567",
    "SG": "England", "GN": "Premier League",
    "O": {"S_1X2_1": "2.10", "S_1X2_X": "3.40", "S_1X2_2": "3.60",
          "S_OU@2.5_O": "1.90", "S_OU@2.5_U": "1.95",
          "S_NOSUCH_1": "2.0", "S_NOSUCH_2": "2.0", "S_1X2_Q": "5.0", "not a key": "1.5"},
}}


def test_prices_arrive_as_a_frame_of_the_listings_event_and_book():
    body = orjson.dumps(DETAIL)
    parsed = decode_event("bet9ja", body, LISTING, 1)
    shaped = decode_shaped("bet9ja", body, LISTING, 1)
    assert isinstance(shaped, Decoded)
    assert set(shaped.prices["sr_id"]) == {"61234567"} and set(shaped.prices["bookmaker"]) == {"bet9ja"}
    rows = shaped.prices.select("market", "line", "outcome", "odds", "available").rows()
    assert sorted(rows, key=str) == sorted(((p.market, p.line, p.outcome, p.odds, p.available)
                                            for p in parsed.prices), key=str)
    assert shaped.mapped_markets == 2 and shaped.raw_markets == parsed.raw_markets
    assert (shaped.home, shaped.away, shaped.country) == ("Arsenal", "Chelsea", "England")


def test_unmapped_markets_are_counted_not_dropped():
    body = orjson.dumps(DETAIL)
    parsed = decode_event("bet9ja", body, LISTING, 1)
    shaped = decode_shaped("bet9ja", body, LISTING, 1)
    expected = Counter((u.market_id, u.name, u.reason) for u in parsed.unmapped)
    assert {(m, n, r): c for m, n, r, _, c in shaped.unmapped} == expected
    assert shaped.unmapped_count == len(parsed.unmapped) == 3
    firsts = {(u.market_id, u.name, u.reason): u.detail for u in reversed(parsed.unmapped)}
    assert all(detail == firsts[(m, n, r)] for m, n, r, detail, _ in shaped.unmapped)


def test_a_refused_payload_stays_a_typed_failure():
    shaped = decode_shaped("bet9ja", b'{"R": "E", "D": null}', LISTING, 2)
    assert isinstance(shaped, FetchFailure) and shaped.kind == "not_found" and shaped.attempts == 2

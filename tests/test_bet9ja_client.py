"""The Bet9ja client over HTTP (respx at the boundary, payloads in the real shapes): what it
asks for, what it retries, and how one bad tournament or event is reported without losing the
rest."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import respx

from engine.bookmakers._models import DiscoveredEvent, FetchFailure, ParsedEvent, Price
from engine.bookmakers.bet9ja import Bet9jaClient
from engine.config import BookConfig

BASE = "http://bet9ja.test/bet9ja"
TREE = "/desktop/feapi/PalimpsestAjax/GetSports"
EVENTS = "/desktop/feapi/PalimpsestAjax/GetEventsInGroupV2"
EVENT = "/desktop/feapi/PalimpsestAjax/GetEvent"
VERSION = "1.301.2.225"
NOW = datetime(2030, 5, 18, 12, 0, tzinfo=UTC)

CFG = BookConfig(name="bet9ja", url=BASE, concurrency=3, delay_s=0.0, timeout_s=0.5, attempts=3, backoff_s=0.01)

TREE_BODY = {"R": "OK", "D": {"PAL": {
    "1": {"S_DESC": "Soccer", "NUM": 3, "SG": {
        "88001": {"SG_DESC": "Atlantis", "NUM": 2, "G": {"990011": {"G_DESC": "Premier League", "NUM": 2}}},
        "88002": {"SG_DESC": "Borealis", "NUM": 1, "G": {"990021": {"G_DESC": "Super Liga", "NUM": 1},
                                                          "990022": {"G_DESC": "Cup", "NUM": 1}}},
    }},
    "2": {"S_DESC": "Basketball", "NUM": 0, "SG": {}},
}}}


def _item(eid: int, extid: str, ds: str, start: str, gid: int) -> dict[str, Any]:
    return {"ID": eid, "C": str(eid)[-4:], "EXTID": extid, "DS": ds, "STARTDATE": start, "SID": 1, "GID": gid,
            "O": {"S_1X2_1": "2.20", "S_1X2_X": "3.20", "S_1X2_2": "3.30"}}


GROUP_BODIES = {
    "990011": {"R": "OK", "D": {"E": [
        _item(709000001, "61234567", "Harbor City FC - Riverside United", "2030-05-18 14:00:00", 990011),
        _item(709000002, "61234589", "Northgate Rovers - Eastfield Athletic", "2030-05-18 16:30:00", 990011),
    ]}},
    "990021": {"R": "OK", "D": {"E": [
        _item(709000101, "61299901", "Polar FC - Aurora City", "2030-05-19 18:00:00", 990021),
    ]}},
    "990022": {"R": "OK", "D": {"E": [
        _item(709000101, "61299901", "Polar FC - Aurora City", "2030-05-19 18:00:00", 990022),
    ]}},
}

DETAIL_BODY = {"R": "OK", "D": {
    "ID": 709000001, "C": "4521", "EXTID": "61234567", "DS": "Harbor City FC - Riverside United",
    "STARTDATE": "2030-05-18 14:00:00", "SID": 1, "SGID": 88001, "SG": "Atlantis", "GID": 990011,
    "GN": "Premier League",
    "O": {"S_1X2_1": "2.20", "S_1X2_X": "3.20", "S_1X2_2": "3.30", "S_OU@2.5_O": "1.93", "S_OU@2.5_U": "1.85"},
    "MK": [],
}}

EVENT_HINT = DiscoveredEvent(book="bet9ja", book_event_id="709000001", sr_id="61234567",
                             kickoff=datetime(2030, 5, 18, 14, 0, tzinfo=UTC), country="Atlantis",
                             tournament="Premier League", home="Harbor City FC", away="Riverside United",
                             tournament_id="990011")


def run(coro_fn):
    async def main():
        async with Bet9jaClient(CFG) as client:
            return await coro_fn(client)
    return asyncio.run(main())


def event_route(mock: respx.MockRouter, *responses: Any) -> respx.Route:
    return mock.get(EVENT, params={"EVENTID": "709000001", "v_cache_version": VERSION}).mock(
        side_effect=list(responses))


def _groups(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=GROUP_BODIES[request.url.params["GROUPID"]])


# --- discovery ------------------------------------------------------------------------


@respx.mock(base_url=BASE)
def test_discovery_walks_tree_then_groups_with_the_real_paths_params_and_headers(respx_mock):
    tree = respx_mock.get(TREE, params={"DISP": "0", "v_cache_version": VERSION}).respond(json=TREE_BODY)
    groups = respx_mock.get(EVENTS).mock(side_effect=_groups)

    found = run(lambda c: c.discover(now=NOW))

    assert not found.tree_failed and found.failures == [] and found.tournaments == 3
    assert [(e.book_event_id, e.sr_id, e.tournament, e.country) for e in found.events] == [
        ("709000001", "61234567", "Premier League", "Atlantis"),
        ("709000002", "61234589", "Premier League", "Atlantis"),
        ("709000101", "61299901", "Super Liga", "Borealis"),  # listed in two groups, discovered once
    ]
    assert tree.call_count == 1
    assert sorted(dict(c.request.url.params)["GROUPID"] for c in groups.calls) == ["990011", "990021", "990022"]
    for call in [*tree.calls, *groups.calls]:
        assert call.request.headers["accept"] == "*/*"
        assert call.request.headers["accept-language"] == "en-GB,en-US;q=0.9,en;q=0.8"
        assert "Chrome/144.0.0.0" in call.request.headers["user-agent"]
    assert tree.calls[0].request.url.path == "/bet9ja" + TREE
    assert dict(tree.calls[0].request.url.params) == {"DISP": "0", "v_cache_version": VERSION}
    premier = next(c.request for c in groups.calls if c.request.url.params["GROUPID"] == "990011")
    assert dict(premier.url.params) == {"GROUPID": "990011", "DISP": "0", "GROUPMARKETID": "1",
                                        "v_cache_version": VERSION}


@respx.mock(base_url=BASE)
def test_one_failing_tournament_does_not_lose_the_others(respx_mock):
    respx_mock.get(TREE).respond(json=TREE_BODY)
    respx_mock.get(EVENTS, params={"GROUPID": "990021"}).respond(503)
    respx_mock.get(EVENTS, params={"GROUPID": "990022"}).respond(json={"R": "X", "D": None})
    respx_mock.get(EVENTS).mock(side_effect=_groups)

    found = run(lambda c: c.discover(now=NOW))

    assert not found.tree_failed
    assert [e.book_event_id for e in found.events] == ["709000001", "709000002"]
    failures = sorted(found.failures, key=lambda f: f.kind)
    assert [(f.kind, f.status, f.attempts) for f in failures] == [("business", None, 1), ("http_status", 503, 3)]
    assert "990022" in failures[0].message and "990021" in failures[1].message


@respx.mock(base_url=BASE)
def test_unreachable_tree_marks_the_book_unreachable(respx_mock):
    tree = respx_mock.get(TREE).respond(503)
    found = run(lambda c: c.discover(now=NOW))
    assert found.tree_failed and found.events == [] and found.tournaments == 0
    assert [(f.kind, f.status, f.attempts) for f in found.failures] == [("http_status", 503, 3)]
    assert tree.call_count == 3


@respx.mock(base_url=BASE)
def test_tree_refused_by_the_envelope_or_not_json_marks_the_book_unreachable(respx_mock):
    respx_mock.get(TREE).mock(side_effect=[httpx.Response(200, json={"R": "E", "D": None}),
                                           httpx.Response(200, text="<html>blocked</html>")])
    first = run(lambda c: c.discover(now=NOW))
    second = run(lambda c: c.discover(now=NOW))
    assert first.tree_failed and [f.kind for f in first.failures] == ["business"]
    assert second.tree_failed and [f.kind for f in second.failures] == ["malformed"]


@respx.mock(base_url=BASE)
def test_tree_throttled_with_403_is_retried_until_it_answers(respx_mock):
    tree = respx_mock.get(TREE).mock(side_effect=[httpx.Response(403), httpx.Response(200, json=TREE_BODY)])
    respx_mock.get(EVENTS).mock(side_effect=_groups)
    found = run(lambda c: c.discover(now=NOW))
    assert not found.tree_failed and len(found.events) == 3
    assert tree.call_count == 2


# --- event detail ---------------------------------------------------------------------


@respx.mock(base_url=BASE)
def test_event_is_fetched_by_its_numeric_id_and_parsed(respx_mock):
    route = event_route(respx_mock, httpx.Response(200, json=DETAIL_BODY))
    result = run(lambda c: c.fetch_event(EVENT_HINT))
    assert isinstance(result, ParsedEvent)
    assert (result.book_event_id, result.sr_id, result.home, result.away) == (
        "709000001", "61234567", "Harbor City FC", "Riverside United")
    assert result.prices == [
        Price("1x2_ft", None, "home", 2.20), Price("1x2_ft", None, "draw", 3.20), Price("1x2_ft", None, "away", 3.30),
        Price("over_under_ft", 2.5, "over", 1.93), Price("over_under_ft", 2.5, "under", 1.85),
    ]
    assert route.call_count == 1
    assert dict(route.calls[0].request.url.params) == {"EVENTID": "709000001", "v_cache_version": VERSION}
    assert route.calls[0].request.headers["accept"] == "*/*"


@respx.mock(base_url=BASE)
def test_legacy_d_result_code_is_accepted(respx_mock):
    event_route(respx_mock, httpx.Response(200, json={**DETAIL_BODY, "R": "D"}))
    assert isinstance(run(lambda c: c.fetch_event(EVENT_HINT)), ParsedEvent)


@respx.mock(base_url=BASE)
def test_throttling_and_server_errors_are_retried_then_succeed(respx_mock):
    route = event_route(respx_mock, httpx.Response(429), httpx.Response(503), httpx.Response(200, json=DETAIL_BODY))
    result = run(lambda c: c.fetch_event(EVENT_HINT))
    assert isinstance(result, ParsedEvent) and len(result.prices) == 5
    assert route.call_count == 3


@respx.mock(base_url=BASE)
def test_retry_after_is_honoured(respx_mock):
    route = event_route(respx_mock, httpx.Response(429, headers={"Retry-After": "0.3"}),
                        httpx.Response(200, json=DETAIL_BODY))
    started = time.perf_counter()
    result = run(lambda c: c.fetch_event(EVENT_HINT))
    assert isinstance(result, ParsedEvent)
    assert time.perf_counter() - started >= 0.3
    assert route.call_count == 2


@respx.mock(base_url=BASE)
def test_persistent_403_gives_up_after_the_configured_attempts(respx_mock):
    route = event_route(respx_mock, *[httpx.Response(403)] * 3)
    result = run(lambda c: c.fetch_event(EVENT_HINT))
    assert result == FetchFailure(book="bet9ja", kind="http_status", message=result.message, status=403,
                                  book_event_id="709000001", attempts=3)
    assert route.call_count == 3


@respx.mock(base_url=BASE)
def test_unknown_event_is_not_found_and_not_retried(respx_mock):
    route = event_route(respx_mock, httpx.Response(200, json={"R": "E", "D": None}))
    result = run(lambda c: c.fetch_event(EVENT_HINT))
    assert isinstance(result, FetchFailure)
    assert (result.kind, result.book_event_id, result.attempts) == ("not_found", "709000001", 1)
    assert route.call_count == 1


@respx.mock(base_url=BASE)
def test_http_404_is_not_found_and_not_retried(respx_mock):
    route = event_route(respx_mock, httpx.Response(404))
    result = run(lambda c: c.fetch_event(EVENT_HINT))
    assert isinstance(result, FetchFailure) and (result.kind, result.status, result.attempts) == ("not_found", 404, 1)
    assert route.call_count == 1


@respx.mock(base_url=BASE)
def test_other_result_codes_are_business_failures_and_not_retried(respx_mock):
    route = event_route(respx_mock, httpx.Response(200, json={"R": "KO", "D": None}))
    result = run(lambda c: c.fetch_event(EVENT_HINT))
    assert isinstance(result, FetchFailure) and (result.kind, result.attempts) == ("business", 1)
    assert "KO" in result.message
    assert route.call_count == 1


@respx.mock(base_url=BASE)
def test_malformed_json_or_event_is_reported_not_raised_and_not_retried(respx_mock):
    route = event_route(respx_mock, httpx.Response(200, text='{"R": "OK", "D": {"ID": 7090'),
                        httpx.Response(200, json={"R": "OK", "D": {"ID": 709000001, "O": {}}}),
                        httpx.Response(200, json={"R": "OK", "D": ["not", "an", "event"]}))

    async def three(client: Bet9jaClient) -> list[Any]:
        return [await client.fetch_event(EVENT_HINT) for _ in range(3)]

    results = run(three)
    assert [(r.kind, r.attempts) for r in results] == [("malformed", 1)] * 3
    assert route.call_count == 3


@respx.mock(base_url=BASE)
def test_timeouts_give_up_after_the_configured_attempts(respx_mock):
    route = event_route(respx_mock, *[httpx.ReadTimeout("slow")] * 3)
    result = run(lambda c: c.fetch_event(EVENT_HINT))
    assert isinstance(result, FetchFailure) and (result.kind, result.attempts) == ("timeout", 3)
    assert route.call_count == 3


@respx.mock(base_url=BASE)
def test_connection_errors_are_retried(respx_mock):
    route = event_route(respx_mock, httpx.ConnectError("refused"), httpx.Response(200, json=DETAIL_BODY))
    assert isinstance(run(lambda c: c.fetch_event(EVENT_HINT)), ParsedEvent)
    assert route.call_count == 2

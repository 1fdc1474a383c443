"""BetPawa client: real paths, headers and query encoding; paging; retries and failures.

respx stands in for BetPawa at the HTTP boundary and answers with payloads in its real shapes.
Clients get a tiny backoff so retry tests take milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

import httpx
import respx

from engine.bookmakers._models import DiscoveredEvent, FetchFailure, ParsedEvent, Price
from engine.bookmakers.betpawa import BetPawaClient
from engine.config import BookConfig

BASE = "https://www.betpawa.ng"
TREE = "/api/sportsbook/v3/categories/list/2"
LIST = "/api/sportsbook/v3/events/lists/by-queries"
NOW = datetime(2030, 5, 1, tzinfo=timezone.utc)


def config(**changes: Any) -> BookConfig:
    values = dict(name="betpawa", url=BASE, concurrency=8, delay_s=0.0, timeout_s=2.0, attempts=3, backoff_s=0.01)
    values.update(changes)
    return BookConfig(**values)


def run(coro_fn, cfg: BookConfig | None = None):
    async def main():
        async with BetPawaClient(cfg or config()) as client:
            return await coro_fn(client)

    return asyncio.run(main())


def tree(*competitions: tuple[str, str, str]) -> dict[str, Any]:
    regions: dict[str, list[dict[str, Any]]] = {}
    for comp_id, name, country in competitions:
        regions.setdefault(country, []).append({"competition": {"id": comp_id, "name": name}, "eventCount": 1})
    return {"withRegions": [{"category": {"id": "2", "name": "Football"}, "regions": [
        {"region": {"id": str(i), "name": country}, "competitions": comps}
        for i, (country, comps) in enumerate(regions.items())
    ]}]}


def list_item(event_id: str, sr_id: str | None, kickoff: str = "2030-05-18T14:00:00Z",
              home: str = "Harbor City FC", away: str = "Riverside United") -> dict[str, Any]:
    item = {
        "id": event_id, "name": f"{home} - {away}", "startTime": kickoff,
        "participants": [{"id": "1", "name": home, "position": 1}, {"id": "2", "name": away, "position": 2}],
        "competition": {"id": "20001", "name": "Premier League"}, "region": {"id": "310", "name": "Atlantis"},
        "category": {"id": "2", "name": "Football"},
    }
    if sr_id is not None:
        item["widgets"] = [{"id": sr_id, "type": "SPORTRADAR", "retention": "PREMATCH"}]
    return item


def event_list(*items: dict[str, Any]) -> dict[str, Any]:
    return {"responses": [{"responses": list(items)}]}


def detail(event_id: str, sr_id: str | None) -> dict[str, Any]:
    payload = list_item(event_id, sr_id)
    payload["results"] = None
    payload["markets"] = [{
        "marketType": {"id": "3743", "name": "1X2 - FT", "displayName": "1X2 | Full Time",
                       "tabs": ["all", "popular"], "handicapType": ""},
        "row": [{"id": "r-0", "handicap": None, "formattedHandicap": None, "prices": [
            {"id": "p1", "name": "1", "typeId": "3744", "price": 2.2, "suspended": False, "handicap": None},
            {"id": "p2", "name": "X", "typeId": "3745", "price": 3.3, "suspended": False, "handicap": None},
            {"id": "p3", "name": "2", "typeId": "3746", "price": 3.25, "suspended": False, "handicap": None},
        ]}],
    }]
    return payload


def listing(event_id: str = "33100001", sr_id: str = "61234567") -> DiscoveredEvent:
    return DiscoveredEvent(book="betpawa", book_event_id=event_id, sr_id=sr_id,
                           kickoff=datetime(2030, 5, 18, 14, tzinfo=timezone.utc), country="Atlantis",
                           tournament="Premier League", home="Harbor City FC", away="Riverside United",
                           tournament_id="20001")


def decoded_query(request: httpx.Request) -> dict[str, Any]:
    raw = request.url.query.decode()
    assert raw.startswith("q=")
    return json.loads(unquote(raw[2:]))


def competition_of(request: httpx.Request) -> str:
    return decoded_query(request)["queries"][0]["query"]["zones"]["competitions"][0]


ONE_X_TWO = [Price("1x2_ft", None, "home", 2.2), Price("1x2_ft", None, "draw", 3.3),
             Price("1x2_ft", None, "away", 3.25)]


# --- requests as BetPawa expects them -------------------------------------------------------


@respx.mock(base_url=BASE, assert_all_called=True)
def test_discovery_sends_the_reference_paths_headers_and_query(respx_mock):
    tree_route = respx_mock.get(TREE).respond(json=tree(("20001", "Premier League", "Atlantis")))
    list_route = respx_mock.get(LIST).respond(json=event_list(
        list_item("33100001", "61234567"),
        list_item("33100002", "61234589", "2030-05-18T16:30:00Z", "Northgate Rovers", "Eastfield Athletic"),
    ))

    found = run(lambda c: c.discover(now=NOW))

    assert not found.tree_failed and found.failures == [] and found.tournaments == 1
    assert [(e.book_event_id, e.sr_id, e.home, e.away, e.country, e.tournament) for e in found.events] == [
        ("33100001", "61234567", "Harbor City FC", "Riverside United", "Atlantis", "Premier League"),
        ("33100002", "61234589", "Northgate Rovers", "Eastfield Athletic", "Atlantis", "Premier League"),
    ]
    for route in (tree_route, list_route):
        headers = route.calls.last.request.headers
        assert headers["accept"] == "*/*"
        assert headers["accept-language"] == "en-GB,en-US;q=0.9,en;q=0.8"
        assert headers["user-agent"] == ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                                         "(KHTML, like Gecko) Chrome/144.0.0.0 Safari/537.36")
        assert headers["x-pawa-brand"] == "betpawa-nigeria"
        assert headers["devicetype"] == "web"
    raw_query = list_route.calls.last.request.url.query.decode()
    assert raw_query.startswith("q=%7B%22queries%22%3A%20%5B%7B%22query%22%3A%20%7B%22eventType%22%3A%20"
                                "%22UPCOMING%22%2C%20")
    assert unquote(raw_query[2:]) == (
        '{"queries": [{"query": {"eventType": "UPCOMING", "categories": ["2"], "zones": {"competitions": '
        '["20001"]}, "hasOdds": true}, "view": {}, "skip": 0, "take": 100}]}'
    )


def test_base_url_with_a_path_prefix_is_kept():
    with respx.mock(base_url="http://127.0.0.1:8765/betpawa", assert_all_called=True) as mock:
        route = mock.get("/api/sportsbook/v3/events/33100001").respond(json=detail("33100001", "61234567"))
        parsed = run(lambda c: c.fetch_event(listing()), config(url="http://127.0.0.1:8765/betpawa"))

    assert isinstance(parsed, ParsedEvent) and parsed.prices == ONE_X_TWO
    assert route.calls.last.request.url.path == "/betpawa/api/sportsbook/v3/events/33100001"


# --- paging ---------------------------------------------------------------------------------


def paged_list(total: int, ignore_skip: bool = False):
    items = [list_item(str(33200000 + i), str(62000000 + i)) for i in range(total)]

    def answer(request: httpx.Request) -> httpx.Response:
        query = decoded_query(request)["queries"][0]
        skip = 0 if ignore_skip else query["skip"]
        return httpx.Response(200, json=event_list(*items[skip: skip + query["take"]]))

    return answer


@respx.mock(base_url=BASE, assert_all_called=False)
def test_discovery_pages_past_the_first_hundred_events(respx_mock):
    respx_mock.get(TREE).respond(json=tree(("20001", "Premier League", "Atlantis")))
    route = respx_mock.get(LIST).mock(side_effect=paged_list(230))

    found = run(lambda c: c.discover(now=NOW))

    assert len(found.events) == 230 and len({e.sr_id for e in found.events}) == 230
    assert [decoded_query(c.request)["queries"][0]["skip"] for c in route.calls] == [0, 100, 200]
    assert found.failures == []


@respx.mock(base_url=BASE, assert_all_called=False)
def test_a_full_last_page_costs_one_empty_page_and_no_more(respx_mock):
    respx_mock.get(TREE).respond(json=tree(("20001", "Premier League", "Atlantis")))
    route = respx_mock.get(LIST).mock(side_effect=paged_list(100))

    found = run(lambda c: c.discover(now=NOW))

    assert len(found.events) == 100 and route.call_count == 2


@respx.mock(base_url=BASE, assert_all_called=False)
def test_a_server_that_ignores_skip_does_not_loop_forever(respx_mock):
    respx_mock.get(TREE).respond(json=tree(("20001", "Premier League", "Atlantis")))
    route = respx_mock.get(LIST).mock(side_effect=paged_list(150, ignore_skip=True))

    found = run(lambda c: c.discover(now=NOW))

    assert len(found.events) == 100 and route.call_count == 2


# --- list items without the SportRadar widget -----------------------------------------------


@respx.mock(base_url=BASE, assert_all_called=False)
def test_list_items_without_widget_get_their_sportradar_id_from_the_detail(respx_mock):
    respx_mock.get(TREE).respond(json=tree(("20001", "Premier League", "Atlantis")))
    respx_mock.get(LIST).respond(json=event_list(
        list_item("1", "61000001"),
        list_item("2", None),
        list_item("3", None),
        list_item("4", None),
        list_item("5", None, kickoff="2030-04-30T12:00:00Z"),  # already started: not even looked up
    ))
    details = {
        "2": respx_mock.get("/api/sportsbook/v3/events/2").respond(json=detail("2", "61000002")),
        "3": respx_mock.get("/api/sportsbook/v3/events/3").respond(json=detail("3", None)),
        "4": respx_mock.get("/api/sportsbook/v3/events/4").respond(404, json={"message": "Not found"}),
        "5": respx_mock.get("/api/sportsbook/v3/events/5").respond(json=detail("5", "61000005")),
    }

    found = run(lambda c: c.discover(now=NOW))

    assert sorted((e.book_event_id, e.sr_id) for e in found.events) == [("1", "61000001"), ("2", "61000002")]
    assert [(f.kind, f.status, f.book_event_id) for f in found.failures] == [("not_found", 404, "4")]
    assert {k: r.call_count for k, r in details.items()} == {"2": 1, "3": 1, "4": 1, "5": 0}


# --- discovery failures ---------------------------------------------------------------------


@respx.mock(base_url=BASE, assert_all_called=False)
def test_one_failing_competition_does_not_lose_the_others(respx_mock):
    respx_mock.get(TREE).respond(json=tree(("20001", "Premier League", "Atlantis"),
                                           ("20002", "Cup", "Atlantis"), ("30001", "Liga", "Borduria")))
    calls: dict[str, int] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        comp = competition_of(request)
        calls[comp] = calls.get(comp, 0) + 1
        if comp == "20002":
            return httpx.Response(503, text="upstream down")
        return httpx.Response(200, json=event_list(list_item(f"{comp}1", f"6{comp}1")))

    respx_mock.get(LIST).mock(side_effect=answer)

    found = run(lambda c: c.discover(now=NOW))

    assert not found.tree_failed and found.tournaments == 3
    assert sorted(e.book_event_id for e in found.events) == ["200011", "300011"]
    assert {e.book_event_id: e.country for e in found.events} == {"200011": "Atlantis", "300011": "Borduria"}
    assert [(f.kind, f.status, f.attempts) for f in found.failures] == [("http_status", 503, 3)]
    assert "20002" in found.failures[0].message
    assert calls == {"20001": 1, "20002": 3, "30001": 1}


@respx.mock(base_url=BASE, assert_all_called=False)
def test_a_malformed_event_list_is_a_failure_of_that_competition(respx_mock):
    respx_mock.get(TREE).respond(json=tree(("20001", "Premier League", "Atlantis"), ("20002", "Cup", "Atlantis")))

    def answer(request: httpx.Request) -> httpx.Response:
        if competition_of(request) == "20002":
            return httpx.Response(200, json={"eventLists": [{"events": []}]})
        return httpx.Response(200, json=event_list(list_item("1", "61000001"), {"id": "2", "startTime": "soon"}))

    route = respx_mock.get(LIST).mock(side_effect=answer)

    found = run(lambda c: c.discover(now=NOW))

    assert [e.book_event_id for e in found.events] == ["1"]
    assert Counter((f.kind, f.book_event_id) for f in found.failures) == Counter(
        [("malformed", None), ("malformed", "2")])
    assert route.call_count == 2


@respx.mock(base_url=BASE, assert_all_called=False)
def test_tree_failure_means_the_book_is_unreachable(respx_mock):
    tree_route = respx_mock.get(TREE).respond(500)
    list_route = respx_mock.get(LIST).respond(json=event_list())

    found = run(lambda c: c.discover(now=NOW))

    assert found.tree_failed and found.events == [] and found.tournaments == 0
    assert [(f.kind, f.status, f.attempts) for f in found.failures] == [("http_status", 500, 3)]
    assert tree_route.call_count == 3 and list_route.call_count == 0


@respx.mock(base_url=BASE, assert_all_called=False)
def test_a_block_page_instead_of_the_tree_is_not_retried(respx_mock):
    tree_route = respx_mock.get(TREE).respond(200, text="<html><body>Access denied</body></html>")

    found = run(lambda c: c.discover(now=NOW))

    assert found.tree_failed
    assert [(f.kind, f.attempts) for f in found.failures] == [("malformed", 1)]
    assert tree_route.call_count == 1


# --- event detail: retries and failures -----------------------------------------------------


@respx.mock(base_url=BASE, assert_all_called=False)
def test_throttling_and_server_errors_are_retried_until_success(respx_mock):
    route = respx_mock.get("/api/sportsbook/v3/events/33100001").mock(side_effect=[
        httpx.Response(429), httpx.Response(503), httpx.Response(200, json=detail("33100001", "61234567")),
    ])

    parsed = run(lambda c: c.fetch_event(listing()))

    assert isinstance(parsed, ParsedEvent) and parsed.prices == ONE_X_TWO
    assert route.call_count == 3


@respx.mock(base_url=BASE, assert_all_called=False)
def test_a_403_is_retried(respx_mock):
    route = respx_mock.get("/api/sportsbook/v3/events/33100001").mock(side_effect=[
        httpx.Response(403, text="Forbidden"), httpx.Response(200, json=detail("33100001", "61234567")),
    ])

    parsed = run(lambda c: c.fetch_event(listing()))

    assert isinstance(parsed, ParsedEvent) and route.call_count == 2


@respx.mock(base_url=BASE, assert_all_called=False)
def test_retry_after_is_honoured(respx_mock):
    seen: list[float] = []
    answers = iter([httpx.Response(429, headers={"Retry-After": "0.4"}),
                    httpx.Response(200, json=detail("33100001", "61234567"))])

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(time.monotonic())
        return next(answers)

    respx_mock.get("/api/sportsbook/v3/events/33100001").mock(side_effect=answer)

    parsed = run(lambda c: c.fetch_event(listing()))

    assert isinstance(parsed, ParsedEvent)
    assert len(seen) == 2 and seen[1] - seen[0] >= 0.38


@respx.mock(base_url=BASE, assert_all_called=False)
def test_persistent_server_errors_give_a_failure_after_the_configured_attempts(respx_mock):
    route = respx_mock.get("/api/sportsbook/v3/events/33100001").respond(503)

    failure = run(lambda c: c.fetch_event(listing()))

    assert isinstance(failure, FetchFailure)
    assert (failure.book, failure.kind, failure.status, failure.attempts, failure.book_event_id) == (
        "betpawa", "http_status", 503, 3, "33100001")
    assert route.call_count == 3


@respx.mock(base_url=BASE, assert_all_called=False)
def test_unknown_event_is_not_found_and_not_retried(respx_mock):
    route = respx_mock.get("/api/sportsbook/v3/events/33199999").respond(
        404, json={"code": "EVENT_NOT_FOUND", "message": "Event not found"})

    failure = run(lambda c: c.fetch_event(listing("33199999")))

    assert isinstance(failure, FetchFailure)
    assert (failure.kind, failure.status, failure.attempts, failure.book_event_id) == (
        "not_found", 404, 1, "33199999")
    assert route.call_count == 1


@respx.mock(base_url=BASE, assert_all_called=False)
def test_truncated_json_is_malformed_and_not_retried(respx_mock):
    body = json.dumps(detail("33100001", "61234567"))[:300]
    route = respx_mock.get("/api/sportsbook/v3/events/33100001").respond(200, text=body)

    failure = run(lambda c: c.fetch_event(listing()))

    assert isinstance(failure, FetchFailure) and (failure.kind, failure.attempts) == ("malformed", 1)
    assert route.call_count == 1


@respx.mock(base_url=BASE, assert_all_called=False)
def test_json_that_is_not_an_event_is_malformed_and_not_retried(respx_mock):
    route = respx_mock.get("/api/sportsbook/v3/events/33100001").respond(200, json={"error": "maintenance"})

    failure = run(lambda c: c.fetch_event(listing()))

    assert isinstance(failure, FetchFailure)
    assert (failure.kind, failure.attempts, failure.book_event_id) == ("malformed", 1, "33100001")
    assert route.call_count == 1


@respx.mock(base_url=BASE, assert_all_called=False)
def test_timeouts_give_a_timeout_failure_after_the_configured_attempts(respx_mock):
    route = respx_mock.get("/api/sportsbook/v3/events/33100001").mock(side_effect=httpx.ReadTimeout("slow"))

    failure = run(lambda c: c.fetch_event(listing()), config(attempts=2))

    assert isinstance(failure, FetchFailure) and (failure.kind, failure.attempts) == ("timeout", 2)
    assert route.call_count == 2


@respx.mock(base_url=BASE, assert_all_called=False)
def test_connection_errors_are_retried_then_reported(respx_mock):
    route = respx_mock.get("/api/sportsbook/v3/events/33100001").mock(side_effect=[
        httpx.ConnectError("refused"), httpx.Response(200, json=detail("33100001", "61234567")),
    ])

    parsed = run(lambda c: c.fetch_event(listing()))

    assert isinstance(parsed, ParsedEvent) and route.call_count == 2


@respx.mock(base_url=BASE, assert_all_called=False)
def test_a_detail_without_widget_keeps_the_sportradar_id_from_discovery(respx_mock):
    respx_mock.get("/api/sportsbook/v3/events/33100001").respond(json=detail("33100001", None))

    parsed = run(lambda c: c.fetch_event(listing()))

    assert isinstance(parsed, ParsedEvent)
    assert (parsed.sr_id, parsed.home, parsed.prices) == ("61234567", "Harbor City FC", ONE_X_TWO)

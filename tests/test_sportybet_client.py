"""The SportyBet client over HTTP: real paths, params and headers, retries, and failures that
cost one event or one tournament, never the run. respx stands in for sportybet.com only."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from engine.bookmakers._models import DiscoveredEvent, FetchFailure, ParsedEvent, Price
from engine.bookmakers.sportybet import HEADERS, NAME, SportyBetClient
from engine.config import BookConfig

BASE = "http://sportybet.test"
TREE = "/api/ng/factsCenter/popularAndSportList"
EVENTS = "/api/ng/factsCenter/pcEvents"
EVENT = "/api/ng/factsCenter/event"
NOW = datetime(2031, 3, 9, 12, 0, tzinfo=UTC)
KICKOFF = NOW + timedelta(hours=6)


def config(attempts: int = 3) -> BookConfig:
    return BookConfig(name=NAME, url=BASE, concurrency=4, delay_s=0.0, timeout_s=2.0, attempts=attempts,
                      backoff_s=0.01)


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def ok(data: Any) -> httpx.Response:
    return httpx.Response(200, json={"bizCode": 10000, "message": "0#0", "data": data})


def tree_body(tournaments: list[tuple[str, str]]) -> dict[str, Any]:
    return {"sportList": [{"id": "sr:sport:1", "name": "Football", "eventSize": len(tournaments), "categories": [
        {"id": "sr:category:9100", "name": "Nigeria", "eventSize": len(tournaments),
         "tournaments": [{"id": tid, "name": name, "eventSize": 1} for tid, name in tournaments]},
    ]}]}


def detail(event_id: str = "sr:match:70112233", kickoff: datetime = KICKOFF) -> dict[str, Any]:
    return {
        "eventId": event_id, "gameId": "52001", "productStatus": "0#0", "estimateStartTime": ms(kickoff),
        "status": 0, "matchStatus": "Not start",
        "homeTeamId": "sr:competitor:990001", "homeTeamName": "Lagos Lions",
        "awayTeamId": "sr:competitor:990002", "awayTeamName": "Kano Pillars",
        "sport": {"id": "sr:sport:1", "name": "Football",
                  "category": {"id": "sr:category:9100", "name": "Nigeria",
                               "tournament": {"id": "sr:tournament:91001", "name": "NPFL"}}},
        "markets": [{
            "id": "1", "product": 3, "desc": "1X2", "status": 0, "group": "Main", "groupId": "1001",
            "title": "1,X,2", "name": "1X2", "favourite": 0, "farNearOdds": 0, "sourceType": "BET_RADAR",
            "lastOddsChangeTime": 1905200000000, "banned": False,
            "outcomes": [
                {"id": "1", "odds": "2.15", "probability": "0.45", "voidProbability": "0E-10", "isActive": 1, "desc": "Home"},
                {"id": "2", "odds": "3.20", "probability": "0.29", "voidProbability": "0E-10", "isActive": 1, "desc": "Draw"},
                {"id": "3", "odds": "3.35", "probability": "0.26", "voidProbability": "0E-10", "isActive": 1, "desc": "Away"},
            ],
        }],
    }


def listing(event_id: str = "sr:match:70112233") -> DiscoveredEvent:
    return DiscoveredEvent(book=NAME, book_event_id=event_id, sr_id=event_id.removeprefix("sr:match:"),
                           kickoff=KICKOFF, country="Nigeria", tournament="NPFL", home="Lagos Lions",
                           away="Kano Pillars", tournament_id="sr:tournament:91001")


def run(coro_fn, cfg: BookConfig | None = None):
    async def go():
        async with SportyBetClient(cfg or config()) as client:
            return await coro_fn(client)

    return asyncio.run(go())


def fetch(event: DiscoveredEvent | None = None, cfg: BookConfig | None = None):
    return run(lambda c: c.fetch_event(event or listing()), cfg)


def assert_browser_headers(request: httpx.Request) -> None:
    for key, value in HEADERS.items():
        assert request.headers[key] == value
    assert "Chrome/143.0.0.0" in request.headers["user-agent"]


# Event detail -------------------------------------------------------------------------------


def test_fetch_event_sends_the_real_request_and_parses_prices():
    with respx.mock(base_url=BASE) as router:
        route = router.get(EVENT).mock(return_value=ok(detail()))
        parsed = fetch()
    assert isinstance(parsed, ParsedEvent)
    assert parsed.prices == [Price("1x2_ft", None, "home", 2.15), Price("1x2_ft", None, "draw", 3.20),
                             Price("1x2_ft", None, "away", 3.35)]
    request = route.calls.last.request
    assert request.method == "GET"
    params = request.url.params
    assert (params["eventId"], params["productId"]) == ("sr:match:70112233", "3")
    assert abs(int(params["_t"]) - time.time() * 1000) < 60_000
    assert_browser_headers(request)
    assert "content-type" not in request.headers


def test_throttling_and_server_errors_are_retried_until_success():
    with respx.mock(base_url=BASE) as router:
        route = router.get(EVENT).mock(side_effect=[
            httpx.Response(429), httpx.Response(503), httpx.Response(403), ok(detail()),
        ])
        parsed = fetch(cfg=config(attempts=4))
    assert isinstance(parsed, ParsedEvent)
    assert len(parsed.prices) == 3
    assert route.call_count == 4


def test_retry_after_is_honoured():
    seen: list[float] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(time.monotonic())
        if len(seen) == 1:
            return httpx.Response(429, headers={"Retry-After": "0.4"})
        return ok(detail())

    with respx.mock(base_url=BASE) as router:
        router.get(EVENT).mock(side_effect=respond)
        parsed = fetch()
    assert isinstance(parsed, ParsedEvent)
    assert len(seen) == 2
    assert seen[1] - seen[0] >= 0.35  # backoff alone would be 0.01 s


def test_persistent_server_error_fails_after_the_configured_attempts():
    with respx.mock(base_url=BASE) as router:
        route = router.get(EVENT).mock(return_value=httpx.Response(502))
        failure = fetch()
    assert failure == FetchFailure(book=NAME, kind="http_status", message="HTTP 502", status=502,
                                   book_event_id="sr:match:70112233", attempts=3)
    assert route.call_count == 3


def test_timeout_is_a_timeout_failure_after_the_configured_attempts():
    with respx.mock(base_url=BASE) as router:
        route = router.get(EVENT).mock(side_effect=httpx.ReadTimeout("slow"))
        failure = fetch()
    assert isinstance(failure, FetchFailure)
    assert (failure.kind, failure.attempts, failure.book_event_id) == ("timeout", 3, "sr:match:70112233")
    assert route.call_count == 3


def test_connection_refused_is_a_transport_failure():
    with respx.mock(base_url=BASE) as router:
        route = router.get(EVENT).mock(side_effect=httpx.ConnectError("refused"))
        failure = fetch(cfg=config(attempts=2))
    assert isinstance(failure, FetchFailure)
    assert (failure.kind, failure.attempts) == ("transport", 2)
    assert route.call_count == 2


def test_http_404_is_not_found_without_retry():
    with respx.mock(base_url=BASE) as router:
        route = router.get(EVENT).mock(return_value=httpx.Response(404))
        failure = fetch()
    assert isinstance(failure, FetchFailure)
    assert (failure.kind, failure.status, failure.attempts) == ("not_found", 404, 1)
    assert route.call_count == 1


def test_business_not_found_envelope_is_not_found_without_retry():
    with respx.mock(base_url=BASE) as router:
        route = router.get(EVENT).mock(return_value=httpx.Response(
            200, json={"bizCode": 19000, "message": "Event not found", "data": None}))
        failure = fetch()
    assert isinstance(failure, FetchFailure)
    assert (failure.kind, failure.attempts, failure.book_event_id) == ("not_found", 1, "sr:match:70112233")
    assert "19000" in failure.message
    assert route.call_count == 1


def test_invalid_json_is_malformed_without_retry():
    with respx.mock(base_url=BASE) as router:
        route = router.get(EVENT).mock(return_value=httpx.Response(200, text="<html>Access denied</html>"))
        failure = fetch()
    assert isinstance(failure, FetchFailure)
    assert (failure.kind, failure.attempts) == ("malformed", 1)
    assert route.call_count == 1


def test_envelope_without_data_or_event_without_teams_is_malformed():
    no_teams = detail()
    del no_teams["homeTeamName"]
    for body in ({"bizCode": 10000, "message": "0#0"}, {"bizCode": 10000, "message": "0#0", "data": no_teams},
                 [1, 2, 3]):
        with respx.mock(base_url=BASE) as router:
            route = router.get(EVENT).mock(return_value=httpx.Response(200, json=body))
            failure = fetch()
        assert isinstance(failure, FetchFailure)
        assert failure.kind == "malformed"
        assert route.call_count == 1


def test_detail_of_another_event_is_malformed():
    with respx.mock(base_url=BASE) as router:
        router.get(EVENT).mock(return_value=ok(detail("sr:match:70999999")))
        failure = fetch()
    assert isinstance(failure, FetchFailure)
    assert failure.kind == "malformed"


# Discovery ----------------------------------------------------------------------------------


def events_of(request: httpx.Request) -> str:
    body = json.loads(request.content)
    return body[0]["tournamentId"][0][0]


def event_list(*items: tuple[str, datetime]) -> httpx.Response:
    return ok([{"id": "sr:tournament:91001", "name": "NPFL", "categoryName": "Nigeria",
                "events": [detail(eid, kickoff) for eid, kickoff in items]}])


def test_discovery_walks_tree_then_tournaments_with_the_real_requests():
    with respx.mock(base_url=BASE) as router:
        tree = router.get(TREE).mock(return_value=ok(tree_body([("sr:tournament:91001", "NPFL")])))
        lists = router.post(EVENTS).mock(return_value=event_list(
            ("sr:match:70000001", NOW + timedelta(hours=2)),
            ("sr:match:70000002", NOW - timedelta(hours=1)),
        ))
        found = run(lambda c: c.discover(now=NOW))

    assert not found.tree_failed and found.failures == []
    assert found.tournaments == 1
    assert found.events == [DiscoveredEvent(NAME, "sr:match:70000001", "70000001", NOW + timedelta(hours=2),
                                            "Nigeria", "NPFL", "Lagos Lions", "Kano Pillars", "sr:tournament:91001")]
    assert found.seconds > 0

    tree_request = tree.calls.last.request
    params = tree_request.url.params
    assert (params["sportId"], params["timeline"], params["productId"]) == ("sr:sport:1", "", "3")
    assert "timeline=&" in str(tree_request.url) or str(tree_request.url).endswith("timeline=")
    assert int(params["_t"]) > 0
    assert_browser_headers(tree_request)

    list_request = lists.calls.last.request
    assert list_request.url.query == b""
    assert list_request.headers["content-type"] == "application/json"
    assert_browser_headers(list_request)
    assert json.loads(list_request.content) == [
        {"sportId": "sr:sport:1", "marketId": "1,18,10,29,11,26,36,14", "tournamentId": [["sr:tournament:91001"]]}
    ]


def test_one_failing_tournament_does_not_lose_the_others():
    def respond(request: httpx.Request) -> httpx.Response:
        tid = events_of(request)
        if tid == "sr:tournament:1":
            return httpx.Response(500)
        if tid == "sr:tournament:2":
            return httpx.Response(200, json={"bizCode": 19001, "message": "busy", "data": None})
        if tid == "sr:tournament:3":
            return httpx.Response(200, text="{truncated")
        return event_list(("sr:match:70000004", NOW + timedelta(days=1)), ("sr:match:70000005", NOW + timedelta(days=2)))

    with respx.mock(base_url=BASE) as router:
        router.get(TREE).mock(return_value=ok(tree_body([(f"sr:tournament:{n}", f"Cup {n}") for n in (1, 2, 3, 4)])))
        lists = router.post(EVENTS).mock(side_effect=respond)
        found = run(lambda c: c.discover(now=NOW))

    assert not found.tree_failed
    assert found.tournaments == 4
    assert [e.book_event_id for e in found.events] == ["sr:match:70000004", "sr:match:70000005"]
    assert {e.tournament for e in found.events} == {"Cup 4"}
    failures = sorted(found.failures, key=lambda f: f.message)
    assert [(f.kind, f.status, f.attempts) for f in failures] == [
        ("http_status", 500, 3), ("business", None, 1), ("malformed", None, 1)]
    assert [f.message.split(": ")[0] for f in failures] == [
        "tournament sr:tournament:1", "tournament sr:tournament:2", "tournament sr:tournament:3"]
    assert lists.call_count == 3 + 1 + 1 + 1


def test_event_listed_in_two_tournaments_is_discovered_once():
    with respx.mock(base_url=BASE) as router:
        router.get(TREE).mock(return_value=ok(tree_body([("sr:tournament:1", "League"), ("sr:tournament:2", "Cup")])))
        router.post(EVENTS).mock(return_value=event_list(("sr:match:70000009", NOW + timedelta(hours=5))))
        found = run(lambda c: c.discover(now=NOW))
    assert [e.book_event_id for e in found.events] == ["sr:match:70000009"]


def test_tree_failure_marks_the_book_unreachable():
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        tree = router.get(TREE).mock(return_value=httpx.Response(503))
        lists = router.post(EVENTS).mock(return_value=event_list())
        found = run(lambda c: c.discover(now=NOW))
    assert found.tree_failed
    assert found.events == [] and found.tournaments == 0
    assert [(f.kind, f.status, f.attempts) for f in found.failures] == [("http_status", 503, 3)]
    assert tree.call_count == 3 and lists.call_count == 0


@pytest.mark.parametrize("response,kind", [
    (httpx.ConnectTimeout("no route"), "timeout"),
    (httpx.Response(200, json={"bizCode": 19001, "message": "busy", "data": None}), "business"),
    (httpx.Response(200, json={"bizCode": 10000, "message": "0#0", "data": {"menu": []}}), "malformed"),
])
def test_tree_timeout_refusal_or_wrong_shape_marks_the_book_unreachable(response, kind):
    with respx.mock(base_url=BASE) as router:
        router.get(TREE).mock(side_effect=[response] * 3)
        found = run(lambda c: c.discover(now=NOW))
    assert found.tree_failed
    assert [f.kind for f in found.failures] == [kind]

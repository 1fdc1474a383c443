"""SportyBet payloads → canonical prices, with every unmappable market or outcome accounted for.

Payloads are hand-written in SportyBet's real shapes (reference/examples/sportybet-*.json), with
values of our own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.bookmakers._models import (
    BAD_ODDS,
    INVALID_SPECIFIER,
    MALFORMED_MARKET,
    UNKNOWN_MARKET,
    UNKNOWN_OUTCOME,
    UNKNOWN_PARAM,
    DiscoveredEvent,
    MalformedPayload,
    Price,
    Tournament,
)
from engine.bookmakers.sportybet import NAME, parse_event, parse_event_list, parse_tree

KICKOFF = datetime(2031, 3, 9, 18, 45, tzinfo=UTC)
KICKOFF_MS = int(KICKOFF.timestamp() * 1000)


def outcome(desc: Any, odds: Any, active: Any = 1, oid: str = "1") -> dict[str, Any]:
    return {"id": oid, "odds": odds, "probability": "0.5000", "voidProbability": "0E-10",
            "isActive": active, "desc": desc}


def market(mid: Any, desc: str, outcomes: list[Any], specifier: str | None = None) -> dict[str, Any]:
    m: dict[str, Any] = {
        "id": mid, "product": 3, "desc": desc, "status": 0, "group": "Main", "groupId": "1001",
        "title": "", "name": desc, "favourite": 0, "farNearOdds": 0, "sourceType": "BET_RADAR",
        "lastOddsChangeTime": 1905200000000, "banned": False, "outcomes": outcomes,
    }
    if specifier is not None:
        m["specifier"] = specifier
    return m


def event(markets: list[Any] | None = None, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "eventId": "sr:match:70112233", "gameId": "52001", "productStatus": "0#0",
        "estimateStartTime": KICKOFF_MS, "status": 0, "matchStatus": "Not start",
        "homeTeamId": "sr:competitor:990001", "homeTeamName": "Lagos Lions",
        "awayTeamId": "sr:competitor:990002", "awayTeamName": "Kano Pillars",
        "sport": {"id": "sr:sport:1", "name": "Football",
                  "category": {"id": "sr:category:9100", "name": "Nigeria",
                               "tournament": {"id": "sr:tournament:91001", "name": "NPFL"}}},
        "markets": markets if markets is not None else [],
    }
    data.update(fields)
    return data


def envelope(data: Any, biz: int = 10000, message: str = "0#0") -> dict[str, Any]:
    return {"bizCode": biz, "message": message, "data": data}


def ou(specifier: str | None, over: Any = "1.90", under: Any = "1.90") -> dict[str, Any]:
    return market("18", "Over/Under", [outcome("Over", over, oid="12"), outcome("Under", under, oid="13")],
                  specifier=specifier)


def one_x_two(home: Any = "2.10", draw: Any = "3.30", away: Any = "3.40") -> dict[str, Any]:
    return market("1", "1X2", [outcome("Home", home, oid="1"), outcome("Draw", draw, oid="2"),
                               outcome("Away", away, oid="3")])


def reasons(parsed) -> list[tuple[str, str]]:
    return [(u.market_id, u.reason) for u in parsed.unmapped]


# A whole event ------------------------------------------------------------------------------


def test_event_detail_gives_header_and_headline_markets_in_canonical_terms():
    parsed = parse_event(event([
        one_x_two("2.25", "3.25", "3.20"),
        ou("total=2.5", "1.97", "1.83"),
        ou("total=3.5", "3.45", "1.29"),
        market("29", "GG/NG", [outcome("Yes", "1.75"), outcome("No", "2.02")]),
        market("10", "Double Chance", [outcome("Home or Draw", "1.34"), outcome("Home or Away", "1.31"),
                                       outcome("Draw or Away", "1.60")]),
        market("16", "Asian Handicap", [outcome("Home", "2.24"), outcome("Away", "1.66")], "hcp=-0.5"),
        market("14", "Handicap", [outcome("Home", "4.70"), outcome("Draw", "4.05", active=0),
                                  outcome("Away", "1.58")], "hcp=0:1"),
    ]))
    assert (parsed.book, parsed.book_event_id, parsed.sr_id) == (NAME, "sr:match:70112233", "70112233")
    assert (parsed.home, parsed.away, parsed.country, parsed.tournament) == (
        "Lagos Lions", "Kano Pillars", "Nigeria", "NPFL")
    assert parsed.kickoff == KICKOFF
    assert parsed.raw_markets == 7
    assert parsed.unmapped == []
    assert parsed.prices == [
        Price("1x2_ft", None, "home", 2.25), Price("1x2_ft", None, "draw", 3.25), Price("1x2_ft", None, "away", 3.20),
        Price("over_under_ft", 2.5, "over", 1.97), Price("over_under_ft", 2.5, "under", 1.83),
        Price("over_under_ft", 3.5, "over", 3.45), Price("over_under_ft", 3.5, "under", 1.29),
        Price("btts_ft", None, "yes", 1.75), Price("btts_ft", None, "no", 2.02),
        Price("double_chance_ft", None, "home_draw", 1.34), Price("double_chance_ft", None, "home_away", 1.31),
        Price("double_chance_ft", None, "draw_away", 1.60),
        Price("asian_handicap_ft", -0.5, "home", 2.24), Price("asian_handicap_ft", -0.5, "away", 1.66),
        Price("handicap_3way_ft", -1.0, "home", 4.70), Price("handicap_3way_ft", -1.0, "draw", 4.05, False),
        Price("handicap_3way_ft", -1.0, "away", 1.58),
    ]


def test_whole_response_body_and_its_data_parse_the_same():
    body = envelope(event([one_x_two()]))
    assert parse_event(body) == parse_event(body["data"])


def test_not_found_envelope_is_refused():
    with pytest.raises(MalformedPayload, match="19000"):
        parse_event({"bizCode": 19000, "message": "Event not found", "data": None})


# Odds and availability ---------------------------------------------------------------------


def test_odds_as_strings_or_numbers_are_prices():
    parsed = parse_event(event([one_x_two(" 2.05 ", 3.4, 4)]))
    assert parsed.prices == [Price("1x2_ft", None, "home", 2.05), Price("1x2_ft", None, "draw", 3.4),
                             Price("1x2_ft", None, "away", 4.0)]


@pytest.mark.parametrize("bad", [None, "", "abc", "1,85", "NaN", "inf", "-inf", "1.0", "1", "0.95", 0, -2.5,
                                 True, [], {"v": 2}])
def test_unusable_odds_are_reported_not_priced(bad):
    parsed = parse_event(event([one_x_two("2.10", bad, "3.40")]))
    assert parsed.prices == [Price("1x2_ft", None, "home", 2.10), Price("1x2_ft", None, "away", 3.40)]
    assert reasons(parsed) == [("1", BAD_ODDS)]
    assert parsed.unmapped[0].detail.startswith("Draw=")


def test_missing_odds_field_is_bad_odds():
    raw = one_x_two()
    del raw["outcomes"][1]["odds"]
    parsed = parse_event(event([raw]))
    assert [p.outcome for p in parsed.prices] == ["home", "away"]
    assert reasons(parsed) == [("1", BAD_ODDS)]


def test_suspended_outcomes_stay_priced_but_unavailable():
    raw = market("29", "GG/NG", [outcome("Yes", "1.80", active=0), outcome("No", "1.95", active="0")])
    live = market("26", "Odd/Even", [outcome("Odd", "1.90", active=1), outcome("Even", "1.90", active="1")])
    parsed = parse_event(event([raw, live]))
    assert parsed.prices == [
        Price("btts_ft", None, "yes", 1.80, False), Price("btts_ft", None, "no", 1.95, False),
        Price("odd_even_ft", None, "odd", 1.90, True), Price("odd_even_ft", None, "even", 1.90, True),
    ]


def test_outcome_without_active_flag_is_taken_as_active():
    raw = one_x_two()
    del raw["outcomes"][0]["isActive"]
    assert parse_event(event([raw])).prices[0] == Price("1x2_ft", None, "home", 2.10, True)


# Markets the catalogue does not know -------------------------------------------------------


def test_unknown_market_is_reported_and_others_kept():
    props = market("800117", "Player to be booked", [outcome("Ada Okafor", "3.10")], "variant=sr:player:1")
    parsed = parse_event(event([props, one_x_two()]))
    assert [p.market for p in parsed.prices] == ["1x2_ft"] * 3
    assert reasons(parsed) == [("800117", UNKNOWN_MARKET)]
    assert parsed.unmapped[0].name == "Player to be booked"
    assert parsed.raw_markets == 2


def test_competitor_only_market_is_mapped_to_its_catalogue_key():
    raw = market("900069", "1X2 - 1st 5 minutes", [outcome("Home", "9.00"), outcome("Draw", "1.15"),
                                                   outcome("Away", "11.00")])
    assert parse_event(event([raw])).prices == [
        Price("1x2_5min", None, "home", 9.0), Price("1x2_5min", None, "draw", 1.15),
        Price("1x2_5min", None, "away", 11.0),
    ]


def test_numeric_market_id_is_accepted():
    raw = ou("total=2.5", "1.85", "1.95")
    raw["id"] = 18
    assert parse_event(event([raw])).prices == [Price("over_under_ft", 2.5, "over", 1.85),
                                               Price("over_under_ft", 2.5, "under", 1.95)]


# Specifiers and lines ----------------------------------------------------------------------


@pytest.mark.parametrize("specifier,line", [
    ("total=2.5", 2.5),
    ("total=0.5", 0.5),
    ("TOTAL=3.5", 3.5),
    (" total = 4.5 ", 4.5),
    ("minsnr=10|total=1.5", 1.5),
    ("|total=5.5||", 5.5),
    ("total=2.25", 2.25),
    ("total=2.75", 2.75),
    ("total=2.50", 2.5),
])
def test_total_line_comes_from_the_total_key(specifier, line):
    parsed = parse_event(event([ou(specifier, "1.80", "2.00")]))
    assert parsed.prices == [Price("over_under_ft", line, "over", 1.80), Price("over_under_ft", line, "under", 2.00)]
    assert parsed.unmapped == []


@pytest.mark.parametrize("specifier", [
    None, "", "minsnr=10", "total=", "total=abc", "total=nan", "total=inf", "total=2.5|total=3.5",
    "total", "=2.5", "total=2.5|" + "x" * 1000,
])
def test_total_market_without_a_usable_line_is_invalid_specifier(specifier):
    parsed = parse_event(event([ou(specifier), one_x_two()]))
    assert [p.market for p in parsed.prices] == ["1x2_ft"] * 3
    assert reasons(parsed) == [("18", INVALID_SPECIFIER)]


@pytest.mark.parametrize("specifier,line", [
    ("hcp=0:1", -1.0), ("hcp=2:0", 2.0), ("hcp=1:0", 1.0), ("hcp=1:1", 0.0), ("hcp=0:3", -3.0), ("HCP= 0 : 2", -2.0),
])
def test_european_handicap_line_is_home_minus_away(specifier, line):
    raw = market("14", "Handicap", [outcome("Home", "4.10"), outcome("Draw", "3.90"), outcome("Away", "1.70")],
                 specifier)
    assert parse_event(event([raw])).prices == [
        Price("handicap_3way_ft", line, "home", 4.10), Price("handicap_3way_ft", line, "draw", 3.90),
        Price("handicap_3way_ft", line, "away", 1.70),
    ]


@pytest.mark.parametrize("specifier", [None, "hcp=:1", "hcp=1:", "hcp=1:2:3", "hcp=a:b", "hcp=-1", "hcp=inf:0"])
def test_malformed_european_handicap_is_invalid_specifier(specifier):
    raw = market("14", "Handicap", [outcome("Home", "4.10"), outcome("Draw", "3.90"), outcome("Away", "1.70")],
                 specifier)
    parsed = parse_event(event([raw]))
    assert parsed.prices == []
    assert reasons(parsed) == [("14", INVALID_SPECIFIER)]


@pytest.mark.parametrize("specifier,line", [
    ("hcp=-0.5", -0.5), ("hcp=-0.25", -0.25), ("hcp=0.75", 0.75), ("hcp=1.25", 1.25), ("hcp=0", 0.0), ("hcp=-0", 0.0),
])
def test_asian_handicap_line_is_the_home_handicap_including_quarter_lines(specifier, line):
    raw = market("16", "Asian Handicap", [outcome("Home", "1.95"), outcome("Away", "1.85")], specifier)
    assert parse_event(event([raw])).prices == [Price("asian_handicap_ft", line, "home", 1.95),
                                               Price("asian_handicap_ft", line, "away", 1.85)]


@pytest.mark.parametrize("specifier", [None, "hcp=0:1", "hcp=", "hcp=-0.5x", "total=2.5"])
def test_asian_handicap_without_a_usable_line_is_invalid_specifier(specifier):
    raw = market("16", "Asian Handicap", [outcome("Home", "1.95"), outcome("Away", "1.85")], specifier)
    parsed = parse_event(event([raw]))
    assert parsed.prices == []
    assert reasons(parsed) == [("16", INVALID_SPECIFIER)]


def test_specifier_on_a_market_without_lines_is_unknown_param():
    raw = market("1", "1X2", [outcome("Home", "2.0"), outcome("Draw", "3.0"), outcome("Away", "4.0")], "goalnr=1")
    parsed = parse_event(event([raw, market("29", "GG/NG", [outcome("Yes", "1.7"), outcome("No", "2.1")], " | ")]))
    assert parsed.prices == [Price("btts_ft", None, "yes", 1.7), Price("btts_ft", None, "no", 2.1)]
    assert reasons(parsed) == [("1", UNKNOWN_PARAM)]
    assert "goalnr=1" in parsed.unmapped[0].detail


def test_variant_and_time_window_specifiers_are_not_lines():
    goals = market("21", "Exact Goals", [outcome("0", "9.5"), outcome("1", "4.6"), outcome("6+", "41")],
                   "variant=sr:exact_goals:6+")
    window = market("105", "10 Minutes - 1X2", [outcome("Home", "6.5"), outcome("Draw", "1.2"), outcome("Away", "8.0")],
                    "from=1|to=10")
    assert parse_event(event([goals, window])).prices == [
        Price("exact_goals_ft", None, "0", 9.5), Price("exact_goals_ft", None, "1", 4.6),
        Price("exact_goals_ft", None, "6+", 41.0),
        Price("1x2_10min", None, "home", 6.5), Price("1x2_10min", None, "draw", 1.2),
        Price("1x2_10min", None, "away", 8.0),
    ]


def test_combo_with_a_total_takes_its_line():
    raw = market("37", "1X2 & Over/Under", [outcome("Home & Over", "3.6"), outcome("Draw & Under", "4.4")],
                 "total=2.5")
    assert parse_event(event([raw])).prices == [Price("1x2_over_under_ft", 2.5, "home_over", 3.6),
                                               Price("1x2_over_under_ft", 2.5, "draw_under", 4.4)]


# Outcomes -----------------------------------------------------------------------------------


def test_outcomes_match_by_description_ignoring_case_and_spacing():
    raw = market("10", "Double Chance", [outcome("HOME OR DRAW", "1.3"), outcome("draw  or away", "1.6"),
                                         outcome(" Home or Away ", "1.25")])
    assert parse_event(event([raw])).prices == [
        Price("double_chance_ft", None, "home_draw", 1.3), Price("double_chance_ft", None, "draw_away", 1.6),
        Price("double_chance_ft", None, "home_away", 1.25),
    ]


def test_unknown_outcome_is_reported_never_mapped_by_position():
    score = market("45", "Correct Score", [outcome("0:5", "81"), outcome("1:0", "7.5"), outcome("Other", "15")])
    teams = market("1", "1X2", [outcome("Lagos Lions", "2.1"), outcome("Draw", "3.3"), outcome("Kano Pillars", "3.4")])
    parsed = parse_event(event([score, teams]))
    assert parsed.prices == [Price("correct_score_ft", None, "1_0", 7.5), Price("correct_score_ft", None, "other", 15.0),
                             Price("1x2_ft", None, "draw", 3.3)]
    assert reasons(parsed) == [("45", UNKNOWN_OUTCOME), ("1", UNKNOWN_OUTCOME), ("1", UNKNOWN_OUTCOME)]
    assert [u.detail for u in parsed.unmapped] == ["0:5", "Lagos Lions", "Kano Pillars"]


def test_unknown_outcome_detail_names_the_line():
    raw = market("18", "Over/Under", [outcome("Over", "2.2"), outcome("Exactly 2", "3.9"), outcome("Under", "1.7")],
                 "total=2.5")
    parsed = parse_event(event([raw]))
    assert parsed.prices == [Price("over_under_ft", 2.5, "over", 2.2), Price("over_under_ft", 2.5, "under", 1.7)]
    assert [(u.reason, u.detail) for u in parsed.unmapped] == [(UNKNOWN_OUTCOME, "total=2.5: Exactly 2")]


def test_unicode_names_survive_and_unknown_unicode_outcomes_are_reported():
    raw = market("1", "1X2", [outcome("Home", "2.0"), outcome("Égalité", "3.1"), outcome("Away", "3.9")])
    parsed = parse_event(event([raw], homeTeamName="Atlético Ñandú", awayTeamName="Ümraniyespor İstanbul"))
    assert (parsed.home, parsed.away) == ("Atlético Ñandú", "Ümraniyespor İstanbul")
    assert parsed.prices == [Price("1x2_ft", None, "home", 2.0), Price("1x2_ft", None, "away", 3.9)]
    assert [(u.reason, u.detail) for u in parsed.unmapped] == [(UNKNOWN_OUTCOME, "Égalité")]


def test_market_without_sportybet_outcome_names_reports_each_outcome():
    raw = market("818", "HT/FT & Over/Under", [outcome("Home/Home & Over", "5.2"), outcome("Draw/Draw & Under", "6.0")],
                 "total=2.5")
    parsed = parse_event(event([raw]))
    assert parsed.prices == []
    assert reasons(parsed) == [("818", UNKNOWN_OUTCOME), ("818", UNKNOWN_OUTCOME)]


# Malformed markets and duplicates ----------------------------------------------------------


@pytest.mark.parametrize("broken", [
    "not a market",
    {"desc": "1X2", "outcomes": [outcome("Home", "2.0")]},
    {"id": "", "outcomes": [outcome("Home", "2.0")]},
    {"id": "1", "desc": "1X2"},
    {"id": "1", "desc": "1X2", "outcomes": []},
    {"id": "1", "desc": "1X2", "outcomes": {"Home": "2.0"}},
    {"id": "1", "desc": "1X2", "outcomes": ["Home"]},
    {"id": "1", "desc": "1X2", "outcomes": [{"odds": "2.0", "isActive": 1}]},
    {"id": "1", "desc": "1X2", "outcomes": [outcome("  ", "2.0")]},
    {"id": "18", "desc": "O/U", "specifier": ["total=2.5"], "outcomes": [outcome("Over", "2.0")]},
])
def test_malformed_market_is_rejected_alone(broken):
    parsed = parse_event(event([broken, ou("total=2.5", "1.9", "1.9")]))
    assert parsed.prices == [Price("over_under_ft", 2.5, "over", 1.9), Price("over_under_ft", 2.5, "under", 1.9)]
    assert [u.reason for u in parsed.unmapped] == [MALFORMED_MARKET]
    assert parsed.raw_markets == 2


def test_market_with_an_outcome_twice_is_rejected_rather_than_keeping_either():
    raw = market("18", "Over/Under", [outcome("Over", "1.9"), outcome("Under", "1.9"), outcome("OVER", "2.4")],
                 "total=2.5")
    parsed = parse_event(event([raw]))
    assert parsed.prices == []
    assert reasons(parsed) == [("18", MALFORMED_MARKET)]


def test_repeated_market_line_keeps_the_first_and_reports_the_repeat():
    parsed = parse_event(event([ou("total=2.5", "1.80", "2.00"), ou("total=2.50", "1.70", "2.10"),
                                ou("total=3.5", "2.90", "1.40")]))
    assert parsed.prices == [
        Price("over_under_ft", 2.5, "over", 1.80), Price("over_under_ft", 2.5, "under", 2.00),
        Price("over_under_ft", 3.5, "over", 2.90), Price("over_under_ft", 3.5, "under", 1.40),
    ]
    assert reasons(parsed) == [("18", MALFORMED_MARKET)]
    assert parsed.raw_markets == 3


# Malformed events ---------------------------------------------------------------------------


@pytest.mark.parametrize("broken", [
    "sr:match:70112233",
    [event()],
    {k: v for k, v in event().items() if k != "eventId"},
    event(eventId="sr:tournament:91001"),
    event(eventId="70112233"),
    event(eventId="sr:match:"),
    {k: v for k, v in event().items() if k != "homeTeamName"},
    event(awayTeamName="   "),
    {k: v for k, v in event().items() if k != "estimateStartTime"},
    event(estimateStartTime="soon"),
    event(estimateStartTime=True),
    event(estimateStartTime=float("nan")),
    event(estimateStartTime=10**20),
    event(markets={"1": one_x_two()}),
])
def test_event_without_identity_teams_or_kickoff_is_malformed(broken):
    with pytest.raises(MalformedPayload):
        parse_event(broken)


def test_kickoff_as_numeric_string_is_accepted():
    assert parse_event(event(estimateStartTime=str(KICKOFF_MS))).kickoff == KICKOFF


def test_event_without_markets_has_no_prices():
    for markets in (None, []):
        parsed = parse_event(event(markets=markets))
        assert (parsed.prices, parsed.unmapped, parsed.raw_markets) == ([], [], 0)


def test_payload_for_another_event_than_asked_is_refused():
    hint = listed("sr:match:70999999")
    with pytest.raises(MalformedPayload, match="70999999"):
        parse_event(event(), hint=hint)


def test_listing_fills_in_country_and_tournament_the_detail_lacks():
    parsed = parse_event(event(sport=None), hint=listed("sr:match:70112233"))
    assert (parsed.country, parsed.tournament) == ("Nigeria (listed)", "NPFL (listed)")


def listed(event_id: str) -> DiscoveredEvent:
    return DiscoveredEvent(book=NAME, book_event_id=event_id, sr_id=event_id.removeprefix("sr:match:"),
                           kickoff=KICKOFF, country="Nigeria (listed)", tournament="NPFL (listed)",
                           home="Lagos Lions", away="Kano Pillars", tournament_id="sr:tournament:91001")


# Sport tree ---------------------------------------------------------------------------------


def tree(sports: list[Any]) -> dict[str, Any]:
    return envelope({"sportList": sports})


def test_tree_lists_football_tournaments_with_their_country():
    body = tree([
        {"id": "sr:sport:2", "name": "Basketball", "eventSize": 3, "categories": [
            {"id": "sr:category:15", "name": "USA", "tournaments": [{"id": "sr:tournament:132", "name": "NBA"}]}]},
        {"id": "sr:sport:1", "name": "Football", "eventSize": 9, "categories": [
            {"id": "sr:category:9100", "name": "Nigeria", "eventSize": 4, "tournaments": [
                {"id": "sr:tournament:91001", "name": "NPFL", "eventSize": 3},
                {"id": "sr:tournament:91002", "name": "Federation Cup", "eventSize": 1},
            ]},
            {"id": "sr:category:1", "name": "England", "tournaments": [
                {"id": "sr:tournament:17", "name": "Premier League"},
                {"id": "sr:tournament:91001", "name": "NPFL"},
                {"name": "no id"},
                "junk",
            ]},
            {"id": "sr:category:9", "name": "Côte d’Ivoire", "tournaments": [{"id": "sr:tournament:777", "name": "Ligue 1"}]},
            "junk",
        ]},
    ])
    assert parse_tree(body) == [
        Tournament(NAME, "sr:tournament:91001", "NPFL", "Nigeria"),
        Tournament(NAME, "sr:tournament:91002", "Federation Cup", "Nigeria"),
        Tournament(NAME, "sr:tournament:17", "Premier League", "England"),
        Tournament(NAME, "sr:tournament:777", "Ligue 1", "Côte d’Ivoire"),
    ]
    assert parse_tree(body["data"]) == parse_tree(body)


def test_tree_without_football_has_no_tournaments():
    assert parse_tree(tree([{"id": "sr:sport:2", "name": "Basketball", "categories": []}])) == []


@pytest.mark.parametrize("broken", [envelope({"sports": []}), envelope([]), envelope(None), "<html>",
                                    envelope({"sportList": []}, biz=19001, message="busy")])
def test_tree_of_the_wrong_shape_is_malformed(broken):
    with pytest.raises(MalformedPayload):
        parse_tree(broken)


# Event list ---------------------------------------------------------------------------------

NPFL = Tournament(NAME, "sr:tournament:91001", "NPFL", "Nigeria")
NOW = datetime(2031, 3, 9, 12, 0, tzinfo=UTC)


def list_item(event_id: str, kickoff: Any, home: str = "Enyimba", away: str = "Rivers United") -> dict[str, Any]:
    return event([one_x_two()], eventId=event_id, estimateStartTime=kickoff, homeTeamName=home, awayTeamName=away)


def test_event_list_gives_upcoming_events_keyed_by_sportradar_id():
    ms = lambda dt: int(dt.timestamp() * 1000)  # noqa: E731
    body = envelope([{"id": "sr:tournament:91001", "name": "NPFL", "categoryName": "Nigeria", "events": [
        list_item("sr:match:70000001", ms(NOW + timedelta(hours=3))),
        list_item("sr:match:70000002", str(ms(NOW + timedelta(days=1))), home="Shooting Stars", away="Remo Stars"),
        list_item("sr:match:70000003", ms(NOW)),
        list_item("sr:match:70000004", ms(NOW - timedelta(minutes=5))),
        list_item("sr:simple_tournament:5", ms(NOW + timedelta(hours=2))),
        list_item("sr:match:70000006", "tomorrow"),
        "junk",
    ]}])
    assert parse_event_list(body, NPFL, NOW) == [
        DiscoveredEvent(NAME, "sr:match:70000001", "70000001", NOW + timedelta(hours=3), "Nigeria", "NPFL",
                        "Enyimba", "Rivers United", "sr:tournament:91001"),
        DiscoveredEvent(NAME, "sr:match:70000002", "70000002", NOW + timedelta(days=1), "Nigeria", "NPFL",
                        "Shooting Stars", "Remo Stars", "sr:tournament:91001"),
    ]
    assert parse_event_list(body["data"], NPFL, NOW) == parse_event_list(body, NPFL, NOW)


def test_empty_tournament_lists_no_events():
    assert parse_event_list(envelope([]), NPFL, NOW) == []
    assert parse_event_list(envelope([{"id": "sr:tournament:91001", "events": []}]), NPFL, NOW) == []


@pytest.mark.parametrize("broken", [envelope({"events": []}), envelope(["junk"]),
                                    envelope([{"events": {"a": 1}}]), envelope([], biz=19000)])
def test_event_list_of_the_wrong_shape_is_malformed(broken):
    with pytest.raises(MalformedPayload):
        parse_event_list(broken, NPFL, NOW)


# Nothing is dropped silently ---------------------------------------------------------------

_descs = st.sampled_from(["Over", "Under", "Home", "Draw", "Away", "Yes", "No", "0:0", "Exactly 2", "ÜBER", ""])
_odds = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
                  st.sampled_from(["1.85", "2", "x", "", "1.0", " 3.10 "]), st.integers(-3, 50))
_outcome = st.one_of(
    st.builds(outcome, _descs, _odds, st.sampled_from([0, 1, "0", "1", None])),
    st.sampled_from(["junk", None, {}]),
)
_market = st.one_of(
    st.builds(market, st.sampled_from(["1", "18", "14", "16", "21", "105", "45", "999", "", 18]),
              st.just("Any"), st.lists(_outcome, max_size=5),
              st.one_of(st.none(), st.sampled_from(["total=2.5", "hcp=0:1", "hcp=-0.25", "variant=x",
                                                    "total=x", "hcp=1:2:3", "a=b|total=1.5", "|"]))),
    st.sampled_from(["junk", None, 7, {}]),
)


@settings(max_examples=300, deadline=None)
@given(raw=_market)
def test_every_market_instance_yields_prices_or_a_reason(raw):
    parsed = parse_event(event([raw]))
    assert parsed.raw_markets == 1
    assert parsed.prices or parsed.unmapped
    outcomes = raw.get("outcomes") if isinstance(raw, dict) else None
    whole_market_refused = any(u.reason in (UNKNOWN_MARKET, UNKNOWN_PARAM, INVALID_SPECIFIER, MALFORMED_MARKET)
                               for u in parsed.unmapped)
    if not whole_market_refused:
        assert len(parsed.prices) + len(parsed.unmapped) == len(outcomes)

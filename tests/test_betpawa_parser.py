"""BetPawa parser: sport tree, event lists and event details into canonical prices.

Payloads are hand-written in BetPawa's real shapes (the first one is the reference example C
verbatim); every case checks the exact canonical prices and the exact unmapped reasons.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import datetime, timezone
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
    DiscoveredEvent,
    MalformedPayload,
    Price,
    Tournament,
)
from engine.bookmakers.betpawa import parse_event, parse_event_list, parse_tree

REFERENCE_EVENT_C = json.loads(r'''
{"id": "33100001", "name": "Harbor City FC - Riverside United", "startTime": "2030-05-18T14:00:00Z", "results": null, "category": {"id": "2", "name": "Football"}, "region": {"id": "310", "name": "Atlantis"}, "competition": {"id": "20001", "name": "Premier League"}, "participants": [{"id": "700101", "name": "Harbor City FC", "position": 1}, {"id": "700102", "name": "Riverside United", "position": 2}], "widgets": [{"id": "61234567", "type": "SPORTRADAR", "retention": "PREMATCH"}], "markets": [
  {"marketType": {"id": "3743", "name": "1X2 - FT", "displayName": "1X2 | Full Time", "explainer": "Predict the full-time result.", "priority": 1, "tabs": ["all", "popular", "main"], "handicapType": "", "priceColumnCount": 3, "priceSortingMethod": "DEFAULT"}, "row": [{"id": "r-3743-0", "handicap": null, "formattedHandicap": null, "prices": [{"id": "p-1001", "name": "1", "typeId": "3744", "price": 2.2, "suspended": false, "handicap": null, "displayName": "1", "additionalInfo": {"hot": false, "twoUp": true, "anyUp": "TWO_UP"}, "probability": "MC40MzU="}, {"id": "p-1002", "name": "X", "typeId": "3745", "price": 3.3, "suspended": false, "handicap": null, "displayName": "X", "additionalInfo": {"hot": false, "twoUp": false, "anyUp": "NO_UP"}, "probability": "MC4yOTA="}, {"id": "p-1003", "name": "2", "typeId": "3746", "price": 3.25, "suspended": false, "handicap": null, "displayName": "2", "additionalInfo": {"hot": false, "twoUp": true, "anyUp": "TWO_UP"}, "probability": "MC4yOTQ="}]}], "displayNameRows": [], "displayNameColumns": ["1", "X", "2"], "additionalInfo": {"boosted": false, "cashoutable": true, "twoUp": true}},
  {"marketType": {"id": "5000", "name": "Over/Under - FT", "displayName": "Over/Under | Full Time", "explainer": "Total goals over or under the line.", "priority": 2, "tabs": ["all", "popular", "goals"], "handicapType": "NORMAL", "priceColumnCount": 2, "priceSortingMethod": "DEFAULT"}, "row": [{"id": "r-5000-25", "handicap": null, "formattedHandicap": null, "prices": [{"id": "p-1011", "name": "Over", "typeId": "5001", "price": 1.95, "suspended": false, "handicap": "2.5", "displayName": "Over 2.5", "additionalInfo": {"hot": false, "twoUp": false, "anyUp": "NO_UP"}, "probability": "MC40OTg="}, {"id": "p-1012", "name": "Under", "typeId": "5002", "price": 1.85, "suspended": false, "handicap": "2.5", "displayName": "Under 2.5", "additionalInfo": {"hot": false, "twoUp": false, "anyUp": "NO_UP"}, "probability": "MC41MDI="}]}, {"id": "r-5000-35", "handicap": null, "formattedHandicap": null, "prices": [{"id": "p-1013", "name": "Over", "typeId": "5001", "price": 3.4, "suspended": false, "handicap": "3.5", "displayName": "Over 3.5", "additionalInfo": {"hot": false, "twoUp": false, "anyUp": "NO_UP"}, "probability": "MC4yODE="}, {"id": "p-1014", "name": "Under", "typeId": "5002", "price": 1.3, "suspended": false, "handicap": "3.5", "displayName": "Under 3.5", "additionalInfo": {"hot": false, "twoUp": false, "anyUp": "NO_UP"}, "probability": "MC43MTk="}]}], "displayNameRows": ["2.5", "3.5"], "displayNameColumns": ["Over", "Under"], "additionalInfo": {"boosted": false, "cashoutable": true, "twoUp": false}},
  {"marketType": {"id": "3795", "name": "Both Teams To Score - FT", "displayName": "Both Teams To Score | Full Time", "explainer": "Will both teams score?", "priority": 3, "tabs": ["all", "goals"], "handicapType": "", "priceColumnCount": 2, "priceSortingMethod": "DEFAULT"}, "row": [{"id": "r-3795-0", "handicap": null, "formattedHandicap": null, "prices": [{"id": "p-1021", "name": "Yes", "typeId": "3796", "price": 1.72, "suspended": false, "handicap": null, "displayName": "Yes", "additionalInfo": {"hot": false, "twoUp": false, "anyUp": "NO_UP"}, "probability": "MC41NjI="}, {"id": "p-1022", "name": "No", "typeId": "3797", "price": 2.05, "suspended": false, "handicap": null, "displayName": "No", "additionalInfo": {"hot": false, "twoUp": false, "anyUp": "NO_UP"}, "probability": "MC40Mzg="}]}], "displayNameRows": [], "displayNameColumns": ["Yes", "No"], "additionalInfo": {"boosted": false, "cashoutable": true, "twoUp": false}},
  {"marketType": {"id": "4693", "name": "Double Chance - FT", "displayName": "Double Chance | Full Time", "explainer": "Two of the three results.", "priority": 4, "tabs": ["all", "main"], "handicapType": "", "priceColumnCount": 3, "priceSortingMethod": "DEFAULT"}, "row": [{"id": "r-4693-0", "handicap": null, "formattedHandicap": null, "prices": [{"id": "p-1031", "name": "1X", "typeId": "4694", "price": 1.33, "suspended": false, "handicap": null, "displayName": "1X", "additionalInfo": {"hot": false, "twoUp": false, "anyUp": "NO_UP"}, "probability": "MC43MjU="}, {"id": "p-1032", "name": "X2", "typeId": "4695", "price": 1.62, "suspended": false, "handicap": null, "displayName": "X2", "additionalInfo": {"hot": false, "twoUp": false, "anyUp": "NO_UP"}, "probability": "MC41ODQ="}, {"id": "p-1033", "name": "12", "typeId": "4696", "price": 1.3, "suspended": false, "handicap": null, "displayName": "12", "additionalInfo": {"hot": false, "twoUp": false, "anyUp": "NO_UP"}, "probability": "MC43Mjk="}]}], "displayNameRows": [], "displayNameColumns": ["1X", "X2", "12"], "additionalInfo": {"boosted": false, "cashoutable": true, "twoUp": false}},
  {"marketType": {"id": "3774", "name": "Asian Handicap - FT", "displayName": "Asian Handicap | Full Time", "explainer": "Two-way handicap, home team perspective.", "priority": 5, "tabs": ["all", "handicaps"], "handicapType": "ASIAN", "priceColumnCount": 2, "priceSortingMethod": "DEFAULT"}, "row": [{"id": "r-3774-m05", "handicap": -0.5, "formattedHandicap": "-0.5", "prices": [{"id": "p-1041", "name": "1", "typeId": "3775", "price": 2.2, "suspended": false, "handicap": "-0.5", "displayName": "1 (-0.5)", "additionalInfo": {"hot": false, "twoUp": false, "anyUp": "NO_UP"}, "probability": "MC40NDU="}, {"id": "p-1042", "name": "2", "typeId": "3776", "price": 1.68, "suspended": false, "handicap": "0.5", "displayName": "2 (+0.5)", "additionalInfo": {"hot": false, "twoUp": false, "anyUp": "NO_UP"}, "probability": "MC41NTU="}]}], "displayNameRows": ["-0.5"], "displayNameColumns": ["1", "2"], "additionalInfo": {"boosted": false, "cashoutable": true, "twoUp": false}},
  {"marketType": {"id": "4724", "name": "3-Way Handicap - FT", "displayName": "3-Way Handicap | Full Time", "explainer": "Three-way handicap, home team perspective.", "priority": 6, "tabs": ["all", "handicaps"], "handicapType": "EUROPEAN", "priceColumnCount": 3, "priceSortingMethod": "DEFAULT"}, "row": [{"id": "r-4724-m1", "handicap": -1.0, "formattedHandicap": "-1", "prices": [{"id": "p-1051", "name": "1", "typeId": "4725", "price": 4.6, "suspended": false, "handicap": "0:1", "displayName": "1 (0:1)", "additionalInfo": {"hot": false, "twoUp": false, "anyUp": "NO_UP"}, "probability": "MC4yMDU="}, {"id": "p-1052", "name": "X", "typeId": "4726", "price": 4.1, "suspended": true, "handicap": "0:1", "displayName": "X (0:1)", "additionalInfo": {"hot": false, "twoUp": false, "anyUp": "NO_UP"}, "probability": "MC4yMzA="}, {"id": "p-1053", "name": "2", "typeId": "4727", "price": 1.6, "suspended": false, "handicap": "0:1", "displayName": "2 (0:1)", "additionalInfo": {"hot": false, "twoUp": false, "anyUp": "NO_UP"}, "probability": "MC41NjU="}]}], "displayNameRows": ["0:1"], "displayNameColumns": ["1", "X", "2"], "additionalInfo": {"boosted": false, "cashoutable": true, "twoUp": false}}
]}
''')

NOW = datetime(2030, 5, 1, tzinfo=timezone.utc)
TOURNAMENT = Tournament(book="betpawa", tournament_id="20001", name="Premier League", country="Atlantis")


def price(name: Any, odds: Any, *, suspended: Any = False, handicap: Any = None) -> dict[str, Any]:
    return {
        "id": f"p-{name}", "name": name, "typeId": "9000", "price": odds, "suspended": suspended,
        "handicap": handicap, "displayName": str(name),
        "additionalInfo": {"hot": False, "twoUp": False, "anyUp": "NO_UP"}, "probability": "MC41MDA=",
    }


def row(*prices: dict[str, Any], formatted: Any = None) -> dict[str, Any]:
    return {"id": "r-1", "handicap": None, "formattedHandicap": formatted, "prices": list(prices)}


def market(type_id: Any, *rows: dict[str, Any], name: str = "Some Market | Full Time") -> dict[str, Any]:
    return {
        "marketType": {
            "id": type_id, "name": name, "displayName": name, "explainer": "", "priority": 9,
            "tabs": ["all"], "handicapType": "", "priceColumnCount": 2, "priceSortingMethod": "DEFAULT",
        },
        "row": list(rows),
        "displayNameRows": [], "displayNameColumns": [],
        "additionalInfo": {"boosted": False, "cashoutable": True, "twoUp": False},
    }


def event(*markets: Any, **fields: Any) -> dict[str, Any]:
    payload = {
        "id": "33100009",
        "name": "Harbor City FC - Riverside United",
        "startTime": "2030-05-18T14:00:00Z",
        "results": None,
        "category": {"id": "2", "name": "Football"},
        "region": {"id": "310", "name": "Atlantis"},
        "competition": {"id": "20001", "name": "Premier League"},
        "participants": [
            {"id": "700101", "name": "Harbor City FC", "position": 1},
            {"id": "700102", "name": "Riverside United", "position": 2},
        ],
        "widgets": [{"id": "61234599", "type": "SPORTRADAR", "retention": "PREMATCH"}],
        "markets": list(markets),
    }
    payload.update(fields)
    return payload


def P(market_key: str, line: float | None, outcome: str, odds: float, available: bool = True) -> Price:
    return Price(market=market_key, line=line, outcome=outcome, odds=odds, available=available)


def reasons(parsed) -> list[tuple[str, str, str]]:
    return [(u.market_id, u.reason, u.detail) for u in parsed.unmapped]


def assert_prices(parsed, expected: list[Price]) -> None:
    assert Counter(parsed.prices) == Counter(expected)
    assert len(parsed.prices) == len(expected)


# --- the reference example ------------------------------------------------------------------


def test_reference_event_gives_every_market_in_canonical_terms():
    parsed = parse_event(REFERENCE_EVENT_C)

    assert (parsed.book, parsed.book_event_id, parsed.sr_id) == ("betpawa", "33100001", "61234567")
    assert parsed.kickoff == datetime(2030, 5, 18, 14, 0, tzinfo=timezone.utc)
    assert (parsed.country, parsed.tournament) == ("Atlantis", "Premier League")
    assert (parsed.home, parsed.away) == ("Harbor City FC", "Riverside United")
    assert_prices(parsed, [
        P("1x2_ft", None, "home", 2.20), P("1x2_ft", None, "draw", 3.30), P("1x2_ft", None, "away", 3.25),
        P("over_under_ft", 2.5, "over", 1.95), P("over_under_ft", 2.5, "under", 1.85),
        P("over_under_ft", 3.5, "over", 3.40), P("over_under_ft", 3.5, "under", 1.30),
        P("btts_ft", None, "yes", 1.72), P("btts_ft", None, "no", 2.05),
        P("double_chance_ft", None, "home_draw", 1.33), P("double_chance_ft", None, "draw_away", 1.62),
        P("double_chance_ft", None, "home_away", 1.30),
        P("asian_handicap_ft", -0.5, "home", 2.20), P("asian_handicap_ft", -0.5, "away", 1.68),
        P("handicap_3way_ft", -1.0, "home", 4.60), P("handicap_3way_ft", -1.0, "draw", 4.10, available=False),
        P("handicap_3way_ft", -1.0, "away", 1.60),
    ])
    assert parsed.unmapped == []
    assert parsed.raw_markets == 7  # 1X2, O/U 2.5, O/U 3.5, BTTS, DC, AH -0.5, 3-way -1


# --- odds, availability, types --------------------------------------------------------------


def test_odds_and_ids_sent_as_strings_or_numbers_read_the_same():
    parsed = parse_event(event(
        market(3743, row(price("1", "2.40"), price("X", " 3.10 "), price("2", 3))),
        market("5000", row(price("Over", "1.90", handicap=2.5), price("Under", 1.9, handicap="2.5"))),
        market("3774", row(price("1", "1.95", handicap="-0.5"), price("2", "1.85", handicap="0.5"), formatted=-0.5)),
        id=33100009,
        widgets=[{"id": 61234599, "type": "SPORTRADAR", "retention": "PREMATCH"}],
    ))

    assert (parsed.book_event_id, parsed.sr_id) == ("33100009", "61234599")
    assert_prices(parsed, [
        P("1x2_ft", None, "home", 2.40), P("1x2_ft", None, "draw", 3.10), P("1x2_ft", None, "away", 3.0),
        P("over_under_ft", 2.5, "over", 1.90), P("over_under_ft", 2.5, "under", 1.90),
        P("asian_handicap_ft", -0.5, "home", 1.95), P("asian_handicap_ft", -0.5, "away", 1.85),
    ])
    assert parsed.unmapped == []


def test_suspended_outcomes_are_kept_but_not_available():
    parsed = parse_event(event(market("3795", row(
        price("Yes", 1.70, suspended=True),
        {"id": "p-no", "name": "No", "price": 2.10},  # no 'suspended' at all: open
    ))))

    assert_prices(parsed, [P("btts_ft", None, "yes", 1.70, available=False), P("btts_ft", None, "no", 2.10)])


@pytest.mark.parametrize("bad", [0, "0", None, "", "abc", "1,95", "NaN", "inf", float("nan"), 1.0, "1.00", 0.5, -2,
                                 True])
def test_missing_or_unusable_odds_are_reported_not_priced(bad):
    parsed = parse_event(event(market("4833", row(price("Odd", bad), price("Even", 1.88)))))

    assert_prices(parsed, [P("odd_even_ft", None, "even", 1.88)])
    assert reasons(parsed) == [("4833", BAD_ODDS, f"Odd: {bad!r}")]
    assert parsed.raw_markets == 1


def test_a_price_without_odds_field_is_bad_odds_too():
    parsed = parse_event(event(market("4833", row({"id": "p", "name": "Odd", "suspended": False},
                                                      price("Even", "1.91")))))

    assert_prices(parsed, [P("odd_even_ft", None, "even", 1.91)])
    assert reasons(parsed) == [("4833", BAD_ODDS, "Odd: None")]


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.none(), st.booleans(), st.integers(-5, 1000), st.floats(allow_nan=True, allow_infinity=True),
                 st.text(max_size=8), st.floats(1.01, 500).map(lambda x: f"{x:.2f}")))
def test_every_outcome_becomes_a_price_or_a_reason(odds):
    parsed = parse_event(event(market("3743", row(price("1", odds), price("X", 3.2), price("2", 2.9)))))

    assert len(parsed.prices) + len(parsed.unmapped) == 3
    home = [p for p in parsed.prices if p.outcome == "home"]
    if home:
        assert math.isfinite(home[0].odds) and home[0].odds > 1.0
        assert home[0].odds == float(odds)
    else:
        assert reasons(parsed) == [("3743", BAD_ODDS, f"1: {odds!r}")]


# --- unknown things -------------------------------------------------------------------------


def test_unknown_market_is_reported_once_per_line():
    parsed = parse_event(event(
        market("99887766", row(price("Over", 1.8, handicap="8.5"), price("Under", 1.9, handicap="8.5")),
               row(price("Over", 2.3, handicap="9.5"), price("Under", 1.5, handicap="9.5")),
               name="Total Shots | Full Time"),
        market("3743", row(price("1", 2.0), price("X", 3.4), price("2", 3.6))),
    ))

    assert_prices(parsed, [P("1x2_ft", None, "home", 2.0), P("1x2_ft", None, "draw", 3.4),
                           P("1x2_ft", None, "away", 3.6)])
    assert reasons(parsed) == [("99887766", UNKNOWN_MARKET, "line 8.5"), ("99887766", UNKNOWN_MARKET, "line 9.5")]
    assert {u.name for u in parsed.unmapped} == {"Total Shots | Full Time"}
    assert parsed.raw_markets == 3


def test_unknown_outcome_is_reported_and_never_matched_by_position():
    parsed = parse_event(event(market("3743", row(price("Home", 1.9), price("X", 3.5), price("2", 4.2)))))

    assert_prices(parsed, [P("1x2_ft", None, "draw", 3.5), P("1x2_ft", None, "away", 4.2)])
    assert reasons(parsed) == [("3743", UNKNOWN_OUTCOME, "Home")]
    assert parsed.raw_markets == 1


def test_market_without_betpawa_outcome_names_reports_each_outcome():
    parsed = parse_event(event(market("28000228", row(price("0-0 / 1-0", 12.0), price("1-0 / 1-0", 7.5)))))

    assert parsed.prices == []
    assert reasons(parsed) == [("28000228", UNKNOWN_OUTCOME, "0-0 / 1-0"), ("28000228", UNKNOWN_OUTCOME, "1-0 / 1-0")]


# --- names ----------------------------------------------------------------------------------


def test_unicode_team_and_outcome_names():
    parsed = parse_event(event(
        market("28000014", row(price("1X\u00a0-\u00a0Yes", 2.9), price("12 & No", 2.2), price("Ünentschieden", 3.0))),
        participants=[{"id": "1", "name": "Atlético Ñuñoa", "position": 1},
                      {"id": "2", "name": "Ολυμπιακός Βόλου", "position": 2}],
        region={"id": "9", "name": "Côte d’Ivoire"},
        competition={"id": "8", "name": "Ligue 1 – Réserve"},
    ))

    assert (parsed.home, parsed.away) == ("Atlético Ñuñoa", "Ολυμπιακός Βόλου")
    assert (parsed.country, parsed.tournament) == ("Côte d’Ivoire", "Ligue 1 – Réserve")
    assert_prices(parsed, [P("double_chance_btts_ft", None, "1x_yes", 2.9),
                           P("double_chance_btts_ft", None, "12_no", 2.2)])
    assert reasons(parsed) == [("28000014", UNKNOWN_OUTCOME, "Ünentschieden")]


def test_combo_outcomes_written_with_dash_or_ampersand_are_the_same_outcome():
    parsed = parse_event(event(
        market("1096755", row(price("1 & Over", 3.9, handicap="2.5"), price("1 - Under", 4.4, handicap="2.5"),
                              price("X & Over", 9.0, handicap="2.5"), price("X & Under", 4.6, handicap="2.5"),
                              price("2 - Over", 6.5, handicap="2.5"), price("2 & Under", 9.5, handicap="2.5"))),
        market("3591790", row(price("1 - Yes", 4.1), price("1 & No", 3.6))),
    ))

    assert_prices(parsed, [
        P("1x2_over_under_ft", 2.5, "home_over", 3.9), P("1x2_over_under_ft", 2.5, "home_under", 4.4),
        P("1x2_over_under_ft", 2.5, "draw_over", 9.0), P("1x2_over_under_ft", 2.5, "draw_under", 4.6),
        P("1x2_over_under_ft", 2.5, "away_over", 6.5), P("1x2_over_under_ft", 2.5, "away_under", 9.5),
        P("1x2_btts_ft", None, "home_yes", 4.1), P("1x2_btts_ft", None, "home_no", 3.6),
    ])
    assert parsed.unmapped == []


# --- lines ----------------------------------------------------------------------------------


def test_quarter_lines_stay_distinct_and_float_noise_does_not():
    parsed = parse_event(event(
        market("3774",
               row(price("1", 1.85, handicap="-0.25"), price("2", 1.95, handicap="0.25"), formatted="-0.25"),
               row(price("1", 2.30, handicap="-0.75"), price("2", 1.60, handicap="0.75"), formatted="-0.7500000001")),
        market("5000", row(price("Over", 1.70, handicap="2.25"), price("Under", 2.10, handicap="2.250"))),
    ))

    assert_prices(parsed, [
        P("asian_handicap_ft", -0.25, "home", 1.85), P("asian_handicap_ft", -0.25, "away", 1.95),
        P("asian_handicap_ft", -0.75, "home", 2.30), P("asian_handicap_ft", -0.75, "away", 1.60),
        P("over_under_ft", 2.25, "over", 1.70), P("over_under_ft", 2.25, "under", 2.10),
    ])
    assert parsed.raw_markets == 3


def test_handicap_line_falls_back_to_prices_from_the_home_side():
    parsed = parse_event(event(
        market("3774", row(price("1", 2.05, handicap="+0.5"), price("2", 1.75, handicap="-0.5"))),
        market("4724", row(price("1", 1.45, handicap="1:0"), price("X", 4.5, handicap="1:0"),
                           price("2", 5.5, handicap="1:0"))),
        market("4716", row(price("1", 6.0), price("X", 3.9), price("2", 1.4), formatted="0:2")),
    ))

    assert_prices(parsed, [
        P("asian_handicap_ft", 0.5, "home", 2.05), P("asian_handicap_ft", 0.5, "away", 1.75),
        P("handicap_3way_ft", 1.0, "home", 1.45), P("handicap_3way_ft", 1.0, "draw", 4.5),
        P("handicap_3way_ft", 1.0, "away", 5.5),
        P("handicap_3way_1h", -2.0, "home", 6.0), P("handicap_3way_1h", -2.0, "draw", 3.9),
        P("handicap_3way_1h", -2.0, "away", 1.4),
    ])
    assert parsed.raw_markets == 3


def test_markets_without_a_line_ignore_handicap_fields():
    parsed = parse_event(event(
        market("4429", row(price("1-0", 7.0, handicap="0"), price("0-0", 9.5, handicap="0"), formatted="0"),
               row(price("Other", 15.0, handicap="1"), formatted="1")),
        market("4926", row(price("6+", 40.0, handicap="6"), price("0", 11.0))),
    ))

    assert_prices(parsed, [
        P("correct_score_ft", None, "1_0", 7.0), P("correct_score_ft", None, "0_0", 9.5),
        P("correct_score_ft", None, "other", 15.0),
        P("exact_goals_ft", None, "6+", 40.0), P("exact_goals_ft", None, "0", 11.0),
    ])
    assert parsed.raw_markets == 2


@pytest.mark.parametrize("formatted, handicap", [(None, None), ("", ""), ("n/a", "abc"), (None, "1:0"),
                                                 ("nan", "inf")])
def test_lined_market_without_a_readable_line_is_invalid_specifier(formatted, handicap):
    parsed = parse_event(event(market("5000", row(price("Over", 1.8, handicap=handicap),
                                                  price("Under", 2.0, handicap=handicap), formatted=formatted))))

    assert parsed.prices == []
    detail = f"formattedHandicap={formatted!r}, handicap={handicap!r}"
    assert reasons(parsed) == [("5000", INVALID_SPECIFIER, f"Over: {detail}"),
                               ("5000", INVALID_SPECIFIER, f"Under: {detail}")]
    assert parsed.raw_markets == 1


# --- split markets --------------------------------------------------------------------------


def test_a_market_split_over_records_and_rows_is_merged():
    parsed = parse_event(event(
        market("5000", row(price("Over", 1.95, handicap="2.5"))),
        market("3743", row(price("1", 2.2), price("X", 3.3), price("2", 3.25))),
        market("5000", row(price("Under", 1.85, handicap="2.5")), row(price("Over", 3.4, handicap="3.5"))),
        market("5000", row(price("Under", 1.30, handicap="3.5"))),
        market("4429", row(price("1-0", 6.5)), row(price("0-1", 8.0)), row(price("1-0", 6.5))),
    ))

    assert_prices(parsed, [
        P("over_under_ft", 2.5, "over", 1.95), P("over_under_ft", 2.5, "under", 1.85),
        P("over_under_ft", 3.5, "over", 3.40), P("over_under_ft", 3.5, "under", 1.30),
        P("1x2_ft", None, "home", 2.2), P("1x2_ft", None, "draw", 3.3), P("1x2_ft", None, "away", 3.25),
        P("correct_score_ft", None, "1_0", 6.5), P("correct_score_ft", None, "0_1", 8.0),
    ])
    assert parsed.unmapped == []
    assert parsed.raw_markets == 4  # O/U 2.5, O/U 3.5, 1X2, correct score


def test_conflicting_quotes_for_one_outcome_are_reported_not_overwritten():
    parsed = parse_event(event(
        market("3795", row(price("Yes", 1.72), price("No", 2.05))),
        market("3795", row(price("Yes", 1.80, suspended=True))),
        market("5000", row(price("Over", 1.95, handicap="2.5"), price("Under", 1.85, handicap="2.5")),
               row(price("Over", "1.95", handicap="2.50"), price("Under", 1.90, handicap="2.5"))),
    ))

    assert_prices(parsed, [P("btts_ft", None, "yes", 1.72), P("btts_ft", None, "no", 2.05),
                           P("over_under_ft", 2.5, "over", 1.95), P("over_under_ft", 2.5, "under", 1.85)])
    assert reasons(parsed) == [
        ("3795", MALFORMED_MARKET, "conflicting quotes for yes: kept 1.72, ignored 1.8 (suspended)"),
        ("5000", MALFORMED_MARKET, "conflicting quotes for under at line 2.5: kept 1.85, ignored 1.9"),
    ]
    assert parsed.raw_markets == 2


# --- malformed markets and events -----------------------------------------------------------


def test_a_malformed_market_rejects_only_that_market():
    good = market("3743", row(price("1", 2.0), price("X", 3.4), price("2", 3.6)))
    no_id = market(None, row(price("1", 2.0)), name="Broken")
    rows_not_list = {"marketType": {"id": "5000", "displayName": "Over/Under | Full Time"}, "row": {"0": "x"}}
    price_without_name = market("3795", row({"id": "p", "price": 1.7, "suspended": False}, price("No", 2.1)))
    no_prices = market("4693", row(), name="Double Chance | Full Time")

    parsed = parse_event(event(no_id, good, rows_not_list, "oops", price_without_name, no_prices))

    assert_prices(parsed, [P("1x2_ft", None, "home", 2.0), P("1x2_ft", None, "draw", 3.4),
                           P("1x2_ft", None, "away", 3.6)])
    assert [(u.market_id, u.reason, u.name) for u in parsed.unmapped] == [
        ("", MALFORMED_MARKET, "Broken"),
        ("5000", MALFORMED_MARKET, "Over/Under | Full Time"),
        ("", MALFORMED_MARKET, ""),
        ("3795", MALFORMED_MARKET, "Some Market | Full Time"),
        ("4693", MALFORMED_MARKET, "Double Chance | Full Time"),
    ]
    assert parsed.unmapped[-1].detail == "no prices"
    assert parsed.raw_markets == 6


@pytest.mark.parametrize("payload", [
    None,
    [],
    "<html>blocked</html>",
    {k: v for k, v in event().items() if k != "id"},
    event(id=""),
    event(startTime=None),
    event(startTime="next saturday"),
    event(participants=[{"id": "1", "name": "Harbor City FC", "position": 1}]),
    event(participants=[], name="Harbor City FC v Riverside United"),
    event(markets={"3743": {}}),
], ids=["null", "list", "html", "no-id", "empty-id", "no-kickoff", "bad-kickoff", "one-team", "no-teams",
        "markets-not-list"])
def test_a_malformed_event_is_rejected_as_a_whole(payload):
    with pytest.raises(MalformedPayload):
        parse_event(payload)


def test_teams_come_from_the_name_when_participants_are_absent():
    parsed = parse_event(event(participants=[], name="Harbor City FC - Riverside United - B"))

    assert (parsed.home, parsed.away) == ("Harbor City FC", "Riverside United - B")


def test_detail_without_widget_uses_the_discovered_listing():
    hint = DiscoveredEvent(book="betpawa", book_event_id="33100009", sr_id="61234599",
                           kickoff=datetime(2030, 5, 18, 14, tzinfo=timezone.utc), country="Atlantis",
                           tournament="Premier League", home="Harbor City FC", away="Riverside United",
                           tournament_id="20001")
    payload = event(market("3795", row(price("Yes", 1.7), price("No", 2.1))), widgets=[], region=None,
                    competition=None)

    parsed = parse_event(payload, hint=hint)

    assert (parsed.sr_id, parsed.country, parsed.tournament) == ("61234599", "Atlantis", "Premier League")
    assert_prices(parsed, [P("btts_ft", None, "yes", 1.7), P("btts_ft", None, "no", 2.1)])
    with pytest.raises(MalformedPayload):
        parse_event(payload)


def test_event_without_markets_has_no_prices():
    parsed = parse_event({k: v for k, v in event().items() if k != "markets"})

    assert (parsed.prices, parsed.unmapped, parsed.raw_markets) == ([], [], 0)


# --- sport tree -----------------------------------------------------------------------------


def test_tree_lists_football_competitions_with_their_country():
    payload = {"withRegions": [
        {"category": {"id": "2", "name": "Football"}, "regions": [
            {"region": {"id": "310", "name": "Atlantis"}, "competitions": [
                {"competition": {"id": "20001", "name": "Premier League"}, "eventCount": 2},
                {"competition": {"id": 20002, "name": "Cup"}, "eventCount": 1},
                {"competition": {"name": "No id"}},
                {"eventCount": 3},
            ]},
            {"region": {"id": "311", "name": "São Tomé"}, "competitions": [
                {"competition": {"id": "20003", "name": "Primeira Divisão"}},
                {"competition": {"id": "20001", "name": "Premier League"}},
            ]},
            {"region": {"id": "312", "name": "Empty"}, "competitions": []},
        ]},
        {"category": {"id": "3", "name": "Basketball"}, "regions": [
            {"region": {"id": "1", "name": "USA"}, "competitions": [{"competition": {"id": "1", "name": "NBA"}}]},
        ]},
    ]}

    assert parse_tree(payload) == [
        Tournament("betpawa", "20001", "Premier League", "Atlantis"),
        Tournament("betpawa", "20002", "Cup", "Atlantis"),
        Tournament("betpawa", "20003", "Primeira Divisão", "São Tomé"),
    ]


def test_empty_tree_has_no_competitions_and_a_wrong_shape_is_malformed():
    assert parse_tree({"withRegions": []}) == []
    for payload in (None, [], {"regions": []}, {"withRegions": [{"category": {}}]}):
        with pytest.raises(MalformedPayload):
            parse_tree(payload)


# --- event lists ----------------------------------------------------------------------------


def list_item(event_id: str, kickoff: str, widgets: list[Any] | None = None) -> dict[str, Any]:
    item = event(id=event_id, startTime=kickoff)
    del item["markets"]
    if widgets is not None:
        item["widgets"] = widgets
    return item


def test_event_list_keeps_upcoming_events_with_a_sportradar_id():
    sr = lambda i: [{"id": i, "type": "SPORTRADAR", "retention": "PREMATCH"}]  # noqa: E731
    payload = {"responses": [{"responses": [
        list_item("1", "2030-05-18T14:00:00Z", sr("61234567")),
        list_item("2", "2030-05-01T00:00:00Z", sr("61234568")),  # kicks off exactly now
        list_item("3", "2030-04-30T23:00:00Z", sr("61234569")),  # already started
        list_item("4", "2030-05-18T16:30:00Z", []),
        list_item("5", "2030-05-18T16:30:00Z", [{"id": "g-1", "type": "GENIUSSPORTS"}]),
        list_item("6", "2030-05-18T16:30:00Z", sr("sr:match:61234570")),
        list_item("7", "2030-05-18T16:30:00Z", sr("not-a-number")),
        list_item("8", "2030-05-18T17:30:00+01:00", sr(61234571)),
        {"id": "9", "startTime": "soon"},
    ]}]}

    found = parse_event_list(payload, TOURNAMENT, NOW)

    assert [(e.book_event_id, e.sr_id, e.kickoff) for e in found] == [
        ("1", "61234567", datetime(2030, 5, 18, 14, 0, tzinfo=timezone.utc)),
        ("6", "61234570", datetime(2030, 5, 18, 16, 30, tzinfo=timezone.utc)),
        ("8", "61234571", datetime(2030, 5, 18, 16, 30, tzinfo=timezone.utc)),
    ]
    assert {(e.book, e.country, e.tournament, e.tournament_id, e.home, e.away) for e in found} == {
        ("betpawa", "Atlantis", "Premier League", "20001", "Harbor City FC", "Riverside United")}


def test_event_list_shapes():
    assert parse_event_list({"responses": []}, TOURNAMENT, NOW) == []
    assert parse_event_list({"responses": [{"responses": []}]}, TOURNAMENT, NOW) == []
    for payload in (None, {"eventLists": [{"events": []}]}, {"responses": [{"responses": {}}]}):
        with pytest.raises(MalformedPayload):
            parse_event_list(payload, TOURNAMENT, NOW)

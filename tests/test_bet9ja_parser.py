"""Bet9ja payloads (hand-written in the real shapes) turned into canonical prices, with every
price that cannot be mapped accounted for by a reason."""

from __future__ import annotations

import copy
import math
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
    Unmapped,
)
from engine.bookmakers.bet9ja import parse_event, parse_event_list, parse_tree

# GetSports, as in reference/examples/bet9ja-A.json plus a second country and group.
TREE = {
    "R": "OK",
    "D": {
        "PAL": {
            "1": {
                "S_DESC": "Soccer", "NUM": 5,
                "SG": {
                    "88001": {"SG_DESC": "Atlantis", "NUM": 3, "G": {
                        "990011": {"G_DESC": "Premier League", "NUM": 2},
                        "990012": {"G_DESC": "Cup", "NUM": 1},
                    }},
                    "88002": {"SG_DESC": "Côte d'Ivoire", "NUM": 2, "G": {
                        "990021": {"G_DESC": "Ligue 1", "NUM": 2},
                    }},
                },
            },
            "2": {"S_DESC": "Basketball", "NUM": 1, "SG": {
                "77001": {"SG_DESC": "USA", "NUM": 1, "G": {"880011": {"G_DESC": "NBA", "NUM": 1}}},
            }},
        }
    },
}

PREMIER = Tournament(book="bet9ja", tournament_id="990011", name="Premier League", country="Atlantis")
NOW = datetime(2030, 5, 18, 12, 0, tzinfo=UTC)


def _list_item(eid: Any, extid: Any, ds: str, start: str) -> dict[str, Any]:
    return {"ID": eid, "C": "4521", "EXTID": extid, "DS": ds, "STARTDATE": start, "SID": 1,
            "GID": 990011, "GN": "Premier League", "SG": "Atlantis",
            "O": {"S_1X2_1": "2.20", "S_1X2_X": "3.20", "S_1X2_2": "3.30"}}


# GetEvent D, as in reference/examples/bet9ja-C.json (own values).
DETAIL: dict[str, Any] = {
    "ID": 709000001, "C": "4521", "EXTID": "61234567",
    "DS": "Harbor City FC - Riverside United", "STARTDATE": "2030-05-18 14:00:00",
    "SID": 1, "SGID": 88001, "SG": "Atlantis", "GID": 990011, "GN": "Premier League",
    "O": {
        "S_1X2_1": "2.20", "S_1X2_X": "3.20", "S_1X2_2": "3.30",
        "S_OU@2.5_O": "1.93", "S_OU@2.5_U": "1.85", "S_OU@3.5_O": "3.35", "S_OU@3.5_U": "1.31",
        "S_GGNG_Y": "1.73", "S_GGNG_N": "2.00",
        "S_DC_1X": "1.32", "S_DC_X2": "1.62", "S_DC_12": "1.30",
        "S_AH@-0.5_1": "2.20", "S_AH@-0.5_2": "1.65",
        "S_1X2HND@-1_1H": "4.50", "S_1X2HND@-1_XH": "4.00", "S_1X2HND@-1_2H": "1.62",
        "S_HAOU@1.5_OH": "2.40", "S_HAOU@1.5_UH": "1.55", "S_HAOU@1.5_OA": "3.10", "S_HAOU@1.5_UA": "1.35",
    },
    "MK": [
        {"ID": "S_1X2", "DS": "1X2", "GCAT": "POPULAR", "MARKETID": "1", "SGN": ["1", "X", "2"], "SGNK": ["1", "X", "2"]},
        {"ID": "S_OUA", "DS": "Asian Over/Under", "GCAT": "GOAL", "MARKETID": "9", "SGN": ["Over", "Under"], "SGNK": ["O", "U"]},
    ],
}


def detail(odds: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    d = copy.deepcopy(DETAIL)
    if odds is not None:
        d["O"] = odds
    d.update(fields)
    return d


def P(market: str, line: float | None, outcome: str, odds: float) -> Price:
    return Price(market=market, line=line, outcome=outcome, odds=odds, available=True)


# --- the sport tree and the event lists -----------------------------------------------


def test_tree_lists_every_football_group_with_its_country():
    assert parse_tree(TREE) == [
        PREMIER,
        Tournament(book="bet9ja", tournament_id="990012", name="Cup", country="Atlantis"),
        Tournament(book="bet9ja", tournament_id="990021", name="Ligue 1", country="Côte d'Ivoire"),
    ]


def test_tree_country_without_readable_groups_does_not_hide_the_others():
    tree = copy.deepcopy(TREE)
    tree["D"]["PAL"]["1"]["SG"]["88003"] = {"SG_DESC": "Broken", "G": ["990031"]}
    assert [t.tournament_id for t in parse_tree(tree)] == ["990011", "990012", "990021"]


def test_tree_without_football_has_no_tournaments():
    assert parse_tree({"R": "OK", "D": {"PAL": {"2": TREE["D"]["PAL"]["2"]}}}) == []


@pytest.mark.parametrize("payload", [[], {"D": {"PAL": {}}}, {"R": "OK", "D": None}, {"R": "OK", "D": {"PAL": []}}])
def test_tree_in_the_wrong_shape_is_rejected(payload):
    with pytest.raises(MalformedPayload):
        parse_tree(payload)


def test_event_list_keeps_upcoming_events_keyed_by_sr_id_and_bet9ja_id():
    payload = {"R": "OK", "D": {"E": [
        _list_item(709000001, "61234567", "Harbor City FC - Riverside United", "2030-05-18 14:00:00"),
        _list_item(709000002, 61234589, "Beşiktaş JK - Fenerbahçe SK", "2030-05-19 16:30:00"),
    ]}}
    assert parse_event_list(payload, PREMIER, NOW) == [
        DiscoveredEvent(book="bet9ja", book_event_id="709000001", sr_id="61234567",
                        kickoff=datetime(2030, 5, 18, 14, 0, tzinfo=UTC), country="Atlantis",
                        tournament="Premier League", home="Harbor City FC", away="Riverside United",
                        tournament_id="990011"),
        DiscoveredEvent(book="bet9ja", book_event_id="709000002", sr_id="61234589",
                        kickoff=datetime(2030, 5, 19, 16, 30, tzinfo=UTC), country="Atlantis",
                        tournament="Premier League", home="Beşiktaş JK", away="Fenerbahçe SK",
                        tournament_id="990011"),
    ]


def test_event_list_drops_started_events_and_events_without_sr_id():
    payload = {"R": "OK", "D": {"E": [
        _list_item(1, "100", "A - B", "2030-05-18 12:00:00"),  # kicks off exactly now
        _list_item(2, "200", "C - D", "2030-05-18 11:59:59"),
        _list_item(3, None, "E - F", "2030-05-18 13:00:00"),
        _list_item(4, "", "G - H", "2030-05-18 13:00:00"),
        {k: v for k, v in _list_item(5, "x", "I - J", "2030-05-18 13:00:00").items() if k != "EXTID"},
        _list_item(6, "600", "K - L", "2030-05-18 12:00:01"),
    ]}}
    assert [(e.book_event_id, e.sr_id) for e in parse_event_list(payload, PREMIER, NOW)] == [("6", "600")]


def test_event_list_skips_unreadable_items_but_keeps_the_rest():
    payload = {"R": "OK", "D": {"E": [
        "not an event",
        _list_item(None, "100", "A - B", "2030-05-18 13:00:00"),
        _list_item(2, "200", "no separator", "2030-05-18 13:00:00"),
        _list_item(3, "300", "C - D", "18/05/2030 13:00"),
        _list_item(4, "400", "E - F", "2030-05-18 13:00:00"),
    ]}}
    assert [e.book_event_id for e in parse_event_list(payload, PREMIER, NOW)] == ["4"]


def test_event_list_without_events_is_empty():
    assert parse_event_list({"R": "OK", "D": {}}, PREMIER, NOW) == []
    with pytest.raises(MalformedPayload):
        parse_event_list({"R": "OK", "D": {"E": {"1": {}}}}, PREMIER, NOW)


# --- the event detail -----------------------------------------------------------------


def test_full_event_maps_every_market_and_splits_home_away_totals():
    event = parse_event(detail())
    assert (event.book, event.book_event_id, event.sr_id) == ("bet9ja", "709000001", "61234567")
    assert event.kickoff == datetime(2030, 5, 18, 14, 0, tzinfo=UTC)
    assert (event.country, event.tournament, event.home, event.away) == (
        "Atlantis", "Premier League", "Harbor City FC", "Riverside United")
    assert event.prices == [
        P("1x2_ft", None, "home", 2.20), P("1x2_ft", None, "draw", 3.20), P("1x2_ft", None, "away", 3.30),
        P("over_under_ft", 2.5, "over", 1.93), P("over_under_ft", 2.5, "under", 1.85),
        P("over_under_ft", 3.5, "over", 3.35), P("over_under_ft", 3.5, "under", 1.31),
        P("btts_ft", None, "yes", 1.73), P("btts_ft", None, "no", 2.00),
        P("double_chance_ft", None, "home_draw", 1.32), P("double_chance_ft", None, "draw_away", 1.62),
        P("double_chance_ft", None, "home_away", 1.30),
        P("asian_handicap_ft", -0.5, "home", 2.20), P("asian_handicap_ft", -0.5, "away", 1.65),
        P("handicap_3way_ft", -1.0, "home", 4.50), P("handicap_3way_ft", -1.0, "draw", 4.00),
        P("handicap_3way_ft", -1.0, "away", 1.62),
        P("home_over_under_ft", 1.5, "over", 2.40), P("home_over_under_ft", 1.5, "under", 1.55),
        P("away_over_under_ft", 1.5, "over", 3.10), P("away_over_under_ft", 1.5, "under", 1.35),
    ]
    assert event.unmapped == []
    assert event.raw_markets == 8  # 1X2, O/U 2.5, O/U 3.5, GG/NG, DC, AH -0.5, HND -1, HAOU 1.5


def test_odds_arrive_as_strings_or_numbers():
    event = parse_event(detail({"S_1X2_1": 2.2, "S_1X2_X": " 3.20 ", "S_1X2_2": 4, "S_GGNG_Y": "1.7"}))
    assert event.prices == [P("1x2_ft", None, "home", 2.2), P("1x2_ft", None, "draw", 3.2),
                            P("1x2_ft", None, "away", 4.0), P("btts_ft", None, "yes", 1.7)]
    assert event.unmapped == []


def test_every_present_key_is_available_and_missing_outcomes_are_simply_absent():
    event = parse_event(detail({"S_1X2_1": "2.20", "S_1X2_2": "3.30"}))
    assert event.prices == [P("1x2_ft", None, "home", 2.20), P("1x2_ft", None, "away", 3.30)]
    assert all(p.available for p in event.prices)
    assert event.unmapped == []


def test_bad_odds_are_reported_and_do_not_take_the_market_down():
    bad: dict[str, Any] = {"S_1X2_1": "1.00", "S_1X2_X": None, "S_1X2_2": "abc", "S_GGNG_Y": "NaN",
                           "S_GGNG_N": math.inf, "S_DC_1X": True, "S_DC_X2": ["1.5"], "S_DC_12": "0",
                           "S_OE_OD": "-2.5", "S_OE_EV": 1, "S_DNB_1": float("nan"), "S_DNB_2": "1.91"}
    event = parse_event(detail(bad))
    assert event.prices == [P("draw_no_bet_ft", None, "away", 1.91)]
    assert event.unmapped == [
        Unmapped("S_1X2", BAD_ODDS, "S_1X2_1='1.00'", "1X2"),
        Unmapped("S_1X2", BAD_ODDS, "S_1X2_X=None", "1X2"),
        Unmapped("S_1X2", BAD_ODDS, "S_1X2_2='abc'", "1X2"),
        Unmapped("S_GGNG", BAD_ODDS, "S_GGNG_Y='NaN'"),
        Unmapped("S_GGNG", BAD_ODDS, "S_GGNG_N=inf"),
        Unmapped("S_DC", BAD_ODDS, "S_DC_1X=True"),
        Unmapped("S_DC", BAD_ODDS, "S_DC_X2=['1.5']"),
        Unmapped("S_DC", BAD_ODDS, "S_DC_12='0'"),
        Unmapped("S_OE", BAD_ODDS, "S_OE_OD='-2.5'"),
        Unmapped("S_OE", BAD_ODDS, "S_OE_EV=1"),
        Unmapped("S_DNB", BAD_ODDS, "S_DNB_1=nan"),
    ]


def test_unknown_markets_are_reported_once_per_line_with_a_sample_and_name():
    event = parse_event(detail({"S_OUA@2.25_O": "1.90", "S_OUA@2.25_U": "1.90", "S_OUA@2.75_O": "2.30",
                                "S_CHANCEMIX_1OR1X": "1.40", "S_1X2MULTI1-2_1": "3.00", "S_1X2_1": "2.05"}))
    assert event.prices == [P("1x2_ft", None, "home", 2.05)]
    assert event.unmapped == [
        Unmapped("S_OUA", UNKNOWN_MARKET, "@2.25 O,U", "Asian Over/Under"),
        Unmapped("S_OUA", UNKNOWN_MARKET, "@2.75 O", "Asian Over/Under"),
        Unmapped("S_CHANCEMIX", UNKNOWN_MARKET, "1OR1X"),
        Unmapped("S_1X2MULTI1-2", UNKNOWN_MARKET, "1"),
    ]
    assert event.raw_markets == 5


def test_keys_outside_the_grammar_are_reported_not_skipped():
    long_key = "S_" + "A" * 500 + "_1"
    event = parse_event(detail({"S_": "2.0", "S__1": "2.0", "X_1X2_1": "2.0", "S_ou@2.5_O": "2.0",
                                "S_1X2": "2.0", long_key: "2.0", "S_1X2_1": "2.10"}))
    assert event.prices == [P("1x2_ft", None, "home", 2.10)]
    assert [(u.market_id, u.reason) for u in event.unmapped] == [
        ("S_", MALFORMED_MARKET), ("S__1", MALFORMED_MARKET), ("X_1X2_1", MALFORMED_MARKET),
        ("S_ou@2.5_O", MALFORMED_MARKET), ("S_1X2", MALFORMED_MARKET), (long_key[:120], MALFORMED_MARKET),
    ]
    assert event.raw_markets == 7


def test_surrounding_whitespace_in_keys_is_ignored():
    event = parse_event(detail({" S_1X2_1 ": "2.10", "S_OU@2.5_O\t": "1.80"}))
    assert event.prices == [P("1x2_ft", None, "home", 2.10), P("over_under_ft", 2.5, "over", 1.80)]


def test_unknown_outcome_suffixes_are_reported_and_matched_exactly():
    event = parse_event(detail({"S_1X2_1": "2.10", "S_1X2_3": "9.0", "S_GGNG_y": "1.8", "S_GGNG_N": "1.9",
                                "S_CSFT_1:0": "6.5", "S_CSFT_OTH": "15", "S_CSFT_5:0": "90",
                                "S_HTFT_1/X": "15.0", "S_WINMARGIN_HT>2": "8.5"}))
    assert event.prices == [
        P("1x2_ft", None, "home", 2.10), P("btts_ft", None, "no", 1.9),
        P("correct_score_ft", None, "1_0", 6.5), P("correct_score_ft", None, "other", 15.0),
        P("htft", None, "1_x", 15.0), P("winning_margin", None, "home_3+", 8.5),
    ]
    assert event.unmapped == [
        Unmapped("S_1X2", UNKNOWN_OUTCOME, "S_1X2_3", "1X2"),
        Unmapped("S_GGNG", UNKNOWN_OUTCOME, "S_GGNG_y"),
        Unmapped("S_CSFT", UNKNOWN_OUTCOME, "S_CSFT_5:0"),
    ]


def test_parameter_introduced_without_at_is_not_a_line():
    # The earlier tool's docstring wrote S_OU_2.5_O; it has no @param, so it has no line.
    event = parse_event(detail({"S_OU_2.5_O": "1.90", "S_OU_2.5_U": "1.90"}))
    assert event.prices == []
    assert event.unmapped == [Unmapped("S_OU", INVALID_SPECIFIER, "no @param")]


def test_parameters_are_routed_by_the_market_line_kind():
    event = parse_event(detail({
        "S_1X2@1_1": "2.0",            # no-line market with a param
        "S_GOALS@6_6": "40",           # variant market with a param
        "S_OU@abc_O": "1.9",           # total that is not a number
        "S_OU@nan_O": "1.9",
        "S_OU@-2.5_O": "1.9",          # a total cannot be negative
        "S_AH@_1": "1.9",              # empty param
        "S_1X2HND@0:1_1H": "4.5",      # European handicap must be a signed number
        "S_1X2HND@+1_1H": "1.40", "S_1X2HND@+1_XH": "4.60", "S_1X2HND@+1_2H": "6.10",
        "S_AH@0_1": "1.95", "S_AH@0_2": "1.85",
        "S_OUGGNG_OY": "3.1",          # a combo with a line must carry it
        "S_1X21ST10MIN_1": "3.3",      # time-window market: the window is in the key
    }))
    assert event.prices == [
        P("handicap_3way_ft", 1.0, "home", 1.40), P("handicap_3way_ft", 1.0, "draw", 4.60),
        P("handicap_3way_ft", 1.0, "away", 6.10),
        P("asian_handicap_ft", 0.0, "home", 1.95), P("asian_handicap_ft", 0.0, "away", 1.85),
        P("1x2_10min", None, "home", 3.3),
    ]
    assert event.unmapped == [
        Unmapped("S_1X2", UNKNOWN_PARAM, "@1", "1X2"),
        Unmapped("S_GOALS", UNKNOWN_PARAM, "@6"),
        Unmapped("S_OU", INVALID_SPECIFIER, "@abc"),
        Unmapped("S_OU", INVALID_SPECIFIER, "@nan"),
        Unmapped("S_OU", INVALID_SPECIFIER, "@-2.5 (negative total)"),
        Unmapped("S_AH", INVALID_SPECIFIER, "@"),
        Unmapped("S_1X2HND", INVALID_SPECIFIER, "@0:1"),
        Unmapped("S_OUGGNG", INVALID_SPECIFIER, "no @param"),
    ]


def test_quarter_lines_stay_distinct_and_equal_lines_do_not_duplicate():
    event = parse_event(detail({
        "S_AH@-0.25_1": "1.85", "S_AH@-0.25_2": "1.95", "S_AH@0.75_1": "2.40", "S_AH@0.75_2": "1.55",
        "S_OU@2.25_O": "1.70", "S_OU@2.5_O": "1.90", "S_OU@2.50_O": "1.91", "S_OU@2.50_U": "1.89",
    }))
    assert event.prices == [
        P("asian_handicap_ft", -0.25, "home", 1.85), P("asian_handicap_ft", -0.25, "away", 1.95),
        P("asian_handicap_ft", 0.75, "home", 2.40), P("asian_handicap_ft", 0.75, "away", 1.55),
        P("over_under_ft", 2.25, "over", 1.70), P("over_under_ft", 2.5, "over", 1.90),
        P("over_under_ft", 2.5, "under", 1.89),
    ]
    assert event.unmapped == [Unmapped("S_OU", MALFORMED_MARKET, "S_OU@2.50_O duplicates S_OU@2.5_O")]
    assert event.raw_markets == 5


def test_team_totals_route_each_suffix_to_its_team_in_either_letter_order():
    event = parse_event(detail({
        "S_HAOU@0.5_HO": "1.30", "S_HAOU@0.5_AU": "2.60",
        "S_HA1HOU@0.5_HO": "2.10", "S_HA1HOU@0.5_UA": "1.45",
        "S_HA2HOU@1.5_OH": "3.20", "S_HA2HOU@1.5_AU": "1.20",
        "S_HAOU@1.5_XX": "2.0", "S_HAOU@1.5_OH": "2.40", "S_HAOU@1.5_HO": "2.45",
    }))
    assert event.prices == [
        P("home_over_under_ft", 0.5, "over", 1.30), P("away_over_under_ft", 0.5, "under", 2.60),
        P("home_over_under_1h", 0.5, "over", 2.10), P("away_over_under_1h", 0.5, "under", 1.45),
        P("home_over_under_2h", 1.5, "over", 3.20), P("away_over_under_2h", 1.5, "under", 1.20),
        P("home_over_under_ft", 1.5, "over", 2.40),
    ]
    assert event.unmapped == [
        Unmapped("S_HAOU", UNKNOWN_OUTCOME, "S_HAOU@1.5_XX"),
        Unmapped("S_HAOU", MALFORMED_MARKET, "S_HAOU@1.5_HO duplicates S_HAOU@1.5_OH"),
    ]


def test_competitor_only_markets_are_mapped():
    event = parse_event(detail({"S_1X21ST5MIN_1": "3.40", "S_1X21ST5MIN_X": "1.50", "S_GGNG2PLUS_Y": "6.0",
                                "S_1STGOAL_H": "1.75"}))
    assert event.prices == [
        P("1x2_5min", None, "home", 3.40), P("1x2_5min", None, "draw", 1.50),
        P("btts_2plus_ft", None, "yes", 6.0), P("first_goal_ft", None, "home", 1.75),
    ]


def test_unicode_team_names_and_first_separator_split():
    event = parse_event(detail({}, DS="Étoile Sportive du Sahel - Al-Ahly - Benghazi", SG="Tunisie", GN="Ligue Professionnelle 1"))
    assert (event.home, event.away, event.country, event.tournament) == (
        "Étoile Sportive du Sahel", "Al-Ahly - Benghazi", "Tunisie", "Ligue Professionnelle 1")
    assert (event.prices, event.unmapped, event.raw_markets) == ([], [], 0)


def test_event_without_odds_is_an_event_with_no_prices():
    event = parse_event({k: v for k, v in detail().items() if k != "O"})
    assert (event.prices, event.unmapped, event.raw_markets) == ([], [], 0)


def test_missing_details_come_from_the_discovery_hint():
    hint = DiscoveredEvent(book="bet9ja", book_event_id="709000001", sr_id="61234567",
                           kickoff=datetime(2030, 5, 18, 14, 0, tzinfo=UTC), country="Atlantis",
                           tournament="Premier League", home="Harbor City FC", away="Riverside United",
                           tournament_id="990011")
    bare = {k: v for k, v in detail().items() if k not in ("EXTID", "SG", "GN")}
    event = parse_event(bare, hint=hint)
    assert (event.sr_id, event.country, event.tournament) == ("61234567", "Atlantis", "Premier League")
    with pytest.raises(MalformedPayload):
        parse_event(bare)


@pytest.mark.parametrize("payload", [
    None, [], "709000001",
    {k: v for k, v in DETAIL.items() if k != "ID"},
    {**DETAIL, "ID": True},
    {k: v for k, v in DETAIL.items() if k != "DS"},
    {**DETAIL, "DS": "Harbor City FC vs Riverside United"},
    {**DETAIL, "DS": " - Riverside United"},
    {k: v for k, v in DETAIL.items() if k != "STARTDATE"},
    {**DETAIL, "STARTDATE": "2030-05-18T14:00:00Z"},
    {**DETAIL, "O": [["S_1X2_1", "2.20"]]},
], ids=["null", "list", "string", "no-id", "bool-id", "no-ds", "no-separator", "no-home", "no-start",
        "iso-start", "odds-list"])
def test_malformed_event_is_rejected_as_a_whole(payload):
    with pytest.raises(MalformedPayload):
        parse_event(payload)


def test_event_id_is_the_numeric_id_never_the_short_code():
    event = parse_event(detail(ID="709000003", C="4523"))
    assert event.book_event_id == "709000003"


_ODDS = st.one_of(st.none(), st.booleans(), st.integers(-5, 50), st.floats(allow_nan=True, allow_infinity=True),
                  st.sampled_from(["1.85", "1.00", "abc", "", " 2.5 ", "1e3", "NaN"]), st.lists(st.integers(), max_size=1))
_KEYS = st.one_of(
    st.builds(lambda m, p, o: f"S_{m}{p}_{o}",
              st.sampled_from(["1X2", "OU", "HAOU", "HA1HOU", "AH", "1X2HND", "CSFT", "OUA", "GGNG", "A-B"]),
              st.sampled_from(["", "@2.5", "@2.50", "@-0.25", "@0:1", "@x", "@"]),
              st.sampled_from(["1", "X", "2", "O", "U", "OH", "HO", "UA", "1H", "1:0", "OTH", "Z", "2.5_O"])),
    st.text(max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _ODDS, max_size=15))
def test_any_odds_dictionary_gives_valid_unique_prices_and_accounts_for_every_market(odds):
    event = parse_event(detail(odds))
    idents = [(p.market, p.line, p.outcome) for p in event.prices]
    assert len(idents) == len(set(idents))
    assert all(math.isfinite(p.odds) and p.odds > 1.0 and p.available for p in event.prices)
    assert len(event.prices) + len(event.unmapped) <= len(odds)
    # every market instance (and every unreadable key) shows up as a price or an unmapped entry
    assert len(event.prices) + len(event.unmapped) >= event.raw_markets
    assert (event.raw_markets == 0) == (not odds)


def test_kickoff_is_taken_as_utc():
    event = parse_event(detail(STARTDATE="2030-12-31 23:30:00"))
    assert event.kickoff == datetime(2030, 12, 31, 23, 30, tzinfo=UTC)
    assert event.kickoff.utcoffset() == timedelta(0)

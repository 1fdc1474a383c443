"""The margin analytics page on a scripted price history (``test_margin_analytics.store_paths``):
its charts and tables, and numbers that follow the chosen period and markets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest
from app_fixtures import BACKENDS, later, module_target, open_page
from conftest import StoreTarget
from streamlit.testing.v1 import AppTest
from test_margin_analytics import T0, margin, store_paths, weighted

from engine.config import load_settings
from engine.markets.catalogue import load_catalogue
from scheduler.main import SchedulerService

PAGE = "pages/margins.py"
DAY_1, DAY_2 = T0.date(), T0.date() + timedelta(days=1)  # T0 is 06:00 UTC on day 1
OU = margin(1.9, 1.9)
A_4, A_14 = margin(2.5, 3.125, 3.125), margin(2.0, 3.125, 3.125)
B = margin(2.0, 3.5, 3.5)  # kicks off at 12:00 on day 2
# Day 1 from 06:00: A's 1X2 10 h at 4 % then 8 h at 14 %; its O/U and B's 1X2 18 h each.
DAY_1_CARDS = {"BetPawa average margin": f"{weighted((A_4, 10), (A_14, 8), (OU, 18), (B, 18)):.2f}%",
               "Bet9ja average margin": f"{margin(1.25, 1.30, 1.60, covers=2):.2f}%",
               "SportyBet average margin": "—"}  # its only market never had a full outcome set


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def db_path(request, backend: str, tmp_path_factory) -> StoreTarget:
    target = module_target(request, tmp_path_factory.mktemp("margins_app"), backend)
    store_paths(target.store())
    return target


@pytest.fixture(scope="module")
def rolled_db_path(request, backend: str, tmp_path_factory) -> StoreTarget:
    """The same history rolled up at 01:00 on day 2: day 1 is read from stored hours."""
    target = module_target(request, tmp_path_factory.mktemp("margins_app_rolled"), backend)
    store = target.store()
    store_paths(store)
    store.roll_up_margins(history_days=3650, now=T0 + timedelta(hours=19))
    return target


def table(at, *columns: str) -> pd.DataFrame:
    """The table whose first columns are these (AppTest keeps no key for a table without selection)."""
    found = [d.value for d in at.dataframe if list(d.value.columns[:len(columns)]) == list(columns)]
    assert found, f"no table with {columns}"
    return found[0]


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def open_day(db_path: StoreTarget, monkeypatch: pytest.MonkeyPatch, day: date) -> AppTest:
    at = open_page(db_path, monkeypatch, PAGE)
    at.date_input(key="ma_period").set_value((day, day)).run()
    assert not at.exception
    return at


def captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def chart_rows(at, index: int) -> list[dict]:
    data = at.get("vega_lite_chart")[index].proto.datasets[0].data.data
    return pa.ipc.open_stream(data).read_all().to_pylist()


def market(key: str) -> str:
    return load_catalogue().markets[key].name


def test_an_empty_period_says_so(db_path, monkeypatch):
    at = open_page(db_path, monkeypatch, PAGE)  # the last 7 days: the script is older
    assert any("No price history in this period" in i.value for i in at.info)
    assert not at.get("vega_lite_chart")


def test_an_empty_database_says_so(store_target, monkeypatch):
    at = open_page(store_target, monkeypatch, PAGE)
    assert any("No price history in this period" in i.value for i in at.info)


def test_charts_and_tables_of_a_day(db_path, monkeypatch):
    at = open_day(db_path, monkeypatch, DAY_1)
    assert metrics(at) == DAY_1_CARDS
    assert len(at.get("vega_lite_chart")) == 5, "market, tournament, country, time to kickoff, change frequency"
    assert "Rollups not built yet" in captions(at)

    markets = table(at, "Market", "BetPawa margin %").set_index("Market")
    assert markets.loc[market("1x2_ft"), "BetPawa margin %"] == pytest.approx(weighted((A_4, 10), (A_14, 8), (B, 18)))
    assert markets.loc[market("over_under_ft"), "BetPawa margin %"] == pytest.approx(OU)
    assert pd.isna(markets.loc[market("over_under_ft"), "Δ margin"]), "no competitor quotes it"

    tournaments = table(at, "Country", "Tournament").set_index("Tournament")
    assert tournaments.loc["Serie A", "BetPawa margin %"] == pytest.approx(B)
    assert tournaments.loc["Premier League", "Bet9ja margin %"] == pytest.approx(margin(1.25, 1.30, 1.60, covers=2))
    assert table(at, "Country", "BetPawa margin %").set_index("Country").loc["Italy", "BetPawa margin %"] == pytest.approx(B)
    # Day 1 runs from 60 to 42 h before A's kickoff and from 30 to 12 h before B's.
    assert list(table(at, "Time to kickoff")["Time to kickoff"]) == [">48 h", "24–48 h", "12–24 h"]

    rates = table(at, "Book", "Odds changes").set_index("Book")
    assert rates.loc["BetPawa", "Odds changes"] == 1, "A's home price moved at 16:00"
    assert rates.loc["SportyBet", "Odds changes"] == 1
    assert {r["Book"] for r in chart_rows(at, 4)} == {"BetPawa", "SportyBet", "Bet9ja"}


def test_the_period_and_the_market_filter_change_the_numbers(db_path, monkeypatch):
    at = open_day(db_path, monkeypatch, DAY_1)
    day_1 = metrics(at)["BetPawa average margin"]

    at.date_input(key="ma_period").set_value((DAY_2, DAY_2)).run()
    # Day 2: A's 1X2 24 h at 14 %, its O/U 24 h; B until its 12:00 kickoff.
    assert metrics(at)["BetPawa average margin"] == f"{weighted((A_14, 24), (OU, 24), (B, 12)):.2f}%" != day_1

    at.multiselect(key="ma_markets").set_value(["over_under_ft"]).run()
    assert metrics(at)["BetPawa average margin"] == f"{OU:.2f}%"
    assert metrics(at)["Bet9ja average margin"] == "—"
    assert list(table(at, "Market", "BetPawa margin %")["Market"]) == [market("over_under_ft")]
    assert not at.exception


def test_rolled_up_hours_give_the_same_page_and_it_says_how_far_they_reach(rolled_db_path, monkeypatch):
    at = open_day(rolled_db_path, monkeypatch, DAY_1)
    assert metrics(at) == DAY_1_CARDS
    assert "Hourly rollups up to" in captions(at) and "rebuilt live" not in captions(at)

    at.date_input(key="ma_period").set_value((DAY_2, DAY_2)).run()
    assert metrics(at)["BetPawa average margin"] == f"{weighted((A_14, 24), (OU, 24), (B, 12)):.2f}%"
    assert "the last 23.0 h rebuilt live" in captions(at), "the rollups stop at 01:00 on day 2"


def test_a_failed_rollup_is_recorded_by_the_scheduler_and_shown_on_the_page(store_target, monkeypatch):
    store = store_target.store()
    store_paths(store, datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=30))
    service = SchedulerService(load_settings(**store_target.settings()), store)
    store_target.execute("ALTER TABLE margin_rollup_slices RENAME TO margin_rollup_slices_lost")
    service.rollup_job()  # fails on the missing table: recorded, not raised
    failed = store.get_settings()["last_rollup_error"]
    assert "margin_rollup_slices" in failed["error"]
    store_target.execute("ALTER TABLE margin_rollup_slices_lost RENAME TO margin_rollup_slices")

    at = open_page(store_target, monkeypatch, PAGE)
    warning = " ".join(w.value for w in at.warning)
    assert "last margin rollup failed" in warning and "margin_rollup_slices" in warning
    assert metrics(at)["BetPawa average margin"] != "—", "the page still shows the figures, rebuilt from history"

    service.rollup_job()  # succeeds: the warning goes
    assert store.margin_rollup_status().through is not None
    assert store.get_settings()["last_rollup_error"]["error"] is None
    assert not any("rollup failed" in w.value for w in later(at).warning)

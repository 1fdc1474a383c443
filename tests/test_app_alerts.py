"""The movement-alerts page: newest first, filters, acknowledge selected / all shown, open the
event, downloads, and the sidebar's count of unacknowledged alerts.

``seed_alerts`` stores a scrape (with the alert thresholds) in which SportyBet shortens one event's
1X2 home price by 20 % and both competitors pull another event's BTTS: one steam and one
pulled-market alert, raised by the store itself.
"""

from __future__ import annotations

import pandas as pd
import pytest
from app_fixtures import BACKENDS, Alerted, later, module_target, open_page, seed_alerts

from engine.markets.alerts import KIND_LABELS
from engine.store import Store

PAGE = "pages/alerts.py"


@pytest.fixture(scope="module", params=BACKENDS)
def alerted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Alerted:
    return seed_alerts(module_target(request, tmp_path_factory.mktemp("alerts"), request.param))


def grid(at) -> pd.DataFrame | None:
    found = [d for d in at.dataframe if d.key.startswith("alerts_grid")]
    return found[0].value if found else None


def select(at, rows: list[int]):
    key = next(d.key for d in at.dataframe if d.key.startswith("alerts_grid"))
    at.session_state[key] = {"selection": {"rows": rows, "columns": []}}
    return at.run()


def sidebar_count(at) -> str:
    return at.sidebar.get("page_link")[0].proto.label


def button(at, label_start: str):
    return next(b for b in at.button if b.label.startswith(label_start))


def test_the_alerts_are_listed_newest_first_in_plain_words(alerted: Alerted, monkeypatch):
    at = open_page(alerted.seeded.target, monkeypatch, PAGE)
    rows = grid(at)
    stored = alerted.seeded.store.alerts()
    assert len(rows) == stored.height == 2
    assert list(rows["Alert"]) == stored["message"].to_list()
    assert list(rows["Kind"]) == [KIND_LABELS[k] for k in stored["kind"]]
    steam = rows[rows["SR id"] == alerted.steam].iloc[0]
    ev = alerted.seeded.world.event(alerted.steam)
    assert (steam["Kind"], steam["Match"], steam["Book"], steam["Outcome"], steam["Status"]) == (
        "Steam", f"{ev.home} – {ev.away}", "SportyBet", "1", "open")
    assert steam["Market"] == "1X2 - Full Time" and "shortened" in steam["Alert"]
    pulled = rows[rows["SR id"] == alerted.pulled].iloc[0]
    assert (pulled["Kind"], pulled["Book"]) == ("Competitors pulled", "SportyBet, Bet9ja")
    assert pd.isna(steam["Acknowledged"]) and pd.isna(pulled["Acknowledged"])
    assert sidebar_count(at) == "2 unacknowledged alerts"
    assert [b.label for b in at.download_button][:2] == ["Download CSV", "Download Parquet"]
    assert at.expander[0].label == "How alerts are raised"
    assert "8%" in at.expander[0].markdown[0].value and "30 minutes" in at.expander[0].markdown[0].value


def test_filters_by_kind_book_and_tournament(alerted: Alerted, monkeypatch):
    at = open_page(alerted.seeded.target, monkeypatch, PAGE)
    at.multiselect(key="alerts_kinds").set_value(["steam"]).run()
    assert list(grid(at)["SR id"]) == [alerted.steam]
    at.multiselect(key="alerts_kinds").set_value([]).run()

    at.multiselect(key="alerts_books").set_value(["bet9ja"]).run()
    assert list(grid(at)["SR id"]) == [alerted.pulled], "a pull names both competitors"
    at.multiselect(key="alerts_books").set_value(["betpawa"]).run()
    assert grid(at).empty
    at.multiselect(key="alerts_books").set_value([]).run()

    t = alerted.seeded.world.event(alerted.steam).tournament
    at.multiselect(key="alerts_tournaments").set_value([(t.country, t.name)]).run()
    same = {s for s in (alerted.steam, alerted.pulled) if alerted.seeded.world.event(s).tournament == t}
    assert set(grid(at)["SR id"]) == same and set(grid(at)["Tournament"]) == {t.name}
    assert any(f"{len(same)} of 2 alerts shown" in c.value for c in at.caption)


def test_the_period_reaches_back_from_now(alerted: Alerted, monkeypatch):
    at = open_page(alerted.seeded.target, monkeypatch, PAGE)
    assert at.selectbox(key="alerts_period").value == "Last 24 hours"
    at.selectbox(key="alerts_period").set_value("Last hour").run()
    assert len(grid(at)) == 2, "the scrape a minute ago is within the hour"


def test_acknowledging_selected_then_all_shown_empties_the_list_and_the_count(store_target, monkeypatch):
    alerted = seed_alerts(store_target, events=6)
    store = alerted.seeded.store
    at = open_page(alerted.seeded.target, monkeypatch, PAGE)
    first = grid(at).iloc[0]["SR id"]
    at = select(at, [0])
    assert button(at, "Acknowledge selected").label == "Acknowledge selected (1)"
    button(at, "Acknowledge selected").click().run()
    assert any("Acknowledged 1 alert (selected)" in s.value for s in at.success)
    assert store.unacknowledged_alerts() == 1
    assert first not in set(grid(at)["SR id"]), "acknowledged alerts leave the default list"
    assert sidebar_count(at) == "1 unacknowledged alert"

    at.toggle(key="alerts_all").set_value(True).run()
    rows = grid(at)
    assert len(rows) == 2 and rows[rows["SR id"] == first]["Acknowledged"].notna().all()
    assert button(at, "Acknowledge all shown").label == "Acknowledge all shown (1)", "only the pending one"
    at.toggle(key="alerts_all").set_value(False).run()

    button(at, "Acknowledge all shown").click().run()
    assert store.unacknowledged_alerts() == 0
    assert any("No unacknowledged alerts" in i.value for i in at.info)
    assert sidebar_count(later(at)) == "0 unacknowledged alerts"


def test_selecting_one_alert_opens_its_event(alerted: Alerted, monkeypatch):
    at = open_page(alerted.seeded.target, monkeypatch, PAGE)
    assert button(at, "Open event").disabled
    row = grid(at).iloc[1]
    at = select(at, [1])
    button(at, "Open event").click().run()
    ev = alerted.seeded.world.event(row["SR id"])
    assert at.title[0].value == f"{ev.home} – {ev.away}"
    assert at.query_params.get("sr_id") == row["SR id"]


def test_an_empty_database_explains_where_alerts_come_from(tmp_path, monkeypatch):
    at = open_page(tmp_path / "oddsdesk.duckdb", monkeypatch, PAGE)
    assert any("No unacknowledged alerts raised" in i.value and "Settings" in i.value for i in at.info)
    assert sidebar_count(at) == "0 unacknowledged alerts"
    assert not at.error


def test_the_thresholds_are_set_on_the_settings_page_and_explained_here(tmp_path, monkeypatch):
    db = tmp_path / "oddsdesk.duckdb"
    at = open_page(db, monkeypatch, "pages/settings.py")
    at.number_input(key="alert_steam_pct").set_value(0.0)
    at.form_submit_button[0].click().run()
    assert any("Not saved" in e.value and "alert_steam_pct" in e.value for e in at.error)

    at.number_input(key="alert_steam_pct").set_value(12.0)
    at.number_input(key="alert_margin_gap_pts").set_value(4.5)
    at.checkbox(key="alert_disappear").uncheck()
    at.form_submit_button[0].click().run()
    saved = Store(db).get_settings()
    assert (saved["alert_steam_pct"], saved["alert_margin_gap_pts"], saved["alert_disappear"]) == (12.0, 4.5, False)

    note = open_page(db, monkeypatch, PAGE).expander[0].markdown[0].value
    assert "more than **12%**" in note and "**4.5 points**" in note and "off (Settings)" in note

"""Event detail: every mapped market in category tabs, books side by side, refresh, history."""

from __future__ import annotations

import polars as pl
import pytest
from app_fixtures import Seeded, open_page, seeded  # noqa: F401  (fixture)

from engine.config import BOOKS
from engine.markets.catalogue import CATEGORY_ORDER, load_catalogue
from engine.store import views

PAGE = "pages/event.py"


def event_on_all_books(seeded: Seeded) -> str:
    return next(e.sr_id for e in seeded.world.events if set(e.books) == set(BOOKS))


def tables(at) -> dict[str, object]:
    """Each category tab's market grid, by category."""
    return {t.label.split(" (")[0].lower(): t.dataframe[0].value for t in at.tabs}


def test_event_page_shows_category_tabs_with_counts_and_the_stored_prices(seeded: Seeded, monkeypatch):
    sr_id = event_on_all_books(seeded)
    at = open_page(seeded.target, monkeypatch, PAGE, {"sr_id": sr_id})
    ev = seeded.world.event(sr_id)
    assert at.title[0].value == f"{ev.home} – {ev.away}"

    cat = load_catalogue()
    prices = seeded.store.current_prices(sr_ids=[sr_id])
    pairs = prices.select("market", "line").unique()
    counts = {c: 0 for c in CATEGORY_ORDER}
    for market, _line in pairs.iter_rows():
        for c in cat.markets[market].categories:
            counts[c] += 1
    expected_tabs = [f"{c.capitalize()} ({n})" for c, n in counts.items() if n]
    assert [t.label for t in at.tabs] == expected_tabs

    popular = tables(at)["popular"]
    one = popular[(popular["Market"] == cat.markets["1x2_ft"].name) & (popular["Outcome"] == "1")].iloc[0]
    for book in BOOKS:
        stored = prices.filter((pl.col("bookmaker") == book) & (pl.col("market") == "1x2_ft")
                               & (pl.col("outcome") == "home"))
        assert one[views.BOOK_LABELS[book]] == pytest.approx(stored["odds"][0])
    best = max(one[views.BOOK_LABELS[b]] for b in BOOKS)
    assert one["Best"] == ", ".join(views.BOOK_LABELS[b] for b in BOOKS if one[views.BOOK_LABELS[b]] == best)


def test_a_market_in_several_categories_appears_in_each_tab(seeded: Seeded, monkeypatch):
    sr_id = event_on_all_books(seeded)
    at = open_page(seeded.target, monkeypatch, PAGE, {"sr_id": sr_id})
    name = load_catalogue().markets["over_under_ft"].name  # popular|goals
    t = tables(at)
    assert (t["popular"]["Market"] == name).any()
    assert (t["goals"]["Market"] == name).any()


def test_market_search_narrows_the_tabs(seeded: Seeded, monkeypatch):
    sr_id = event_on_all_books(seeded)
    at = open_page(seeded.target, monkeypatch, PAGE, {"sr_id": sr_id})
    before = sum(len(v) for v in tables(at).values())
    at.text_input(key="market_search").set_value("both teams").run()
    t = tables(at)
    rows = pl.concat([pl.from_pandas(v[["Market", "Outcome"]]) for v in t.values()])
    assert 0 < rows.height < before
    assert all("both teams" in views.fold(f"{m} {o}") for m, o in rows.iter_rows())

    at.text_input(key="market_search").set_value("zzqqxx").run()
    assert not tables(at)
    assert any("No market matches" in w.value for w in at.warning)


def test_refresh_this_event_writes_a_run_request(seeded: Seeded, monkeypatch):
    sr_id = event_on_all_books(seeded)
    at = open_page(seeded.target, monkeypatch, PAGE, {"sr_id": sr_id})
    at.button(key="refresh_event").click().run()
    requests = seeded.store.run_requests(limit=50)
    mine = [r for r in requests.iter_rows(named=True) if r["kind"] == "refresh_event"]
    assert mine and '"sr_id"' in mine[0]["payload"] and sr_id in mine[0]["payload"]
    assert mine[0]["status"] == "PENDING"
    assert any(f"Request #{mine[0]['id']}" in i.value for i in at.info)


def test_history_charts_and_margin_history_end_at_the_current_margin(seeded: Seeded, monkeypatch):
    sr_id = event_on_all_books(seeded)
    at = open_page(seeded.target, monkeypatch, PAGE, {"sr_id": sr_id})
    assert len(at.get("vega_lite_chart")) == 2  # odds per outcome, margin

    history = views.odds_history(seeded.store, sr_id, "1x2_ft", None)
    now = views.utcnow()
    series = views.margin_series(history, now)
    current = views.event_prices(seeded.store, sr_id).filter(pl.col("market") == "1x2_ft")
    for book in BOOKS:
        last = series.filter(pl.col("Book") == views.BOOK_LABELS[book]).sort("time")["margin %"][-1]
        expected = current.filter(pl.col("bookmaker") == book)["margin_pct"][0]
        assert last == pytest.approx(expected)


def test_without_an_event_the_page_offers_a_picker(seeded: Seeded, monkeypatch):
    at = open_page(seeded.target, monkeypatch, PAGE)
    assert any("Pick an event" in i.value for i in at.info)
    sr_id = seeded.world.events[2].sr_id
    at.selectbox(key="event_pick_None").set_value(sr_id).run()
    assert at.query_params.get("sr_id") == sr_id
    ev = seeded.world.event(sr_id)
    assert at.title[0].value == f"{ev.home} – {ev.away}"

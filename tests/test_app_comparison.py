"""The odds comparison page: one row per event, the chosen market's prices per book, filters."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pytest
from app_fixtures import Seeded, open_page, seeded  # noqa: F401  (fixture)

from engine.config import BOOKS
from engine.markets.catalogue import load_catalogue
from engine.store import views


def grid(at) -> pd.DataFrame:
    found = [d for d in at.dataframe if d.key == "grid"]
    assert found, "the comparison grid is not shown"
    return found[0].value


def all_dates(at):
    at.radio(key="when").set_value("All dates").run()
    return at


def upcoming(seeded: Seeded) -> pl.DataFrame:
    events = seeded.store.events()
    return events.filter(pl.col("kickoff") >= views.utcnow())


def stored(seeded: Seeded, sr_id: str, market: str, line: float | None) -> dict[tuple[str, str], float]:
    prices = seeded.store.current_prices(sr_ids=[sr_id], market=market)
    prices = prices.filter(pl.col("line").is_null() if line is None else pl.col("line") == line)
    return {(r["bookmaker"], r["outcome"]): r["odds"] for r in prices.iter_rows(named=True) if r["available"]}


def on_all_books(seeded: Seeded) -> str:
    """An event every book quotes, with its whole 1X2 available on each (worlds suspend some prices)."""
    return next(e.sr_id for e in seeded.world.events if set(e.books) == set(BOOKS)
                and e.sr_id != seeded.failed_sr_id and len(stored(seeded, e.sr_id, "1x2_ft", None)) == 3 * len(BOOKS))


def test_grid_shows_one_row_per_upcoming_event_with_the_stored_prices(seeded: Seeded, monkeypatch):
    at = all_dates(open_page(seeded.target, monkeypatch))
    df = grid(at)
    assert sorted(df["sr_id"]) == sorted(upcoming(seeded)["sr_id"].to_list())

    sr_id = on_all_books(seeded)
    row = df[df["sr_id"] == sr_id].iloc[0]
    market = load_catalogue().markets["1x2_ft"]
    expected = stored(seeded, sr_id, "1x2_ft", None)
    assert expected, "the seeded store has 1X2 prices for the event"
    for (book, outcome), odds in expected.items():
        assert row[f"{views.BOOK_LABELS[book]} {views.outcome_label(market, outcome)}"] == pytest.approx(odds)
    ev = seeded.world.event(sr_id)
    assert row["Match"] == f"{ev.home} – {ev.away}"
    assert row["Tournament"] == ev.tournament.name

    for o in market.outcomes:
        label = views.outcome_label(market, o.key)
        best = max(expected[(b, o.key)] for b in views.COMPETITORS if (b, o.key) in expected)
        assert row[f"Δ {label}"] == pytest.approx(expected[("betpawa", o.key)] - best, abs=0.006)
    for book in BOOKS:
        odds = [expected[(book, o.key)] for o in market.outcomes if (book, o.key) in expected]
        margin = row[f"{views.BOOK_LABELS[book]} margin %"]
        if len(odds) == len(market.outcomes):  # (Σ 1/odds − 1) × 100 over a complete, available set
            assert margin == pytest.approx((sum(1 / o for o in odds) - 1) * 100, abs=0.006)
        else:  # a suspended outcome: no margin rather than a wrong one
            assert pd.isna(margin)
        assert pd.notna(row[f"{views.BOOK_LABELS[book]} seen"])


def test_market_selector_changes_the_columns_and_prices(seeded: Seeded, monkeypatch):
    at = all_dates(open_page(seeded.target, monkeypatch))
    assert "BetPawa 1" in grid(at).columns

    at.selectbox(key="market").set_value(("btts_ft", None)).run()
    df = grid(at)
    assert {"BetPawa Yes", "BetPawa No", "Bet9ja Yes", "Δ Yes"} <= set(df.columns)
    assert "BetPawa 1" not in df.columns
    sr_id = on_all_books(seeded)
    expected = stored(seeded, sr_id, "btts_ft", None)
    row = df[df["sr_id"] == sr_id].iloc[0]
    assert row["SportyBet Yes"] == pytest.approx(expected[("sportybet", "yes")])

    at.selectbox(key="market").set_value(("over_under_ft", 2.5)).run()
    df = grid(at)
    expected = stored(seeded, sr_id, "over_under_ft", 2.5)
    row = df[df["sr_id"] == sr_id].iloc[0]
    assert row["BetPawa Over"] == pytest.approx(expected[("betpawa", "over")])
    assert row["Bet9ja Under"] == pytest.approx(expected[("bet9ja", "under")])


def test_tournament_filter_keeps_only_that_tournament(seeded: Seeded, monkeypatch):
    at = all_dates(open_page(seeded.target, monkeypatch))
    ev = seeded.world.events[-1]
    pick = (ev.tournament.country, ev.tournament.name)
    at.multiselect(key="tournaments").set_value([pick]).run()
    df = grid(at)
    expected = upcoming(seeded).filter((pl.col("country") == pick[0]) & (pl.col("tournament") == pick[1]))
    assert sorted(df["sr_id"]) == sorted(expected["sr_id"].to_list())
    assert set(df["Tournament"]) == {pick[1]}


def test_team_search_finds_the_team_without_accents(seeded: Seeded, monkeypatch):
    at = all_dates(open_page(seeded.target, monkeypatch))
    team = seeded.world.events[-1].home
    query = views.fold(team)[:6].upper()
    at.text_input(key="team").set_value(query).run()
    df = grid(at)
    assert team in " ".join(df["Match"])
    assert all(query.lower() in views.fold(m) for m in df["Match"])
    assert len(df) < len(upcoming(seeded))


def test_missing_on_a_book_lists_the_events_that_book_does_not_have(seeded: Seeded, monkeypatch):
    at = all_dates(open_page(seeded.target, monkeypatch))
    for book in BOOKS:
        at.selectbox(key="coverage").set_value(f"missing:{book}").run()
        future = set(upcoming(seeded)["sr_id"].to_list())
        expected = {e.sr_id for e in seeded.world.events if book not in e.books and e.sr_id in future}
        df = grid(at) if expected else None
        assert (set(df["sr_id"]) if df is not None else set()) == expected
    assert any(book not in e.books for e in seeded.world.events for book in BOOKS), "the world has gaps"

    at.selectbox(key="coverage").set_value("all_books").run()
    assert all(set(r.split(", ")) == set(views.BOOK_LABELS.values()) for r in grid(at)["Listed on"])


def test_selecting_a_row_opens_the_event_detail(seeded: Seeded, monkeypatch):
    at = all_dates(open_page(seeded.target, monkeypatch))
    first = grid(at).iloc[0]
    at.session_state["grid"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert not at.exception
    assert at.title[0].value == first["Match"]
    assert at.query_params.get("sr_id") == first["sr_id"]


def test_exports_are_offered_as_csv_and_parquet(seeded: Seeded, monkeypatch):
    at = open_page(seeded.target, monkeypatch)
    assert [b.label for b in at.download_button] == ["Download CSV", "Download Parquet"]


def test_empty_filter_result_says_so(seeded: Seeded, monkeypatch):
    at = all_dates(open_page(seeded.target, monkeypatch))
    at.text_input(key="team").set_value("no such team anywhere").run()
    assert not [d for d in at.dataframe if d.key == "grid"]
    assert any("No events match these filters" in w.value for w in at.warning)

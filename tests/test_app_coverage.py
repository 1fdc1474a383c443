"""Coverage page: gaps between BetPawa and each competitor, match rate, unmapped markets."""

from __future__ import annotations

import pandas as pd
import pytest
from app_fixtures import Seeded, open_page, seeded  # noqa: F401  (fixture)

from engine.store import views

PAGE = "pages/coverage.py"


def table(at, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def upcoming(seeded: Seeded):
    now = views.utcnow()
    return [e for e in seeded.world.events if e.kickoff >= now]


def test_gaps_and_match_rate_per_book_follow_the_listings(seeded: Seeded, monkeypatch):
    at = open_page(seeded.target, monkeypatch, PAGE)
    summary = table(at, "Match rate %").set_index("Book")
    events = upcoming(seeded)
    for book in views.COMPETITORS:
        listed = [e for e in events if book in e.books]
        both = [e for e in listed if "betpawa" in e.books]
        row = summary.loc[views.BOOK_LABELS[book]]
        assert row["Events"] == len(listed)
        assert row["Not on BetPawa"] == len(listed) - len(both)
        assert row["BetPawa has, book lacks"] == sum("betpawa" in e.books for e in events) - len(both)
        assert row["Match rate %"] == pytest.approx(round(100 * len(both) / len(listed), 1))
        tournaments = {(e.tournament.country, e.tournament.name) for e in listed}
        on_betpawa = {(e.tournament.country, e.tournament.name) for e in events if "betpawa" in e.books}
        assert row["Tournaments"] == len(tournaments)
        assert row["Tournaments not on BetPawa"] == len(tournaments - on_betpawa)
        assert row["BetPawa tournaments book lacks"] == len(on_betpawa - tournaments)


def test_event_list_shows_events_missing_on_betpawa(seeded: Seeded, monkeypatch):
    at = open_page(seeded.target, monkeypatch, PAGE)
    at.selectbox(key="cov_presence").set_value("missing:betpawa").run()
    events = table(at, "SR id")
    expected = sorted(e.sr_id for e in upcoming(seeded) if "betpawa" not in e.books)
    assert sorted(events["SR id"]) == expected
    assert not events["BetPawa"].any()


def test_unmapped_markets_are_listed_with_accumulated_occurrences(seeded: Seeded, monkeypatch):
    at = open_page(seeded.target, monkeypatch, PAGE)
    unmapped = table(at, "Occurrences")
    stored = seeded.store.unmapped()
    assert len(unmapped) == stored.height
    assert dict(zip(unmapped["Market id"], unmapped["Occurrences"])) == dict(
        stored.select("market_id", "occurrences").iter_rows())

    at.multiselect(key="unm_books").set_value(["sportybet"]).run()
    assert set(table(at, "Occurrences")["Book"]) == {"SportyBet"}

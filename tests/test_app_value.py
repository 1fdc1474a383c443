"""The value & arbitrage page: BetPawa prices out of line with the market, and cross-book arbitrages.

The seeded world quotes every book with a margin, so nothing is out of line on its own: a
module fixture plants a generous BetPawa price, a stingy one and a two-book arbitrage by storing
re-priced quotes the way a scrape would, and the tests recompute what the page must show from
the stored prices by hand (power de-vig for two outcomes, best odds per outcome).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import polars as pl
import pytest
from app_fixtures import BACKENDS, Seeded, later, module_target, open_page, seed_store

from engine.config import BOOKS
from engine.markets.catalogue import load_catalogue
from engine.store import Store, views
from engine.store.types import PRICE_SCHEMA, UNMAPPED_SCHEMA, BatchResult, BatchWrite

PAGE = "pages/value.py"
Key = tuple[str, str, str, float | None, str]  # sr_id, book, market, line, outcome


def reprice(store: Store, factors: dict[Key, float], observed_at: datetime | None = None) -> BatchResult:
    """Store the listed prices multiplied by their factor, as a scrape of those prices would."""
    current = store.current_prices(sr_ids=sorted({k[0] for k in factors}))
    rows = []
    for r in current.iter_rows(named=True):
        factor = factors.get((r["sr_id"], r["bookmaker"], r["market"], r["line"], r["outcome"]))
        if factor is not None:
            rows.append({**{c: r[c] for c in PRICE_SCHEMA}, "odds": round(r["odds"] * factor, 2)})
    assert len(rows) == len(factors), "every price to re-price is stored"
    run_id = store.start_run("manual", list(BOOKS))
    result = store.store_batch(BatchWrite(
        run_id=run_id, batch_no=1, observed_at=observed_at or views.utcnow(), events=[], book_events=[],
        prices=pl.DataFrame(rows, schema=PRICE_SCHEMA), scraped=[], statuses=[],
        unmapped=pl.DataFrame(schema=UNMAPPED_SCHEMA), batches_total=1,
    ))
    store.finish_run(run_id, "COMPLETED", {})
    return result


def available(store: Store, sr_id: str, market: str, line: float | None = None) -> dict[tuple[str, str], float]:
    """(book, outcome) → odds of one event's market as stored, available prices only."""
    prices = store.current_prices(sr_ids=[sr_id], market=market)
    prices = prices.filter(pl.col("line").is_null() if line is None else pl.col("line") == line)
    return {(r["bookmaker"], r["outcome"]): r["odds"] for r in prices.iter_rows(named=True) if r["available"]}


def power_devig(odds: list[float]) -> list[float]:
    """Fair probabilities of a two-way market: p = (1/odds)^k with Σp = 1 (proportional if no margin)."""
    implied = [1 / o for o in odds]
    if sum(implied) <= 1:
        return [p / sum(implied) for p in implied]
    lo, hi = 1.0, 100.0
    for _ in range(200):
        k = (lo + hi) / 2
        lo, hi = (k, hi) if sum(p**k for p in implied) > 1 else (lo, k)
    return [p**k for p in implied]


def best_competitor(prices: dict[tuple[str, str], float], outcome: str) -> tuple[str, float]:
    quotes = [(b, prices[(b, outcome)]) for b in views.COMPETITORS if (b, outcome) in prices]
    top = max(o for _, o in quotes)
    return next((b, o) for b, o in quotes if o == top)  # ties: first book in BOOKS order


@dataclass
class Planted:
    seeded: Seeded
    generous: str  # sr_id: BetPawa's BTTS Yes × 1.25
    stingy: str  # sr_id: BetPawa's Over/Under 2.5 Under × 0.8
    arbitrage: str  # sr_id: SportyBet's 1X2 home and Bet9ja's away × 1.3


def _complete(store: Store, sr_id: str, market: str, outcomes: tuple[str, ...], line: float | None = None) -> bool:
    prices = available(store, sr_id, market, line)
    return all((b, o) in prices for b in BOOKS for o in outcomes)


def candidates(seeded: Seeded) -> list[str]:
    """Events on all three books, fully scraped, kicking off after the tests are done."""
    soon = views.utcnow() + timedelta(hours=1)
    return [e.sr_id for e in seeded.world.events
            if set(e.books) == set(BOOKS) and e.sr_id != seeded.failed_sr_id and e.kickoff > soon]


@pytest.fixture(scope="module", params=BACKENDS)
def planted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Planted:
    seeded = seed_store(module_target(request, tmp_path_factory.mktemp("value"), request.param), events=16)
    store, events = seeded.store, candidates(seeded)
    generous = next(s for s in events if _complete(store, s, "btts_ft", ("yes", "no")))
    stingy = next(s for s in events if s != generous
                  and _complete(store, s, "over_under_ft", ("over", "under"), 2.5))
    arbitrage = next(s for s in events if s not in (generous, stingy)
                     and _complete(store, s, "1x2_ft", ("home", "draw", "away")))
    result = reprice(store, {
        (generous, "betpawa", "btts_ft", None, "yes"): 1.25,
        (stingy, "betpawa", "over_under_ft", 2.5, "under"): 0.8,
        (arbitrage, "sportybet", "1x2_ft", None, "home"): 1.3,
        (arbitrage, "bet9ja", "1x2_ft", None, "away"): 1.3,
    })
    assert result.changed == 4 and result.became_unavailable == 0
    return Planted(seeded, generous, stingy, arbitrage)


def grid(at, key: str) -> pd.DataFrame | None:
    found = [d for d in at.dataframe if d.key == key]
    return found[0].value if found else None


def open_value(planted: Planted, monkeypatch):
    return open_page(planted.seeded.target, monkeypatch, PAGE)


def test_a_generous_betpawa_price_ranks_first_with_its_edge_against_the_consensus(planted: Planted, monkeypatch):
    at = open_value(planted, monkeypatch)
    rows = grid(at, "value_generous")
    assert rows is not None, "the too-generous list is shown"
    top = rows.iloc[0]

    prices = available(planted.seeded.store, planted.generous, "btts_ft")
    fair_yes = [power_devig([prices[(b, "yes")], prices[(b, "no")]])[0] for b in BOOKS]
    consensus = sum(fair_yes) / len(fair_yes)
    edge = prices[("betpawa", "yes")] * consensus - 1
    assert edge > 0.02, "the plant is generous enough to be listed"
    book, best = best_competitor(prices, "yes")

    ev = planted.seeded.world.event(planted.generous)
    assert top["SR id"] == planted.generous
    assert top["Match"] == f"{ev.home} – {ev.away}"
    assert top["Market"] == load_catalogue().markets["btts_ft"].name
    assert top["Outcome"] == "Yes"
    assert top["BetPawa"] == pytest.approx(prices[("betpawa", "yes")])
    assert top["Edge %"] == pytest.approx(edge * 100, abs=1e-6)
    assert top["Consensus fair"] == pytest.approx(1 / consensus, rel=1e-6)
    assert top["Best competitor"] == pytest.approx(best)
    assert top["Competitor"] == views.BOOK_LABELS[book]
    assert top["Books in consensus"] == 3
    assert list(rows["Edge %"]) == sorted(rows["Edge %"], reverse=True)
    assert (rows["Edge %"] > 2.0).all()
    assert [b.label for b in at.download_button][:2] == ["Download CSV", "Download Parquet"]


def test_a_stingy_betpawa_price_is_listed_against_the_best_competitor(planted: Planted, monkeypatch):
    at = open_value(planted, monkeypatch)
    rows = grid(at, "value_stingy")
    prices = available(planted.seeded.store, planted.stingy, "over_under_ft", 2.5)
    book, best = best_competitor(prices, "under")
    gap = prices[("betpawa", "under")] / best - 1
    assert gap < -0.05

    mine = rows[(rows["SR id"] == planted.stingy) & (rows["Market"] == load_catalogue().markets["over_under_ft"].name)
                & (rows["Line"] == "2.5") & (rows["Outcome"] == "Under")]
    assert len(mine) == 1
    row = mine.iloc[0]
    assert row["vs best %"] == pytest.approx(gap * 100, abs=1e-6)
    assert row["Best competitor"] == pytest.approx(best)
    assert row["Competitor"] == views.BOOK_LABELS[book]
    assert (rows["vs best %"] < -5.0).all()
    assert list(rows["vs best %"]) == sorted(rows["vs best %"])


def test_a_two_book_arbitrage_shows_its_legs_profit_and_stakes_of_100(planted: Planted, monkeypatch):
    at = open_value(planted, monkeypatch)
    legs = grid(at, "value_arbs")
    assert legs is not None, "the arbitrage is listed"
    mine = legs[legs["SR id"] == planted.arbitrage]

    prices = available(planted.seeded.store, planted.arbitrage, "1x2_ft")
    best = {o: max(((b, prices[(b, o)]) for b in BOOKS), key=lambda x: (x[1], -BOOKS.index(x[0])))
            for o in ("home", "draw", "away")}
    booksum = sum(1 / odds for _, odds in best.values())
    assert booksum < 1, "raising two books' prices made an arbitrage"
    assert {b for b, _ in best.values()} >= {"sportybet", "bet9ja"}

    labels = views.outcome_labels(load_catalogue().markets["1x2_ft"])
    assert list(mine["Outcome"]) == [labels[o] for o in ("home", "draw", "away")]
    for (_, leg), outcome in zip(mine.iterrows(), ("home", "draw", "away")):
        book, odds = best[outcome]
        assert leg["Book"] == views.BOOK_LABELS[book]
        assert leg["Odds"] == pytest.approx(odds)
        assert leg["Stake of 100"] == pytest.approx(100 / odds / booksum)
        assert leg["Returns"] == pytest.approx(100 / booksum)
        assert leg["Profit %"] == pytest.approx((1 / booksum - 1) * 100)
    assert mine["Stake of 100"].sum() == pytest.approx(100)
    arbitrages = legs[["SR id", "Market", "Line"]].drop_duplicates()
    assert f"Arbitrages ({len(arbitrages)})" in [t.label for t in at.tabs]


def test_filters_narrow_every_list(planted: Planted, monkeypatch):
    at = open_value(planted, monkeypatch)
    stingy_all = grid(at, "value_stingy")

    at.multiselect(key="value_markets").set_value(["over_under_ft"]).run()
    assert grid(at, "value_generous") is None and grid(at, "value_arbs") is None
    assert any("No BetPawa price is more than 2%" in s.value for s in at.success)
    assert any("No arbitrage" in s.value for s in at.success)
    stingy = grid(at, "value_stingy")
    assert set(stingy["Market"]) == {load_catalogue().markets["over_under_ft"].name}
    assert planted.stingy in set(stingy["SR id"])
    at.multiselect(key="value_markets").set_value([]).run()

    ev = planted.seeded.world.event(planted.generous)
    at.multiselect(key="value_tournaments").set_value([(ev.tournament.country, ev.tournament.name)]).run()
    stingy = grid(at, "value_stingy")
    assert set(stingy["Tournament"]) == {ev.tournament.name} and set(stingy["Country"]) == {ev.tournament.country}
    assert len(stingy) < len(stingy_all)
    assert grid(at, "value_generous").iloc[0]["SR id"] == planted.generous
    at.multiselect(key="value_tournaments").set_value([]).run()

    edge = grid(at, "value_generous").iloc[0]["Edge %"]
    at.number_input(key="value_min_edge").set_value(float(edge) + 0.5).run()
    generous = grid(at, "value_generous")
    assert generous is None or planted.generous not in set(generous["SR id"])
    at.number_input(key="value_min_edge").set_value(2.0).run()

    day = ev.kickoff.date()  # the app shows UTC here: AppTest has no browser time zone
    other = (day + timedelta(days=1), day + timedelta(days=8))
    at.date_input(key="value_dates").set_value(other).run()
    lists = [g for g in (grid(at, k) for k in ("value_generous", "value_stingy", "value_arbs")) if g is not None]
    assert not at.exception
    shown = pd.concat(lists) if lists else pd.DataFrame({"SR id": [], "Kickoff": []})
    assert planted.generous not in set(shown["SR id"])
    assert all(day + timedelta(days=1) <= k.date() for k in shown["Kickoff"])


def test_selecting_a_row_opens_the_event(planted: Planted, monkeypatch):
    at = open_value(planted, monkeypatch)
    at.session_state["value_generous"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    ev = planted.seeded.world.event(planted.generous)
    assert at.title[0].value == f"{ev.home} – {ev.away}"
    assert at.query_params.get("sr_id") == planted.generous


def test_the_method_is_explained_in_plain_words(planted: Planted, monkeypatch):
    at = open_value(planted, monkeypatch)
    text = " ".join(m.value for m in at.expander[0].markdown)
    assert at.expander[0].label == "How these numbers are computed"
    assert "average of those probabilities" in text and "Σ 1/best odds < 1" in text


def test_an_empty_database_says_to_scrape_first(store_target, monkeypatch):
    at = open_page(store_target, monkeypatch, PAGE)
    assert any("No upcoming event has prices yet" in i.value and "Scrape now" in i.value for i in at.info)
    assert not at.error


def test_a_newly_stored_generous_price_appears_once_the_cache_expires(store_target, monkeypatch):
    seeded = seed_store(store_target, events=6)
    at = open_page(seeded.target, monkeypatch, PAGE)
    assert grid(at, "value_generous") is None
    sr_id = next(s for s in candidates(seeded) if _complete(seeded.store, s, "btts_ft", ("yes", "no")))
    reprice(seeded.store, {(sr_id, "betpawa", "btts_ft", None, "no"): 1.25})
    rows = grid(later(at), "value_generous")
    assert rows is not None and rows.iloc[0]["SR id"] == sr_id and rows.iloc[0]["Outcome"] == "No"

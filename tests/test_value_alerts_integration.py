"""End to end: a simulator world with a planted BetPawa mispricing and a planted competitor move,
scraped twice by the real pipeline into a real DuckDB file (or PostgreSQL database), gives exactly
the expected value row on the Value page and exactly the expected steam alert.

The expectations come from the simulator's world (rebuilt in this process) and the plants'
factors, computed by hand here: the mean of the books' de-margined BTTS probabilities (power
method for two outcomes, proportional when a set has no margin left) for the value row, the
planted move for the alert.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from app_fixtures import open_page

from engine.config import BOOKS
from engine.markets.catalogue import load_catalogue
from engine.pipeline.cycle import run_cycle_sync
from engine.simulator.process import SimulatorError, start_simulator
from tests.conftest import sim_settings, world_of

pytestmark = pytest.mark.integration

MISPRICING = 1.3  # BetPawa's BTTS Yes, far too generous
MOVE = 0.85  # SportyBet shortens a 1X2 home price by 15 %


def two_way_fair(odds: tuple[float, float]) -> tuple[float, float]:
    """Fair probabilities of a two-outcome set: p = (1/odds)^k with Σp = 1, by bisection on k."""
    implied = [1 / o for o in odds]
    if sum(implied) <= 1:
        return implied[0] / sum(implied), implied[1] / sum(implied)
    lo, hi = 1.0, 100.0
    for _ in range(200):
        k = (lo + hi) / 2
        lo, hi = (k, hi) if sum(p**k for p in implied) > 1 else (lo, k)
    return implied[0] ** k, implied[1] ** k


def quote(world, book: str, sr_id: str, market: str, outcome: str) -> float | None:
    found = [p for p in world.quotes(book, sr_id, 0) if p.market == market and p.line is None
             and p.outcome == outcome and p.available]
    return found[0].odds if found else None


def test_a_planted_mispricing_and_competitor_move_give_the_expected_value_row_and_alert(store_target, monkeypatch):
    with start_simulator(seed=23, events=10) as sim:
        world = world_of(sim)
        later = datetime.now(timezone.utc) + timedelta(hours=1)
        events = [e.sr_id for e in world.events if set(e.books) == set(BOOKS) and e.kickoff > later]
        generous = next(s for s in events
                        if all(quote(world, b, s, "btts_ft", o) for b in BOOKS for o in ("yes", "no")))
        moved = next(s for s in events if s != generous
                     and all(quote(world, b, s, "1x2_ft", "home") for b in ("betpawa", "sportybet")))

        sim.plant("betpawa", generous, "btts_ft", None, "yes", MISPRICING)
        store = store_target.store()
        settings = sim_settings(sim, store_target.db_path, database_url=store_target.database_url)
        first = run_cycle_sync(settings, store, trigger="test")
        sim.plant("sportybet", moved, "1x2_ft", None, "home", MOVE)
        second = run_cycle_sync(settings, store, trigger="test")
    assert (first.status, second.status) == ("COMPLETED", "COMPLETED")

    # The alert: exactly one raised by the second cycle, the planted move.
    raised = store.alerts().filter(store.alerts()["run_id"] == second.run_id)
    assert raised.height == 1, raised.select("kind", "sr_id", "market", "outcome", "message").rows()
    alert = raised.row(0, named=True)
    before = quote(world, "sportybet", moved, "1x2_ft", "home")
    after = max(1.01, round(before * MOVE, 2))
    betpawa = quote(world, "betpawa", moved, "1x2_ft", "home")
    assert (alert["kind"], alert["sr_id"], alert["bookmaker"], alert["market"], alert["line"], alert["outcome"]) == (
        "steam", moved, "sportybet", "1x2_ft", None, "home")
    assert alert["size"] == pytest.approx(round((after / before - 1) * 100, 2))
    ev = world.event(moved)
    assert f"from {before:.2f} to {after:.2f}" in alert["message"]
    assert f"{ev.home} – {ev.away}" in alert["message"] and f"BetPawa still {betpawa:.2f}" in alert["message"]

    # The value row: the planted BetPawa price tops the "too generous" list with the hand-made numbers.
    prices = {b: (quote(world, b, generous, "btts_ft", "yes"), quote(world, b, generous, "btts_ft", "no"))
              for b in BOOKS}
    prices["betpawa"] = (max(1.01, round(prices["betpawa"][0] * MISPRICING, 2)), prices["betpawa"][1])
    consensus = sum(two_way_fair(prices[b])[0] for b in BOOKS) / len(BOOKS)
    best_book = max(("sportybet", "bet9ja"), key=lambda b: (prices[b][0], -BOOKS.index(b)))

    at = open_page(store_target, monkeypatch, "pages/value.py")
    grid = next(d.value for d in at.dataframe if d.key == "value_generous")
    top = grid.iloc[0]
    assert top["SR id"] == generous
    assert top["Market"] == load_catalogue().markets["btts_ft"].name and top["Outcome"] == "Yes"
    assert top["BetPawa"] == pytest.approx(prices["betpawa"][0])
    assert top["Consensus fair"] == pytest.approx(1 / consensus, rel=1e-6)
    assert top["Edge %"] == pytest.approx((prices["betpawa"][0] * consensus - 1) * 100, abs=1e-6)
    assert top["Best competitor"] == pytest.approx(prices[best_book][0])
    assert top["Books in consensus"] == 3


def test_a_plant_the_simulator_cannot_apply_is_refused_with_the_reason():
    with start_simulator(seed=23, events=4) as sim:
        sr_id = world_of(sim).events[0].sr_id
        with pytest.raises(SimulatorError, match="book must be one of"):
            sim.plant("pinnacle", sr_id, "1x2_ft", None, "home", 0.9)
        with pytest.raises(SimulatorError, match="does not quote"):
            sim.plant("betpawa", sr_id, "1x2_ft", None, "nobody", 0.9)
        with pytest.raises(SimulatorError, match="factor must be a positive number"):
            sim.plant("betpawa", sr_id, "1x2_ft", None, "home", -1)
        assert sim.clear_plants() == {"plants": []}

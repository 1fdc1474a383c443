"""Alerts through the real store: batches stored in a DuckDB file or a PostgreSQL database raise,
dedup, clear and acknowledge alerts inside their own write transaction; cleanup deletes the old ones."""

from __future__ import annotations

import multiprocessing
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from engine.config import BOOKS
from engine.markets.alerts import AlertThresholds
from engine.store import Store
from engine.store.types import PRICE_SCHEMA, UNMAPPED_SCHEMA, BatchWrite, BookEventRow, EventRow, ScrapeStatusRow

SR = "sr:match:4242"
T0 = datetime.now(timezone.utc).replace(microsecond=0)
Prices = dict[tuple[str, str, float | None, str], float | None]  # (book, market, line, outcome) -> odds / suspended

BASE: Prices = {
    ("betpawa", "1x2_ft", None, "home"): 2.10, ("betpawa", "1x2_ft", None, "draw"): 3.40,
    ("betpawa", "1x2_ft", None, "away"): 3.50,
    ("sportybet", "1x2_ft", None, "home"): 2.15, ("sportybet", "1x2_ft", None, "draw"): 3.45,
    ("sportybet", "1x2_ft", None, "away"): 3.55,
    ("bet9ja", "1x2_ft", None, "home"): 2.12, ("bet9ja", "1x2_ft", None, "draw"): 3.40,
    ("bet9ja", "1x2_ft", None, "away"): 3.60,
    ("betpawa", "over_under_ft", 2.5, "over"): 1.91, ("betpawa", "over_under_ft", 2.5, "under"): 1.91,
    ("sportybet", "over_under_ft", 2.5, "over"): 1.95, ("sportybet", "over_under_ft", 2.5, "under"): 1.90,
    ("bet9ja", "over_under_ft", 2.5, "over"): 1.93, ("bet9ja", "over_under_ft", 2.5, "under"): 1.93,
}


def store_prices(store: Store, prices: Prices, minute: float, thresholds: AlertThresholds | None = AlertThresholds(),
                 failed: tuple[str, ...] = (), without_odds: tuple | None = None) -> int:
    """One run storing the event's prices as a scrape at T0 + ``minute`` would; its run id.
    ``without_odds``: one more price, (book, market, line, outcome), quoted with no odds at all."""
    run = store.start_run("test", list(BOOKS))
    ok = tuple(b for b in BOOKS if b not in failed)
    rows = [(SR, b, m, line, o, odds if odds is not None else 2.0, odds is not None)
            for (b, m, line, o), odds in prices.items() if b in ok]
    if without_odds:
        rows.append((SR, *without_odds[:4], None, True))
    store.store_batch(BatchWrite(
        run_id=run, batch_no=1, observed_at=T0 + timedelta(minutes=minute),
        events=[EventRow(SR, T0 + timedelta(days=1), "England", "Premier League", "Arsenal", "Chelsea")],
        book_events=[BookEventRow(b, f"{b}-4242", SR) for b in BOOKS],
        prices=pl.DataFrame(rows, schema=PRICE_SCHEMA, orient="row"), scraped=[(SR, b) for b in ok],
        statuses=[ScrapeStatusRow(SR, BOOKS, ok, failed, {b: "timeout: read timed out" for b in failed}, 100)],
        unmapped=pl.DataFrame(schema=UNMAPPED_SCHEMA), batches_total=1, alert_thresholds=thresholds,
    ))
    store.finish_run(run, "COMPLETED", {})
    return run


def changed(**odds: float | None) -> Prices:
    """BASE with some prices replaced: ``sportybet_1x2_ft_home=1.85``, ``betpawa_over_under_ft_over=1.8``."""
    out = dict(BASE)
    for name, value in odds.items():
        key = next(k for k in BASE if f"{k[0]}_{k[1]}_{k[3]}" == name)
        out[key] = value
    return out


@pytest.fixture()
def store(store_target) -> Store:
    return store_target.store()


def test_a_competitor_move_stored_after_a_first_batch_raises_one_steam_alert(store):
    store_prices(store, BASE, 0)
    assert store.alerts().is_empty(), "a first sight of every price is no alert"
    run = store_prices(store, changed(sportybet_1x2_ft_home=1.85), 5)
    store_prices(store, changed(sportybet_1x2_ft_home=1.85), 10)  # the move persists: no repeat

    alerts = store.alerts()
    assert alerts.height == 1
    a = alerts.row(0, named=True)
    assert (a["kind"], a["bookmaker"], a["market"], a["line"], a["outcome"]) == ("steam", "sportybet", "1x2_ft",
                                                                                  None, "home")
    assert a["run_id"] == run and a["created_at"] == T0 + timedelta(minutes=5)
    assert a["size"] == pytest.approx(-13.95)
    assert (a["home"], a["away"], a["tournament"]) == ("Arsenal", "Chelsea", "Premier League")
    assert "from 2.15 to 1.85" in a["message"] and "BetPawa still 2.10" in a["message"]
    assert a["acknowledged_at"] is None and a["cleared_at"] is None
    assert store.unacknowledged_alerts() == 1


def test_betpawa_following_the_move_clears_the_steam_alert(store):
    store_prices(store, BASE, 0)
    store_prices(store, changed(sportybet_1x2_ft_home=1.85), 5)
    store_prices(store, changed(sportybet_1x2_ft_home=1.85, betpawa_1x2_ft_home=1.90), 10)
    alerts = store.alerts(kinds=["steam"])  # (BetPawa's shorter price also widened its margin: another kind)
    assert alerts.height == 1 and alerts["cleared_at"][0] == T0 + timedelta(minutes=10)


def test_a_margin_gap_is_raised_once_cleared_and_raised_again_when_it_recurs(store):
    store_prices(store, BASE, 0)
    wide = changed(betpawa_over_under_ft_over=1.80, betpawa_over_under_ft_under=1.80)
    store_prices(store, wide, 5)
    store_prices(store, changed(betpawa_1x2_ft_draw=3.35, **{"betpawa_over_under_ft_over": 1.80,
                                                            "betpawa_over_under_ft_under": 1.80}), 10)
    assert store.alerts(kinds=["margin_gap"]).height == 1, "a touched group that still has the gap: no repeat"
    store_prices(store, BASE, 15)
    first = store.alerts(kinds=["margin_gap"]).row(0, named=True)
    assert first["cleared_at"] == T0 + timedelta(minutes=15)
    store_prices(store, wide, 20)
    gaps = store.alerts(kinds=["margin_gap"])
    assert gaps["cleared_at"].to_list() == [None, T0 + timedelta(minutes=15)]
    assert "11.1%" in gaps["message"][0] and "Bet9ja 3.6%" in gaps["message"][0]


def test_a_market_every_competitor_pulled_while_betpawa_offers_it(store):
    store_prices(store, BASE, 0)
    store_prices(store, {k: v for k, v in BASE.items() if k[1] != "over_under_ft" or k[0] == "betpawa"}, 5)
    pulled = store.alerts(kinds=["competitors_pulled"])
    assert pulled.height == 1
    assert pulled.row(0, named=True)["bookmaker"] == "sportybet,bet9ja"
    assert store.alerts(books=["bet9ja"]).height == 1 and store.alerts(books=["betpawa"]).is_empty()
    store_prices(store, BASE, 10)  # offered again
    assert store.alerts(kinds=["competitors_pulled"])["cleared_at"][0] is not None


def test_a_failed_fetch_is_not_taken_for_a_pulled_market(store):
    store_prices(store, BASE, 0)
    store_prices(store, BASE, 5, failed=("sportybet", "bet9ja"))
    assert store.alerts().is_empty()


def test_a_change_made_while_a_fetch_failed_is_judged_once_the_event_is_whole_again(store):
    store_prices(store, BASE, 0)
    wide = changed(betpawa_over_under_ft_over=1.80, betpawa_over_under_ft_under=1.80)
    store_prices(store, wide, 5, failed=("sportybet", "bet9ja"))
    assert store.alerts().is_empty(), "without the competitors' sets there is no gap to measure"
    store_prices(store, wide, 10)  # nothing changes against the stored prices, but now every book is there
    gaps = store.alerts(kinds=["margin_gap"])
    assert gaps.height == 1 and gaps["market"][0] == "over_under_ft"
    assert gaps["created_at"][0] == T0 + timedelta(minutes=10)


def test_without_thresholds_nothing_is_evaluated(store):
    store_prices(store, BASE, 0, thresholds=None)
    store_prices(store, changed(sportybet_1x2_ft_home=1.50), 5, thresholds=None)
    assert store.alerts().is_empty()


def test_a_move_before_the_window_does_not_add_up_with_one_inside_it(store):
    store_prices(store, BASE, 0)
    store_prices(store, changed(sportybet_1x2_ft_home=2.05), 5)
    store_prices(store, changed(sportybet_1x2_ft_home=1.95), 40)  # 2.15 → 1.95 is -9.3 %, but 2.15 is 35 min old
    assert store.alerts(kinds=["steam"]).is_empty()
    store_prices(store, changed(sportybet_1x2_ft_home=1.85), 50)  # 2.05 (from minute 40's step on) → 1.85
    assert store.alerts(kinds=["steam"])["size"].to_list() == [pytest.approx(-9.76)]


def test_a_batch_that_failed_leaves_no_alert_behind_and_the_next_one_raises_it(store):
    store_prices(store, BASE, 0)
    moved = changed(sportybet_1x2_ft_home=1.85)
    with pytest.raises(Exception, match="(?i)null"):  # a price without odds: the whole batch is refused
        store_prices(store, moved, 5, without_odds=("bet9ja", "btts_ft", None, "yes"))
    assert store.alerts().is_empty()
    store_prices(store, moved, 10)
    assert store.alerts(kinds=["steam"])["size"].to_list() == [pytest.approx(-13.95)]


def test_acknowledging_marks_the_alerts_and_the_count_follows(store):
    store_prices(store, BASE, 0)
    store_prices(store, changed(sportybet_1x2_ft_home=1.85, bet9ja_1x2_ft_away=4.10), 5)
    alerts = store.alerts()  # two steam moves; Bet9ja's longer away price also took its margin 4.6 below BetPawa's
    assert sorted(alerts["kind"]) == ["margin_gap", "steam", "steam"]
    ids = alerts["id"].to_list()
    assert store.unacknowledged_alerts() == 3
    assert store.acknowledge_alerts(ids[:1]) == 1
    assert store.acknowledge_alerts(ids[:1]) == 0, "already acknowledged"
    assert store.unacknowledged_alerts() == 2
    assert store.alerts(unacknowledged_only=True)["id"].to_list() == ids[1:]
    assert store.alerts().filter(pl.col("id") == ids[0])["acknowledged_at"][0] is not None
    with pytest.raises(ValueError, match="integers"):
        store.acknowledge_alerts(["1"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="unknown alert kind"):
        store.alerts(kinds=["stem"])
    assert store.unacknowledged_alerts() == 2, "bad input changes nothing"


def test_filters_by_time_and_tournament(store):
    store_prices(store, BASE, 0)
    store_prices(store, changed(sportybet_1x2_ft_home=1.85), 5)
    assert store.alerts(since=T0 + timedelta(minutes=6)).is_empty()
    assert store.alerts(since=T0 + timedelta(minutes=5)).height == 1
    assert store.alerts(tournaments=[("England", "Premier League")]).height == 1
    assert store.alerts(tournaments=[("Scotland", "Premier League")]).is_empty()


def _store_in_another_process(target: str, minute: float, odds: dict[str, float]) -> None:
    store_prices(Store(target), changed(**odds), minute)


def _in_another_process(store: Store, store_target, minute: float, **odds: float) -> None:
    """``store_prices`` of ``changed(**odds)`` by a process of its own: it keeps nothing in memory."""
    child = multiprocessing.get_context("spawn").Process(
        target=_store_in_another_process, args=(store_target.database_url or str(store.path), minute, odds))
    child.start()
    child.join(120)
    assert child.exitcode == 0


def test_a_batch_another_process_stored_in_between_is_taken_into_account(store, store_target):
    store_prices(store, BASE, 0)
    _in_another_process(store, store_target, 5, sportybet_1x2_ft_home=1.85)
    store_prices(store, changed(sportybet_1x2_ft_home=1.60), 10)
    steam = store.alerts(kinds=["steam"])
    assert steam["size"].to_list() == [pytest.approx(-25.58), pytest.approx(-13.95)], (
        "the move from 2.15 counts from the other process's step on: 2.15 → 1.85 → 1.60")


def test_a_new_process_measures_a_move_from_the_price_before_the_window(store, store_target):
    store_prices(store, BASE, 0)
    store_prices(store, changed(sportybet_1x2_ft_home=2.00), 40)  # -7.0 %: no alert yet
    assert store.alerts(kinds=["steam"]).is_empty()
    _in_another_process(store, store_target, 45, sportybet_1x2_ft_home=1.95)
    steam = store.alerts(kinds=["steam"])
    assert steam["size"].to_list() == [pytest.approx(-9.3)], (
        "the window's first step started at 2.15, a price stored 40 minutes before it: 2.15 → 2.00 → 1.95")
    assert "from 2.15 to 1.95" in steam["message"][0]


def test_a_new_process_knows_betpawa_moved_in_the_window_before_it_started(store, store_target):
    store_prices(store, BASE, 0)
    store_prices(store, changed(betpawa_1x2_ft_home=2.05), 40)
    _in_another_process(store, store_target, 45, betpawa_1x2_ft_home=2.05, sportybet_1x2_ft_home=1.85)
    assert store.alerts(kinds=["steam"]).is_empty(), "BetPawa moved the outcome in the window: not steam"


def test_cleanup_deletes_alerts_acknowledged_or_cleared_before_the_run_window(store, store_target):
    store_prices(store, BASE, 0)
    store_prices(store, changed(sportybet_1x2_ft_home=1.85, bet9ja_1x2_ft_away=4.10,
                                betpawa_over_under_ft_over=1.80, betpawa_over_under_ft_under=1.80), 5)
    alerts = {(a["kind"], a["bookmaker"], a["market"]): a["id"] for a in store.alerts().iter_rows(named=True)}
    acked_long_ago, acked_today = alerts["steam", "sportybet", "1x2_ft"], alerts["steam", "bet9ja", "1x2_ft"]
    cleared_long_ago, still_open = alerts["margin_gap", "betpawa", "1x2_ft"], alerts["margin_gap", "betpawa",
                                                                                     "over_under_ft"]
    assert store.acknowledge_alerts([acked_long_ago, acked_today]) == 2
    # The API writes no past times: age two alerts behind its back.
    store_target.execute("UPDATE alerts SET acknowledged_at = acknowledged_at - INTERVAL '31 days' WHERE id = ?",
                         [acked_long_ago])
    store_target.execute("UPDATE alerts SET cleared_at = created_at - INTERVAL '31 days' WHERE id = ?",
                         [cleared_long_ago])

    counts = store.cleanup(history_days=14, run_days=30, cluster=False)

    assert counts["alerts"] == 2
    assert sorted(store.alerts()["id"].to_list()) == sorted([acked_today, still_open])
    assert store.unacknowledged_alerts() == 1

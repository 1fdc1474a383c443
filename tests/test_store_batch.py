"""Storing a batch: current odds, history only on change, unavailability, unmapped counts, and
all-or-nothing transactions — checked on a real DuckDB file through the Store's own reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from engine.store import BatchError, Store
from engine.store.types import PRICE_SCHEMA, UNMAPPED_SCHEMA, BatchWrite, BookEventRow, EventRow, ScrapeStatusRow

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KICKOFF = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
EVENTS = {
    "61300001": EventRow("61300001", KICKOFF, "England", "Premier League", "Arsenal", "Chelsea"),
    "61300002": EventRow("61300002", KICKOFF + timedelta(hours=2), "Spain", "LaLiga", "Getafe", "Girona"),
}
ONE_X_TWO = [("1x2_ft", None, "home", 2.10), ("1x2_ft", None, "draw", 3.40), ("1x2_ft", None, "away", 3.60)]
TOTALS = [("over_under_ft", 2.5, "over", 1.90), ("over_under_ft", 2.5, "under", 1.95)]


def quotes(sr_id: str, book: str, lines=ONE_X_TWO + TOTALS, **odds: float) -> list[tuple]:
    """Price rows of one (event, book); ``odds`` overrides by outcome key."""
    return [(sr_id, book, m, ln, o, odds.get(o, x), True) for m, ln, o, x in lines]


def unmapped(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=UNMAPPED_SCHEMA, orient="row")


def make_batch(run_id: int, at: datetime, rows: list[tuple], scraped: list[tuple[str, str]] | None = None,
               unmapped_rows: pl.DataFrame | None = None, batch_no: int = 1, batches_total: int = 1) -> BatchWrite:
    pairs = sorted({(r[0], r[1]) for r in rows}) if scraped is None else scraped
    sr_ids = sorted({p[0] for p in pairs} | {r[0] for r in rows})
    return BatchWrite(
        run_id=run_id, batch_no=batch_no, observed_at=at,
        events=[EVENTS[s] for s in sr_ids],
        book_events=[BookEventRow(b, f"{b}-{s}", s) for s, b in pairs],
        prices=pl.DataFrame(rows, schema=PRICE_SCHEMA, orient="row"),
        scraped=pairs,
        statuses=[ScrapeStatusRow(s, ("betpawa", "sportybet"), tuple(b for x, b in pairs if x == s), (), {}, 120,
                                  {b: f"{b}-{s}" for x, b in pairs if x == s}) for s in sr_ids],
        unmapped=unmapped() if unmapped_rows is None else unmapped_rows,
        batches_total=batches_total,
    )


@pytest.fixture
def store(store_target) -> Store:
    return store_target.store()


@pytest.fixture
def run_id(store: Store) -> int:
    return store.start_run("test", ["betpawa", "sportybet"])


def price(store: Store, sr_id: str, book: str, market: str, outcome: str, line: float | None = None) -> dict:
    rows = store.current_prices(sr_ids=[sr_id]).filter(
        (pl.col("bookmaker") == book) & (pl.col("market") == market) & (pl.col("outcome") == outcome)
        & (pl.col("line").is_null() if line is None else pl.col("line") == line)
    )
    assert rows.height == 1
    return rows.row(0, named=True)


def test_first_batch_stores_current_odds_events_and_one_history_row_per_price(store, run_id):
    result = store.store_batch(make_batch(run_id, T0, quotes("61300001", "betpawa") + quotes("61300001", "sportybet")))

    assert (result.prices, result.inserted, result.changed, result.history_rows) == (10, 10, 0, 10)
    current = store.current_prices()
    assert current.height == 10 and current["available"].all()
    assert set(current["home"]) == {"Arsenal"} and current["kickoff"][0] == KICKOFF
    assert current["changed_at"].to_list() == [T0] * 10 and current["unavailable_at"].is_null().all()
    history = store.odds_history("61300001")
    assert history.height == 10 and set(history["run_id"]) == {run_id}
    assert store.table_counts()["bookmaker_events"] == 2


def test_same_prices_again_add_no_history_but_refresh_last_seen(store, run_id):
    rows = quotes("61300001", "betpawa")
    store.store_batch(make_batch(run_id, T0, rows))
    later = T0 + timedelta(minutes=5)
    result = store.store_batch(make_batch(run_id, later, rows))

    assert (result.inserted, result.changed, result.history_rows) == (0, 0, 0)
    assert store.odds_history("61300001").height == 5
    home = price(store, "61300001", "betpawa", "1x2_ft", "home")
    assert home["last_seen_at"] == later and home["changed_at"] == T0


def test_one_changed_price_adds_exactly_one_history_row(store, run_id):
    store.store_batch(make_batch(run_id, T0, quotes("61300001", "betpawa")))
    later = T0 + timedelta(minutes=5)
    result = store.store_batch(make_batch(run_id, later, quotes("61300001", "betpawa", home=2.25)))

    assert (result.changed, result.history_rows) == (1, 1)
    history = store.odds_history("61300001", market="1x2_ft")
    assert history.filter(pl.col("outcome") == "home")["odds"].to_list() == [2.10, 2.25]
    assert history.height == 4
    assert price(store, "61300001", "betpawa", "1x2_ft", "home")["changed_at"] == later
    assert price(store, "61300001", "betpawa", "1x2_ft", "draw")["changed_at"] == T0


def test_a_market_first_quoted_for_an_event_already_stored_gets_its_history(store, run_id):
    store.store_batch(make_batch(run_id, T0, quotes("61300001", "betpawa", lines=ONE_X_TWO)))
    later = T0 + timedelta(minutes=5)
    result = store.store_batch(make_batch(run_id, later, quotes("61300001", "betpawa", home=2.25)))

    assert (result.inserted, result.changed, result.history_rows) == (2, 1, 3)
    history = store.odds_history("61300001").filter(pl.col("observed_at") == later)
    assert sorted(zip(history["outcome"], history["odds"])) == [("home", 2.25), ("over", 1.90), ("under", 1.95)]


def test_a_change_to_a_price_whose_history_expired_is_recorded(store, run_id):
    store.store_batch(make_batch(run_id, T0, quotes("61300001", "betpawa") + quotes("61300002", "betpawa")))
    # Retention ends an hour after T0: the first rows go (and with them the event's history number),
    # the events stay listed (they kick off later).
    days = (datetime.now(UTC) - (T0 + timedelta(hours=1))).total_seconds() / 86400
    assert store.cleanup(history_days=days, run_days=3650, cluster=False)["odds_history"] == 10
    later = T0 + timedelta(hours=2)
    result = store.store_batch(make_batch(run_id, later, quotes("61300001", "betpawa", home=2.25, draw=3.30)
                                          + quotes("61300002", "betpawa", away=3.70)))

    assert (result.inserted, result.changed, result.history_rows) == (0, 3, 3)
    first = store.odds_history("61300001")
    assert sorted(zip(first["outcome"], first["odds"])) == [("draw", 3.30), ("home", 2.25)]
    assert store.odds_history("61300002")["odds"].to_list() == [3.70]
    assert set(first["observed_at"]) == {later}


def test_price_missing_from_a_scraped_pair_becomes_unavailable_with_a_history_row(store, run_id):
    store.store_batch(make_batch(run_id, T0, quotes("61300001", "betpawa")))
    later = T0 + timedelta(minutes=5)
    result = store.store_batch(make_batch(run_id, later, quotes("61300001", "betpawa", lines=ONE_X_TWO)))

    assert (result.became_unavailable, result.history_rows) == (2, 2)
    over = price(store, "61300001", "betpawa", "over_under_ft", "over", 2.5)
    assert not over["available"] and over["unavailable_at"] == later and over["odds"] == 1.90
    assert over["last_seen_at"] == T0
    gone = store.odds_history("61300001", market="over_under_ft", line=2.5).filter(~pl.col("available"))
    assert gone.height == 2 and set(gone["observed_at"]) == {later}

    # Still missing: nothing new is recorded and the time it went stays.
    still_missing = quotes("61300001", "betpawa", lines=ONE_X_TWO)
    again = store.store_batch(make_batch(run_id, later + timedelta(minutes=5), still_missing))
    assert again.history_rows == 0
    assert price(store, "61300001", "betpawa", "over_under_ft", "over", 2.5)["unavailable_at"] == later


def test_prices_of_a_pair_that_was_not_scraped_are_left_alone(store, run_id):
    store.store_batch(make_batch(run_id, T0, quotes("61300001", "betpawa") + quotes("61300001", "sportybet")))
    later = T0 + timedelta(minutes=5)
    # SportyBet failed this time: only BetPawa was scraped.
    result = store.store_batch(make_batch(run_id, later, quotes("61300001", "betpawa")))

    assert result.became_unavailable == 0
    sporty = store.current_prices(sr_ids=["61300001"]).filter(pl.col("bookmaker") == "sportybet")
    assert sporty.height == 5 and sporty["available"].all() and set(sporty["last_seen_at"]) == {T0}


def test_a_price_that_reappears_is_available_again_and_recorded(store, run_id):
    store.store_batch(make_batch(run_id, T0, quotes("61300001", "betpawa")))
    store.store_batch(make_batch(run_id, T0 + timedelta(minutes=5), quotes("61300001", "betpawa", lines=ONE_X_TWO)))
    back = T0 + timedelta(minutes=10)
    result = store.store_batch(make_batch(run_id, back, quotes("61300001", "betpawa", over=1.80)))

    assert result.changed == 2
    over = price(store, "61300001", "betpawa", "over_under_ft", "over", 2.5)
    assert over["available"] and over["unavailable_at"] is None and over["odds"] == 1.80
    assert over["changed_at"] == back and over["last_seen_at"] == back
    states = store.odds_history("61300001", market="over_under_ft").filter(pl.col("outcome") == "over")
    assert states.select("odds", "available").rows() == [(1.90, True), (1.90, False), (1.80, True)]


def test_a_price_quoted_as_suspended_is_stored_unavailable(store, run_id):
    store.store_batch(make_batch(run_id, T0, quotes("61300001", "betpawa")))
    later = T0 + timedelta(minutes=5)
    rows = [r[:6] + (r[4] != "draw",) for r in quotes("61300001", "betpawa")]
    store.store_batch(make_batch(run_id, later, rows))

    draw = price(store, "61300001", "betpawa", "1x2_ft", "draw")
    assert not draw["available"] and draw["unavailable_at"] == later
    assert store.current_prices(available_only=True).height == 4


def test_no_line_and_line_zero_are_different_prices_and_no_line_reads_as_null(store, run_id):
    rows = [("61300001", "betpawa", "1x2_ft", None, "home", 2.1, True),
            ("61300001", "betpawa", "asian_handicap_ft", 0.0, "home", 1.9, True),
            ("61300001", "betpawa", "asian_handicap_ft", -0.0, "away", 1.95, True),
            ("61300001", "betpawa", "asian_handicap_ft", -0.25, "home", 2.05, True)]
    store.store_batch(make_batch(run_id, T0, rows))
    store.store_batch(make_batch(run_id, T0 + timedelta(minutes=5), rows))

    current = store.current_prices()
    assert sorted(current.select("market", "line", "outcome").rows(), key=str) == sorted([
        ("1x2_ft", None, "home"), ("asian_handicap_ft", 0.0, "home"),
        ("asian_handicap_ft", 0.0, "away"), ("asian_handicap_ft", -0.25, "home")], key=str)
    assert store.odds_history("61300001").height == 4
    assert store.query("SELECT count(*) AS n FROM odds_current WHERE line IS NULL")["n"][0] == 1


def test_unmapped_market_counts_accumulate_across_batches(store, run_id):
    first = unmapped(("sportybet", "900069", "Exotic", "UNKNOWN_MARKET", "", 3),
                     ("sportybet", "18", "Over/Under", "UNKNOWN_OUTCOME", "Ovr", 1))
    store.store_batch(make_batch(run_id, T0, quotes("61300001", "sportybet"), unmapped_rows=first))
    later = T0 + timedelta(minutes=5)
    second = unmapped(("sportybet", "900069", "Exotic", "UNKNOWN_MARKET", "", 2))
    store.store_batch(make_batch(run_id, later, quotes("61300001", "sportybet"), unmapped_rows=second))

    rows = {r["market_id"]: r for r in store.unmapped().iter_rows(named=True)}
    assert rows["900069"]["occurrences"] == 5 and rows["18"]["occurrences"] == 1
    assert rows["900069"]["first_seen"] == T0 and rows["900069"]["last_seen"] == later
    assert rows["18"]["detail"] == "Ovr" and rows["900069"]["name"] == "Exotic"
    assert store.unmapped(limit=1)["market_id"].to_list() == ["900069"]


def test_batch_records_event_status_progress_and_heartbeat(store, run_id):
    before = store.run(run_id)["heartbeat_at"]
    store.store_batch(make_batch(run_id, T0, quotes("61300001", "betpawa") + quotes("61300002", "sportybet"),
                                 batch_no=2, batches_total=3))

    status = store.event_status(run_id)
    assert status["sr_id"].to_list() == ["61300001", "61300002"]
    assert status["books_scraped"].to_list() == ['["betpawa"]', '["sportybet"]']
    progress = store.run_progress(run_id).row(-1, named=True)
    assert (progress["kind"], progress["batches_done"], progress["batches_total"]) == ("BATCH_COMPLETE", 2, 3)
    assert store.run(run_id)["heartbeat_at"] >= before
    assert store.events()["home"].to_list() == ["Arsenal", "Getafe"]


@pytest.mark.parametrize("column, sr_id", [("sr_id", "61300002"), ("odds", "61300001"), ("available", "61300001")])
def test_a_failing_batch_changes_nothing(store, run_id, column, sr_id):
    store.store_batch(make_batch(run_id, T0, quotes("61300001", "betpawa")))
    counts, current = store.table_counts(), store.current_prices()

    bad = make_batch(run_id, T0 + timedelta(minutes=5),
                     quotes("61300001", "betpawa", home=9.0) + quotes("61300002", "betpawa"))
    broken = (pl.col("sr_id") == sr_id) & (pl.col("outcome") == "draw")
    bad.prices = bad.prices.with_columns(pl.when(broken).then(None).otherwise(pl.col(column)).alias(column))
    with pytest.raises(Exception, match=r"(?i)not[ -]null"):
        store.store_batch(bad)

    assert store.table_counts() == counts
    assert store.current_prices().equals(current)
    # The store is still usable after the rollback.
    fixed = make_batch(run_id, T0 + timedelta(minutes=10), quotes("61300001", "betpawa", home=2.2))
    assert store.store_batch(fixed).changed == 1


def test_two_prices_with_one_key_are_refused_before_anything_is_written(store, run_id):
    rows = quotes("61300001", "betpawa") + [("61300001", "betpawa", "1x2_ft", None, "home", 2.5, True)]
    with pytest.raises(BatchError, match="share a key"):
        store.store_batch(make_batch(run_id, T0, rows))
    assert store.table_counts()["events"] == 0


def test_reads_filter_by_event_market_line_and_availability(store, run_id):
    store.store_batch(make_batch(run_id, T0, quotes("61300001", "betpawa") + quotes("61300002", "betpawa")))
    store.store_batch(make_batch(run_id, T0 + timedelta(minutes=5),
                                 quotes("61300001", "betpawa", lines=ONE_X_TWO) + quotes("61300002", "betpawa")))

    assert store.current_prices(sr_ids=["61300002"]).height == 5
    assert store.current_prices(sr_ids=[]).height == 0
    assert set(store.current_prices(market="over_under_ft")["sr_id"]) == {"61300001", "61300002"}
    assert store.current_prices(market="over_under_ft", available_only=True)["sr_id"].to_list() == ["61300002"] * 2
    assert store.odds_history("61300001", market="over_under_ft", line=2.5).height == 4
    assert store.odds_history("61300001", market="over_under_ft", line=3.5).height == 0
    assert store.query("SELECT count(*) AS n FROM odds_history WHERE sr_id = ?", ["61300002"])["n"][0] == 5
    assert store.query("SELECT max(observed_at) AS t FROM odds_history")["t"][0] == T0 + timedelta(minutes=5)
    assert store.db_bytes() > 0


def test_query_cannot_write(store, run_id):
    with pytest.raises(Exception, match="read-only"):
        store.query("DELETE FROM scrape_runs")
    assert store.run(run_id) is not None


def test_many_batches_keep_one_current_row_per_price_and_match_a_model(store, run_id):
    """Random quotes, suspensions, dropped and returning prices and failed books over many
    batches: odds_current (which has no index: the diff keeps its key) and the history count
    always agree with a plain model of the rules."""
    import random

    rng = random.Random(20260301)
    keys = [("61300001", book, m, ln, o) for book in ("betpawa", "sportybet") for m, ln, o, _ in ONE_X_TWO + TOTALS]
    keys += [("61300001", "betpawa", "asian_handicap_ft", ln, o) for ln in (-0.25, 0.0, 0.25) for o in ("home", "away")]
    model: dict[tuple, dict] = {}
    history = 0
    for n in range(12):
        at = T0 + timedelta(minutes=5 * n)
        scraped = [b for b in ("betpawa", "sportybet") if rng.random() > 0.2]
        rows = [(*k, round(rng.choice((1.5, 1.9, 2.4)), 2), rng.random() > 0.15)
                for k in keys if k[1] in scraped and rng.random() > 0.2]
        store.store_batch(make_batch(run_id, at, rows, scraped=[("61300001", b) for b in scraped]))
        quoted = {r[:5]: r[5:] for r in rows}
        for key, (odds, available) in quoted.items():
            old = model.get(key)
            if old is None or (old["odds"], old["available"]) != (odds, available):
                history += 1
                pulled = None if available else (old["unavailable_at"] if old and not old["available"] else at)
                model[key] = {"odds": odds, "available": available, "changed_at": at, "unavailable_at": pulled}
            model[key]["last_seen_at"] = at
        for key, old in model.items():
            if key not in quoted and key[1] in scraped and old["available"]:
                history += 1
                old.update(available=False, changed_at=at, unavailable_at=at)

        current = store.current_prices()
        got = {(r["sr_id"], r["bookmaker"], r["market"], r["line"], r["outcome"]):
               {c: r[c] for c in ("odds", "available", "changed_at", "last_seen_at", "unavailable_at")}
               for r in current.iter_rows(named=True)}
        assert current.height == len(got) == len(model)
        assert got == model
        assert store.table_counts()["odds_history"] == history

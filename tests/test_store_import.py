"""Bulk history import: what goes in reads back through the event page's read, lines and times
the store's way, sorted like a re-clustered table, all or nothing — and a freshly imported
table is not rewritten by the next cleanup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest

from engine.store import Store
from engine.store.maintenance import CLUSTER_MIN_TAIL
from engine.store.types import PRICE_SCHEMA, UNMAPPED_SCHEMA, BatchWrite, EventRow, ScrapeStatusRow

NOW = datetime.now(UTC).replace(microsecond=0)
LAGOS = timezone(timedelta(hours=1))


@pytest.fixture
def store(store_target) -> Store:
    return store_target.store()


def history(n: int, sr_ids: list[str], start: datetime) -> pl.DataFrame:
    """``n`` rows per event: the 1X2 home price of two books moving every 5 minutes."""
    rows = [(sr_id, book, "1x2_ft", None, "home", round(1.5 + (i % 40) / 20, 2), i % 7 != 0,
             start + timedelta(minutes=5 * (i // 2)))
            for sr_id in sr_ids for i in range(n) for book in (("betpawa", "bet9ja")[i % 2],)]
    return pl.DataFrame(rows, schema={"sr_id": pl.String, "bookmaker": pl.String, "market": pl.String,
                                      "line": pl.Float64, "outcome": pl.String, "odds": pl.Float64,
                                      "available": pl.Boolean, "observed_at": pl.Datetime("us", "UTC")},
                        orient="row")


def test_imported_history_reads_back_like_scraped_history(store):
    frame = history(6, ["1001", "1002"], NOW - timedelta(days=1))
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=3)

    assert store.import_history(shuffled) == 12

    got = store.odds_history("1001")
    assert got.height == 6 and set(got["run_id"]) == {0}
    expected = frame.filter(pl.col("sr_id") == "1001").sort("bookmaker", "observed_at")
    assert got.select("bookmaker", "odds", "available", "observed_at").rows() == \
        expected.select("bookmaker", "odds", "available", "observed_at").rows()
    assert got["observed_at"].dtype == pl.Datetime("us", "UTC")


def test_lines_and_local_times_are_stored_the_store_way(store):
    at = datetime(2026, 3, 1, 13, 0, tzinfo=LAGOS)
    frame = pl.DataFrame({
        "sr_id": ["1001"] * 3, "bookmaker": ["betpawa"] * 3, "market": ["asian_handicap_ft"] * 3,
        "line": [-0.0, 0.25000001, -0.25], "outcome": ["home"] * 3, "odds": [1.9, 2.0, 2.1],
        "available": [True] * 3, "observed_at": [at] * 3, "run_id": [7, 7, 7],
    })
    store.import_history(frame)

    got = store.odds_history("1001", market="asian_handicap_ft", line=0.25)
    assert got["odds"].to_list() == [2.0] and got["run_id"].to_list() == [7]
    assert got["observed_at"].to_list() == [datetime(2026, 3, 1, 12, 0, tzinfo=UTC)]
    assert store.odds_history("1001", line=0.0)["odds"].to_list() == [1.9]
    negative_zero = "SELECT count(*) AS n FROM odds_history WHERE line = 0 AND CAST(line AS TEXT) LIKE '-%'"
    assert store.query(negative_zero)["n"][0] == 0


def test_import_is_sorted_by_event_like_a_reclustered_table(store):
    store.import_history(history(5, ["3003", "1001", "2002"], NOW - timedelta(hours=3)))
    store.import_history(history(5, ["0500", "9009"], NOW - timedelta(hours=2)))

    stored = store.query("SELECT event_no FROM odds_history_data")["event_no"].to_list()
    assert stored == sorted(stored)  # each import a clustered block, events numbered in sr_id order
    numbered = store.query("SELECT sr_id FROM history_events ORDER BY event_no")["sr_id"].to_list()
    assert numbered == ["1001", "2002", "3003", "0500", "9009"]
    assert store.cleanup(history_days=14, run_days=30)["odds_history_clustered"] == 0


def test_a_bad_frame_imports_nothing(store):
    store.import_history(history(4, ["1001"], NOW - timedelta(hours=1)))
    bad = history(4, ["2002"], NOW).with_columns(
        pl.when(pl.col("observed_at") == NOW).then(None).otherwise(pl.col("odds")).alias("odds"))

    with pytest.raises(Exception, match=r"(?i)not[ -]null"):
        store.import_history(bad)
    with pytest.raises(ValueError, match="lacks outcome"):
        store.import_history(history(4, ["2002"], NOW).drop("outcome"))
    assert store.table_counts()["odds_history"] == 4


def test_cleanup_does_not_rewrite_a_freshly_imported_table_but_still_tracks_new_scrapes(store):
    n = CLUSTER_MIN_TAIL // 100 + 1
    store.import_history(history(n, [str(1000 + i) for i in range(100)], NOW - timedelta(days=5)))

    assert store.cleanup(history_days=14, run_days=30)["odds_history_clustered"] == 0

    run_id = store.start_run("scheduled", ["betpawa"])
    rows = [("1000", "betpawa", "1x2_ft", None, o, 2.0, True) for o in ("home", "draw", "away")]
    store.store_batch(BatchWrite(
        run_id=run_id, batch_no=1, observed_at=NOW,
        events=[EventRow("1000", NOW + timedelta(days=1), "England", "Premier League", "A", "B")],
        book_events=[], prices=pl.DataFrame(rows, schema=PRICE_SCHEMA, orient="row"),
        scraped=[("1000", "betpawa")], statuses=[ScrapeStatusRow("1000", ("betpawa",), ("betpawa",), (), {}, 5)],
        unmapped=pl.DataFrame(schema=UNMAPPED_SCHEMA),
    ))
    # The scrape's rows are the only unsorted ones: a forced re-sort puts them with their event.
    assert store.cleanup(history_days=14, run_days=30, cluster=True)["odds_history_clustered"] == 100 * n + 3
    first = store.query("SELECT event_no, observed_at FROM odds_history_data LIMIT ?", [n + 3])
    event_no = store.query("SELECT event_no FROM history_events WHERE sr_id = '1000'")["event_no"].item()
    assert set(first["event_no"]) == {event_no} and first["observed_at"].is_sorted()

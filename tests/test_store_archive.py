"""The history archive: what cleanup deletes is first on disk as date-partitioned Parquet that
DuckDB reads back with Hive partitioning; a failed write deletes nothing; a second run adds nothing.
The same on PostgreSQL, whose archive is written from polars beside the store's local anchor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl
import pytest

from engine.config import load_settings
from engine.store import Store
from engine.store.archive import archive_dir, archive_glob, archive_summary
from engine.store.types import PRICE_SCHEMA, UNMAPPED_SCHEMA, BatchWrite, BookEventRow, EventRow, ScrapeStatusRow
from scheduler.main import SchedulerService

NOW = datetime.now(UTC)
KEEP_DAYS = 7
OLD = (NOW - timedelta(days=10), NOW - timedelta(days=9), NOW - timedelta(days=8, hours=23))
RECENT = NOW - timedelta(days=1)


def batch(store: Store, at: datetime, sr_id: str, step: int) -> None:
    """A full scrape of one event on two books at ``at``; ``step`` moves every price."""
    rows = [(sr_id, book, "1x2_ft", None, outcome, 2.0 + step / 10 + i, True)
            for book in ("betpawa", "sportybet") for i, outcome in enumerate(("home", "draw", "away"))]
    rows += [(sr_id, "betpawa", "over_under_ft", 2.5, side, 1.8 + step / 100, True) for side in ("over", "under")]
    run_id = store.start_run("schedule", ["betpawa", "sportybet"])
    store.store_batch(BatchWrite(
        run_id=run_id, batch_no=1, observed_at=at,
        events=[EventRow(sr_id, NOW + timedelta(days=3), "England", "Premier League", "Home", "Away")],
        book_events=[BookEventRow(b, f"{b}{sr_id}", sr_id) for b in ("betpawa", "sportybet")],
        prices=pl.DataFrame(rows, schema=PRICE_SCHEMA, orient="row"),
        scraped=[(sr_id, "betpawa"), (sr_id, "sportybet")],
        statuses=[ScrapeStatusRow(sr_id, ("betpawa", "sportybet"), ("betpawa", "sportybet"), (), {}, 50)],
        unmapped=pl.DataFrame(schema=UNMAPPED_SCHEMA),
    ))
    store.finish_run(run_id, "COMPLETED", {})


@pytest.fixture
def store(store_target) -> Store:
    store = store_target.store()
    for step, at in enumerate((*OLD, RECENT)):
        for sr_id in ("sr:match:1", "sr:match:2"):
            batch(store, at, sr_id, step)
    return store


def history(store: Store) -> pl.DataFrame:
    return store.query("SELECT * FROM odds_history").with_columns(
        pl.col("observed_at").dt.replace_time_zone(None)).sort("sr_id", "bookmaker", "market", "outcome", "observed_at")


def archived(store: Store) -> pl.DataFrame:
    """The archive as the SQL notebook reads it (``read_parquet`` with Hive partitioning)."""
    with duckdb.connect() as con:
        return con.sql(f"SELECT * FROM read_parquet('{archive_glob(store.path)}', hive_partitioning = true)").pl()


def past_retention(frame: pl.DataFrame) -> pl.DataFrame:
    cutoff = (NOW - timedelta(days=KEEP_DAYS)).replace(tzinfo=None)
    return frame.filter(pl.col("observed_at") < cutoff)


def test_cleanup_archives_exactly_the_rows_it_deletes(store):
    before = history(store)
    old = past_retention(before)
    assert old.height == 3 * 8 * 2 and old.height < before.height

    counts = store.cleanup(KEEP_DAYS, 30, archive=True)

    assert counts["odds_history_archived"] == counts["odds_history"] == old.height
    files = archive_dir(store.path)
    days = sorted(p.name for p in files.glob("date=*"))
    assert days == sorted({f"date={t.date()}" for t in OLD}), "one folder per UTC day of observed_at"
    assert not list(files.glob(".staging-*")), "no staging left behind"

    back = archived(store)
    assert back.select(pl.col("date").cast(pl.String)).to_series().to_list() == \
        back.select(pl.col("observed_at").dt.date().cast(pl.String)).to_series().to_list()
    assert back.drop("date").sort("sr_id", "bookmaker", "market", "outcome", "observed_at").equals(old)
    assert history(store).equals(before.filter(~pl.col("observed_at").is_in(old["observed_at"].implode())))

    summary = archive_summary(store.path)
    assert summary["rows"] == old.height and summary["files"] == len(days)
    assert set(summary["days"]) == {d.removeprefix("date=") for d in days}


def test_without_the_setting_cleanup_only_deletes(store):
    counts = store.cleanup(KEEP_DAYS, 30)
    assert counts["odds_history"] > 0 and "odds_history_archived" not in counts
    assert not archive_dir(store.path).exists()


def test_a_failed_write_deletes_nothing(store):
    before = history(store)
    archive_dir(store.path).write_text("a file where the archive folder should be")
    with pytest.raises(OSError):
        store.cleanup(KEEP_DAYS, 30, archive=True)
    assert history(store).equals(before)
    assert store.table_counts()["events"] == 2

    archive_dir(store.path).unlink()
    day = OLD[-1].date()
    (archive_dir(store.path) / f"date={day}").parent.mkdir()
    (archive_dir(store.path) / f"date={day}").write_text("blocks the last day's folder")
    with pytest.raises(OSError):
        store.cleanup(KEEP_DAYS, 30, archive=True)
    assert history(store).equals(before), "files of the other days may be in place, but nothing is deleted"

    (archive_dir(store.path) / f"date={day}").unlink()
    counts = store.cleanup(KEEP_DAYS, 30, archive=True)
    assert counts["odds_history"] == past_retention(before).height
    back = archived(store)
    assert back.height == past_retention(before).height, "the retry wrote only what was missing: no duplicates"


def test_archiving_twice_writes_nothing_new(store):
    before = history(store)
    cutoff = NOW - timedelta(days=KEEP_DAYS)
    first = store.archive_history(cutoff)  # as if cleanup died after writing, before deleting
    assert first == past_retention(before).height
    assert store.archive_history(cutoff) == 0
    assert history(store).equals(before), "archiving alone deletes nothing"

    counts = store.cleanup(KEEP_DAYS, 30, archive=True)
    assert (counts["odds_history_archived"], counts["odds_history"]) == (0, first)
    assert archived(store).height == first


def test_the_scheduler_cleanup_archives_when_the_setting_is_on(store, store_target):
    settings = load_settings(**store_target.settings(), history_retention_days=KEEP_DAYS, archive_history=True)
    SchedulerService(settings, store).cleanup_job()
    deleted = store.get_settings()["last_cleanup"]["deleted"]
    assert deleted["odds_history_archived"] == deleted["odds_history"] > 0

    archive_dir(store.path).rename(archive_dir(store.path).with_name("moved"))
    archive_dir(store.path).write_text("not a folder")
    batch(store, NOW - timedelta(days=8), "sr:match:1", 9)
    SchedulerService(settings, store).cleanup_job()
    last = store.get_settings()["last_cleanup"]
    assert "error" in last and last["deleted"] == {}, "the failure is recorded for the storage page"
    assert past_retention(history(store)).height == 8, "and the history it could not archive is still there"

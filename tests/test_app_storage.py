"""The storage page: file size, rows per table, history growth per day, retention and last cleanup."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
from app_fixtures import Seeded, later, open_page, seed_store
from test_app_value import reprice

from engine.config import load_settings
from engine.store import views
from engine.store.archive import archive_dir
from scheduler.main import SchedulerService

PAGE = "pages/storage.py"


def table(at, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def growth(at) -> dict[str, int]:
    """The bar chart's data: UTC day → history rows."""
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1, "one growth chart"
    data = pa.ipc.open_stream(charts[0].proto.datasets[0].data.data).read_all()
    return dict(zip(data["day"].to_pylist(), data["rows"].to_pylist()))


def aged(tmp_path: Path) -> tuple[Seeded, dict[str, int]]:
    """A seeded store plus price changes observed 3 and 2 days ago: history rows per old UTC day."""
    seeded = seed_store(tmp_path / "oddsdesk.duckdb", events=6)
    prices = seeded.store.current_prices(available_only=True).head(12)
    keys = [(r["sr_id"], r["bookmaker"], r["market"], r["line"], r["outcome"]) for r in prices.iter_rows(named=True)]
    now = views.utcnow()
    rows = {}
    for days, chunk in ((3, keys[:7]), (2, keys[7:])):
        when = now - timedelta(days=days)
        rows[str(when.date())] = reprice(seeded.store, {k: 1.1 for k in chunk}, observed_at=when).history_rows
    return seeded, rows


def test_size_rows_per_table_and_daily_growth_match_the_store(tmp_path, monkeypatch):
    seeded, old_days = aged(tmp_path)
    at = open_page(seeded.db_path, monkeypatch, PAGE)

    counts = seeded.store.table_counts()
    shown = table(at, "Rows")
    assert dict(zip(shown["Table"], shown["Rows"])) == counts
    assert all(note for note in shown["Holds"]), "every table says what it holds"
    assert any(f"{seeded.store.db_bytes():,} bytes" in c.value for c in at.caption)
    assert {m.label: m.value for m in at.metric}["Odds history rows"] == f"{counts['odds_history']:,}"

    per_day = growth(at)
    assert {d: per_day[d] for d in old_days} == old_days
    assert all(n > 0 for n in old_days.values())
    assert sum(per_day.values()) == counts["odds_history"]
    assert list(per_day) == sorted(per_day)


def test_retention_in_force_and_the_last_cleanup(tmp_path, monkeypatch):
    seeded, old_days = aged(tmp_path)
    at = open_page(seeded.db_path, monkeypatch, PAGE)
    assert any("has not run yet" in i.value for i in at.info)
    retention = table(at, "Days").set_index("Setting")
    assert retention.loc["Odds history kept", "Days"] == 14
    assert retention.loc["Odds history kept", "From"] == "environment / default"

    seeded.store.put_settings({"history_retention_days": 7})  # as the Settings page saves it
    settings = load_settings(db_path=seeded.db_path, history_retention_days=1)
    SchedulerService(settings, seeded.store).cleanup_job()  # the scheduler's hourly job

    at = later(at)
    retention = table(at, "Days").set_index("Setting")
    assert retention.loc["Odds history kept", "Days"] == 7
    assert retention.loc["Odds history kept", "From"] == "saved in the app"
    assert retention.loc["Runs kept", "From"] == "environment / default"

    deleted = table(at, "Rows deleted")
    assert dict(zip(deleted["Table"], deleted["Rows deleted"]))["odds_history"] == sum(old_days.values())
    assert any("Last cleanup" in s.value and f"deleted {deleted['Rows deleted'].sum():,} rows" in s.value
               for s in at.success)
    assert not set(old_days) & set(growth(at)), "the days past retention are gone from the chart"
    link = at.get("page_link")[0]
    assert link.value == "Change retention on the Settings page" and link.proto.page == "settings"


def test_a_cleanup_older_than_two_hours_is_flagged(tmp_path, monkeypatch):
    seeded = seed_store(tmp_path / "oddsdesk.duckdb", events=6)
    at = open_page(seeded.db_path, monkeypatch, PAGE)
    ran = views.utcnow() - timedelta(hours=3)
    seeded.store.put_settings({"last_cleanup": {"at": ran.isoformat(), "deleted": {"odds_history": 0}}})
    at = later(at)
    assert any("Last cleanup 3.0 h ago" in w.value and "oddsdesk scheduler" in w.value for w in at.warning)


def test_an_empty_database_shows_zero_rows_and_what_to_do(tmp_path, monkeypatch):
    at = open_page(tmp_path / "oddsdesk.duckdb", monkeypatch, PAGE)
    assert not at.error
    assert set(table(at, "Rows")["Rows"]) == {0}
    assert any("No odds history yet" in i.value and "Scrape now" in i.value for i in at.info)
    assert any("has not run yet" in i.value for i in at.info)
    assert not at.get("vega_lite_chart")


# --- archive ----------------------------------------------------------------------------------


def test_archive_off_says_what_it_would_do(tmp_path, monkeypatch):
    seeded = seed_store(tmp_path / "oddsdesk.duckdb", events=6)
    at = open_page(seeded.db_path, monkeypatch, PAGE)
    assert any(i.value.startswith("Off:") and "Archive history to Parquet" in i.value for i in at.info)
    assert "Rows archived" not in {m.label for m in at.metric}


def test_archived_history_size_days_and_last_run(tmp_path, monkeypatch):
    seeded, old_days = aged(tmp_path)
    seeded.store.put_settings({"archive_history": True})  # as the Settings page saves it
    settings = load_settings(db_path=seeded.db_path, history_retention_days=1, archive_history=True)
    SchedulerService(settings, seeded.store).cleanup_job()

    at = open_page(seeded.db_path, monkeypatch, PAGE)
    rows = sum(old_days.values())
    shown = {m.label: m.value for m in at.metric}
    assert shown["Rows archived"] == f"{rows:,}"
    assert shown["Days archived"] == str(len(old_days))
    assert shown["Last archive run"].endswith(f"({rows:,} rows)")
    assert any(f"{rows:,} history rows archived to Parquet first" in s.value for s in at.success)
    assert any(c.value.startswith("On:") and "odds_history_archive" in c.value for c in at.caption)
    days = table(at, "Day (UTC)")
    assert dict(zip(days["Day (UTC)"], days["Rows"])) == old_days
    assert not set(old_days) & set(growth(at)), "archived days left the database"


def test_a_failed_archive_is_shown_and_deletes_nothing(tmp_path, monkeypatch):
    seeded, old_days = aged(tmp_path)
    archive_dir(seeded.db_path).write_text("a file where the archive folder should be")
    settings = load_settings(db_path=seeded.db_path, history_retention_days=1, archive_history=True)
    SchedulerService(settings, seeded.store).cleanup_job()

    at = open_page(seeded.db_path, monkeypatch, PAGE)
    assert any("failed" in e.value and "deletes nothing" in e.value for e in at.error)
    assert {d: growth(at)[d] for d in old_days} == old_days, "the old days are still in the database"


def test_turning_the_archive_on_in_settings(tmp_path, monkeypatch):
    seeded = seed_store(tmp_path / "oddsdesk.duckdb", events=6)
    at = open_page(seeded.db_path, monkeypatch, "pages/settings.py")
    assert at.checkbox(key="archive_history").value is False
    at.checkbox(key="archive_history").check()
    at.form_submit_button[0].click().run()
    assert seeded.store.get_settings()["archive_history"] is True
    at.switch_page(PAGE)
    at = later(at)
    assert any(c.value.startswith("On:") for c in at.caption)

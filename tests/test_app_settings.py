"""Settings page: runtime knobs validated like the environment, saved to the settings table."""

from __future__ import annotations

import pandas as pd
from app_fixtures import open_page, seed_store

from engine.config import RUNTIME_KEYS

PAGE = "pages/settings.py"


def in_force(at) -> dict[str, str]:
    table: pd.DataFrame = next(d.value for d in at.dataframe if "In force" in d.value.columns)
    return dict(zip(table["Key"], table["In force"]))


def test_invalid_values_are_refused_with_the_reason_and_nothing_is_saved(tmp_path, monkeypatch):
    seeded = seed_store(tmp_path / "oddsdesk.duckdb", events=6)
    at = open_page(seeded.db_path, monkeypatch, PAGE)
    at.number_input(key="betpawa_concurrency").set_value(0)
    at.form_submit_button[0].click().run()
    assert any("Not saved" in e.value and "betpawa_concurrency" in e.value for e in at.error)
    assert not set(seeded.store.get_settings()) & set(RUNTIME_KEYS)
    assert in_force(at)["betpawa_concurrency"] == "50"


def test_a_valid_save_lands_in_the_settings_table_and_shows_in_force(tmp_path, monkeypatch):
    seeded = seed_store(tmp_path / "oddsdesk.duckdb", events=6)
    at = open_page(seeded.db_path, monkeypatch, PAGE)
    at.number_input(key="scrape_interval_min").set_value(2.5)
    at.number_input(key="bet9ja_concurrency").set_value(10)
    at.number_input(key="history_retention_days").set_value(7)
    at.form_submit_button[0].click().run()
    assert not at.error
    assert any("within ~10 s" in s.value for s in at.success)
    saved = seeded.store.get_settings()
    assert saved["scrape_interval_min"] == 2.5
    assert saved["bet9ja_concurrency"] == 10
    assert saved["history_retention_days"] == 7
    shown = in_force(at)
    assert shown["scrape_interval_min"] == "2.5" and shown["bet9ja_concurrency"] == "10"

    again = open_page(seeded.db_path, monkeypatch, PAGE)
    assert again.number_input(key="bet9ja_concurrency").value == 10

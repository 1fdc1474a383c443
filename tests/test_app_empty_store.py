"""A new user with no database yet: every page opens and says what to do, nothing crashes."""

from __future__ import annotations

import socket

import pytest
from app_fixtures import open_page

from conftest import StoreTarget

PAGES = ["pages/comparison.py", "pages/event.py", "pages/runs.py", "pages/coverage.py", "pages/sql.py",
         "pages/settings.py", "pages/value.py", "pages/storage.py", "pages/alerts.py", "pages/margins.py"]


def test_missing_database_shows_the_first_steps(tmp_path, monkeypatch):
    db = tmp_path / "new" / "oddsdesk.duckdb"
    at = open_page(db, monkeypatch)
    assert any("No events yet" in i.value and "Scrape now" in i.value for i in at.info)
    assert any("No run yet" in c.value for c in at.sidebar.caption)
    assert at.sidebar.button(key="scrape_now")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens_on_an_empty_database(store_target, monkeypatch, page):
    at = open_page(store_target, monkeypatch, page)
    assert not at.exception
    assert not at.error
    if page in ("pages/comparison.py", "pages/event.py", "pages/runs.py", "pages/coverage.py"):
        assert any("Scrape now" in i.value for i in at.info)


def test_an_unreachable_database_server_is_named_on_the_page(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = StoreTarget(tmp_path / "x.duckdb", f"postgresql+psycopg://desk:s3cret@127.0.0.1:{port}/odds")
    at = open_page(target, monkeypatch)
    assert any("Cannot reach the database at postgresql+psycopg://desk:***@127.0.0.1" in e.value for e in at.error)
    assert not any("s3cret" in e.value for e in at.error)

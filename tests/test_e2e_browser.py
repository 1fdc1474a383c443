"""The whole product in a real browser: `oddsdesk up --simulate`, then an analyst's walk through it.

Watch the first scrape run to completion, filter the comparison grid to one tournament, download
it as CSV, open an event from the grid, visit every other page, stop the product and find none
of its processes left. Every value the page shows is checked against the store the scheduler
filled (``Store(db)``), never against numbers written here.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from e2e_helpers import (
    Product,
    chromium,
    descendants,
    exceptions,
    grid_rows,
    keyed,
    kill_product,
    metric,
    start_product,
    still_running,
    stop_product,
    wait_until,
)
from playwright.sync_api import Page, expect

from engine.config import BOOKS
from engine.markets.catalogue import load_catalogue
from engine.store import Store
from engine.store.views import BOOK_LABELS, outcome_labels

pytestmark = pytest.mark.e2e

EVENTS = 60
BATCH = 10
#: One request in flight per book and a 0.5 s pause after each: the first run lasts 30 s or more,
#: long enough to watch its progress bar move, whatever the machine's load.
SLOW_FIRST_RUN = {
    "ODDSDESK_BATCH_SIZE": str(BATCH),
    **{f"ODDSDESK_{b.upper()}_CONCURRENCY": "1" for b in BOOKS},
    **{f"ODDSDESK_{b.upper()}_DELAY_MS": "500" for b in BOOKS},
}
WAIT_S = 60
RUN_WAIT_S = 120
#: glide-data-grid's header and row height in Streamlit (px): where a row's checkbox is on the canvas.
GRID_HEADER_PX = 35
GRID_ROW_PX = 35
MARKET = "1x2_ft"
MAIN = '[data-testid="stMain"]'
DATAFRAME = '[data-testid="stDataFrame"]'


def test_analyst_runs_the_whole_product_in_a_browser(tmp_path: Path, artifacts: Path) -> None:
    product = start_product(tmp_path, EVENTS, SLOW_FIRST_RUN)
    children = descendants(product.proc.pid)
    try:
        commands = " | ".join(c.cmdline for c in children)
        for part in ("engine.simulator.server", "engine.cli scheduler", "streamlit run"):
            assert part in commands, f"`oddsdesk up --simulate` did not start {part}: {commands}"

        store = Store(product.db_path)
        with chromium(tmp_path / "profile") as browser:
            page = browser.new_page()
            page.set_default_timeout(WAIT_S * 1000)
            expect.set_options(timeout=WAIT_S * 1000)
            watch_first_run(page, product, store, artifacts)
            country, tournament, upcoming = filter_comparison_by_tournament(page, store, artifacts)
            check_comparison_csv(page, store, country, tournament, upcoming, tmp_path)
            open_event_from_grid(page, store, upcoming, artifacts)
            visit_coverage(page, store, artifacts)
            run_sql(page, store, artifacts)
            visit_settings(page, artifacts)
            visit_value_and_storage(page, store, artifacts)

        assert stop_product(product) == 0, product.log_tail()
        left = still_running(children, session=product.proc.pid)
        assert not left, "still running after `oddsdesk up` stopped: " + "; ".join(
            f"{p.pid} {p.cmdline}" for p in left)
    finally:
        if product.alive() or still_running(children, session=product.proc.pid):
            kill_product(product)


# --- the walk ------------------------------------------------------------------------------------


def watch_first_run(page: Page, product: Product, store: Store, artifacts: Path) -> None:
    """Scrape runs: the first run's progress bar advances batch by batch, then the run is COMPLETED."""
    wait_until(lambda: store.runs(1).height, WAIT_S, "the scheduler to start the first run",
               on_timeout=product.log_tail)
    page.goto(f"{product.url}/runs")
    expect(page.locator("h1")).to_have_text("Scrape runs")

    progress: list[tuple[int, int]] = []
    statuses: list[str] = []

    def completed() -> bool:
        for text in page.locator('[data-testid="stProgress"]').all_inner_texts():
            found = re.search(r"Run #1 .*?(\d+)/(\d+) batches stored", text)
            if found:
                if not progress:
                    page.screenshot(path=artifacts / "e2e-runs-progress.png", full_page=True)
                progress.append((int(found[1]), int(found[2])))
        status = metric(page, "Status")
        if status and (not statuses or statuses[-1] != status):
            statuses.append(status)
        return status == "COMPLETED"

    wait_until(completed, RUN_WAIT_S, "run #1 to show COMPLETED on the Scrape runs page",
               on_timeout=lambda: f"statuses seen {statuses}, progress seen {progress}\n{product.log_tail()}")
    run = store.run(1)
    assert run is not None and run["status"] == "COMPLETED"
    batches = math.ceil(run["events_total"] / BATCH)
    assert statuses[0] == "RUNNING" and statuses[-1] == "COMPLETED", statuses
    assert progress, "the running run never showed a progress bar with stored batches"
    assert {total for _, total in progress} == {batches}, progress
    assert [done for done, _ in progress] == sorted(done for done, _ in progress), "progress went backwards"
    assert min(done for done, _ in progress) < batches, "the bar was only ever seen full"

    expect(page.locator('[data-testid="stProgress"]')).to_have_count(0)
    assert metric(page, "Events") == str(run["events_total"])
    assert metric(page, "Scraped") == str(run["events_scraped"]) == str(store.events().height)
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("Last run #1 COMPLETED")
    assert not exceptions(page)
    page.screenshot(path=artifacts / "e2e-runs.png", full_page=True)


def pick_tournament(events: pl.DataFrame, now: datetime) -> tuple[str, str, pl.DataFrame]:
    """A tournament with several upcoming events and none kicking off during the test.

    The grid hides started events, so a kickoff in the next minutes would change what it shows
    between reading the store and reading the page.
    """
    soon = now + timedelta(minutes=20)
    per = (
        events.group_by("country", "tournament")
        .agg((pl.col("kickoff") > now).sum().alias("upcoming"),
             pl.col("kickoff").is_between(now - timedelta(minutes=1), soon).any().alias("near"))
        .filter(~pl.col("near") & pl.col("upcoming").is_between(2, 15))
        .sort(["upcoming", "country", "tournament"], descending=[True, False, False])
    )
    assert per.height, f"no tournament with 2–15 upcoming events away from a kickoff:\n{events}"
    country, tournament = per.row(0)[:2]
    upcoming = events.filter((pl.col("country") == country) & (pl.col("tournament") == tournament)
                             & (pl.col("kickoff") > now))
    return country, tournament, upcoming.with_columns(pl.format("{} – {}", "home", "away").alias("match"))


def filter_comparison_by_tournament(page: Page, store: Store, artifacts: Path) -> tuple[str, str, pl.DataFrame]:
    """Odds comparison, all dates, one tournament: the grid lists exactly its upcoming events."""
    nav(page, "Odds comparison")
    expect(page.locator("h1")).to_have_text("Odds comparison")
    country, tournament, upcoming = pick_tournament(store.events(), datetime.now(timezone.utc))

    page.get_by_text("All dates", exact=True).click()
    expect(page.get_by_role("radio", name="All dates")).to_be_checked()
    keyed(page, "tournaments").locator("input").click()
    page.get_by_role("option", name=f"{tournament} · {country}", exact=True).click()
    page.keyboard.press("Escape")

    grid = keyed(page, "grid")
    wanted = sorted(upcoming["match"].to_list())

    def filtered_rows() -> list[dict[str, str]] | None:
        rows = grid_rows(grid)
        return rows if sorted(r.get("Match", "") for r in rows) == wanted else None

    rows = wait_until(filtered_rows, WAIT_S, f"the grid to list only {tournament} ({country})",
                      on_timeout=lambda: f"expected {wanted}\ngrid shows {grid_rows(grid)}")
    assert {(r["Country"], r["Tournament"]) for r in rows} == {(country, tournament)}
    expect(page.get_by_text(re.compile(rf"^{upcoming.height} events · "))).to_be_visible()
    assert not exceptions(page)
    page.screenshot(path=artifacts / "e2e-comparison.png", full_page=True)
    return country, tournament, upcoming


def check_comparison_csv(page: Page, store: Store, country: str, tournament: str, upcoming: pl.DataFrame,
                         tmp_path: Path) -> None:
    """The CSV holds the filtered grid: one row per shown event, the store's current odds."""
    with page.expect_download() as info:
        keyed(page, "comparison_csv").get_by_role("button").click()
    download = info.value
    assert download.suggested_filename.startswith(f"oddsdesk-comparison-{MARKET}-")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    csv = pl.read_csv(path, infer_schema=False)

    assert csv.height == upcoming.height
    assert sorted(csv["sr_id"].to_list()) == sorted(upcoming["sr_id"].to_list())
    assert set(csv["Country"]) == {country} and set(csv["Tournament"]) == {tournament}

    labels = outcome_labels(load_catalogue().markets[MARKET])
    prices = available_odds(store, upcoming["sr_id"].to_list())
    compared = 0
    for row in csv.iter_rows(named=True):
        for book in BOOKS:
            for outcome, label in labels.items():
                cell = row[f"{BOOK_LABELS[book]} {label}"]
                expected = prices.get((row["sr_id"], book, outcome))
                if expected is None:
                    assert cell in (None, ""), (row["sr_id"], book, outcome, cell)
                else:
                    assert float(cell) == pytest.approx(expected, abs=1e-9), (row["sr_id"], book, outcome)
                    compared += 1
    assert compared >= upcoming.height * len(labels), "the CSV carries almost no prices"


def open_event_from_grid(page: Page, store: Store, upcoming: pl.DataFrame, artifacts: Path) -> None:
    """Selecting the grid's first row opens that event, whose 1X2 prices are the store's."""
    grid = keyed(page, "grid")
    event = upcoming.sort(["kickoff", "match"]).row(0, named=True)  # the grid's default order
    first = grid_rows(grid)[0]["Match"]
    assert first == event["match"], "the grid is not in kickoff order"
    canvas = grid.locator("canvas").first.bounding_box()
    assert canvas is not None
    page.mouse.click(canvas["x"] + GRID_ROW_PX / 2, canvas["y"] + GRID_HEADER_PX + GRID_ROW_PX / 2)
    page.wait_for_url(re.compile(rf"/event\?sr_id={event['sr_id']}$"))
    expect(page.locator("h1")).to_have_text(first)
    expect(page.locator('[data-testid="stMarkdownContainer"]', has_text="SportRadar").first).to_contain_text(
        f"{event['tournament']} · {event['country']}")

    market = load_catalogue().markets[MARKET]
    labels = outcome_labels(market)
    page.get_by_role("tab", name=re.compile(r"^Popular \(\d+\)$")).click()
    grid = page.get_by_role("tabpanel", name=re.compile(r"^Popular")).locator(DATAFRAME)

    def market_rows() -> list[dict[str, str]] | None:
        rows = [r for r in grid_rows(grid) if r.get("Market") == market.name]
        return rows if len(rows) == len(labels) else None

    rows = wait_until(market_rows, WAIT_S, f"the event's {market.name} rows",
                      on_timeout=lambda: str(grid_rows(grid)))
    prices = available_odds(store, [event["sr_id"]])
    compared = 0
    for row in rows:
        outcome = next(k for k, v in labels.items() if v == row["Outcome"])
        for book in BOOKS:
            expected = prices.get((event["sr_id"], book, outcome))
            shown = row[BOOK_LABELS[book]]
            if expected is None:
                assert shown == "", (book, outcome, shown)
            else:
                assert float(shown) == pytest.approx(expected, abs=1e-9), (book, outcome)
                compared += 1
    assert compared >= len(labels)
    assert not exceptions(page)
    page.screenshot(path=artifacts / "e2e-event.png", full_page=True)


def visit_coverage(page: Page, store: Store, artifacts: Path) -> None:
    """Coverage counts the upcoming events the store holds."""
    before = upcoming_count(store)
    nav(page, "Coverage")
    expect(page.locator("h1")).to_have_text("Coverage")
    shown = int(wait_until(lambda: metric(page, "Events"), WAIT_S, "the Coverage Events card"))
    assert upcoming_count(store) <= shown <= before
    assert not exceptions(page)
    page.screenshot(path=artifacts / "e2e-coverage.png", full_page=True)


def run_sql(page: Page, store: Store, artifacts: Path) -> None:
    """The SQL notebook runs a SELECT and shows the store's answer."""
    sql = "SELECT country, count(*) AS events FROM events GROUP BY country ORDER BY country"
    expected = store.query(sql)
    nav(page, "SQL notebook")
    expect(page.locator("h1")).to_have_text("SQL notebook")
    page.get_by_label("SQL", exact=True).fill(sql)
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_text(f"{expected.height} rows × 2 columns", exact=True)).to_be_visible()
    rows = wait_until(lambda: grid_rows(page.locator(f"{MAIN} {DATAFRAME}")), WAIT_S, "the query's result grid")
    assert [(r["country"], int(r["events"])) for r in rows] == list(expected.iter_rows())
    assert not exceptions(page)
    page.screenshot(path=artifacts / "e2e-sql.png", full_page=True)


def visit_settings(page: Page, artifacts: Path) -> None:
    """Settings shows the values the product was started with (the environment's batch size)."""
    nav(page, "Settings")
    expect(page.locator("h1")).to_have_text("Settings")
    expect(keyed(page, "batch_size").get_by_role("spinbutton")).to_have_value(str(BATCH))
    expect(page.get_by_role("heading", name="Values in force")).to_be_visible()
    assert not exceptions(page)
    page.screenshot(path=artifacts / "e2e-settings.png", full_page=True)


def visit_value_and_storage(page: Page, store: Store, artifacts: Path) -> None:
    """The issue-7 pages (value, alerts, margin analytics, storage) render on the live database
    without an exception box."""
    nav(page, "Value & arbitrage")
    expect(page.locator("h1")).to_have_text("Value & arbitrage")
    assert not exceptions(page)
    page.screenshot(path=artifacts / "e2e-value.png", full_page=True)
    nav(page, "Movement alerts")
    expect(page.locator("h1")).to_have_text("Movement alerts")
    assert not exceptions(page)
    page.screenshot(path=artifacts / "e2e-alerts.png", full_page=True)
    nav(page, "Margin analytics")
    expect(page.locator("h1")).to_have_text("Margin analytics")
    expect(page.get_by_role("heading", name="By market")).to_be_visible(timeout=60_000)
    assert not exceptions(page)
    page.screenshot(path=artifacts / "e2e-margins.png", full_page=True)
    nav(page, "Storage")
    expect(page.locator("h1")).to_have_text("Storage")
    # The rows-per-table grid draws on a canvas; its cells are in the page for screen readers.
    expect(page.get_by_text(f"{store.table_counts()['events']:,}", exact=True).first).to_be_attached()
    expect(page.get_by_role("heading", name="Retention")).to_be_visible()
    assert not exceptions(page)
    page.screenshot(path=artifacts / "e2e-storage.png", full_page=True)


# --- small helpers -------------------------------------------------------------------------------


def nav(page: Page, title: str) -> None:
    """Open a page the way a user does: its link in the sidebar."""
    page.locator('[data-testid="stSidebarNavLink"]').filter(has_text=title).click()


def available_odds(store: Store, sr_ids: list[str]) -> dict[tuple[str, str, str], float]:
    prices = store.current_prices(sr_ids=sr_ids, market=MARKET, available_only=True)
    return {(r["sr_id"], r["bookmaker"], r["outcome"]): r["odds"]
            for r in prices.filter(pl.col("line").is_null()).iter_rows(named=True)}


def upcoming_count(store: Store) -> int:
    return store.events().filter(pl.col("kickoff") >= datetime.now(timezone.utc)).height

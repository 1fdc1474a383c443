"""Margin analytics rebuilt from history: hand-computed margins over a scripted price path stored
the way the pipeline stores it (``Store.store_batch`` into a real DuckDB file), and the same
numbers as ``add_margins`` applied snapshot by snapshot to a simulator world's two runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from app_fixtures import seed_store

from engine.markets.margins import DOUBLE_COVER, EXCLUSIVE, add_margins
from engine.store import Store
from engine.store.analytics import BUCKET_ORDER, change_rates, event_chunks, margin_by, margin_by_bucket
from engine.store.types import PRICE_SCHEMA, UNMAPPED_SCHEMA, BatchWrite, BookEventRow, EventRow, ScrapeStatusRow

H = timedelta(hours=1)
T0 = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=4)
KICKOFF_A = T0 + 60 * H  # England, Premier League
KICKOFF_B = T0 + 30 * H  # Italy, Serie A
EVENTS = {
    "sr:match:1": EventRow("sr:match:1", KICKOFF_A, "England", "Premier League", "Arsenal", "Chelsea"),
    "sr:match:2": EventRow("sr:match:2", KICKOFF_B, "Italy", "Serie A", "Inter", "Milan"),
}


def margin(*odds: float, covers: int = 1) -> float:
    return (sum(1 / o for o in odds) / covers - 1) * 100


def weighted(*parts: tuple[float, float]) -> float:
    """Σ margin × hours ÷ Σ hours."""
    return sum(m * h for m, h in parts) / sum(h for _, h in parts)


# (sr_id, book) -> [(hours after T0, {(market, line, outcome): (odds, available)})]: each entry is
# that pair's complete price list from then on, as a scrape of it would return.
A_1X2 = {("1x2_ft", None, "home"): (2.5, True), ("1x2_ft", None, "draw"): (3.125, True),
         ("1x2_ft", None, "away"): (3.125, True)}
A_OU = {("over_under_ft", 2.5, "over"): (1.9, True), ("over_under_ft", 2.5, "under"): (1.9, True)}
PATHS: dict[tuple[str, str], list[tuple[float, dict]]] = {
    ("sr:match:1", "betpawa"): [
        (0, A_1X2 | A_OU),                                                                  # 4 %
        (10, A_1X2 | A_OU | {("1x2_ft", None, "home"): (2.0, True)}),                        # 14 %
        (57, A_1X2 | A_OU | {("1x2_ft", None, "home"): (2.0, True), ("1x2_ft", None, "away"): (4.0, True)}),  # 7 %
        (59, A_1X2 | A_OU | {("1x2_ft", None, "home"): (2.0, True), ("1x2_ft", None, "away"): (4.0, False)}),  # suspended
    ],
    ("sr:match:1", "bet9ja"): [
        (0, {("double_chance_ft", None, "home_draw"): (1.25, True), ("double_chance_ft", None, "home_away"): (1.30, True),
             ("double_chance_ft", None, "draw_away"): (1.60, True)}),
    ],
    ("sr:match:2", "betpawa"): [
        (0, {("1x2_ft", None, "home"): (2.0, True), ("1x2_ft", None, "draw"): (3.5, True),
             ("1x2_ft", None, "away"): (3.5, True)}),
    ],
    ("sr:match:2", "sportybet"): [  # no away price: never a complete set, never a margin
        (0, {("1x2_ft", None, "home"): (2.1, True), ("1x2_ft", None, "draw"): (3.4, True)}),
        (5, {("1x2_ft", None, "home"): (2.2, True), ("1x2_ft", None, "draw"): (3.4, True)}),
    ],
}

BP_A_1X2 = [(margin(2.5, 3.125, 3.125), 10), (margin(2.0, 3.125, 3.125), 47), (margin(2.0, 3.125, 4.0), 2)]
BP_B_1X2 = [(margin(2.0, 3.5, 3.5), 30)]
BP_A_OU = [(margin(1.9, 1.9), 60)]
B9_A_DC = [(margin(1.25, 1.30, 1.60, covers=2), 60)]


def store_paths(store: Store) -> None:
    """Each change time of the script as one stored batch of the pairs that have a price list then."""
    times = sorted({h for path in PATHS.values() for h, _ in path})
    for hours in times:
        at = T0 + hours * H
        pairs = [(key, prices) for key, path in PATHS.items() for h, prices in path if h == hours]
        rows = [(sr_id, book, m, line, o, odds, available)
                for (sr_id, book), prices in pairs for (m, line, o), (odds, available) in prices.items()]
        run_id = store.start_run("schedule", ["betpawa", "sportybet", "bet9ja"])
        store.store_batch(BatchWrite(
            run_id=run_id, batch_no=1, observed_at=at, events=[EVENTS[s] for s in sorted({k[0] for k, _ in pairs})],
            book_events=[BookEventRow(book, f"{book}-{sr_id}", sr_id) for (sr_id, book), _ in pairs],
            prices=pl.DataFrame(rows, schema=PRICE_SCHEMA, orient="row"),
            scraped=[key for key, _ in pairs],
            statuses=[ScrapeStatusRow(sr_id, (book,), (book,), (), {}, 10) for (sr_id, book), _ in pairs],
            unmapped=pl.DataFrame(schema=UNMAPPED_SCHEMA),
        ))
        store.finish_run(run_id, "COMPLETED", {})


@pytest.fixture(scope="module")
def scripted(tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("margins") / "oddsdesk.duckdb")
    store_paths(store)
    return store


def lookup(frame: pl.DataFrame, **keys: object) -> dict:
    rows = frame.filter(*[pl.col(k) == v for k, v in keys.items()]).to_dicts()
    assert len(rows) == 1, (keys, rows)
    return rows[0]


def test_time_weighted_margins_per_book_tournament_country_and_market(scripted):
    result = scripted.margin_analytics(T0 - H, NOW, now=NOW)
    cells = result["cells"]

    by_tournament = margin_by(cells, ["country", "tournament"], markets=["1x2_ft"])
    bp_a = lookup(by_tournament, bookmaker="betpawa", tournament="Premier League")
    assert bp_a["margin_pct"] == pytest.approx(weighted(*BP_A_1X2))
    assert bp_a["hours"] == pytest.approx(59)
    assert bp_a["margin_states"] == 3, "three complete states; the suspended last hour has no margin"
    assert lookup(by_tournament, bookmaker="betpawa", tournament="Serie A")["margin_pct"] == pytest.approx(
        margin(2.0, 3.5, 3.5))
    assert by_tournament.filter(pl.col("bookmaker") == "sportybet").is_empty(), "an incomplete set has no margin"

    by_country = margin_by(cells, ["country"])
    assert lookup(by_country, bookmaker="betpawa", country="England")["margin_pct"] == pytest.approx(
        weighted(*BP_A_1X2, *BP_A_OU))
    assert lookup(by_country, bookmaker="bet9ja", country="England")["margin_pct"] == pytest.approx(
        margin(1.25, 1.30, 1.60, covers=2)), "double chance counts each result twice: Σ ÷ 2"

    by_market = margin_by(cells, ["market"])
    assert lookup(by_market, bookmaker="betpawa", market="1x2_ft")["margin_pct"] == pytest.approx(
        weighted(*BP_A_1X2, *BP_B_1X2))
    assert lookup(by_market, bookmaker="betpawa", market="over_under_ft")["margin_pct"] == pytest.approx(
        margin(1.9, 1.9))

    overall = margin_by(cells, [])
    assert lookup(overall, bookmaker="betpawa")["margin_pct"] == pytest.approx(
        weighted(*BP_A_1X2, *BP_B_1X2, *BP_A_OU))
    assert set(overall["bookmaker"]) == {"betpawa", "bet9ja"}


def test_margin_by_time_to_kickoff_splits_states_at_the_bucket_boundaries(scripted):
    buckets = margin_by_bucket(scripted.margin_analytics(T0 - H, NOW, now=NOW)["buckets"], markets=["1x2_ft"])
    betpawa = {r["bucket"]: r for r in buckets.filter(pl.col("bookmaker") == "betpawa").to_dicts()}
    m4, m14, m7 = (m for m, _ in BP_A_1X2)
    serie_a = margin(2.0, 3.5, 3.5)  # event B: 30 h before kickoff to kickoff
    expected = {
        ">48 h": weighted((m4, 10), (m14, 2)),  # event A from 60 h to 48 h before: 10 h at 4 %, 2 h at 14 %
        "24–48 h": weighted((m14, 24), (serie_a, 6)),
        "12–24 h": weighted((m14, 12), (serie_a, 12)),
        "6–12 h": weighted((m14, 6), (serie_a, 6)),
        "3–6 h": weighted((m14, 3), (serie_a, 3)),  # A's change at exactly 3 h before falls wholly after it
        "1–3 h": weighted((m7, 2), (serie_a, 2)),
        "<1 h": serie_a,  # A's away price was suspended for its last hour
    }
    assert list(betpawa) == list(BUCKET_ORDER)
    assert {b: r["margin_pct"] for b, r in betpawa.items()} == pytest.approx(expected)
    assert {b: r["hours"] for b, r in betpawa.items()} == pytest.approx(
        {">48 h": 12, "24–48 h": 30, "12–24 h": 24, "6–12 h": 12, "3–6 h": 6, "1–3 h": 4, "<1 h": 1})


def test_the_period_takes_the_state_it_opened_in_from_before_it(scripted):
    first = margin_by(scripted.margin_analytics(T0, T0 + 10 * H, markets=["1x2_ft"], now=NOW)["cells"], ["tournament"])
    later = margin_by(scripted.margin_analytics(T0 + 10 * H, T0 + 20 * H, markets=["1x2_ft"], now=NOW)["cells"],
                      ["tournament"])
    assert lookup(first, bookmaker="betpawa", tournament="Premier League")["margin_pct"] == pytest.approx(
        margin(2.5, 3.125, 3.125))
    second = lookup(later, bookmaker="betpawa", tournament="Premier League")
    assert second["margin_pct"] == pytest.approx(margin(2.0, 3.125, 3.125)), "no change inside: carried in"
    assert second["hours"] == pytest.approx(10)
    assert scripted.margin_analytics(NOW, NOW + H, now=NOW)["cells"].is_empty(), "every event had kicked off"
    assert scripted.margin_analytics(T0, T0 + H, now=T0 - H)["cells"].is_empty(), "nothing after now"


def test_change_frequency_per_price_hour(scripted):
    cells = scripted.margin_analytics(T0 - H, NOW, now=NOW)["cells"]
    rates = change_rates(cells, ["market"])
    bp = lookup(rates, bookmaker="betpawa", market="1x2_ft")
    # A: home moved at 10 h, away at 57 h; away suspended at 59 h (an availability change).
    # Price-hours on offer: A 3 × 59 + 2 × 1, B 3 × 30.
    assert (bp["odds_changes"], bp["other_changes"]) == (2, 1)
    assert bp["price_hours"] == pytest.approx(3 * 59 + 2 + 3 * 30)
    assert bp["changes_per_price_hour"] == pytest.approx(2 / (3 * 59 + 2 + 3 * 30))
    sporty = lookup(change_rates(cells), bookmaker="sportybet")
    assert (sporty["odds_changes"], sporty["price_hours"]) == (1, pytest.approx(2 * 30)), \
        "counted even where there is no margin"
    assert lookup(rates, bookmaker="bet9ja", market="double_chance_ft")["odds_changes"] == 0
    assert lookup(rates, bookmaker="betpawa", market="over_under_ft")["odds_changes"] == 0


def test_event_chunks_cover_every_event_once():
    ids = [f"sr:match:{n}" for n in (5, 1, 9, 3, 7, 3)]
    assert event_chunks(ids, 2) == [("sr:match:1", "sr:match:3"), ("sr:match:5", "sr:match:7"),
                                    ("sr:match:9", "sr:match:9")]
    assert event_chunks([], 2) == []


# --- the same rule as add_margins, snapshot by snapshot ----------------------------------------


def reference(store: Store, start: datetime, now: datetime) -> pl.DataFrame:
    """Per (book, market): Σ margin × seconds and Σ seconds, from ``add_margins`` run on the full
    price set as of every change time (the latest row of each price), each state lasting to the
    next change time, kickoff or ``now``."""
    history = store.query("SELECT * FROM odds_history")
    kickoffs = dict(store.query("SELECT sr_id, kickoff FROM events").iter_rows())
    times = sorted(set(history["observed_at"]))
    parts = []
    for i, t in enumerate(times):
        snapshot = (history.filter(pl.col("observed_at") <= t).sort("observed_at")
                    .group_by("sr_id", "bookmaker", "market", "line", "outcome").last())
        until = times[i + 1] if i + 1 < len(times) else now
        priced = add_margins(snapshot).filter(pl.col("margin_basis").is_in([EXCLUSIVE, DOUBLE_COVER]))
        per_instance = priced.group_by("sr_id", "bookmaker", "market", "line").agg(pl.col("margin_pct").first())
        ends = per_instance["sr_id"].map_elements(lambda s: min(until, kickoffs[s]), return_dtype=pl.Datetime("us", "UTC"))
        seconds = (ends - pl.lit(max(t, start))).dt.total_microseconds() / 1e6
        parts.append(per_instance.with_columns(seconds=seconds).filter(pl.col("seconds") > 0))
    both = pl.concat(parts)
    return both.group_by("bookmaker", "market").agg(
        (pl.col("margin_pct") * pl.col("seconds")).sum().alias("x"), pl.col("seconds").sum().alias("s"),
    ).with_columns(margin_pct=pl.col("x") / pl.col("s"))


def test_the_same_margins_as_add_margins_on_every_snapshot(tmp_path):
    seeded = seed_store(tmp_path / "oddsdesk.duckdb", events=12)
    now = datetime.now(UTC)
    start = now - timedelta(hours=1)
    ours = margin_by(seeded.store.margin_analytics(start, now, now=now)["cells"], ["market"])
    theirs = reference(seeded.store, start, now)
    joined = ours.join(theirs, on=["bookmaker", "market"], how="full", coalesce=True, suffix="_ref")
    assert joined.height > 100, "many markets compared, double chance and combos among them"
    assert joined.filter(pl.col("margin_pct").is_null() | pl.col("margin_pct_ref").is_null()).is_empty(), \
        "margins for exactly the same books and markets"
    # add_margins rounds each margin to 2 decimals; the averages may differ by that much at most
    worst = joined.select((pl.col("margin_pct") - pl.col("margin_pct_ref")).abs().max()).item()
    assert worst <= 0.005 + 1e-9
    hours = joined.select((pl.col("hours") * 3600 - pl.col("s")).abs().max()).item()
    assert hours < 1e-3
    assert {"double_chance_ft", "1x2_ft", "over_under_ft"} <= set(joined["market"])

"""Margin analytics rebuilt from history: hand-computed margins over a scripted price path stored
the way the pipeline stores it (``Store.store_batch`` into a real DuckDB file, or a real
PostgreSQL database: every store test runs on both), and the same numbers as ``add_margins``
applied snapshot by snapshot to a simulator world's two runs."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
import sqlalchemy as sa
from app_fixtures import BACKENDS, module_target, seed_store
from conftest import StoreTarget
from polars.testing import assert_frame_equal

import scheduler.main as scheduler_main
from engine.config import load_settings
from engine.markets.margins import DOUBLE_COVER, EXCLUSIVE, add_margins
from engine.store import Store
from engine.store.analytics import BUCKET_ORDER, change_rates, event_chunks, margin_by, margin_by_bucket
from engine.store.history import HISTORY_SCHEMA
from engine.store.rollups import Slice, day_slices, day_start, tile, windows
from engine.store.schema import STEPS, migrate
from engine.store.types import PRICE_SCHEMA, UNMAPPED_SCHEMA, BatchWrite, BookEventRow, EventRow, ScrapeStatusRow
from scheduler.main import SchedulerService

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


def store_paths(store: Store, base: datetime = T0) -> None:
    """Each change time of the script as one stored batch of the pairs that have a price list then
    (``base`` moves the whole script, kickoffs included)."""
    times = sorted({h for path in PATHS.values() for h, _ in path})
    shift = base - T0
    events = {sr_id: dataclasses.replace(e, kickoff=e.kickoff + shift) for sr_id, e in EVENTS.items()}
    for hours in times:
        at = base + hours * H
        pairs = [(key, prices) for key, path in PATHS.items() for h, prices in path if h == hours]
        rows = [(sr_id, book, m, line, o, odds, available)
                for (sr_id, book), prices in pairs for (m, line, o), (odds, available) in prices.items()]
        run_id = store.start_run("schedule", ["betpawa", "sportybet", "bet9ja"])
        store.store_batch(BatchWrite(
            run_id=run_id, batch_no=1, observed_at=at, events=[events[s] for s in sorted({k[0] for k, _ in pairs})],
            book_events=[BookEventRow(book, f"{book}-{sr_id}", sr_id) for (sr_id, book), _ in pairs],
            prices=pl.DataFrame(rows, schema=PRICE_SCHEMA, orient="row"),
            scraped=[key for key, _ in pairs],
            statuses=[ScrapeStatusRow(sr_id, (book,), (book,), (), {}, 10) for (sr_id, book), _ in pairs],
            unmapped=pl.DataFrame(schema=UNMAPPED_SCHEMA),
        ))
        store.finish_run(run_id, "COMPLETED", {})


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> str:
    """The module's stores' backend: every store fixture of one test is on the same one."""
    return request.param


@pytest.fixture
def new_target(request, backend: str, tmp_path):
    """Where a new empty store goes on this test's backend (one folder each, so several coexist)."""
    def make(name: str = "store") -> StoreTarget:
        folder = tmp_path / name
        folder.mkdir()
        return module_target(request, folder, backend)
    return make


@pytest.fixture
def new_store(new_target):
    return lambda name="store": new_target(name).store()


@pytest.fixture(scope="module")
def scripted(request, backend: str, tmp_path_factory) -> Store:
    store = module_target(request, tmp_path_factory.mktemp("margins"), backend).store()
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


def test_the_same_margins_as_add_margins_on_every_snapshot(request, backend, tmp_path):
    seeded = seed_store(module_target(request, tmp_path, backend), events=12)
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


# --- hourly and daily rollups: the same numbers from stored slices ------------------------------
# Desk days (Africa/Lagos, UTC+1) start at 23:00 UTC: T0 - 7 h, T0 + 17 h, T0 + 41 h, T0 + 65 h, …
# The pure functions of rollups.py work in naive UTC, as the database does.
N0 = T0.replace(tzinfo=None)


def same_result(ours: dict[str, pl.DataFrame], reference: dict[str, pl.DataFrame]) -> None:
    for name, keys in (("cells", ["bookmaker", "market", "country", "tournament"]),
                       ("buckets", ["bookmaker", "market", "bucket"])):
        assert_frame_equal(ours[name].sort(keys), reference[name].sort(keys), rel_tol=1e-9, abs_tol=1e-6)


def slices(store: Store) -> list[Slice]:
    return [Slice(s.replace(tzinfo=None), h) for s, h in
            store.query("SELECT slice_start, slice_hours FROM margin_rollup_slices").iter_rows()]


def rolled_hours(store: Store, start: datetime, stop: datetime) -> int:
    """Hours of [start, stop) the store answers from slices rather than from history."""
    chosen, _ = tile(start.replace(tzinfo=None), stop.replace(tzinfo=None), slices(store))
    return sum(s.hours for s in chosen)


@pytest.fixture(scope="module")
def rolled_at_40h(request, backend: str, tmp_path_factory) -> Store:
    """Rolled up 40.5 h in: day 1 as a day slice, day 2's hours so far, the state at T0 + 40 h."""
    store = module_target(request, tmp_path_factory.mktemp("rolled_40"), backend).store()
    store_paths(store)
    store.roll_up_margins(history_days=3650, now=T0 + 40.5 * H)
    return store


@pytest.fixture(scope="module")
def rolled_at_end(request, backend: str, tmp_path_factory) -> Store:
    """Rolled up at NOW: four day slices, the hours of the last 24 h and of today."""
    store = module_target(request, tmp_path_factory.mktemp("rolled_end"), backend).store()
    store_paths(store)
    store.roll_up_margins(history_days=3650, now=NOW)
    return store


@pytest.mark.parametrize(("start", "end", "from_slices"), [
    (T0 + 2.5 * H, T0 + 38.25 * H, 22),  # live to the first kept hour (16 h), hours to 38 h, live after
    (T0 - 7 * H, T0 + 50 * H, 47),  # day 1, day 2's hours to 40 h, then the stored state to now (40.5 h)
    (T0 + timedelta(hours=9, minutes=40), T0 + timedelta(hours=29, minutes=50), 13),
    (T0 + 20 * H, T0 + 25 * H, 5),  # whole hours only
])
def test_rolled_up_hours_plus_live_remainder_equal_the_all_live_rebuild(scripted, rolled_at_40h, start, end,
                                                                        from_slices):
    now = T0 + 40.5 * H
    assert rolled_hours(rolled_at_40h, start, min(end, now)) == from_slices
    same_result(rolled_at_40h.margin_analytics(start, end, now=now), scripted.margin_analytics(start, end, now=now))


@pytest.mark.parametrize(("start", "end", "from_slices"), [
    (T0 - 7 * H, T0 + 41 * H, 48),  # two desk days, nothing live
    (T0 - 9.5 * H, T0 + 65.75 * H, 72),  # live before day 1, days 1–3, live into day 4 (its early hours dropped)
    (T0 + 2.5 * H, T0 + 20.25 * H, 0),  # inside old days whose hours are dropped: all live, still right
])
def test_day_slices_and_old_edges_equal_the_all_live_rebuild(scripted, rolled_at_end, start, end, from_slices):
    assert rolled_hours(rolled_at_end, start, end) == from_slices
    same_result(rolled_at_end.margin_analytics(start, end, now=NOW), scripted.margin_analytics(start, end, now=NOW))
    by_tournament = margin_by(rolled_at_end.margin_analytics(T0 - 7 * H, T0 + 65 * H, now=NOW)["cells"],
                              ["tournament"], markets=["1x2_ft"])
    assert lookup(by_tournament, bookmaker="betpawa", tournament="Premier League")["margin_states"] == 3, \
        "a state spanning several slices is counted once"


def test_what_is_stored_hours_days_and_the_state(rolled_at_end):
    stored = sorted(slices(rolled_at_end), key=lambda s: s.start)
    days = [s.start for s in stored if s.hours == 24]
    assert days == [N0 - 7 * H, N0 + 17 * H, N0 + 41 * H, N0 + 65 * H], "every complete desk day"
    hours = [s.start for s in stored if s.hours == 1]
    assert hours == [N0 + n * H for n in range(72, 96)], "hours of the last 24 h kept, older ones dropped"
    status = rolled_at_end.margin_rollup_status()
    assert (status.through, status.hours) == (NOW, 103), "T0 - 7 h to NOW, each hour once"
    counts = rolled_at_end.query("SELECT slice_hours, grain, count(*) AS n FROM margin_rollup "
                                 "GROUP BY slice_hours, grain")
    assert set(counts["grain"]) == {"cell", "bucket"}


def test_a_second_run_changes_nothing(new_store):
    store = new_store()
    store_paths(store)
    first = store.roll_up_margins(history_days=3650, now=NOW)
    assert (first.hours, first.left, first.dropped) == (103, 0, 0)
    table = "SELECT slice_start, slice_hours FROM margin_rollup_slices ORDER BY slice_start, slice_hours"
    rows = f"SELECT * FROM margin_rollup ORDER BY {', '.join(str(n) for n in range(1, 17))}"  # every column
    before = store.query(table), store.query(rows)
    again = store.roll_up_margins(history_days=3650, now=NOW)
    assert (again.hours, again.left) == (0, 0)
    assert_frame_equal(store.query(table), before[0])
    assert_frame_equal(store.query(rows), before[1])


def test_a_budget_stops_between_windows_and_the_next_run_goes_on(scripted, new_store):
    store = new_store()
    store_paths(store)
    first = store.roll_up_margins(history_days=3650, now=NOW, budget_s=0)
    assert first.hours == 6 and first.left == 103 - 6, "one window, then the budget is spent"
    assert store.margin_rollup_status().through == T0 - H
    rest = store.roll_up_margins(history_days=3650, now=NOW)
    assert (rest.hours, rest.left) == (103 - 6, 0)
    same_result(store.margin_analytics(T0 - 7 * H, NOW, now=NOW), scripted.margin_analytics(T0 - 7 * H, NOW, now=NOW))


def test_retention_deletes_the_slices_before_its_cutoff(new_store):
    store = new_store()
    store_paths(store)
    store.roll_up_margins(history_days=3650, now=NOW)
    cutoff = T0 + 20 * H
    counts = store.cleanup(history_days=(datetime.now(UTC) - cutoff) / timedelta(days=1), run_days=3650)
    assert counts["margin_rollup"] > 0
    left = sorted(s.start for s in slices(store))
    assert left[0] == N0 + 41 * H, "day 1 and day 2 (which began before the cutoff) are gone"
    assert store.query("SELECT count(*) AS n FROM margin_rollup WHERE slice_start < ?", [cutoff])["n"][0] == 0
    assert store.query("SELECT count(*) AS n FROM margin_rollup")["n"][0] > 0, "later slices stay"


def late_history(at: datetime) -> pl.DataFrame:
    """An import for event A: BetPawa's draw at 3.0 from ``at`` on."""
    return pl.DataFrame([("sr:match:1", "betpawa", "1x2_ft", None, "draw", 3.0, True, at)],
                        schema={k: v for k, v in HISTORY_SCHEMA.items() if k != "run_id"} | {
                            "observed_at": pl.Datetime("us", "UTC")}, orient="row")


def test_history_imported_into_rolled_up_hours_drops_them_and_they_are_rolled_up_again(new_store):
    rolled, reference = new_store("rolled"), new_store("reference")
    store_paths(rolled)
    store_paths(reference)
    rolled.roll_up_margins(history_days=3650, now=NOW)
    period = (T0 - 7 * H, T0 + 65 * H)
    before = margin_by(rolled.margin_analytics(*period, now=NOW)["cells"], ["tournament"], markets=["1x2_ft"])

    late = T0 + timedelta(hours=20, minutes=30)
    for store in (rolled, reference):
        assert store.import_history(late_history(late)) == 1
    status = rolled.margin_rollup_status()
    assert status.through == T0 + 17 * H, "every slice that ends after 20:00 is dropped, day 1 stays"
    after = rolled.margin_analytics(*period, now=NOW)
    same_result(after, reference.margin_analytics(*period, now=NOW))
    changed = margin_by(after["cells"], ["tournament"], markets=["1x2_ft"])
    assert lookup(changed, bookmaker="betpawa", tournament="Premier League")["margin_pct"] != pytest.approx(
        lookup(before, bookmaker="betpawa", tournament="Premier League")["margin_pct"]), "the import shows"

    again = rolled.roll_up_margins(history_days=3650, now=NOW)
    assert again.hours == 96 - 17
    assert rolled_hours(rolled, *period) == 72
    same_result(rolled.margin_analytics(*period, now=NOW), reference.margin_analytics(*period, now=NOW))


def test_desk_days_tiling_and_windows():
    assert day_slices(N0 - H, N0 + 30 * H) == [Slice(N0 - 7 * H, 24), Slice(N0 + 17 * H, 24)]
    assert day_slices(N0, N0 + H, "UTC") == [Slice(datetime(2025, 3, 1), 24)]
    london = day_slices(datetime(2025, 3, 30, 12), datetime(2025, 3, 30, 13), "Europe/London")
    assert london == [Slice(datetime(2025, 3, 30), 23)], "the day the clocks go forward has 23 hours"
    assert day_slices(N0, N0 + H, "Asia/Kolkata") == [], "midnight at :30 past a UTC hour: hours only"
    day, hour = Slice(N0 - 7 * H, 24), Slice(N0 + 17 * H, 1)
    assert tile(N0 - 7 * H, N0 + 18 * H, [hour, day, Slice(N0 + 10 * H, 1)]) == ([day, hour], [])
    assert tile(N0 - 7.5 * H, N0 + 19 * H, [day, hour]) == ([day, hour], [(N0 - 7.5 * H, N0 - 7 * H),
                                                                          (N0 + 18 * H, N0 + 19 * H)])
    assert tile(N0, N0 + H, [day]) == ([], [(N0, N0 + H)]), "a slice reaching outside the period is not used"
    assert windows([N0 + n * H for n in (0, 1, 2, 5, 6)], size=2) == [
        (N0, N0 + 2 * H), (N0 + 2 * H, N0 + 3 * H), (N0 + 5 * H, N0 + 7 * H)]


# --- the scheduler's job ------------------------------------------------------------------------


def test_the_scheduler_rolls_up_between_cycles_and_not_during_one(new_target, monkeypatch):
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 50 * H  # event A still to play
    target = new_target("store")
    store, reference = target.store(), new_target("reference").store()
    store_paths(store, base)
    store_paths(reference, base)
    service = SchedulerService(load_settings(**target.settings(), history_retention_days=14), store)

    monkeypatch.setattr(scheduler_main, "ROLLUP_WAIT_S", 0.05)
    with service.cycle_lock:  # a cycle is storing its batches
        service.rollup_job()
    assert store.margin_rollup_status().hours == 0

    started = datetime.now(UTC)
    service.rollup_job()
    status = store.margin_rollup_status()
    assert status.through is not None and status.through >= started.replace(minute=0, second=0, microsecond=0)
    first_day = day_start(base.replace(tzinfo=None)).replace(tzinfo=UTC)
    assert rolled_hours(store, first_day, started) == (status.through - first_day) / H, "every hour since, no gap"
    now = datetime.now(UTC)
    same_result(store.margin_analytics(base - H, now, now=now), reference.margin_analytics(base - H, now, now=now))


def test_a_file_with_the_first_hourly_rollup_tables_is_upgraded_and_rolled_up_again(new_target):
    """Schema step 5 kept hours only; step 6 drops those derived rows for slices of any length."""
    target = new_target()
    engine = sa.create_engine(target.database_url or f"duckdb:///{target.db_path}", poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        migrate(conn, STEPS[:5])
        conn.execute(sa.text("INSERT INTO margin_rollup_hours VALUES ('2025-03-01 06:00', '2025-03-01 08:00')"))
    engine.dispose()

    store = target.store()
    store_paths(store)
    assert store.query("SELECT max(version) AS v FROM schema_version")["v"][0] == len(STEPS)
    assert store.margin_rollup_status().hours == 0, "the old hours are gone, not half-read"
    assert store.roll_up_margins(history_days=3650, now=NOW).hours == 103

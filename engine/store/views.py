"""The analysts' app reads: every grid it shows, as a polars frame built from the Store.

The app never opens DuckDB itself: each function here takes a ``Store`` and reads through its
read methods or ``store.query`` (read-only connection under the shared lock). What can be done
without I/O (pivots, colour statuses, filters, history reconstruction) is a pure function over
frames, so the pages stay thin and the grids are testable without Streamlit.

Timestamps are aware UTC (the store's contract); pages convert them to the viewer's time zone.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import duckdb
import polars as pl
import psycopg

from engine.config import BOOK_LABELS, BOOKS
from engine.markets.catalogue import CATEGORY_ORDER, Market, load_catalogue, normalize_line, outcome_label
from engine.markets.margins import add_margins
from engine.store import Store, notebook
from engine.store.schema import NO_LINE

REFERENCE = "betpawa"
COMPETITORS: tuple[str, ...] = tuple(b for b in BOOKS if b != REFERENCE)

#: market-mapping.md §4.2: odds differences within a cent are "equal"; margins within 0.1 points.
ODDS_TOLERANCE = 0.01
MARGIN_TOLERANCE = 0.1
#: A competitor margin this many points below BetPawa's is flagged (the earlier tool's row alert).
MARGIN_ALERT_POINTS = 2.0
#: Event detail colours a competitor's margin only beyond half a point from BetPawa's (§4.2).
DETAIL_MARGIN_TOLERANCE = 0.5

#: The comparison page's market selector lists these first (1X2, O/U 2.5, BTTS, double chance).
QUICK_MARKETS: tuple[tuple[str, float | None], ...] = (
    ("1x2_ft", None),
    ("over_under_ft", 2.5),
    ("btts_ft", None),
    ("double_chance_ft", None),
)

#: Hidden helper columns of the grids start with this; they are neither shown nor exported.
HIDDEN = "_"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def visible_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if not c.startswith(HIDDEN)]


def shown(frame: pl.DataFrame) -> pl.DataFrame:
    """Exactly the columns a grid shows (what the downloads contain)."""
    return frame.select(visible_columns(frame))


def fold(text: str) -> str:
    """Lower-case without accents, so "atletico" finds "Atlético"."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def fold_expr(expr: pl.Expr) -> pl.Expr:
    """``fold`` for a column."""
    return expr.str.normalize("NFKD").str.replace_all(r"\p{M}", "").str.to_lowercase()


def outcome_labels(market: Market) -> dict[str, str]:
    labels = {o.key: outcome_label(market, o.key) for o in market.outcomes}
    if len(set(labels.values())) != len(labels):
        return {o.key: o.key for o in market.outcomes}
    return labels


def line_text(line: float | None) -> str:
    return "" if line is None else f"{line:g}"


def _line_filter(line: float | None) -> pl.Expr:
    if line is None:
        return pl.col("line").is_null()
    return (pl.col("line") - line).abs() < 1e-6


# --- events and the comparison grid ------------------------------------------------------


#: Which books list an event: its ``bookmaker_events`` rows (what discovery found). The SQL of
#: this module runs as it is on DuckDB and PostgreSQL.
_BOOKS_JOIN = """
LEFT JOIN (SELECT sr_id, array_agg(DISTINCT bookmaker ORDER BY bookmaker) AS books FROM bookmaker_events
           GROUP BY sr_id) b
       ON b.sr_id = e.sr_id
"""
_EVENT_SELECT = ("e.sr_id, e.kickoff, e.country, e.tournament, e.home, e.away, "
                 "coalesce(b.books, ARRAY[]::VARCHAR[]) AS books")


def events(store: Store) -> pl.DataFrame:
    """Every known event with the books that list it (from ``bookmaker_events``)."""
    return store.query(f"SELECT {_EVENT_SELECT} FROM events e {_BOOKS_JOIN} ORDER BY e.kickoff, e.sr_id")


def market_lines(store: Store) -> pl.DataFrame:
    """Which (market, line) pairs have prices, with how many events: the selector's options."""
    return store.query(
        "SELECT market, line, count(DISTINCT sr_id) AS events FROM odds_current GROUP BY market, line"
    )


def market_choices(lines: pl.DataFrame) -> list[tuple[str, float | None]]:
    """Every (market, line) with prices, in catalogue order, for the selector."""
    cat = load_catalogue()
    order = {k: i for i, k in enumerate(cat.markets)}
    pairs = [(m, normalize_line(l)) for m, l in lines.select("market", "line").iter_rows() if m in cat.markets]
    return sorted(set(pairs), key=lambda p: (order[p[0]], p[1] if p[1] is not None else -1e9))


_COMPARISON_SQL = f"""
SELECT {_EVENT_SELECT},
       c.bookmaker, c.market, c.line, c.outcome, c.odds, c.available, c.last_seen_at, c.unavailable_at
FROM events e {_BOOKS_JOIN}
LEFT JOIN odds_current c ON c.sr_id = e.sr_id AND c.market = ? AND c.line_key = ?
"""

_EVENT_COLUMNS = ("sr_id", "kickoff", "country", "tournament", "home", "away", "books")


def comparison(store: Store, market: str, line: float | None) -> pl.DataFrame:
    """The comparison page's grid: one row per known event, the chosen market's prices per book.

    One query (events, their books and the market's prices together): each store read opens
    the file afresh, so one read instead of three is most of the page's latency. The market is
    found by ``line_key``, an equality PostgreSQL's (market, line_key) index serves (``line IS
    NOT DISTINCT FROM`` is not one).
    """
    key = normalize_line(line)
    rows = store.query(_COMPARISON_SQL, [market, NO_LINE if key is None else key])
    events_frame = rows.select(_EVENT_COLUMNS).unique("sr_id")
    prices = rows.filter(pl.col("bookmaker").is_not_null()).drop("books")
    priced = add_margins(prices) if not prices.is_empty() else prices
    return comparison_grid(events_frame, priced, load_catalogue().markets[market])


def _col(book: str, what: str) -> str:
    return f"{BOOK_LABELS[book]} {what}"


def odds_column(book: str, label: str) -> str:
    return _col(book, label)


def margin_column(book: str) -> str:
    return _col(book, "margin %")


def seen_column(book: str) -> str:
    return _col(book, "seen")


def pulled_column(book: str) -> str:
    return _col(book, "unavailable since")


def diff_column(label: str) -> str:
    return f"Δ {label}"


def status_column(column: str) -> str:
    """Hidden colour status of a visible column: better / worse / equal / beats / lower / alert."""
    return f"{HIDDEN}status:{column}"


def comparison_grid(events_frame: pl.DataFrame, prices: pl.DataFrame, market: Market) -> pl.DataFrame:
    """Pivot one market's long prices into one row per event and derive the colour statuses.

    Only available prices fill odds cells (an unavailable outcome is a gap, its time in
    "unavailable since"); each book's margin comes from ``add_margins`` so double chance and
    partial sets follow the one written rule.
    """
    labels = outcome_labels(market)
    base = events_frame.select(
        pl.col("sr_id"),
        pl.col("kickoff").alias("Kickoff"),
        pl.col("country").alias("Country"),
        pl.col("tournament").alias("Tournament"),
        pl.format("{} – {}", pl.col("home"), pl.col("away")).alias("Match"),
        pl.concat_list([pl.when(pl.col("books").list.contains(b)).then(pl.lit(BOOK_LABELS[b])) for b in BOOKS])
        .list.drop_nulls().list.join(", ").alias("Listed on"),
        pl.col("books").alias(f"{HIDDEN}books"),
        pl.col("home").alias(f"{HIDDEN}home"),
        pl.col("away").alias(f"{HIDDEN}away"),
        pl.col("kickoff").alias(f"{HIDDEN}kickoff"),
    )
    base = base.with_columns(
        fold_expr(pl.format("{} {}", pl.col(f"{HIDDEN}home"), pl.col(f"{HIDDEN}away"))).alias(f"{HIDDEN}search"))

    outcomes = [o.key for o in market.outcomes]
    wide = _wide_prices(prices, outcomes, labels)
    grid = base.join(wide, on="sr_id", how="left") if wide is not None else base
    for book in BOOKS:
        for o in outcomes:
            name = odds_column(book, labels[o])
            if name not in grid.columns:
                grid = grid.with_columns(pl.lit(None, pl.Float64).alias(name))
        for name, dtype in ((margin_column(book), pl.Float64), (seen_column(book), pl.Datetime("us", "UTC")),
                            (pulled_column(book), pl.Datetime("us", "UTC"))):
            if name not in grid.columns:
                grid = grid.with_columns(pl.lit(None, dtype).alias(name))

    grid = grid.with_columns(_status_exprs(outcomes, labels))
    order = ["Kickoff", "Country", "Tournament", "Match"]
    for book in BOOKS:
        order += [odds_column(book, labels[o]) for o in outcomes] + [margin_column(book)]
    order += [diff_column(labels[o]) for o in outcomes] + [diff_column("margin")]
    order += [seen_column(b) for b in BOOKS] + [pulled_column(b) for b in BOOKS] + ["Listed on", "sr_id"]
    hidden = [c for c in grid.columns if c.startswith(HIDDEN)]
    return grid.select(order + hidden).sort([f"{HIDDEN}kickoff", "Tournament", "Match"])


def _wide_prices(prices: pl.DataFrame, outcomes: list[str], labels: dict[str, str]) -> pl.DataFrame | None:
    if prices.is_empty():
        return None
    known = prices.filter(pl.col("outcome").is_in(outcomes) & pl.col("bookmaker").is_in(list(BOOKS)))
    if known.is_empty():
        return None
    label_map = {o: labels[o] for o in outcomes}
    book_map = dict(BOOK_LABELS)
    odds = (
        known.with_columns(
            pl.format("{} {}", pl.col("bookmaker").replace_strict(book_map),
                      pl.col("outcome").replace_strict(label_map)).alias("column"),
            pl.when(pl.col("available")).then(pl.col("odds")).otherwise(None).alias("shown"),
        )
        .pivot(on="column", index="sr_id", values="shown", aggregate_function="first")
    )
    per_book = known.group_by(["sr_id", "bookmaker"]).agg(
        pl.col("margin_pct").drop_nulls().first().alias("margin"),
        pl.col("last_seen_at").max().alias("seen"),
        pl.when(~pl.col("available")).then(pl.col("unavailable_at")).max().alias("pulled"),
    )
    per_book = per_book.with_columns(pl.col("bookmaker").replace_strict(book_map).alias("book"))
    margins = per_book.pivot(on="book", index="sr_id", values="margin", aggregate_function="first")
    margins = margins.rename({c: f"{c} margin %" for c in margins.columns if c != "sr_id"})
    seen = per_book.pivot(on="book", index="sr_id", values="seen", aggregate_function="first")
    seen = seen.rename({c: f"{c} seen" for c in seen.columns if c != "sr_id"})
    pulled = per_book.pivot(on="book", index="sr_id", values="pulled", aggregate_function="first")
    pulled = pulled.rename({c: f"{c} unavailable since" for c in pulled.columns if c != "sr_id"})
    return odds.join(margins, on="sr_id", how="left").join(seen, on="sr_id", how="left").join(
        pulled, on="sr_id", how="left")


def _status_exprs(outcomes: list[str], labels: dict[str, str]) -> list[pl.Expr]:
    """market-mapping.md §4.2 colour rules, computed per cell as hidden status columns."""
    exprs: list[pl.Expr] = []
    for o in outcomes:
        label = labels[o]
        ref = pl.col(odds_column(REFERENCE, label))
        comps = [pl.col(odds_column(b, label)) for b in COMPETITORS]
        best = pl.max_horizontal(comps)
        diff = (ref - best).round(2)
        status = _better_worse(diff, ODDS_TOLERANCE, higher_is_better=True)
        exprs.append(diff.alias(diff_column(label)))
        exprs.append(status.alias(status_column(diff_column(label))))
        exprs.append(status.alias(status_column(odds_column(REFERENCE, label))))
        for b, comp in zip(COMPETITORS, comps):
            exprs.append(pl.when(comp - ref > ODDS_TOLERANCE).then(pl.lit("beats")).otherwise(None)
                         .alias(status_column(odds_column(b, label))))
    ref_m = pl.col(margin_column(REFERENCE))
    comp_m = [pl.col(margin_column(b)) for b in COMPETITORS]
    gap = (ref_m - pl.min_horizontal(comp_m)).round(2)
    exprs.append(gap.alias(diff_column("margin")))
    margin_status = _better_worse(gap, MARGIN_TOLERANCE, higher_is_better=False)
    exprs.append(margin_status.alias(status_column(margin_column(REFERENCE))))
    exprs.append(
        pl.when(gap > MARGIN_ALERT_POINTS).then(pl.lit("alert")).otherwise(margin_status)
        .alias(status_column(diff_column("margin")))
    )
    for b, m in zip(COMPETITORS, comp_m):
        exprs.append(
            pl.when(m < ref_m - MARGIN_ALERT_POINTS).then(pl.lit("alert"))
            .when(m < ref_m - MARGIN_TOLERANCE).then(pl.lit("lower")).otherwise(None)
            .alias(status_column(margin_column(b)))
        )
    return exprs


def _better_worse(diff: pl.Expr, tolerance: float, *, higher_is_better: bool) -> pl.Expr:
    good, bad = (diff > tolerance, diff < -tolerance) if higher_is_better else (diff < -tolerance, diff > tolerance)
    return (
        pl.when(diff.is_null()).then(None)
        .when(good).then(pl.lit("better"))
        .when(bad).then(pl.lit("worse"))
        .otherwise(pl.lit("equal"))
    )


@dataclass(frozen=True)
class GridFilter:
    """What the comparison page's filters ask for; empty selections mean "all"."""

    kickoff_from: datetime | None = None
    kickoff_to: datetime | None = None
    countries: tuple[str, ...] = ()
    tournaments: tuple[tuple[str, str], ...] = ()  # (country, tournament): same names kept apart
    team: str = ""
    coverage: str = "all"  # all | all_books | missing:<book>
    include_started: bool = False
    now: datetime = field(default_factory=utcnow)


COVERAGE_CHOICES: dict[str, str] = {
    "all": "All events",
    "all_books": "On all three books",
    **{f"missing:{b}": f"Missing on {BOOK_LABELS[b]}" for b in BOOKS},
}


def filter_grid(grid: pl.DataFrame, f: GridFilter) -> pl.DataFrame:
    kickoff = pl.col(f"{HIDDEN}kickoff")
    cond = pl.lit(True)
    if not f.include_started:
        cond &= kickoff >= f.now
    if f.kickoff_from is not None:
        cond &= kickoff >= f.kickoff_from
    if f.kickoff_to is not None:
        cond &= kickoff < f.kickoff_to
    if f.countries:
        cond &= pl.col("Country").is_in(list(f.countries))
    if f.tournaments:
        pairs = pl.DataFrame({"Country": [t[0] for t in f.tournaments], "Tournament": [t[1] for t in f.tournaments]},
                             schema={"Country": pl.String, "Tournament": pl.String})
        grid = grid.join(pairs, on=["Country", "Tournament"], how="semi")
    q = fold(f.team).strip()
    if q:
        cond &= pl.col(f"{HIDDEN}search").str.contains(q, literal=True)
    books = pl.col(f"{HIDDEN}books")
    if f.coverage == "all_books":
        cond &= pl.all_horizontal([books.list.contains(b) for b in BOOKS])
    elif f.coverage.startswith("missing:"):
        cond &= ~books.list.contains(f.coverage.split(":", 1)[1])
    return grid.filter(cond)


SORTS: dict[str, str] = {
    "kickoff": "Kickoff",
    "tournament": "Tournament",
    "gap_worst": "BetPawa margin vs best competitor (dearest first)",
    "gap_best": "BetPawa margin vs best competitor (cheapest first)",
}


def sort_grid(grid: pl.DataFrame, key: str) -> pl.DataFrame:
    if key == "tournament":
        return grid.sort(["Country", "Tournament", f"{HIDDEN}kickoff"])
    if key in ("gap_worst", "gap_best"):
        return grid.sort([diff_column("margin"), f"{HIDDEN}kickoff"], descending=[key == "gap_worst", False],
                         nulls_last=True)
    return grid.sort([f"{HIDDEN}kickoff", "Tournament", "Match"])


def tournament_options(grid: pl.DataFrame) -> list[tuple[str, str]]:
    pairs = grid.select("Country", "Tournament").unique().sort(["Country", "Tournament"])
    return list(pairs.iter_rows())


# --- staleness (tiers): each price's age against what its refresh tier promises -------------

#: Status of an age / "seen" cell older than its tier promises; its odds cells get a flag.
STALE = "stale"


def age_column(book: str) -> str:
    return _col(book, "age min")


def stale_flag(column: str) -> str:
    """Hidden flag column: the price in the visible ``column`` is older than its tier promises."""
    return f"{HIDDEN}stale:{column}"


def book_odds_columns(frame: pl.DataFrame, book: str) -> list[str]:
    """The visible odds columns of one book in a grid ("BetPawa Home", or "BetPawa" alone)."""
    label = BOOK_LABELS[book]
    own = {margin_column(book), seen_column(book), pulled_column(book), age_column(book), _col(book, "fair"),
           _col(book, "state")}
    return [c for c in visible_columns(frame) if (c == label or c.startswith(label + " ")) and c not in own]


def with_staleness(frame: pl.DataFrame, now: datetime, promise_s: pl.Expr | float | None) -> pl.DataFrame:
    """Each book's price age in minutes right after its "seen" column, marked stale (with its
    odds cells) when older than ``promise_s`` seconds: the row's tier interval × 1.5
    (``tiers.promise_expr`` per kickoff, or one number for one event; null = never stale)."""
    promise = promise_s if isinstance(promise_s, pl.Expr) else pl.lit(promise_s, pl.Float64)
    exprs: list[pl.Expr] = []
    for book in BOOKS:
        seen = seen_column(book)
        if seen not in frame.columns:
            continue
        age_s = (pl.lit(now).cast(pl.Datetime("us", "UTC")) - pl.col(seen)).dt.total_seconds()
        stale = (age_s > promise).fill_null(False)
        flag = pl.when(stale).then(pl.lit(STALE))
        exprs += [(age_s / 60).round(1).alias(age_column(book)), flag.alias(status_column(age_column(book))),
                  flag.alias(status_column(seen))]
        exprs += [stale.alias(stale_flag(c)) for c in book_odds_columns(frame, book)]
    if not exprs:
        return frame
    out = frame.with_columns(exprs)
    order: list[str] = []
    for c in frame.columns:
        order.append(c)
        order += [age_column(b) for b in BOOKS if c == seen_column(b)]
    return out.select(order + [c for c in out.columns if c not in order])


# --- event detail ---------------------------------------------------------------------------


def event_info(store: Store, sr_id: str) -> dict[str, Any] | None:
    """The event's facts and each book's event id (the header)."""
    ev = store.query("""
        SELECT e.sr_id, e.kickoff, e.country, e.tournament, e.home, e.away,
               array_agg(b.bookmaker ORDER BY b.bookmaker) AS books,
               array_agg(b.book_event_id ORDER BY b.bookmaker) AS ids
        FROM events e LEFT JOIN bookmaker_events b ON b.sr_id = e.sr_id
        WHERE e.sr_id = ? GROUP BY e.sr_id, e.kickoff, e.country, e.tournament, e.home, e.away""", [sr_id])
    if ev.is_empty():
        return None
    info = ev.row(0, named=True)
    info["book_ids"] = {b: i for b, i in zip(info.pop("books") or [], info.pop("ids") or []) if b is not None}
    return info


def event_prices(store: Store, sr_id: str) -> pl.DataFrame:
    """One event's current prices with margins and fair odds."""
    prices = store.current_prices(sr_ids=[sr_id])
    return add_margins(prices) if not prices.is_empty() else prices


def event_markets(prices: pl.DataFrame, tz: str = "UTC") -> pl.DataFrame:
    """One row per (market, line, outcome) with the three books side by side.

    Books' odds are only shown while available; "state" says suspended / unavailable since …
    (in ``tz``) / not offered, and "Best" names the books with the highest available odds (ties
    all best). Colours follow market-mapping.md §4.2's event-detail rules.
    """
    cat = load_catalogue()
    if prices.is_empty():
        return pl.DataFrame()
    known = prices.filter(pl.col("market").is_in(list(cat.markets)) & pl.col("bookmaker").is_in(list(BOOKS)))
    if known.is_empty():
        return pl.DataFrame()
    meta = _catalogue_frame()
    outcome_meta = _outcome_frame()
    keys = ["market", "line", "outcome"]
    rows = known.select(keys).unique().join(meta, on="market", how="left").join(
        outcome_meta, on=["market", "outcome"], how="left")
    rows = rows.with_columns(
        pl.col("line").map_elements(line_text, return_dtype=pl.String).fill_null("").alias("Line"),
    )
    for book in BOOKS:
        b = known.filter(pl.col("bookmaker") == book).select(
            *keys,
            pl.when(pl.col("available")).then(pl.col("odds")).otherwise(None).alias(BOOK_LABELS[book]),
            pl.col("margin_pct").alias(margin_column(book)),
            pl.col("fair_odds").alias(_col(book, "fair")),
            pl.col("last_seen_at").alias(seen_column(book)),
            pl.when(pl.col("available")).then(pl.lit("available"))
            .when(pl.col("unavailable_at").is_not_null())
            .then(pl.format("unavailable since {}",
                            pl.col("unavailable_at").dt.convert_time_zone(tz).dt.strftime("%a %d %b %H:%M")))
            .otherwise(pl.lit("suspended")).alias(_col(book, "state")),
        )
        rows = rows.join(b, on=keys, how="left", nulls_equal=True)
        rows = rows.with_columns(pl.col(_col(book, "state")).fill_null("not offered"))
    odds_cols = [pl.col(BOOK_LABELS[b]) for b in BOOKS]
    best = pl.max_horizontal(odds_cols)
    worst = pl.min_horizontal(odds_cols)
    rows = rows.with_columns(
        pl.concat_list([
            pl.when((pl.col(BOOK_LABELS[b]) - best).abs() < 1e-9).then(pl.lit(BOOK_LABELS[b])).otherwise(None)
            for b in BOOKS
        ]).list.drop_nulls().list.join(", ").alias("Best"),
        *[
            pl.when((pl.col(BOOK_LABELS[b]) - best).abs() < 1e-9).then(pl.lit("best"))
            .when((b == REFERENCE) & ((pl.col(BOOK_LABELS[b]) - worst).abs() < 1e-9) & (best - worst > 1e-9))
            .then(pl.lit("worst")).otherwise(None).alias(status_column(BOOK_LABELS[b]))
            for b in BOOKS
        ],
        *[
            pl.when(pl.col(margin_column(b)) < pl.col(margin_column(REFERENCE)) - DETAIL_MARGIN_TOLERANCE)
            .then(pl.lit("better"))
            .when(pl.col(margin_column(b)) > pl.col(margin_column(REFERENCE)) + DETAIL_MARGIN_TOLERANCE)
            .then(pl.lit("worse"))
            .otherwise(None).alias(status_column(margin_column(b)))
            for b in COMPETITORS
        ],
        pl.any_horizontal([
            pl.col(margin_column(b)) < pl.col(margin_column(REFERENCE)) - MARGIN_ALERT_POINTS for b in COMPETITORS
        ]).fill_null(False).alias(f"{HIDDEN}alert"),
    )
    rows = rows.with_columns(
        pl.col(f"{HIDDEN}alert").any().over(["market", "line"]).alias(f"{HIDDEN}alert"),
        fold_expr(pl.format("{} {} {}", pl.col("Market"), pl.col("Line"), pl.col("Outcome"))).alias(f"{HIDDEN}search"),
    )
    ordered = rows.sort(["market_order", "line", "outcome_order"], nulls_last=False)
    columns = ["Market", "Line", "Outcome"]
    for book in BOOKS:
        columns += [BOOK_LABELS[book], margin_column(book), _col(book, "fair")]
    columns += ["Best"] + [_col(b, "state") for b in BOOKS] + [seen_column(b) for b in BOOKS]
    hidden = [c for c in ordered.columns if c.startswith(HIDDEN)]
    return ordered.select(columns + ["market", "line", "categories"] + hidden).rename(
        {"market": f"{HIDDEN}market", "line": f"{HIDDEN}line", "categories": f"{HIDDEN}categories"})


def _catalogue_frame() -> pl.DataFrame:
    cat = load_catalogue()
    ms = list(cat.markets.values())
    return pl.DataFrame(
        {
            "market": [m.key for m in ms],
            "Market": [m.name for m in ms],
            "categories": [list(m.categories) for m in ms],
            "market_order": list(range(len(ms))),
        },
        schema={"market": pl.String, "Market": pl.String, "categories": pl.List(pl.String), "market_order": pl.Int64},
    )


def _outcome_frame() -> pl.DataFrame:
    cat = load_catalogue()
    rows = []
    for m in cat.markets.values():
        labels = outcome_labels(m)
        rows += [(m.key, o.key, labels[o.key], i) for i, o in enumerate(m.outcomes)]
    return pl.DataFrame(rows, schema={"market": pl.String, "outcome": pl.String, "Outcome": pl.String,
                                      "outcome_order": pl.Int64}, orient="row")


def category_tabs(markets: pl.DataFrame) -> list[tuple[str, int]]:
    """(category, number of market/line pairs) in catalogue order, empty categories left out."""
    if markets.is_empty():
        return []
    pairs = markets.select(f"{HIDDEN}market", f"{HIDDEN}line", f"{HIDDEN}categories").unique(
        subset=[f"{HIDDEN}market", f"{HIDDEN}line"])
    counts = pairs.explode(f"{HIDDEN}categories").group_by(f"{HIDDEN}categories").len()
    found = dict(counts.iter_rows())
    return [(c, found[c]) for c in CATEGORY_ORDER if found.get(c)]


def in_category(markets: pl.DataFrame, category: str) -> pl.DataFrame:
    return markets.filter(pl.col(f"{HIDDEN}categories").list.contains(category))


def search_markets(markets: pl.DataFrame, query: str) -> pl.DataFrame:
    """Market search: each word must appear in the market/line/outcome text, or be an
    abbreviation of it (its letters in order among the words' initials and the numbers:
    "o25" finds Over/Under 2.5, "btts" Both Teams To Score, "1h" anything First Half)."""
    words = [w for w in re.split(r"\s+", fold(query)) if w]
    if not words or markets.is_empty():
        return markets
    text = pl.col(f"{HIDDEN}search")
    initials = text.str.extract_all(r"\b[a-z]|[0-9]+").list.join("")
    cond = pl.lit(True)
    for w in words:
        compact = re.sub(r"[^0-9a-z]", "", w)
        abbreviation = initials.str.contains(".*".join(re.escape(ch) for ch in compact)) if compact else pl.lit(False)
        cond &= text.str.contains(w, literal=True) | abbreviation
    return markets.filter(cond)


def odds_history(store: Store, sr_id: str, market: str, line: float | None) -> pl.DataFrame:
    return store.odds_history(sr_id, market=market, line=line).filter(_line_filter(line))


def odds_series(history: pl.DataFrame, market: Market, now: datetime) -> pl.DataFrame:
    """Step series per (book, outcome), extended to ``now`` so a stable price shows as a line."""
    if history.is_empty():
        return pl.DataFrame(schema={"Book": pl.String, "Outcome": pl.String, "time": pl.Datetime("us", "UTC"),
                                    "odds": pl.Float64, "available": pl.Boolean})
    labels = outcome_labels(market)
    h = history.sort("observed_at").select(
        pl.col("bookmaker").replace_strict(BOOK_LABELS, default=pl.col("bookmaker")).alias("Book"),
        pl.col("outcome").replace_strict(labels, default=pl.col("outcome")).alias("Outcome"),
        pl.col("observed_at").alias("time"),
        pl.when(pl.col("available")).then(pl.col("odds")).otherwise(None).alias("odds"),
        pl.col("available"),
    )
    tail = h.group_by(["Book", "Outcome"]).agg(pl.all().sort_by("time").last()).with_columns(
        pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("time"))
    return pl.concat([h, tail.select(h.columns)]).sort(["Book", "Outcome", "time"])


def margin_series(history: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Each book's margin after every change, rebuilt from the change log.

    History holds only changed prices, so each outcome's price is carried forward to every
    later change time of the same book, then ``add_margins`` runs once over all those snapshots
    (the snapshot time stands in for the event id, so each snapshot is its own group).
    """
    empty = pl.DataFrame(schema={"Book": pl.String, "time": pl.Datetime("us", "UTC"), "margin %": pl.Float64})
    if history.is_empty():
        return empty
    h = history.select("bookmaker", "market", "line", "outcome", "odds", "available", "observed_at")
    times = h.select("bookmaker", "observed_at").unique()
    outcomes = h.select("bookmaker", "market", "line", "outcome").unique()
    grid = times.join(outcomes, on="bookmaker", how="inner").join(
        h, on=["bookmaker", "market", "line", "outcome", "observed_at"], how="left", nulls_equal=True)
    grid = grid.sort("observed_at").with_columns(
        pl.col("odds").forward_fill().over(["bookmaker", "outcome"]),
        pl.col("available").forward_fill().over(["bookmaker", "outcome"]),
    ).filter(pl.col("odds").is_not_null())
    snap = grid.with_columns(pl.col("observed_at").cast(pl.String).alias("sr_id"))
    priced = add_margins(snap)
    series = priced.group_by(["bookmaker", "observed_at"]).agg(pl.col("margin_pct").first()).select(
        pl.col("bookmaker").replace_strict(BOOK_LABELS, default=pl.col("bookmaker")).alias("Book"),
        pl.col("observed_at").alias("time"),
        pl.col("margin_pct").alias("margin %"),
    )
    tail = series.sort("time").group_by("Book").agg(pl.col("margin %").last()).with_columns(
        pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("time"))
    return pl.concat([series, tail.select(series.columns)]).sort(["Book", "time"])


# --- runs -------------------------------------------------------------------------------------


#: The runs page's kind filter (tiers): label -> SQL LIKE pattern on ``scrape_runs.kind``.
RUN_KINDS: dict[str, str | None] = {
    "All runs": None, "Full cycles": "full", "Discovery": "discovery", "Tier runs (any)": "tier:%",
    "Near tier": "tier:%near%", "Day tier": "tier:%day%", "Far tier": "tier:%far%",
    "Retries and refreshes": "re%",
}


def runs(store: Store, limit: int = 50, kind: str | None = None) -> pl.DataFrame:
    """The newest runs (of kinds matching the LIKE pattern ``kind``) with their duration so far
    (``seconds``)."""
    frame = store.runs(limit=limit) if kind is None else store.query(
        "SELECT * FROM scrape_runs WHERE kind LIKE ? ORDER BY id DESC LIMIT ?", [kind, limit])
    if frame.is_empty():
        return frame
    now = pl.lit(utcnow()).cast(pl.Datetime("us", "UTC"))
    end = pl.when(pl.col("status") == "RUNNING").then(now).otherwise(
        pl.coalesce(pl.col("finished_at"), pl.col("heartbeat_at"), pl.col("started_at")))
    return frame.with_columns(((end - pl.col("started_at")).dt.total_milliseconds() / 1000).round(1).alias("seconds"))


def run_detail(store: Store, run_id: int) -> dict[str, Any] | None:
    """The run row, JSON columns (summary, per-book counts) decoded by the store."""
    return store.run(run_id)


def run_books(run: dict[str, Any]) -> pl.DataFrame:
    """Per-book counts, timings and errors from the run's summary (``RunSummary.as_json``)."""
    books = (run.get("summary") or {}).get("books") or {}
    rows = []
    for book, s in books.items():
        errors = s.get("errors") or {}
        coverage = s.get("mapping_coverage")
        rows.append({
            "Book": BOOK_LABELS.get(book, book),
            "Listed": s.get("listed"), "Tournaments": s.get("tournaments"),
            "Requested": s.get("requested"), "Scraped": s.get("scraped"), "Failed": s.get("failed"),
            "Prices": s.get("prices"),
            "Mapped %": round(100 * coverage, 1) if coverage is not None else None,
            "Unmapped": s.get("unmapped"),
            "Discovery s": s.get("discovery_s"),
            "Fetch s (sum)": round(s["fetch_s"], 1) if s.get("fetch_s") is not None else None,
            "Unreachable": bool(s.get("unreachable")),
            "Errors": ", ".join(f"{k}×{v}" for k, v in errors.items()),
            "Error samples": " | ".join(s.get("error_samples") or []),
        })
    return pl.DataFrame(rows, infer_schema_length=None)


def run_progress(store: Store, run_id: int) -> pl.DataFrame:
    return store.run_progress(run_id)


def latest_progress(progress: pl.DataFrame) -> dict[str, Any] | None:
    """The newest progress row with known batch counts (the progress bar) and the newest message."""
    if progress.is_empty():
        return None
    order = "seq" if "seq" in progress.columns else "at"
    p = progress.sort(order)
    last = p.row(-1, named=True)
    counted = p.filter(pl.col("batches_total").is_not_null() & (pl.col("batches_total") > 0))
    done, total = (None, None)
    if not counted.is_empty():
        row = counted.row(-1, named=True)
        done, total = row["batches_done"] or 0, row["batches_total"]
    return {"message": last.get("message") or last.get("kind"), "kind": last.get("kind"),
            "at": last.get("at"), "batches_done": done, "batches_total": total}


def event_status(store: Store, run_id: int) -> pl.DataFrame:
    """The run's per-event rows with names and readable errors, failures first."""
    status = store.event_status(run_id)
    if status.is_empty():
        return status
    names = store.query("SELECT sr_id, home, away, tournament FROM events")
    status = status.join(names, on="sr_id", how="left").with_columns(
        *[pl.col(c).str.json_decode(pl.List(pl.String)) for c in ("books_requested", "books_scraped", "books_failed")
          if status.schema.get(c) == pl.String],
        pl.col("errors").map_elements(_errors_text, return_dtype=pl.String),
    )
    return status.with_columns(
        pl.format("{} – {}", pl.col("home"), pl.col("away")).alias("match"),
        (pl.col("books_failed").list.len() > 0).alias("has_failure"),
    ).sort(["has_failure", "sr_id"], descending=[True, False])


def _errors_text(value: str | None) -> str:
    errors = json.loads(value) if value else {}
    return "; ".join(f"{BOOK_LABELS.get(k, k)}: {v}" for k, v in errors.items())


def run_requests(store: Store, limit: int = 20) -> pl.DataFrame:
    return store.run_requests(limit=limit)


# --- sidebar -------------------------------------------------------------------------------


def freshness(store: Store) -> datetime | None:
    """When the newest price was last seen (the data's age)."""
    frame = store.query("SELECT max(last_seen_at) AS newest FROM odds_current")
    return frame["newest"][0] if frame.height else None


def saved_settings(store: Store) -> dict[str, Any]:
    return store.get_settings()


def scheduler_status(store: Store) -> dict[str, Any]:
    """What the scheduler last published: next_run_at, interval_min, running, updated_at."""
    return store.get_settings().get("scheduler_status") or {}


# --- coverage ------------------------------------------------------------------------------


def coverage_events(store: Store) -> pl.DataFrame:
    """Per event: which books list it (one boolean column per book)."""
    ev = events(store)
    return ev.with_columns([pl.col("books").list.contains(b).alias(b) for b in BOOKS])


def coverage_summary(cov: pl.DataFrame) -> pl.DataFrame:
    """Per book: its events and tournaments that BetPawa lacks and the reverse, and the match rate.

    Match rate = share of the book's events that BetPawa also lists under the same SportRadar
    id, counted per distinct event (repeated runs never inflate it). A tournament "lacking"
    means the other side lists none of its events.
    """
    per_tournament = cov.group_by(["country", "tournament"]).agg([pl.col(b).any() for b in BOOKS])
    ref, ref_t = cov[REFERENCE], per_tournament[REFERENCE]
    rows = []
    for b in BOOKS:
        mine, mine_t = cov[b], per_tournament[b]
        both = int((mine & ref).sum())
        rows.append({
            "Book": BOOK_LABELS[b],
            "Events": int(mine.sum()),
            "Also on BetPawa": both,
            "Not on BetPawa": int((mine & ~ref).sum()),
            "BetPawa has, book lacks": int((ref & ~mine).sum()),
            "Tournaments": int(mine_t.sum()),
            "Tournaments not on BetPawa": int((mine_t & ~ref_t).sum()),
            "BetPawa tournaments book lacks": int((ref_t & ~mine_t).sum()),
            "Match rate %": round(100 * both / int(mine.sum()), 1) if int(mine.sum()) else None,
        })
    return pl.DataFrame(rows, infer_schema_length=None)


def tournament_coverage(cov: pl.DataFrame) -> pl.DataFrame:
    """Per (country, tournament): events per book and the gaps against BetPawa."""
    if cov.is_empty():
        return pl.DataFrame()
    agg = cov.group_by(["country", "tournament"]).agg(
        pl.len().alias("Events"),
        *[pl.col(b).sum().cast(pl.Int64).alias(BOOK_LABELS[b]) for b in BOOKS],
        *[(pl.col(b) & ~pl.col(REFERENCE)).sum().cast(pl.Int64).alias(f"{BOOK_LABELS[b]} not on BetPawa")
          for b in COMPETITORS],
        *[(pl.col(REFERENCE) & ~pl.col(b)).sum().cast(pl.Int64).alias(f"Missing on {BOOK_LABELS[b]}")
          for b in COMPETITORS],
    )
    return agg.rename({"country": "Country", "tournament": "Tournament"}).sort(["Country", "Tournament"])


def unmapped(store: Store) -> pl.DataFrame:
    return store.unmapped()


# --- SQL notebook --------------------------------------------------------------------------

EXAMPLE_QUERIES: dict[str, str] = {
    "Rows per table": (
        "SELECT 'events' AS table_name, count(*) AS rows FROM events\n"
        "UNION ALL SELECT 'odds_current', count(*) FROM odds_current\n"
        "UNION ALL SELECT 'odds_history', count(*) FROM odds_history_data\n"
        "UNION ALL SELECT 'scrape_runs', count(*) FROM scrape_runs"
    ),
    "Prices per book": (
        "SELECT bookmaker, count(*) AS prices, count(DISTINCT sr_id) AS events,\n"
        "       count(*) FILTER (WHERE NOT available) AS unavailable\n"
        "FROM odds_current GROUP BY bookmaker ORDER BY bookmaker"
    ),
    "BetPawa 1X2 home vs best competitor": (
        "SELECT e.home, e.away, e.kickoff,\n"
        "       max(o.odds) FILTER (WHERE o.bookmaker = 'betpawa') AS betpawa,\n"
        "       max(o.odds) FILTER (WHERE o.bookmaker <> 'betpawa') AS best_competitor\n"
        "FROM odds_current o JOIN events e USING (sr_id)\n"
        "WHERE o.market = '1x2_ft' AND o.outcome = 'home' AND o.available\n"
        "GROUP BY e.sr_id, e.home, e.away, e.kickoff ORDER BY e.kickoff LIMIT 200"
    ),
    "Price changes per run": (
        "SELECT run_id, bookmaker, count(*) AS changes FROM odds_history\n"
        "GROUP BY run_id, bookmaker ORDER BY run_id DESC, bookmaker"
    ),
    "Events per tournament": (
        "SELECT country, tournament, count(*) AS events, min(kickoff) AS first_kickoff\n"
        "FROM events GROUP BY country, tournament ORDER BY events DESC"
    ),
    "Unmapped markets": (
        "SELECT bookmaker, market_id, name, reason, occurrences FROM unmapped_markets\n"
        "ORDER BY occurrences DESC LIMIT 100"
    ),
    "Recent runs": "SELECT * FROM scrape_runs ORDER BY id DESC LIMIT 20",
}


SQL_ROW_CAP = notebook.ROW_LIMIT
SQL_TIMEOUT_S = notebook.TIMEOUT_S

ReadOnlyRefusal = notebook.NotebookRefusal
SqlTimeout = notebook.NotebookTimeout
SqlResult = notebook.NotebookResult


def run_sql(store: Store, sql: str) -> SqlResult:
    """One notebook statement, on a connection that itself refuses writes and files outside
    the store, capped at ``SQL_ROW_CAP`` rows and ``SQL_TIMEOUT_S`` seconds (``notebook.py``)."""
    return store.notebook_query(sql, SQL_ROW_CAP, SQL_TIMEOUT_S)


def is_read_only_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "read-only" in text or "read only" in text


def is_file_access_error(exc: BaseException) -> bool:
    """DuckDB refused a file, URL or extension (the notebook's connection has no external
    access) or a setting change (its configuration is locked); PostgreSQL refused the notebook's
    role a privilege (files, programs, other roles, tables it may not read)."""
    return (isinstance(exc, (duckdb.PermissionException, psycopg.errors.InsufficientPrivilege))
            or "the configuration has been locked" in str(exc))

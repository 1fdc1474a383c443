"""Movement alerts: the rules, over polars frames, no I/O.

``engine.store.alerts`` runs them after each stored batch, inside the batch's write transaction,
on what that batch changed; this module decides what is an alert and what is the same alert
again. Four kinds:

* ``steam`` — a competitor moved an outcome's odds by more than ``steam_pct`` % within the last
  ``steam_window_min`` minutes while BetPawa's price for the same (event, market, line, outcome)
  did not move in that window (and is on offer now). The move runs from the competitor's price
  at the start of the window (the *from* price of its first move inside the window; if that was
  suspended, the first price on offer since) to its price now; several small steps add up.
  BetPawa "moved" if its price or its availability changed in the window; a price BetPawa
  quotes for the first time is not a move. Only prices this batch moved are candidates, so a
  move is reported in the batch that takes it over the threshold.
* ``margin_gap`` — BetPawa's margin on an (event, market, line) exceeds the lowest competitor
  margin by more than ``margin_gap_pts`` points. Margins follow ``add_margins``' rule and figure
  (none for incomplete or suspended sets, which then neither raise nor clear the alert), computed
  without its fair-odds solve (``margin_bounds``).
* ``competitors_pulled`` — a market BetPawa offers (an outcome on offer) is no longer offered
  by any competitor that had it, and this batch took the last one off.
* ``betpawa_pulled`` — the reverse: BetPawa took a market off that every competitor quoting it
  still offers.
  A book that has no price on offer left for the whole event took the event off, not a market:
  that is a coverage change, so the pull rules leave such (event, book) pairs out rather than
  raise one alert per market.

Dedup (the ``dedup_key`` names the condition: kind, event, market, line, outcome, book):
margin gaps and pulls are states. An alert stays *open* while its condition holds and is not
raised again; it is *cleared* (``cleared_at``) when a batch shows the condition no longer holds,
and a recurrence after that is a new alert. Cleared means: the gap is back to half the threshold
or less (``CLEAR_SHARE``: a gap hovering around the threshold is one alert, not one per batch)
or BetPawa no longer offers the market; the market is offered again, or pulled on the other side
too. A margin gap that widens by another ``margin_gap_pts`` points or more is materially worse:
a new alert, which supersedes (clears) the old one. Steam is an event, not a state: the same
(event, market, line, outcome, competitor) is not alerted again within the window unless the
move changes direction or grows by another ``steam_pct`` points; a steam alert is cleared when
BetPawa moves that outcome (it followed).

Each rule returns *observations*: one row per condition it could judge, ``holds`` True (the
condition is there), or False (evidence that it is gone); ``reconcile`` turns them and the
stored alerts into the alerts to add and the ones to clear.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import polars as pl

from engine.config import BOOKS
from engine.markets.catalogue import load_catalogue
from engine.markets.margins import DOUBLE_COVER, EXCLUSIVE, outcome_rules

if TYPE_CHECKING:
    from engine.config import Settings

REFERENCE = "betpawa"
STEAM, MARGIN_GAP, COMPETITORS_PULLED, BETPAWA_PULLED = "steam", "margin_gap", "competitors_pulled", "betpawa_pulled"
KINDS: tuple[str, ...] = (STEAM, MARGIN_GAP, COMPETITORS_PULLED, BETPAWA_PULLED)
KIND_LABELS = {STEAM: "Steam", MARGIN_GAP: "Margin gap", COMPETITORS_PULLED: "Competitors pulled",
               BETPAWA_PULLED: "BetPawa pulled"}
BOOK_NAMES = {"betpawa": "BetPawa", "sportybet": "SportyBet", "bet9ja": "Bet9ja"}

#: A margin gap clears once it is back to this share of the threshold: a gap hovering around the
#: threshold is one alert, not one per batch.
CLEAR_SHARE = 0.5

#: A price: event, book, market, line (``line_key``: never null), outcome.
KEY = ("sr_id", "bookmaker", "market", "line_key", "outcome")
OUTCOME_KEY = ("sr_id", "market", "line_key", "outcome")
GROUP = ("sr_id", "market", "line_key")

#: One price change of one batch: ``from_*`` before it, ``to_*`` after, ``moved_at`` = the batch's time.
MOVE_SCHEMA: dict[str, pl.DataType] = {
    "sr_id": pl.String, "bookmaker": pl.String, "market": pl.String, "line_key": pl.Float64, "line": pl.Float64,
    "outcome": pl.String, "moved_at": pl.Datetime("us"), "from_odds": pl.Float64, "from_available": pl.Boolean,
    "to_odds": pl.Float64, "to_available": pl.Boolean,
}

#: What the rules return (see the module docstring); ``data`` is JSON text with the numbers.
OBS_SCHEMA: dict[str, pl.DataType] = {
    "kind": pl.String, "dedup_key": pl.String, "sr_id": pl.String, "bookmaker": pl.String, "market": pl.String,
    "line": pl.Float64, "outcome": pl.String, "holds": pl.Boolean, "size": pl.Float64, "data": pl.String,
}

#: Stored alerts ``reconcile`` compares with: open ones, and steam alerts of the window.
EXISTING_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Int64, "kind": pl.String, "dedup_key": pl.String, "sr_id": pl.String, "market": pl.String,
    "line_key": pl.Float64, "size": pl.Float64, "created_at": pl.Datetime("us"), "cleared_at": pl.Datetime("us"),
}


@dataclass(frozen=True)
class AlertThresholds:
    """The alert settings in force for a batch (``Settings.alert_*``)."""

    steam_pct: float = 8.0
    steam_window_min: float = 30.0
    margin_gap_pts: float = 3.0
    disappear: bool = True

    def __post_init__(self) -> None:
        for name in ("steam_pct", "steam_window_min", "margin_gap_pts"):
            if not getattr(self, name) > 0:
                raise ValueError(f"alert threshold {name} must be above 0, got {getattr(self, name)!r}")

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertThresholds:
        return cls(settings.alert_steam_pct, settings.alert_steam_window_min, settings.alert_margin_gap_pts,
                   settings.alert_disappear)

    def window_start(self, at: datetime) -> datetime:
        return at - timedelta(minutes=self.steam_window_min)


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=OBS_SCHEMA)


#: The frames here are small (a batch's changes, a few thousand groups): polars' in-memory engine
#: runs them in about half the time of the streaming one, its default.
ENGINE = "in-memory"
Frame = pl.DataFrame | pl.LazyFrame


def _dedup_key(kind: str, book: pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.lit(kind), pl.col("sr_id"), pl.col("market"), pl.col("line_key").cast(pl.String),
                          pl.col("outcome").fill_null(""), book], separator="|")


def _observations(frame: pl.LazyFrame, kind: str, book: pl.Expr, key_book: pl.Expr, outcome: pl.Expr,
                  size: pl.Expr, data: dict[str, pl.Expr], open_keys: pl.Series | None = None) -> pl.LazyFrame:
    """``frame`` (with sr_id, market, line_key, line and ``holds``) as OBS_SCHEMA rows. With
    ``open_keys`` (the dedup keys of the open alerts), evidence that a condition is gone is kept
    only where an alert is open to clear."""
    keyed = frame.with_columns(outcome=outcome).with_columns(dedup_key=_dedup_key(kind, key_book))
    if open_keys is not None:
        keyed = keyed.filter(pl.col("holds") | pl.col("dedup_key").is_in(open_keys.implode()))
    return keyed.select(
        pl.lit(kind).alias("kind"), "dedup_key", "sr_id", book.alias("bookmaker"), "market", "line", "outcome",
        "holds", size.alias("size"), pl.struct(**data).struct.json_encode().alias("data"),
    ).cast(OBS_SCHEMA)


def _book_rank() -> pl.Expr:
    return pl.col("bookmaker").replace_strict({b: i for i, b in enumerate(BOOKS)}, default=len(BOOKS),
                                              return_dtype=pl.Int64)


# --- what the batch did ----------------------------------------------------------------------
#
# The rules are lazy plans over the batch's frames, collected together once a batch: a batch
# stores in ~100 ms, and each collect of a small eager step costs a fraction of a millisecond.


def _keys(moves: pl.LazyFrame) -> pl.LazyFrame:
    """``_pk`` (the price), ``_ok`` (the outcome, whichever book) and ``_gk`` (the market and
    line of the event) as one integer each: the rules join on one column, not five strings."""
    return moves.with_columns(_pk=pl.struct(KEY).hash(), _ok=pl.struct(OUTCOME_KEY).hash(),
                              _gk=pl.struct(GROUP).hash())


def with_keys(moves: pl.DataFrame) -> pl.DataFrame:
    """``moves`` (MOVE_SCHEMA) with the integer keys of ``_keys``."""
    return moves if "_gk" in moves.columns else _keys(moves.lazy().select(list(MOVE_SCHEMA))).collect(engine=ENGINE)


def batch_moves(diff: pl.DataFrame, before: pl.DataFrame, at: datetime) -> pl.DataFrame:
    """The batch's price changes (MOVE_SCHEMA, with ``with_keys``' keys): its ``changed`` and
    ``gone`` rows with the values they had before. ``diff`` is ``batch.diff_prices``; ``before``
    the current rows it was diffed against (``batch.current_rows``), joined on their odds_current
    row (``cur``)."""
    moved = diff.lazy().filter((pl.col("state") == "changed") | (pl.col("state") == "gone")).select(
        "cur", *KEY, "line", to_odds=pl.col("odds"), to_available=pl.col("available"))
    previous = before.lazy().select("cur", from_odds=pl.col("odds"), from_available=pl.col("available"))
    return _keys(moved.join(previous, on="cur", how="inner").with_columns(
        moved_at=pl.lit(at, pl.Datetime("us"))).select(list(MOVE_SCHEMA)).cast(MOVE_SCHEMA)).collect(engine=ENGINE)


def _group_keyed(frame: Frame) -> pl.LazyFrame:
    frame = frame.lazy()
    return frame if "_gk" in frame.collect_schema() else frame.with_columns(_gk=pl.struct(GROUP).hash())


def _touched(prices: pl.LazyFrame, moves: pl.LazyFrame) -> pl.LazyFrame:
    """``_gk`` of the (event, market, line) this batch moved or quoted for the first time: the only
    ones whose margins can differ from the last batch."""
    new = prices.filter(pl.col("state") == "new").select("_gk")
    return pl.concat([moves.select("_gk"), new]).unique()


def _offer_changed(prices: pl.LazyFrame, moves: pl.LazyFrame, open_pulls: pl.LazyFrame) -> pl.LazyFrame:
    """``_gk`` of the groups the pull rules must judge: where an offer changed, and where an open
    pull alert may be cleared by a market quoted for the first time."""
    changed = moves.filter(pl.col("from_available") != pl.col("to_available")).select("_gk")
    new = prices.filter(pl.col("state") == "new").select("_gk").join(open_pulls, on="_gk", how="semi")
    return pl.concat([changed, new]).unique()


def _in(frame: pl.LazyFrame, groups: Frame) -> pl.LazyFrame:
    """The rows of ``frame`` in ``groups`` (a frame of (sr_id, market, line_key) or their ``_gk``)."""
    return frame.join(_group_keyed(groups).select("_gk").unique(), on="_gk", how="semi")


# --- steam -----------------------------------------------------------------------------------


def _steam(window: pl.LazyFrame, now: pl.LazyFrame, prices: pl.LazyFrame, t: AlertThresholds,
           open_keys: pl.Series | None) -> pl.LazyFrame:
    competitor_now = now.filter((pl.col("bookmaker") != REFERENCE) & pl.col("to_available"))
    reference = (
        window.join(competitor_now.select("_pk"), on="_pk", how="semi").sort("moved_at")
        .group_by("_pk", maintain_order=True)
        .agg(start_on=pl.col("from_available").first(), start=pl.col("from_odds").first(),
             first_on=pl.col("to_odds").filter(pl.col("to_available")).first(), since=pl.col("moved_at").first())
        .select("_pk", "since", ref_odds=pl.when(pl.col("start_on")).then("start").otherwise("first_on"))
    )
    betpawa_moved = window.filter(pl.col("bookmaker") == REFERENCE).select("_ok").unique()
    moves = (
        competitor_now.join(reference, on="_pk")
        .with_columns(pct=(pl.col("to_odds") / pl.col("ref_odds") - 1.0) * 100.0)
        .filter(pl.col("pct").abs() > t.steam_pct).join(betpawa_moved, on="_ok", how="anti")
    )
    betpawa = prices.filter(pl.col("available") & (pl.col("bookmaker") == REFERENCE)).join(
        moves.select(*OUTCOME_KEY), on=list(OUTCOME_KEY), how="semi").select(*OUTCOME_KEY, bp_odds="odds")
    hits = moves.join(betpawa, on=list(OUTCOME_KEY)).rename({"to_odds": "odds"}).with_columns(holds=pl.lit(True))
    plans = [_observations(
        hits, STEAM, pl.col("bookmaker"), pl.col("bookmaker"), pl.col("outcome"), pl.col("pct").round(2),
        {"from": pl.col("ref_odds"), "to": pl.col("odds"), "pct": pl.col("pct").round(2),
         "window_min": pl.lit(t.steam_window_min), "since": pl.col("since").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
         "betpawa": pl.col("bp_odds")})]
    # BetPawa moving an outcome answers any steam alert on it: evidence for clearing.
    if open_keys is None or open_keys.str.starts_with(f"{STEAM}|").any():
        followed = (
            now.filter(pl.col("bookmaker") == REFERENCE).select(*OUTCOME_KEY, "line").unique()
            .join(pl.LazyFrame({"competitor": [b for b in BOOKS if b != REFERENCE]}), how="cross")
            .with_columns(holds=pl.lit(False))
        )
        plans.append(_observations(followed, STEAM, pl.col("competitor"), pl.col("competitor"), pl.col("outcome"),
                                   pl.lit(None, pl.Float64), {"followed": pl.lit(True)}, open_keys))
    return pl.concat(plans)


def steam(window: Frame, now: Frame, prices: Frame, t: AlertThresholds,
          open_keys: pl.Series | None = None) -> pl.DataFrame:
    """Steam observations. ``window``: moves of the batch's events inside the window (this
    batch's included, every book); ``now``: this batch's moves; ``prices``: the batch's prices
    after it."""
    return _steam(_keys(window.lazy().select(list(MOVE_SCHEMA))), _keys(now.lazy().select(list(MOVE_SCHEMA))),
                  prices.lazy(), t, open_keys).collect(engine=ENGINE)


# --- margin gap ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _set_rules() -> pl.DataFrame:
    """Per (market, book): how many outcomes its set needs, and how often it covers each result
    (``margins`` divides double cover by 2); only kinds that can carry a margin."""
    return outcome_rules().filter(pl.col("kind").is_in([EXCLUSIVE, DOUBLE_COVER])).group_by(
        "market", "bookmaker").agg(_n=pl.col("n_outcomes").first(), _covers=pl.when(
            pl.col("kind").first() == DOUBLE_COVER).then(2.0).otherwise(1.0))


def margin_bounds(rows: Frame) -> pl.LazyFrame:
    """Per (event, market, line): BetPawa's margin, the lowest competitor margin and its book,
    as (Σ 1/odds ÷ covers − 1) × 100 over the sets that *can* have one (a kind that carries a
    margin, as many outcomes as the set needs, all on offer); and whether BetPawa offers any.

    That is ``add_margins``' own rule and figure (rounded the same way) for every set it gives a
    margin — ``tests/test_alert_rules.py`` checks it group by group on the simulator's world —
    short of an outcome the catalogue does not know, which the parsers never store. Running
    ``add_margins`` itself here would cost more than the rest of the evaluation: it also solves
    every group's fair odds, which an alert does not need.
    """
    per_book = rows.lazy().group_by(*GROUP, "bookmaker").agg(
        line=pl.col("line").first(), inv=(1.0 / pl.col("odds")).sum(), n=pl.len(),
        all_on=pl.col("available").all(), offers=pl.col("available").any(),
    ).join(_set_rules().lazy(), on=["market", "bookmaker"], how="left").with_columns(
        margin=pl.when(pl.col("all_on") & (pl.col("n") >= pl.col("_n")))
        .then(((pl.col("inv") / pl.col("_covers") - 1.0) * 100.0).round(2)), _rank=_book_rank())
    return _per_group(per_book)


def _per_group(per_book: pl.LazyFrame) -> pl.LazyFrame:
    """Per-(group, book) margins → BetPawa's, the lowest competitor's (ties: ``BOOKS`` order) and its book."""
    is_ref = pl.col("bookmaker") == REFERENCE
    rivals = per_book.filter(~is_ref & pl.col("margin").is_not_null()).sort("_rank").group_by(GROUP).agg(
        best_margin=pl.col("margin").min(), best_book=pl.col("bookmaker").get(pl.col("margin").arg_min()))
    return per_book.group_by(GROUP).agg(
        line=pl.col("line").first(), bp_margin=pl.col("margin").filter(is_ref).max(),
        bp_present=is_ref.any(), bp_offers=(is_ref & pl.col("offers")).any(),
    ).join(rivals, on=list(GROUP), how="left")


def _gap_observations(judged: pl.LazyFrame, t: AlertThresholds, open_keys: pl.Series | None = None) -> pl.LazyFrame:
    """Groups with bp_margin, best_margin, best_book, bp_present, bp_offers as observations."""
    gap = (pl.col("bp_margin") - pl.col("best_margin")).round(2)
    holds = (pl.when(pl.col("gap") > t.margin_gap_pts).then(True)
             .when(pl.col("gap") <= t.margin_gap_pts * CLEAR_SHARE).then(False)
             .when(pl.col("bp_present") & ~pl.col("bp_offers")).then(False))
    return _observations(
        judged.with_columns(gap=gap).with_columns(holds=holds).filter(pl.col("holds").is_not_null()),
        MARGIN_GAP, pl.lit(REFERENCE), pl.lit(REFERENCE), pl.lit(None, pl.String), pl.col("gap"),
        {"betpawa_margin": pl.col("bp_margin"), "best_margin": pl.col("best_margin"),
         "best_book": pl.col("best_book"), "gap": pl.col("gap")}, open_keys)


def _margin_gaps(prices: pl.LazyFrame, touched: Frame, t: AlertThresholds,
                 open_keys: pl.Series | None) -> pl.LazyFrame:
    return _gap_observations(margin_bounds(_in(prices, touched)), t, open_keys)


def margin_gaps(prices: Frame, touched: Frame, t: AlertThresholds, open_keys: pl.Series | None = None) -> pl.DataFrame:
    """Margin-gap observations for the ``touched`` groups (a frame of (sr_id, market, line_key) or
    of their ``_gk``) of ``prices`` (complete price sets of the batch): holds when the gap is above
    the threshold; evidence it is gone when the gap is back to ``CLEAR_SHARE`` of it or BetPawa
    offers nothing; nothing when either side has no margin (or the gap is in between)."""
    return _margin_gaps(_group_keyed(prices), touched, t, open_keys).collect(engine=ENGINE)


# --- a market on one side only ---------------------------------------------------------------


def _pulls(prices: pl.LazyFrame, now: pl.LazyFrame, touched: Frame, open_keys: pl.Series | None) -> pl.LazyFrame:
    pair = ["sr_id", "bookmaker"]
    per_book = _in(prices, touched).group_by("_gk", "bookmaker").agg(
        *(pl.col(c).first() for c in (*GROUP, "line")), offers=pl.col("available").any())
    # A book with nothing on offer for the whole event took the event off: not a market alert.
    idle = per_book.filter(~pl.col("offers")).select(pair).unique()
    live = prices.filter(pl.col("available")).join(idle.select("sr_id").unique(), on="sr_id", how="semi").select(
        pair).unique()
    pulled = now.filter(pl.col("from_available") & ~pl.col("to_available")).select(
        "_gk", "bookmaker").unique().with_columns(_pulled=pl.lit(True))
    books = (
        per_book.join(idle.join(live, on=pair, how="anti"), on=pair, how="anti")
        .join(pulled, on=["_gk", "bookmaker"], how="left")
        .with_columns(pulled=~pl.col("offers") & pl.col("_pulled").fill_null(False), _rank=_book_rank())
        .sort("_rank")
    )
    ref, comp = pl.col("bookmaker") == REFERENCE, pl.col("bookmaker") != REFERENCE
    groups = books.group_by(GROUP, maintain_order=True).agg(
        line=pl.col("line").first(),
        bp_present=ref.any(), bp_offers=(ref & pl.col("offers")).any(), bp_pulled=(ref & pl.col("pulled")).any(),
        comp_present=comp.any(), comp_offers=(comp & pl.col("offers")).any(),
        comp_pulled=(comp & pl.col("pulled")).any(), comp_all_offer=(ref | pl.col("offers")).all(),
        comp_books=pl.col("bookmaker").filter(comp),
    ).with_columns(outcome=pl.lit(None, pl.String))
    gone = groups.with_columns(holds=(
        pl.when(pl.col("bp_offers") & pl.col("comp_present") & ~pl.col("comp_offers") & pl.col("comp_pulled"))
        .then(True).when(pl.col("comp_offers") | (pl.col("bp_present") & ~pl.col("bp_offers"))).then(False)))
    pulled_by_us = groups.with_columns(holds=(
        pl.when(pl.col("bp_pulled") & pl.col("comp_offers") & pl.col("comp_all_offer")).then(True)
        .when(pl.col("bp_offers") | (pl.col("comp_present") & ~pl.col("comp_offers"))).then(False)))
    books_text = pl.col("comp_books").list.join(",")
    return pl.concat([
        _observations(gone.filter(pl.col("holds").is_not_null()), COMPETITORS_PULLED, books_text, pl.lit(""),
                      pl.col("outcome"), pl.lit(None, pl.Float64), {"books": pl.col("comp_books")}, open_keys),
        _observations(pulled_by_us.filter(pl.col("holds").is_not_null()), BETPAWA_PULLED, pl.lit(REFERENCE),
                      pl.lit(""), pl.col("outcome"), pl.lit(None, pl.Float64), {"books": pl.col("comp_books")},
                      open_keys),
    ])


def disappearances(prices: Frame, now: Frame, touched: Frame, open_keys: pl.Series | None = None) -> pl.DataFrame:
    """``competitors_pulled`` / ``betpawa_pulled`` observations for the ``touched`` groups (a frame
    of (sr_id, market, line_key) or of their ``_gk``) of ``prices`` (complete price sets of the
    batch); ``now`` = this batch's moves."""
    return _pulls(_group_keyed(prices), _group_keyed(now), touched, open_keys).collect(engine=ENGINE)


# --- one batch, end to end -------------------------------------------------------------------


def observe(prices: pl.DataFrame, whole: pl.DataFrame | None, now: pl.DataFrame, window: pl.DataFrame,
            t: AlertThresholds, open_alerts: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every rule's observations for one batch, as one set of plans collected together.

    ``prices``: the batch's prices after it (``diff_prices`` rows: key, line, odds, available,
    state); ``whole``: the (sr_id, bookmaker) pairs fetched whole, of events no book failed on
    (None: all of them) — the state rules need every book's full set, so they judge only those;
    ``now`` / ``window``: this batch's moves / the window's moves of its events (``with_keys``);
    ``open_alerts``: the open alerts (EXISTING_SCHEMA; evidence for clearing is kept only for
    those; None: for any).
    """
    keyed = _group_keyed(prices)
    moves, window = with_keys(now).lazy(), with_keys(window).lazy()
    complete = keyed if whole is None else keyed.join(whole.lazy(), on=["sr_id", "bookmaker"], how="semi")
    open_keys = None if open_alerts is None else open_alerts["dedup_key"]
    plans = [_steam(window, moves, keyed, t, open_keys), _margin_gaps(complete, _touched(keyed, moves), t, open_keys)]
    if t.disappear:
        open_pulls = (keyed.select("_gk") if open_alerts is None else _group_keyed(
            open_alerts.filter(pl.col("kind").is_in([COMPETITORS_PULLED, BETPAWA_PULLED])).select(GROUP)))
        plans.append(_pulls(complete, moves, _offer_changed(keyed, moves, open_pulls.select("_gk")), open_keys))
    return pl.concat(pl.collect_all(plans, engine=ENGINE))


def reconcile(obs: pl.DataFrame, existing: pl.DataFrame, t: AlertThresholds,
              at: datetime) -> tuple[pl.DataFrame, list[int]]:
    """(alerts to add: OBS_SCHEMA rows, ids of stored alerts to clear) — the dedup rules of the
    module docstring. ``existing`` must hold the open alerts of the observed keys and the steam
    alerts of the window."""
    if obs.is_empty():
        return _empty(), []
    existing = existing.lazy().cast(EXISTING_SCHEMA).join(obs.lazy().select("dedup_key"), on="dedup_key", how="semi")
    is_open = pl.col("cleared_at").is_null()
    clear = existing.filter(is_open).join(obs.lazy().filter(~pl.col("holds")), on="dedup_key", how="semi").select("id")
    latest = existing.sort("created_at", "id").group_by("dedup_key").last().select(
        "dedup_key", old_id="id", old_size="size", old_at="created_at", old_open=is_open)
    joined = obs.lazy().filter(pl.col("holds")).unique("dedup_key", keep="first", maintain_order=True).join(
        latest, on="dedup_key", how="left")
    size, old = pl.col("size"), pl.col("old_size")
    steam_again = (
        pl.col("old_id").is_null() | (pl.col("old_at") <= t.window_start(at)) | (size.sign() != old.sign())
        | (size.abs() >= old.abs() + t.steam_pct)
    )
    was_open = pl.col("old_id").is_not_null() & pl.col("old_open")
    worse = (pl.col("kind") == MARGIN_GAP) & (size >= old + t.margin_gap_pts)
    is_steam = pl.col("kind") == STEAM
    new = joined.filter(pl.when(is_steam).then(steam_again).otherwise(~was_open | worse)).with_columns(
        superseded=pl.when(~is_steam & was_open).then(pl.col("old_id")))
    new, clear = pl.collect_all([new, clear], engine=ENGINE)
    superseded = new["superseded"].drop_nulls().to_list()
    order = ["kind", "sr_id", "market", "line", "outcome", "bookmaker"]
    cleared = sorted(set(clear["id"].to_list()) | set(superseded))
    return new.select(list(OBS_SCHEMA)).sort(order, nulls_last=True), cleared


# --- words -------------------------------------------------------------------------------------


def market_text(market: str, line: float | None) -> str:
    entry = load_catalogue().markets.get(market)
    name = entry.name if entry else market
    return name if line is None else f"{name} {line:g}"


def outcome_text(market: str, outcome: str) -> str:
    """The outcome as BetPawa names it (else a competitor's name, else its key)."""
    entry = load_catalogue().markets.get(market)
    found = next((o for o in entry.outcomes if o.key == outcome), None) if entry else None
    names = [found.name(b) for b in BOOKS] if found else []
    return next((n for n in names if n), outcome)


def _books(names: str) -> str:
    labels = [BOOK_NAMES.get(b, b) for b in names.split(",") if b]
    return " and ".join(labels) if len(labels) <= 2 else ", ".join(labels[:-1]) + " and " + labels[-1]


def message(alert: dict[str, Any], match: str) -> str:
    """One alert in plain words, with its numbers: what moved, by how much, against what."""
    data = json.loads(alert["data"])
    market = market_text(alert["market"], alert["line"])
    if alert["kind"] == STEAM:
        verb = "shortened" if data["to"] < data["from"] else "drifted"
        betpawa = data["betpawa"]
        side = (" — BetPawa now pays more" if betpawa > data["to"] else
                " — BetPawa now pays less" if betpawa < data["to"] else "")
        return (f"{BOOK_NAMES.get(alert['bookmaker'], alert['bookmaker'])} {verb} "
                f"{market}: {outcome_text(alert['market'], alert['outcome'])} in {match} from "
                f"{data['from']:.2f} to {data['to']:.2f} ({data['pct']:+.1f}%) within {data['window_min']:g} min; "
                f"BetPawa still {betpawa:.2f}{side}.")
    if alert["kind"] == MARGIN_GAP:
        return (f"BetPawa's margin on {market} in {match} is {data['betpawa_margin']:.1f}%, "
                f"{data['gap']:.1f} points above the best competitor "
                f"({BOOK_NAMES.get(data['best_book'], data['best_book'])} {data['best_margin']:.1f}%).")
    books, s = _books(",".join(data["books"])), "s" if len(data["books"]) == 1 else ""
    if alert["kind"] == COMPETITORS_PULLED:
        return f"{books} no longer offer{s} {market} in {match}; BetPawa still does."
    return f"BetPawa pulled {market} in {match}; {books} still offer{s} it."


def describe(new: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """``new`` with ``message``; ``events`` gives each sr_id's home and away (the id stands in)."""
    names = {r["sr_id"]: f"{r['home']} – {r['away']}" for r in events.iter_rows(named=True)}
    texts = [message(a, names.get(a["sr_id"], a["sr_id"])) for a in new.iter_rows(named=True)]
    return new.with_columns(message=pl.Series(texts, dtype=pl.String))

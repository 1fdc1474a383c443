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
condition is there), or False (evidence that it is gone); ``settle`` (``reconcile`` on frames)
turns them and the stored alerts into the alerts to add and the ones to clear.

A batch judges only what it can have changed: steam on the prices it moved, margin gaps and
pulls on the (event, market, line) groups where a price is new, changed or gone (the state of
every other group is what an earlier batch left), pulls only where an offer changed or an open
pull alert may clear.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import polars as pl

from engine.config import BOOK_LABELS, BOOKS
from engine.markets.catalogue import load_catalogue, outcome_label
from engine.markets.margins import DOUBLE_COVER, EXCLUSIVE, outcome_rules

if TYPE_CHECKING:
    from engine.config import Settings

REFERENCE = "betpawa"
STEAM, MARGIN_GAP, COMPETITORS_PULLED, BETPAWA_PULLED = "steam", "margin_gap", "competitors_pulled", "betpawa_pulled"
KINDS: tuple[str, ...] = (STEAM, MARGIN_GAP, COMPETITORS_PULLED, BETPAWA_PULLED)
KIND_LABELS = {STEAM: "Steam", MARGIN_GAP: "Margin gap", COMPETITORS_PULLED: "Competitors pulled",
               BETPAWA_PULLED: "BetPawa pulled"}

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
Obs = dict[str, Any]  # one OBS_SCHEMA row


# --- observations ------------------------------------------------------------------------------
#
# A batch stores in ~130 ms and alert evaluation may add a tenth of that. Polars computes what
# needs the batch's thousands of rows (margins, the steam moves), in as few collects as it can:
# each step costs ~0.1 ms whatever it holds (more in the store, with cold caches), so the few
# dozen rows that come out are turned into observations in Python.


def _text(x: float) -> str:
    """A float as polars casts it to text and JSON-encodes it (the shortest round trip)."""
    return repr(float(x))


def _json(data: dict[str, Any]) -> str:
    """``data`` as polars' ``struct.json_encode`` writes it (no spaces)."""
    return json.dumps(data, separators=(",", ":"))


def dedup_key(kind: str, sr_id: str, market: str, line_key: float, outcome: str | None, book: str) -> str:
    """What names a condition: the same key is the same alert (module docstring)."""
    return f"{kind}|{sr_id}|{market}|{_text(line_key)}|{outcome or ''}|{book}"


def _observation(kind: str, key: str, sr_id: str, book: str, market: str, line: float | None,
                 outcome: str | None, holds: bool, size: float | None, data: dict[str, Any]) -> Obs:
    return {"kind": kind, "dedup_key": key, "sr_id": sr_id, "bookmaker": book, "market": market, "line": line,
            "outcome": outcome, "holds": holds, "size": size, "data": _json(data)}


def _frame(found: list[Obs]) -> pl.DataFrame:
    return pl.DataFrame(found, schema=OBS_SCHEMA, orient="row") if found else _empty()


def _open_set(open_keys: Collection[str] | None) -> Collection[str] | None:
    return None if open_keys is None or isinstance(open_keys, (set, frozenset, dict)) else set(open_keys)


_RANK = {b: i for i, b in enumerate(BOOKS)}


def _book_rank() -> pl.Expr:
    return pl.col("bookmaker").replace_strict(_RANK, default=len(BOOKS), return_dtype=pl.Int64)


# --- what the batch did ----------------------------------------------------------------------


def _keys(moves: pl.LazyFrame) -> pl.LazyFrame:
    """``_pk`` (the price), ``_ok`` (the outcome, whichever book) and ``_gk`` (the market and
    line of the event) as one integer each: the rules join on one column, not five strings."""
    return moves.with_columns(_pk=pl.struct(KEY).hash(), _ok=pl.struct(OUTCOME_KEY).hash(),
                              _gk=pl.struct(GROUP).hash())


def with_keys(moves: pl.DataFrame) -> pl.DataFrame:
    """``moves`` (MOVE_SCHEMA) with the integer keys of ``_keys``."""
    return moves if "_gk" in moves.columns else _keys(moves.lazy().select(list(MOVE_SCHEMA))).collect(engine=ENGINE)


def _batch_moves(diff: pl.DataFrame, before: pl.DataFrame, at: datetime) -> pl.LazyFrame:
    state = diff.get_column("state")
    moved = diff.filter((state == "changed") | (state == "gone"))
    cur = before.get_column("cur")
    if cur.len() and cur.is_sorted():  # as odds_current hands it out: each change's row by binary search
        at_cur = cur.search_sorted(moved.get_column("cur")).clip(0, cur.len() - 1)
        previous = {"from_odds": before.get_column("odds").gather(at_cur),
                    "from_available": before.get_column("available").gather(at_cur)}
        if cur.gather(at_cur).equals(moved.get_column("cur")):
            return _keys(moved.lazy().select(*KEY[:4], "line", KEY[4], moved_at=pl.lit(at, pl.Datetime("us")),
                                             **previous, to_odds="odds", to_available="available").cast(MOVE_SCHEMA))
    frame = moved.lazy().select("cur", *KEY, "line", to_odds=pl.col("odds"), to_available=pl.col("available"))
    previous = before.lazy().select("cur", from_odds=pl.col("odds"), from_available=pl.col("available"))
    return _keys(frame.join(previous, on="cur", how="inner").with_columns(
        moved_at=pl.lit(at, pl.Datetime("us"))).select(list(MOVE_SCHEMA)).cast(MOVE_SCHEMA))


def batch_moves(diff: pl.DataFrame, before: pl.DataFrame, at: datetime) -> pl.DataFrame:
    """The batch's price changes (MOVE_SCHEMA, with ``with_keys``' keys): its ``changed`` and
    ``gone`` rows with the values they had before. ``diff`` is ``batch.diff_prices``; ``before``
    the current rows it was diffed against (``batch.current_rows``), joined on their odds_current
    row (``cur``)."""
    return _batch_moves(diff, before, at).collect(engine=ENGINE)


def _touched_rows(diff: Frame, events: Collection[str] = ()) -> pl.LazyFrame:
    """The rows (with ``_gk``) of ``diff`` in the (event, market, line) groups that have a price
    new, changed or gone — the only groups whose margins and offers can differ from the last
    batch — and every row of ``events``."""
    keyed = _group_keyed(diff)
    touched = pl.col("state") != "same"
    if events:
        touched = touched | pl.col("sr_id").is_in(list(events))
    return keyed.join(keyed.filter(touched).select("_gk"), on="_gk", how="semi")


@dataclass(frozen=True)
class BatchView:
    """What one batch changed, as the rules read it (``batch_view``): ``moves`` (MOVE_SCHEMA and
    ``with_keys``' keys) and ``touched``, the batch's ``diff_prices`` rows of the groups it
    touched (``_touched_rows``, with ``_gk``)."""

    moves: pl.DataFrame
    touched: pl.DataFrame


def batch_view(diff: pl.DataFrame, before: pl.DataFrame, at: datetime, events: Collection[str] = ()) -> BatchView:
    """``batch_moves`` and the touched rows, in one collect; ``events``: every row of these is
    touched (events the last batch could not judge)."""
    moves, touched = pl.collect_all([_batch_moves(diff, before, at), _touched_rows(diff, events)], engine=ENGINE)
    return BatchView(moves, touched)


def _group_keyed(frame: Frame) -> pl.LazyFrame:
    frame = frame.lazy()
    return frame if "_gk" in frame.collect_schema() else frame.with_columns(_gk=pl.struct(GROUP).hash())


def _in(frame: pl.LazyFrame, groups: Frame) -> pl.LazyFrame:
    """The rows of ``frame`` in ``groups`` (a frame of (sr_id, market, line_key) or their ``_gk``)."""
    return frame.join(_group_keyed(groups).select("_gk").unique(), on="_gk", how="semi")


# --- steam -----------------------------------------------------------------------------------


def _steam_candidates(window: pl.LazyFrame, now: pl.LazyFrame, t: AlertThresholds) -> pl.LazyFrame:
    """This batch's competitor moves past the threshold, from the reference price of the window:
    the steam moves, short of the BetPawa checks (``_steam_moves``), which few reach."""
    competitor_now = now.filter((pl.col("bookmaker") != REFERENCE) & pl.col("to_available"))
    reference = (
        window.join(competitor_now.select("_pk"), on="_pk", how="semi").sort("moved_at", maintain_order=True)
        .group_by("_pk")
        .agg(start_on=pl.col("from_available").first(), start=pl.col("from_odds").first(),
             first_on=pl.col("to_odds").filter(pl.col("to_available")).first(), since=pl.col("moved_at").first())
        .select("_pk", "since", ref_odds=pl.when(pl.col("start_on")).then("start").otherwise("first_on"))
    )
    pct = (pl.col("to_odds") / pl.col("ref_odds") - 1.0) * 100.0
    return competitor_now.join(reference, on="_pk").with_columns(pct=pct).filter(pl.col("pct").abs() > t.steam_pct)


def _steam_moves(candidates: pl.LazyFrame, window: pl.LazyFrame, prices: pl.LazyFrame) -> pl.LazyFrame:
    """The ``candidates`` BetPawa did not answer: it has not moved the outcome in the window and
    offers it now (``bp_odds``)."""
    betpawa_moved = window.filter(pl.col("bookmaker") == REFERENCE).select("_ok")
    betpawa = prices.filter(pl.col("available") & (pl.col("bookmaker") == REFERENCE)).select(
        _ok=pl.struct(OUTCOME_KEY).hash(), bp_odds="odds")
    return candidates.join(betpawa_moved, on="_ok", how="anti").join(betpawa, on="_ok").select(
        "sr_id", "bookmaker", "market", "line_key", "line", "outcome", "ref_odds", "to_odds", "bp_odds",
        pct=pl.col("pct").round(2), since=pl.col("since").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _steam_observations(hits: pl.DataFrame, now: pl.DataFrame, t: AlertThresholds,
                        open_keys: Collection[str] | None, open_steam: bool | None = None) -> list[Obs]:
    """``open_steam``: whether any steam alert is open (None: look in ``open_keys``)."""
    found = [
        _observation(STEAM, dedup_key(STEAM, sr_id, market, line_key, outcome, book), sr_id, book, market, line,
                     outcome, True, pct, {"from": ref, "to": odds, "pct": pct, "window_min": t.steam_window_min,
                                          "since": since, "betpawa": bp})
        for sr_id, book, market, line_key, line, outcome, ref, odds, bp, pct, since in _rows(hits)
    ]
    # BetPawa moving an outcome answers any steam alert on it: evidence for clearing.
    if open_steam is None:
        open_steam = open_keys is None or any(k.startswith(f"{STEAM}|") for k in open_keys)
    if open_steam:
        answered = now.filter(pl.col("bookmaker") == REFERENCE).select(*OUTCOME_KEY, "line").unique(
            maintain_order=True)
        for sr_id, market, line_key, outcome, line in _rows(answered):
            for book in BOOKS:
                key = dedup_key(STEAM, sr_id, market, line_key, outcome, book)
                if book != REFERENCE and (open_keys is None or key in open_keys):
                    found.append(_observation(STEAM, key, sr_id, book, market, line, outcome, False, None,
                                              {"followed": True}))
    return found


def steam(window: Frame, now: Frame, prices: Frame, t: AlertThresholds,
          open_keys: Collection[str] | None = None) -> pl.DataFrame:
    """Steam observations. ``window``: moves of the batch's events inside the window (this
    batch's included, every book); ``now``: this batch's moves; ``prices``: the batch's prices
    after it (those of the moved outcomes are enough)."""
    window, now = with_keys(window.lazy().collect()).lazy(), with_keys(now.lazy().collect())
    hits = _steam_moves(_steam_candidates(window, now.lazy(), t), window, prices.lazy()).collect(engine=ENGINE)
    return _frame(_steam_observations(hits, now, t, _open_set(open_keys)))


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
    is_ref = pl.col("bookmaker") == REFERENCE
    per_book = rows.lazy().group_by(*GROUP, "bookmaker").agg(
        line=pl.col("line").first(), inv=(1.0 / pl.col("odds")).sum(), n=pl.len(),
        all_on=pl.col("available").all(), offers=pl.col("available").any(),
    ).join(_set_rules().lazy(), on=["market", "bookmaker"], how="left").with_columns(
        margin=pl.when(pl.col("all_on") & (pl.col("n") >= pl.col("_n")))
        .then(((pl.col("inv") / pl.col("_covers") - 1.0) * 100.0).round(2)), _rank=_book_rank(),
    ).with_columns(_rival=pl.when(~is_ref).then("margin"))
    # The lowest competitor margin; ties go to the book first in BOOKS.
    return per_book.group_by(GROUP).agg(
        line=pl.col("line").first(), bp_margin=pl.col("margin").filter(is_ref).max(),
        bp_present=is_ref.any(), bp_offers=(is_ref & pl.col("offers")).any(),
        best_margin=pl.col("_rival").min(),
        best_book=pl.col("bookmaker").sort_by("_rival", "_rank", nulls_last=True).first(),
    ).with_columns(best_book=pl.when(pl.col("best_margin").is_not_null()).then("best_book"))


def _gaps(bounds: pl.LazyFrame, t: AlertThresholds) -> pl.LazyFrame:
    """The groups of ``margin_bounds`` the gap rule can judge, with ``gap`` and ``holds``."""
    holds = (pl.when(pl.col("gap") > t.margin_gap_pts).then(True)
             .when(pl.col("gap") <= t.margin_gap_pts * CLEAR_SHARE).then(False)
             .when(pl.col("bp_present") & ~pl.col("bp_offers")).then(False))
    return bounds.with_columns(gap=(pl.col("bp_margin") - pl.col("best_margin")).round(2)).with_columns(
        holds=holds).filter(pl.col("holds").is_not_null()).select(
        *GROUP, "line", "bp_margin", "best_margin", "best_book", "gap", "holds")


def _gap_observations(gaps: pl.DataFrame, open_keys: Collection[str] | None) -> list[Obs]:
    found = []
    for sr_id, market, line_key, line, bp, best, book, gap, holds in _rows(gaps):
        key = dedup_key(MARGIN_GAP, sr_id, market, line_key, None, REFERENCE)
        if holds or open_keys is None or key in open_keys:
            found.append(_observation(MARGIN_GAP, key, sr_id, REFERENCE, market, line, None, holds, gap,
                                      {"betpawa_margin": bp, "best_margin": best, "best_book": book, "gap": gap}))
    return found


def margin_gaps(prices: Frame, touched: Frame, t: AlertThresholds,
                open_keys: Collection[str] | None = None) -> pl.DataFrame:
    """Margin-gap observations for the ``touched`` groups (a frame of (sr_id, market, line_key) or
    of their ``_gk``) of ``prices`` (complete price sets of the batch): holds when the gap is above
    the threshold; evidence it is gone when the gap is back to ``CLEAR_SHARE`` of it or BetPawa
    offers nothing; nothing when either side has no margin (or the gap is in between)."""
    gaps = _gaps(margin_bounds(_in(_group_keyed(prices), touched)), t).collect(engine=ENGINE)
    return _frame(_gap_observations(gaps, _open_set(open_keys)))


# --- a market on one side only ---------------------------------------------------------------


def _pull_books(rows: pl.LazyFrame, groups: pl.LazyFrame) -> pl.LazyFrame:
    """Per (group, book) of ``rows`` in ``groups`` (a frame of ``_gk``): the group, and whether
    the book offers any of its outcomes."""
    return rows.join(groups, on="_gk", how="semi").group_by("_gk", "bookmaker").agg(
        *(pl.col(c).first() for c in (*GROUP, "line")), offers=pl.col("available").any())


def _offering(prices: pl.LazyFrame) -> pl.LazyFrame:
    """(sr_id, bookmaker) with a price on offer in ``prices``."""
    return prices.filter(pl.col("available")).select("sr_id", "bookmaker").unique()


def _dead(books: pl.DataFrame, offering: pl.DataFrame, prices: pl.DataFrame) -> set[tuple[str, str]]:
    """The (sr_id, bookmaker) of ``books`` (``_pull_books``) with nothing on offer in ``prices``
    (all of the batch's): the book took the event off. ``offering`` (``_offering`` of some of
    them) settles most pairs; the rest are looked up in ``prices``."""
    idle = {(s, b) for s, b, offers in _rows(books.select("sr_id", "bookmaker", "offers")) if not offers}
    idle -= set(_rows(offering))
    return idle - set(_rows(_offering(prices.lazy().filter(pl.col("sr_id").is_in(list({s for s, _ in idle}))))
                            .collect(engine=ENGINE))) if idle else idle


def _offer_changes(moves: pl.LazyFrame) -> pl.LazyFrame:
    """The moves that put a price on or off offer."""
    return moves.filter(pl.col("from_available") != pl.col("to_available")).select(
        "_gk", "bookmaker", "from_available")


def _rows(frame: pl.DataFrame) -> Iterator[tuple]:
    """``frame``'s rows as tuples, column by column: for the few dozen rows a rule hands to
    Python, cheaper than ``iter_rows``."""
    return zip(*(frame.get_column(c).to_list() for c in frame.columns), strict=True)


def _judge_pulls(books: pl.DataFrame, judged: Callable[[int, str], bool], pulled: set[tuple[int, str]],
                 dead: set[tuple[str, str]], open_keys: Collection[str] | None) -> list[Obs]:
    """The pull rules on ``books`` (``_pull_books``) of the groups ``judged(_gk, sr_id)`` accepts:
    ``pulled`` = (``_gk``, book) this batch took off, ``dead`` = ``_dead`` (a book with
    nothing on offer for the whole event took the event off: not a market alert)."""
    groups: dict[int, dict[str, tuple]] = {}
    for gk, book, sr_id, market, line_key, line, offers in _rows(books):
        if (sr_id, book) not in dead and judged(gk, sr_id):
            groups.setdefault(gk, {})[book] = (sr_id, market, line_key, line, offers)
    found = []
    for gk, group in groups.items():
        names = sorted(group, key=lambda b: _RANK.get(b, len(BOOKS)))
        sr_id, market, line_key, line = group[names[0]][:4]
        offers = {b: group[b][4] for b in names}
        took_off = {b for b in names if not offers[b] and (gk, b) in pulled}
        comp = [b for b in names if b != REFERENCE]
        bp_present, bp_offers, bp_pulled = REFERENCE in offers, offers.get(REFERENCE, False), REFERENCE in took_off
        comp_offers, comp_pulled = any(offers[b] for b in comp), any(b in took_off for b in comp)
        gone = (True if bp_offers and comp and not comp_offers and comp_pulled else
                False if comp_offers or (bp_present and not bp_offers) else None)
        ours = (True if bp_pulled and comp_offers and all(offers[b] for b in comp) else
                False if bp_offers or (comp and not comp_offers) else None)
        for kind, holds, book in ((COMPETITORS_PULLED, gone, ",".join(comp)), (BETPAWA_PULLED, ours, REFERENCE)):
            key = dedup_key(kind, sr_id, market, line_key, None, "")
            if holds or (holds is False and (open_keys is None or key in open_keys)):
                found.append(_observation(kind, key, sr_id, book, market, line, None, holds, None, {"books": comp}))
    return found


def _pulled(changes: pl.DataFrame) -> set[tuple[int, str]]:
    """(``_gk``, book) taken off, of ``_offer_changes``."""
    return {(g, b) for g, b, was_on in _rows(changes) if was_on}


def disappearances(prices: Frame, now: Frame, touched: Frame,
                   open_keys: Collection[str] | None = None) -> pl.DataFrame:
    """``competitors_pulled`` / ``betpawa_pulled`` observations for the ``touched`` groups (a frame
    of (sr_id, market, line_key) or of their ``_gk``) of ``prices`` (complete price sets of the
    batch); ``now`` = this batch's moves."""
    prices = _group_keyed(prices).collect(engine=ENGINE)
    books, changes = pl.collect_all([_pull_books(prices.lazy(), _group_keyed(touched).select("_gk")),
                                     _offer_changes(_group_keyed(now))], engine=ENGINE)
    return _frame(_judge_pulls(books, lambda gk, sr_id: True, _pulled(changes), _dead(books, books.clear(), prices),
                               _open_set(open_keys)))


def group_keys(groups: Sequence[tuple[str, str, float]]) -> list[int]:
    """The ``_gk`` of these (sr_id, market, line_key)."""
    frame = pl.DataFrame(list(groups), schema={"sr_id": pl.String, "market": pl.String, "line_key": pl.Float64},
                         orient="row")
    return frame.select(pl.struct(GROUP).hash()).to_series().to_list()


# --- one batch, end to end -------------------------------------------------------------------


def observe(view: BatchView, prices: pl.DataFrame, whole: pl.DataFrame | None, window: Frame,
            t: AlertThresholds, open_keys: Collection[str] | None = None, open_pulls: Collection[int] | None = None,
            events: Collection[str] = (), open_steam: bool | None = None) -> list[Obs]:
    """Every rule's observations for one batch (OBS_SCHEMA rows): one collect, and a small one
    more when a move may be steam or a book may have taken a whole event off.

    ``view``: ``batch_view`` of the batch; ``prices``: its ``diff_prices`` rows; ``whole``: the
    (sr_id, bookmaker) pairs fetched whole, of events no book failed on (None: all of them) — the
    state rules need every book's full set, so they judge only those; ``window``: the window's
    moves of its events (with ``with_keys``' keys; this batch's included); ``open_keys``: the
    dedup keys of the open alerts (evidence for clearing is kept only for those; None: for any),
    ``open_pulls`` the ``_gk`` of the groups with an open pull alert (None: any group);
    ``events``: events whose every group the state rules judge (``batch_view`` must have been
    given them); ``open_steam``: whether a steam alert is open (None: look in ``open_keys``).
    """
    rows, moves, open_keys = view.touched.lazy(), view.moves.lazy(), _open_set(open_keys)
    complete = rows if whole is None else rows.join(whole.lazy(), on=["sr_id", "bookmaker"], how="semi")
    plans = [_steam_candidates(window.lazy(), moves, t), _gaps(margin_bounds(complete), t)]
    if t.disappear:
        # The groups where a pull rule may observe something: an offer changed, or a price of it is
        # quoted for the first time (clears an open pull alert), or its event was not judged last time.
        candidates = [_offer_changes(moves).select("_gk"), rows.filter(pl.col("state") == "new").select("_gk")]
        if events:
            candidates.append(rows.filter(pl.col("sr_id").is_in(list(events))).select("_gk"))
        plans += [_pull_books(complete, pl.concat(candidates)), _offer_changes(moves), _offering(rows)]
    steam_candidates, gaps, *pulls = pl.collect_all(plans, engine=ENGINE)
    hits = steam_candidates if steam_candidates.is_empty() else _steam_moves(
        steam_candidates.lazy(), window.lazy(), rows).collect(engine=ENGINE)
    found = _steam_observations(hits, view.moves, t, open_keys, open_steam) + _gap_observations(gaps, open_keys)
    if pulls:
        books, changes, offering = pulls
        pulled = _pulled(changes)
        # A pull holds only where a book took the market off in this batch; elsewhere only an open
        # alert can learn something (that it is over).
        took = {g for g, _ in pulled}
        events = set(events)
        judged = ((lambda gk, sr_id: True) if open_pulls is None else
                  (lambda gk, sr_id: gk in took or gk in open_pulls or sr_id in events))
        found += _judge_pulls(books, judged, pulled, _dead(books, offering, prices), open_keys)
    return found


# --- dedup -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """A stored alert as the dedup rules see it (an EXISTING_SCHEMA row)."""

    id: int
    kind: str
    dedup_key: str
    sr_id: str
    market: str
    line_key: float
    size: float | None
    created_at: datetime
    cleared_at: datetime | None = None


#: dedup_key → its stored alerts (the open one, recent steam ones): what ``settle`` compares with.
Ledger = dict[str, list[Stored]]


def ledger(existing: pl.DataFrame) -> Ledger:
    """``existing`` (EXISTING_SCHEMA) by dedup key."""
    out: Ledger = {}
    for row in existing.cast(EXISTING_SCHEMA).select(list(EXISTING_SCHEMA)).iter_rows():
        alert = Stored(*row)
        out.setdefault(alert.dedup_key, []).append(alert)
    return out


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def _order(row: Obs) -> tuple:
    """New alerts' order: kind, event, market, line, outcome, book (nulls last)."""
    return tuple((row[c] is None, row[c] if row[c] is not None else 0.0 if c == "line" else "")
                 for c in ("kind", "sr_id", "market", "line", "outcome", "bookmaker"))


def settle(obs: list[Obs], stored: Ledger, t: AlertThresholds, at: datetime) -> tuple[list[Obs], list[Stored]]:
    """``reconcile`` on rows: (observations to raise, in ``_order``; stored alerts to clear).

    In Python, not polars: a batch has a few dozen observations and a lookup by key is all they
    need, while a polars plan costs ~0.1 ms a step whatever it holds."""
    clear = {a.id: a for o in obs if not o["holds"] for a in stored.get(o["dedup_key"], ()) if a.cleared_at is None}
    window_start, seen, new = t.window_start(at), set(), []
    for o in obs:
        key, size = o["dedup_key"], o["size"]
        if not o["holds"] or key in seen:
            continue
        seen.add(key)
        old = max(stored.get(key, ()), key=lambda a: (a.created_at, a.id), default=None)
        if o["kind"] == STEAM:
            raise_it = old is None or old.created_at <= window_start or (
                size is not None and old.size is not None
                and (_sign(size) != _sign(old.size) or abs(size) >= abs(old.size) + t.steam_pct))
        else:
            was_open = old is not None and old.cleared_at is None
            worse = (o["kind"] == MARGIN_GAP and old is not None and size is not None and old.size is not None
                     and size >= old.size + t.margin_gap_pts)
            raise_it = not was_open or worse
            if raise_it and old is not None and was_open:
                clear[old.id] = old  # superseded by a worse one
        if raise_it:
            new.append(o)
    return sorted(new, key=_order), [clear[i] for i in sorted(clear)]


def reconcile(obs: pl.DataFrame, existing: pl.DataFrame, t: AlertThresholds,
              at: datetime) -> tuple[pl.DataFrame, list[int]]:
    """(alerts to add: OBS_SCHEMA rows, ids of stored alerts to clear) — the dedup rules of the
    module docstring. ``existing`` must hold the open alerts of the observed keys and the steam
    alerts of the window."""
    if obs.is_empty():
        return _empty(), []
    new, clear = settle(obs.to_dicts(), ledger(existing), t, at)
    return pl.DataFrame(new, schema=OBS_SCHEMA, orient="row") if new else _empty(), [a.id for a in clear]


# --- words -------------------------------------------------------------------------------------


def market_text(market: str, line: float | None) -> str:
    entry = load_catalogue().markets.get(market)
    name = entry.name if entry else market
    return name if line is None else f"{name} {line:g}"


def outcome_text(market: str, outcome: str) -> str:
    """The outcome as BetPawa names it (else a competitor's name, else its key)."""
    entry = load_catalogue().markets.get(market)
    return outcome_label(entry, outcome) if entry else outcome


def _books(names: str) -> str:
    labels = [BOOK_LABELS.get(b, b) for b in names.split(",") if b]
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
        return (f"{BOOK_LABELS.get(alert['bookmaker'], alert['bookmaker'])} {verb} "
                f"{market}: {outcome_text(alert['market'], alert['outcome'])} in {match} from "
                f"{data['from']:.2f} to {data['to']:.2f} ({data['pct']:+.1f}%) within {data['window_min']:g} min; "
                f"BetPawa still {betpawa:.2f}{side}.")
    if alert["kind"] == MARGIN_GAP:
        return (f"BetPawa's margin on {market} in {match} is {data['betpawa_margin']:.1f}%, "
                f"{data['gap']:.1f} points above the best competitor "
                f"({BOOK_LABELS.get(data['best_book'], data['best_book'])} {data['best_margin']:.1f}%).")
    books, s = _books(",".join(data["books"])), "s" if len(data["books"]) == 1 else ""
    if alert["kind"] == COMPETITORS_PULLED:
        return f"{books} no longer offer{s} {market} in {match}; BetPawa still does."
    return f"BetPawa pulled {market} in {match}; {books} still offer{s} it."


def describe(new: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """``new`` with ``message``; ``events`` gives each sr_id's home and away (the id stands in)."""
    names = {r["sr_id"]: f"{r['home']} – {r['away']}" for r in events.iter_rows(named=True)}
    texts = [message(a, names.get(a["sr_id"], a["sr_id"])) for a in new.iter_rows(named=True)]
    return new.with_columns(message=pl.Series(texts, dtype=pl.String))

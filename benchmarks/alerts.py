"""What alert evaluation adds to the store phase: the same batches stored with and without it.

Two stores get identical batches of 50 events (``benchmarks/store.py``'s ``batch_of``), one with
``AlertThresholds`` on every batch, one without, interleaved so both share the machine's noise:

1. Preload: the first cycle into an empty database (every price new, every group judged once).
2. ``--cycles`` more cycles, 5 minutes apart in the batches' own time.

Prices (``--prices``): ``world`` (default) = the simulator's world, one drift epoch per cycle
(~300 prices per book and event, ~5 % of them moving per epoch, the books' real margin
structure, so alerts come at the rate the demo raises them); ``synthetic`` = ``store.py``'s
``price_frame`` with margin-consistent odds, ``--change-share`` of them moved ±0.05 a cycle and
``--steam-share`` of the competitors' odds × 0.85 (a stress case: far more alerts).

Overhead = store time with alerts ÷ without − 1 over the cycles after the preload (the steady
state a running scheduler is in). The evaluation is timed too: its part on the batch's own thread
(``start_evaluation`` + ``finish_evaluation``: the token, waiting for the rules, writing the
alerts) and the rules on their worker thread (``_judge``, overlapped with the batch's SQL); the
rest of the overhead is what the alert tables add to the batch's commit (its checkpoint), and
what the worker takes from the batch's thread (cores, the GIL). Last line JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from store import EVENTS_PER_BATCH, batch_of, price_frame, price_keys, with_changes  # noqa: E402

import engine.store.alerts as store_alerts  # noqa: E402
import engine.store.batch as store_batch  # noqa: E402
from engine.config import BOOKS  # noqa: E402
from engine.markets.alerts import AlertThresholds  # noqa: E402
from engine.simulator.world import build_world  # noqa: E402
from engine.store import Store  # noqa: E402
from engine.store.types import PRICE_SCHEMA  # noqa: E402

#: Each book's margin on every market: BetPawa a little dearer, as the desk suspects.
MARGINS = {"betpawa": 0.06, "sportybet": 0.05, "bet9ja": 0.055}
CYCLE = timedelta(minutes=5)


def priced(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """``frame`` with margin-consistent odds: per (event, market, line) random fair probabilities
    shared by the books, each book's odds = 1 ÷ (p × (1 + its margin) × a little noise)."""
    groups = frame.select("sr_id", "market", "line", "outcome").unique(maintain_order=True)
    weights = groups.with_columns(w=pl.Series(rng.gamma(2.0, 1.0, groups.height)))
    fair = weights.with_columns(p=pl.col("w") / pl.col("w").sum().over("sr_id", "market", "line")).drop("w")
    noise = pl.Series(rng.normal(1.0, 0.01, frame.height))
    margin = pl.col("bookmaker").replace_strict(MARGINS, return_dtype=pl.Float64)
    odds = (1.0 / (pl.col("p") * (1.0 + margin) * noise)).clip(1.01, 500.0).round(2)
    return frame.join(fair, on=["sr_id", "market", "line", "outcome"], how="left", nulls_equal=True).with_columns(
        odds=odds).select(frame.columns)


def moved(frame: pl.DataFrame, change_share: float, steam_share: float, rng: np.random.Generator) -> pl.DataFrame:
    """``with_changes`` (+0.05 on ``change_share`` of the odds), half of those turned into −0.05 so
    margins wander instead of drifting one way, and ``steam_share`` of the competitors' odds × 0.85."""
    changed = with_changes(frame, change_share, rng)
    down = pl.Series(rng.random(frame.height) < 0.5)
    steam = pl.Series(rng.random(frame.height) < steam_share) & (frame["bookmaker"] != "betpawa")
    odds = pl.when(down & (changed["odds"] != frame["odds"])).then(pl.col("odds") - 0.10).otherwise(pl.col("odds"))
    return changed.with_columns(odds=pl.when(steam).then(odds * 0.85).otherwise(odds).clip(1.01).round(2))


def ms(xs: list[float]) -> str:
    return f"total {sum(xs):.2f} s, p50 {1000 * statistics.median(xs):.1f} ms, max {1000 * max(xs):.0f} ms"


def timing(module: object, name: str, into: list[float]) -> None:
    """Replace ``module.name`` by itself timed, each call's seconds appended to ``into``."""
    fn = getattr(module, name)

    def timed(*args: object) -> object:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            into.append(time.perf_counter() - started)
    setattr(module, name, timed)


def world_cycles(events: int, cycles: int) -> Iterator[list[pl.DataFrame]]:
    """Each cycle's batches (kickoff order, like the pipeline) of the simulator world, one epoch a cycle."""
    world = build_world(seed=1, events=events)
    order = [e for e in sorted(world.events, key=lambda e: (e.kickoff, e.sr_id))]
    for epoch in range(cycles + 1):
        batches = []
        for first in range(0, len(order), EVENTS_PER_BATCH):
            rows = [(e.sr_id, b, p.market, p.line, p.outcome, p.odds, p.available)
                    for e in order[first:first + EVENTS_PER_BATCH] for b in sorted(e.books)
                    for p in world.quotes(b, e.sr_id, epoch)]
            batches.append(pl.DataFrame(rows, schema=PRICE_SCHEMA, orient="row"))
        yield batches


def synthetic_cycles(args: argparse.Namespace) -> Iterator[list[pl.DataFrame]]:
    rng, keys = np.random.default_rng(3), price_keys(args.prices_per_book)
    frames = [priced(price_frame(first, EVENTS_PER_BATCH, keys, rng), rng)
              for first in range(0, args.events, EVENTS_PER_BATCH)]
    yield frames
    for _ in range(args.cycles):
        frames = [moved(f, args.change_share, args.steam_share, rng) for f in frames]
        yield frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prices", choices=("world", "synthetic"), default="world")
    ap.add_argument("--events", type=int, default=1500)
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--prices-per-book", type=int, default=150, help="synthetic only")
    ap.add_argument("--change-share", type=float, default=0.05, help="synthetic only")
    ap.add_argument("--steam-share", type=float, default=0.002, help="synthetic only")
    args = ap.parse_args()
    thresholds = AlertThresholds()
    cycles = world_cycles(args.events, args.cycles) if args.prices == "world" else synthetic_cycles(args)

    evaluated: list[float] = []  # the evaluation on the batch's thread
    judged: list[float] = []  # the rules on their worker thread
    timing(store_batch, "start_evaluation", evaluated)
    timing(store_batch, "finish_evaluation", evaluated)
    timing(store_alerts, "_judge", judged)
    with tempfile.TemporaryDirectory() as tmp:
        plain, alerting = Store(Path(tmp) / "plain.duckdb"), Store(Path(tmp) / "alerts.duckdb")
        runs = {id(s): s.start_run("benchmark", list(BOOKS)) for s in (plain, alerting)}
        start = datetime.now(UTC) - CYCLE * (args.cycles + 1)
        seconds: dict[str, dict[str, list[float]]] = {
            p: {"plain": [], "alerts": [], "evaluate": [], "rules": []} for p in ("preload", "cycles")}
        rows: list[int] = []
        for cycle, frames in enumerate(cycles):
            phase = "preload" if cycle == 0 else "cycles"
            for n, prices in enumerate(frames):
                rows.append(prices.height)
                order = [(plain, None, "plain"), (alerting, thresholds, "alerts")]
                for store, t, name in (order if n % 2 else order[::-1]):
                    batch = batch_of(runs[id(store)], start + cycle * CYCLE + timedelta(seconds=n), prices, n + 1)
                    batch.alert_thresholds = t
                    evaluated.clear()
                    judged.clear()
                    seconds[phase][name].append(store.store_batch(batch).seconds)
                    if t is not None:
                        seconds[phase]["evaluate"].append(sum(evaluated))
                        seconds[phase]["rules"].append(sum(judged))
        raised = alerting.alerts()
        by_kind = dict(raised.group_by("kind").len().iter_rows()) if raised.height else {}
        batches = len(frames)

    mean_rows = round(statistics.mean(rows))
    print(f"{args.prices} prices: {batches} batches of {EVENTS_PER_BATCH} events a cycle, "
          f"~{mean_rows:,} prices a batch; "
          f"{args.cycles} cycles after the preload; stores interleaved")
    result: dict[str, float | int | dict] = {}
    for phase, label in (("preload", "preload (every price new)"), ("cycles", "cycles (steady state)")):
        plain_s, alert_s = seconds[phase]["plain"], seconds[phase]["alerts"]
        ratio = sum(alert_s) / sum(plain_s) - 1
        by_median = statistics.median(alert_s) / statistics.median(plain_s) - 1
        evaluate_s, rules_s = seconds[phase]["evaluate"], seconds[phase]["rules"]
        print(f"{label}: without alerts {ms(plain_s)}; with alerts {ms(alert_s)}; "
              f"overhead {ratio:+.1%} (by medians {by_median:+.1%}); of which the evaluation on the batch's "
              f"thread {ms(evaluate_s)} ({sum(evaluate_s) / sum(plain_s):+.1%}); the rules on their worker "
              f"thread {ms(rules_s)} ({sum(rules_s) / sum(plain_s):.1%} of the plain time, overlapped)")
        result |= {f"{phase}_plain_s": round(sum(plain_s), 3), f"{phase}_alerts_s": round(sum(alert_s), 3),
                   f"{phase}_evaluate_s": round(sum(evaluate_s), 3), f"{phase}_rules_s": round(sum(rules_s), 3),
                   f"{phase}_overhead": round(ratio, 4), f"{phase}_overhead_by_medians": round(by_median, 4)}
    print(f"alerts raised: {by_kind or 'none'}")
    result |= {"overhead": result["cycles_overhead"], "prices": args.prices, "events": args.events,
               "batch_rows": mean_rows, "batches": batches * args.cycles,
               "alerts_raised": by_kind}
    print(json.dumps(result))


if __name__ == "__main__":
    main()

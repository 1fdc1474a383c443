"""The margin page's read of a 7-day period, rebuilt live from history and summed from rollups.

On a copy of a store built by ``benchmarks/queries.py`` (``--db``; built there first with
``--days`` if it does not exist), with ``now`` = the store's last history row + 5 minutes:

1. ``Store.margin_analytics`` for [now − 7 days, now + 1 h) with no rollups: every market
   rebuilt from history (what a fresh database, or the page before rollups, does);
2. the first rollup build of the retention window (``Store.roll_up_margins``) up to an hour
   before now, then one more hour (the scheduler's steady work);
3. the same read with rollups, ``--samples`` times (stored slices summed + the last minutes
   rebuilt live), checked equal to (1).

The store's last history row is the benchmark's "current prices" batch, which writes every
price to history at once (its odds_current was empty): the live remainder of (3) holds those
~1M rows, about what an hour of real changes is. Timings are wall-clock on whatever else the
machine runs. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from engine.store import Store  # noqa: E402

PERIOD = timedelta(days=7)


def timed(fn):  # noqa: ANN001, ANN201
    """``fn()``, its wall-clock seconds and the CPU seconds of this process (all threads) it took:
    on a shared machine the second says more."""
    started, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - started, time.process_time() - cpu


def worst_difference(ours: dict[str, pl.DataFrame], theirs: dict[str, pl.DataFrame]) -> float:
    """The largest relative difference of any sum between two results (0 when identical)."""
    worst = 0.0
    for name, keys in (("cells", ["bookmaker", "market", "country", "tournament"]),
                       ("buckets", ["bookmaker", "market", "bucket"])):
        joined = ours[name].join(theirs[name], on=keys, how="full", coalesce=True, suffix="_ref")
        if joined.height != ours[name].height or joined.height != theirs[name].height:
            return float("inf")
        for column in (c for c in ours[name].columns if c not in keys):
            diff = (pl.col(column) - pl.col(f"{column}_ref")).abs() / pl.col(f"{column}_ref").abs().clip(lower_bound=1)
            worst = max(worst, float(joined.select(diff.max()).item() or 0))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=Path("/tmp/rollup_q2.duckdb"), help="a benchmarks/queries.py store")
    ap.add_argument("--days", type=float, default=2.0, help="history days when --db has to be built")
    ap.add_argument("--samples", type=int, default=3)
    args = ap.parse_args()
    if not args.db.exists():
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "queries.py"), "--days", str(args.days),
                        "--db", str(args.db), "--samples", "5"], check=True)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "margins.duckdb"
        shutil.copy(args.db, path)
        store = Store(path)
        last, rows = store.query("SELECT max(observed_at) AS last, count(*) AS n FROM odds_history_data").row(0)
        now = last + timedelta(minutes=5)
        start, end = now - PERIOD, now + timedelta(hours=1)
        print(f"store: {rows:,} history rows to {last:%Y-%m-%d %H:%M} UTC; period {start:%m-%d %H:%M} → now")

        live, live_s, live_cpu = timed(lambda: store.margin_analytics(start, end, now=now))
        print(f"live only:      {live_s:6.1f} s, CPU {live_cpu:5.1f} s  ({live['cells'].height:,} cells)")

        first, build_s, build_cpu = timed(lambda: store.roll_up_margins(14, now=now - timedelta(hours=1)))
        print(f"rollup build:   {build_s:6.1f} s, CPU {build_cpu:5.1f} s  ({first.hours} h)")
        hour, hour_s, _ = timed(lambda: store.roll_up_margins(14, now=now))
        print(f"one more hour:  {hour_s:6.1f} s  ({hour.hours} h)")
        slices = store.query("SELECT slice_hours, count(*) AS n FROM margin_rollup GROUP BY ALL ORDER BY ALL")
        rollup_rows = int(slices["n"].sum())
        print(f"stored: {rollup_rows:,} rows ({', '.join(f'{n:,} in {h} h slices' for h, n in slices.iter_rows())}); "
              f"database {store.db_bytes() / 1e6:,.0f} MB")

        times, cpus = [], []
        for _ in range(args.samples):
            rolled, seconds, cpu = timed(lambda: store.margin_analytics(start, end, now=now))
            times.append(seconds)
            cpus.append(cpu)
        difference = worst_difference(rolled, live)
        print(f"with rollups:   {statistics.median(times):6.2f} s, CPU {statistics.median(cpus):5.2f} s, median "
              f"of {args.samples} ({', '.join(f'{t:.2f}' for t in times)}); worst relative difference to live "
              f"{difference:.1e}")
        print(json.dumps({
            "page_s": round(statistics.median(times), 2), "page_live_only_s": round(live_s, 1),
            "rollup_build_s": round(build_s, 1), "rollup_hour_s": round(hour_s, 1), "rows": rows,
            "page_cpu_s": round(statistics.median(cpus), 2), "page_live_only_cpu_s": round(live_cpu, 1),
            "rollup_build_cpu_s": round(build_cpu, 1),
            "rollup_rows": rollup_rows, "db_bytes": store.db_bytes(), "max_rel_difference": difference,
        }))


if __name__ == "__main__":
    main()

"""Freshness of the stored prices under tiered refresh, against the simulator's truth.

The simulator serves a world whose prices drift with wall time (one epoch every
``--drift-every`` seconds; each price is re-quoted every 13–30 epochs, so at the default 60 s a
price moves every 13–30 minutes — a few times the design's whole-book average of 5% of prices
per 5 minutes, as markets move near kickoff) with realistic latency. ``oddsdesk scheduler``
runs in tier mode as its own process. After its start-up full cycle, every ``--sample-s``
seconds this script reads what the store holds for a sample of events per tier and asks the
simulator (``POST /_sim/truth``) for the current prices and when each changed since the store
last confirmed it. A stored price *matches* when it equals the truth (availability, and odds
while available); otherwise it lags by the seconds since the truth first moved away from what
the store last saw. Per tier: p50/p95 lag over all sampled prices and the share matching.
Targets: p95 ≤ 1.5 × the tier's interval for every tier, near tier ≥ 95% matching. The last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.config import BOOKS, load_settings  # noqa: E402
from engine.pipeline.tiers import tier_of, tiers_from  # noqa: E402
from engine.simulator.process import SimProcess, start_simulator  # noqa: E402
from engine.store import Store  # noqa: E402

LINE_KEY = -1e6  # stands in for "no line" in the comparison keys


def _key(market: str, line: float | None, outcome: str) -> tuple[str, float, str]:
    return market, LINE_KEY if line is None else round(float(line), 2), outcome


def sample(store: Store, sim: SimProcess, tiers, per_tier: int, rng: random.Random) -> list[tuple[str, float, bool]]:
    """(tier, lag seconds, matches) for every stored price of a sample of events per tier."""
    now = datetime.now(UTC)
    events = store.query("SELECT sr_id, kickoff FROM events WHERE kickoff > ?", [now])
    by_tier: dict[str, list[str]] = {t.name: [] for t in tiers}
    for sr_id, kickoff in events.iter_rows():
        tier = tier_of(kickoff, now, tiers)
        if tier is not None:
            by_tier[tier.name].append(sr_id)
    chosen = {sr: name for name, ids in by_tier.items() for sr in rng.sample(ids, min(per_tier, len(ids)))}
    if not chosen:
        return []
    stored = store.current_prices(sr_ids=list(chosen))
    seen = stored.group_by("sr_id", "bookmaker").agg(pl.col("last_seen_at").max())
    pairs = [(book, sr, at.timestamp()) for sr, book, at in seen.iter_rows()]
    held = {(r["sr_id"], r["bookmaker"], *_key(r["market"], r["line"], r["outcome"])): (r["odds"], r["available"])
            for r in stored.iter_rows(named=True)}
    truth = sim.truth(pairs)
    at = truth["now"]
    since = {(sr, book): s for book, sr, s in pairs}
    out = []
    for pair in truth["pairs"]:
        sr, book = pair["sr_id"], pair["book"]
        for market, line, outcome, odds, available, first, _last in pair["prices"]:
            have = held.get((sr, book, *_key(market, line, outcome)))
            if have is None:  # never mapped from this book's payload: coverage, not freshness
                continue
            matches = have[1] == available and (not available or abs(have[0] - odds) < 1e-9)
            lag = 0.0 if matches else at - (first if first is not None else since[(sr, book)])
            out.append((chosen[sr], max(0.0, lag), matches))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=15.0, help="measured time after the start-up full cycle")
    ap.add_argument("--events", type=int, default=1500)
    ap.add_argument("--latency-ms", type=float, default=150.0)
    ap.add_argument("--jitter-ms", type=float, default=50.0)
    ap.add_argument("--drift-every", type=float, default=60.0, help="simulated prices move every N seconds")
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--per-tier", type=int, default=40, help="events sampled per tier and sample")
    ap.add_argument("--tick-s", type=float, default=15.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    tiers = tiers_from(load_settings(db_path="unused.duckdb"))
    faults = f"all:latency={args.latency_ms:g},jitter={args.jitter_ms:g}"
    rng = random.Random(args.seed)
    rows: list[tuple[str, float, bool]] = []
    samples = 0
    with tempfile.TemporaryDirectory() as tmp, start_simulator(
            seed=args.seed, events=args.events, faults=faults, drift_every_s=args.drift_every) as sim:
        db = Path(tmp) / "bench.duckdb"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ODDSDESK_")}
        env.update({f"ODDSDESK_{b.upper()}_URL": sim.urls[b] for b in BOOKS})
        env.update(ODDSDESK_DB_PATH=str(db), ODDSDESK_REFRESH_MODE="tiers", ODDSDESK_TIER_TICK_S=str(args.tick_s),
                   PYTHONPATH=str(ROOT))
        log_path = Path(tmp) / "scheduler.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "scheduler"], env=env, cwd=ROOT,
                                    stdout=log, stderr=subprocess.STDOUT)
        store = Store(db)
        try:
            t0 = time.monotonic()
            while True:  # the start-up full cycle: everything fresh, then the tiers take over
                if proc.poll() is not None:
                    raise SystemExit(f"scheduler exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
                if db.exists() and store.runs(5).filter(pl.col("status") != "RUNNING").height:
                    break
                time.sleep(1)
            first = store.runs(5).row(-1, named=True)
            warmup_s = time.monotonic() - t0
            print(f"start-up full cycle: run {first['id']} {first['status']}, {first['events_scraped']} events "
                  f"in {warmup_s:.0f}s; measuring for {args.minutes:g} min", flush=True)
            end = time.monotonic() + args.minutes * 60
            behind_max: dict[str, int] = {}
            while time.monotonic() < end:
                started = time.monotonic()
                got = sample(store, sim, tiers, args.per_tier, rng)
                rows.extend(got)
                samples += 1
                status = (store.get_settings().get("scheduler_status") or {}).get("tiers") or {}
                for name, n in (status.get("behind") or {}).items():
                    behind_max[name] = max(behind_max.get(name, 0), n)
                if samples % 6 == 0:
                    print(f"  {samples} samples, {len(rows)} price observations", flush=True)
                time.sleep(max(0.0, args.sample_s - (time.monotonic() - started)))
            runs = store.query("SELECT kind, count(*) AS n, avg(epoch(finished_at - started_at)) AS s "
                               "FROM scrape_runs GROUP BY kind ORDER BY kind")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    frame = pl.DataFrame(rows, schema={"tier": pl.String, "lag_s": pl.Float64, "match": pl.Boolean}, orient="row")
    result_tiers = []
    ok = True
    print(f"\n{'tier':<6} {'interval':>9} {'prices':>8} {'p50 s':>7} {'p95 s':>7} {'target':>7} {'match':>7}")
    for tier in tiers:
        part = frame.filter(pl.col("tier") == tier.name)
        p50 = part["lag_s"].quantile(0.5, "linear") if part.height else None
        p95 = part["lag_s"].quantile(0.95, "linear") if part.height else None
        share = part["match"].mean() if part.height else None
        target = tier.promise_s
        good = p95 is not None and p95 <= target and (tier.name != "near" or share >= 0.95)
        ok &= good
        result_tiers.append({"name": tier.name, "interval_s": tier.interval_s, "p50_s": _r(p50), "p95_s": _r(p95),
                             "match_share": _r(share, 4), "prices": part.height, "target_p95_s": target, "ok": good})
        print(f"{tier.name:<6} {tier.interval_s:>8.0f}s {part.height:>8} {_fmt(p50):>7} {_fmt(p95):>7} "
              f"{target:>6.0f}s {_fmt(share, pct=True):>7}  {'ok' if good else 'MISSED'}")
    print("\nruns:", ", ".join(f"{k} ×{n} (avg {s:.1f}s)" for k, n, s in runs.iter_rows()))
    if behind_max:
        print("behind at some tick:", behind_max)
    result = {"tiers": result_tiers, "ok": ok, "minutes": args.minutes, "events": args.events,
              "drift_every_s": args.drift_every, "latency_ms": args.latency_ms, "samples": samples,
              "warmup_s": round(warmup_s, 1), "behind_max": behind_max,
              "runs": {k: n for k, n, _ in runs.iter_rows()}}
    print(json.dumps(result))


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.1f}%" if pct else f"{value:.0f}"


if __name__ == "__main__":
    main()

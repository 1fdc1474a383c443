"""The soak benchmark (benchmarks/soak.py), short: a faulty simulator, back-to-back cycles of the
real scheduler process, reader processes on the app's page queries, the scheduler SIGKILLed
twice and restarted, on DuckDB and on PostgreSQL. Nothing a reader sees fails, and nothing a committed batch stored is lost.
"""

from __future__ import annotations

import pytest

from benchmarks.soak import run_soak

pytestmark = pytest.mark.integration


def test_a_short_soak_with_kills_loses_no_committed_price_and_no_reader_fails(store_target, tmp_path):
    r = run_soak(minutes=1.0, kills=2, readers=3, events=40, seed=3, drift_s=20, workdir=tmp_path,
                 say=lambda *_: None, database_url=store_target.database_url)
    assert r["store"] == store_target.backend
    assert r["kills"] == 2 and len(r["scheduler_lives"]) == 3
    assert r["reader_visits"] > 0 and r["reader_errors"] == 0, r["reader_error_samples"]
    assert r["cycles_completed"] >= 1 and r["committed_batches"] > 0
    assert r["committed_batches_vanished"] == 0
    assert r["prices_checked"] > 0 and r["unchecked_pairs"] == 0
    assert r["prices_lost"] == 0
    assert r["scheduler_exit"] == 0

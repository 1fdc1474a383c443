"""Small writes: run lifecycle, progress events, settings and run requests.

Each function runs on the caller's open write connection (SQLAlchemy Core), so ``Store`` can put
several of them — and a batch — in one transaction.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as upsert

from engine.store.db import from_db_time, to_db_time, utcnow
from engine.store.schema import run_progress, run_requests, scrape_runs, settings
from engine.store.types import RUN_STATUSES

JSON_RUN_COLUMNS = frozenset({"books", "discovery", "book_counts", "book_timings", "book_errors", "summary"})
#: Summary keys ``finish_run`` copies into their own columns (the whole summary is kept too).
SUMMARY_COLUMNS = ("events_total", "events_scraped", "events_failed", "discovery", "book_counts",
                   "book_timings", "book_errors")


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _run_values(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = {name for name in fields if name not in scrape_runs.c or name == "id"}
    if unknown:
        raise ValueError(f"not a scrape_runs column: {', '.join(sorted(unknown))}")
    out = {}
    for name, value in fields.items():
        if name in JSON_RUN_COLUMNS:
            value = _json(value)
        elif isinstance(value, datetime):
            value = to_db_time(value)
        out[name] = value
    return out


def start_run(conn: sa.Connection, trigger: str, books: list[str], kind: str) -> int:
    now = utcnow()
    stmt = sa.insert(scrape_runs).values(
        trigger=trigger, kind=kind, status="RUNNING", books=_json(list(books)), started_at=now, heartbeat_at=now,
    ).returning(scrape_runs.c.id)
    return int(conn.execute(stmt).scalar_one())


def heartbeat(conn: sa.Connection, run_id: int) -> None:
    conn.execute(sa.update(scrape_runs).where(scrape_runs.c.id == run_id).values(heartbeat_at=utcnow()))


def update_run(conn: sa.Connection, run_id: int, fields: dict[str, Any]) -> None:
    if fields:
        conn.execute(sa.update(scrape_runs).where(scrape_runs.c.id == run_id).values(**_run_values(fields)))


def finish_run(conn: sa.Connection, run_id: int, status: str, summary: dict[str, Any], error: str | None) -> None:
    """Close the run; summary keys named like a column (events_scraped, book_counts…) fill it."""
    if status not in RUN_STATUSES or status == "RUNNING":
        raise ValueError(f"a run cannot finish as {status!r}")
    columns = {k: summary[k] for k in SUMMARY_COLUMNS if k in summary}
    now = utcnow()
    update_run(conn, run_id, {**columns, "status": status, "error": error, "summary": summary,
                              "finished_at": now, "heartbeat_at": now})


def _fail_runs(conn: sa.Connection, reason: str, where: sa.ColumnElement[bool]) -> list[int]:
    now = utcnow()
    stmt = (sa.update(scrape_runs).where(scrape_runs.c.status == "RUNNING", where)
            .values(status="FAILED", error=reason, finished_at=now).returning(scrape_runs.c.id))
    return sorted(int(i) for i in conn.execute(stmt).scalars())


def fail_stale_runs(conn: sa.Connection, older_than_s: float, reason: str) -> list[int]:
    return _fail_runs(conn, reason, scrape_runs.c.heartbeat_at < utcnow() - timedelta(seconds=older_than_s))


def fail_running_runs(conn: sa.Connection, reason: str) -> list[int]:
    return _fail_runs(conn, reason, sa.true())


def add_progress(conn: sa.Connection, run_id: int, kind: str, message: str = "", data: dict | None = None,
                 batches_done: int | None = None, batches_total: int | None = None) -> None:
    values = {"run_id": run_id, "at": utcnow(), "kind": kind, "message": message, "data": _json(data),
              "batches_done": batches_done, "batches_total": batches_total}
    next_seq = sa.func.coalesce(sa.func.max(run_progress.c.seq), 0) + 1
    row = sa.select(next_seq, *(sa.literal(v, run_progress.c[k].type) for k, v in values.items()))
    conn.execute(sa.insert(run_progress).from_select(
        ["seq", *values], row.where(run_progress.c.run_id == run_id),
    ))


def put_settings(conn: sa.Connection, values: dict[str, Any]) -> None:
    if not values:
        return
    now = utcnow()
    stmt = upsert(settings).values([{"key": k, "value": _json(v), "updated_at": now} for k, v in values.items()])
    conn.execute(stmt.on_conflict_do_update(
        index_elements=[settings.c.key], set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
    ))


def get_settings(conn: sa.Connection) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in conn.execute(sa.select(settings.c.key, settings.c.value))}


def add_run_request(conn: sa.Connection, kind: str, payload: dict | None) -> int:
    stmt = sa.insert(run_requests).values(kind=kind, payload=_json(payload), status="PENDING", created_at=utcnow())
    return int(conn.execute(stmt.returning(run_requests.c.id)).scalar_one())


def claim_run_requests(conn: sa.Connection) -> list[dict[str, Any]]:
    stmt = (sa.update(run_requests).where(run_requests.c.status == "PENDING")
            .values(status="CLAIMED", claimed_at=utcnow()).returning(*run_requests.c))
    return sorted((_request_dict(r._asdict()) for r in conn.execute(stmt)), key=lambda r: r["id"])


def finish_run_request(conn: sa.Connection, request_id: int, status: str, message: str, run_id: int | None) -> None:
    if status not in ("DONE", "FAILED"):
        raise ValueError(f"a run request finishes as DONE or FAILED, not {status!r}")
    conn.execute(sa.update(run_requests).where(run_requests.c.id == request_id).values(
        status=status, message=message, run_id=run_id, finished_at=utcnow(),
    ))


def _request_dict(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: (from_db_time(v) if isinstance(v, datetime) else v) for k, v in row.items()}
    out["payload"] = json.loads(out["payload"]) if out.get("payload") else None
    return out

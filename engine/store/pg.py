"""PostgreSQL under the store's DuckDB-shaped helpers: parameters, frames out, frames in.

The store's SQL is written once, with DuckDB's ``?`` and ``$name`` parameters; psycopg wants
``%s`` and ``%(name)s`` (and a literal ``%`` doubled), so statements are translated here, once
each. Frames come out typed from the result's column types even when empty (callers rely on
the dtypes, as DuckDB's Arrow results give them), and go in through ``COPY`` into a temporary
table of the same name, which is what a registered Arrow frame is to DuckDB's SQL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import polars as pl
import psycopg
from psycopg.types.numeric import FloatLoader
from psycopg.types.string import TextLoader

#: Result column types by PostgreSQL type OID; anything else is left to polars to infer.
_DTYPES: dict[int, pl.DataType] = {
    16: pl.Boolean(), 20: pl.Int64(), 21: pl.Int16(), 23: pl.Int32(), 26: pl.Int64(),
    700: pl.Float32(), 701: pl.Float64(), 1700: pl.Float64(),
    18: pl.String(), 19: pl.String(), 25: pl.String(), 1042: pl.String(), 1043: pl.String(),
    114: pl.String(), 3802: pl.String(),
    1114: pl.Datetime("us"), 1184: pl.Datetime("us", "UTC"), 1082: pl.Date(), 1083: pl.Time(),
    1186: pl.Duration("us"),
    1000: pl.List(pl.Boolean()), 1005: pl.List(pl.Int16()), 1007: pl.List(pl.Int32()),
    1016: pl.List(pl.Int64()), 1021: pl.List(pl.Float32()), 1022: pl.List(pl.Float64()),
    1009: pl.List(pl.String()), 1015: pl.List(pl.String()),
}

# One token at a time: quoted strings and identifiers and comments pass unchanged, ``$name`` and
# ``?`` become psycopg placeholders; ``::`` casts and ``$1``-style references are left alone.
_TOKENS = re.compile(r"""('(?:[^']|'')*')|("(?:[^"]|"")*")|(--[^\n]*)|\$([A-Za-z_]\w*)|(\?)|(%)""")


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """DuckDB-style parameters → psycopg's (only used when parameters are given)."""
    def sub(m: re.Match[str]) -> str:
        if m.group(4):
            return f"%({m.group(4)})s"
        if m.group(5):
            return "%s"
        if m.group(6):
            return "%%"
        return m.group(0).replace("%", "%%")
    return _TOKENS.sub(sub, sql)


def configure(conn: psycopg.Connection) -> None:
    """Per connection: JSON stays text and NUMERIC becomes float, as DuckDB's results have them."""
    for name in ("json", "jsonb"):
        conn.adapters.register_loader(name, TextLoader)
    conn.adapters.register_loader("numeric", FloatLoader)


def _execute(conn: psycopg.Connection, sql: str, params: Any) -> psycopg.Cursor:
    cur = conn.cursor()
    if params is None or (not isinstance(params, dict) and len(params) == 0 and "?" not in sql):
        cur.execute(sql)  # type: ignore[arg-type]
    else:
        cur.execute(translate(sql), params)  # type: ignore[arg-type]
    return cur


def run(conn: psycopg.Connection, sql: str, params: Any) -> None:
    _execute(conn, sql, params).close()


def affected(conn: psycopg.Connection, sql: str, params: Any) -> int:
    with _execute(conn, sql, params) as cur:
        return cur.rowcount


def rows(conn: psycopg.Connection, sql: str, params: Any) -> list[tuple]:
    with _execute(conn, sql, params) as cur:
        return cur.fetchall() if cur.description else []


def frame(conn: psycopg.Connection, sql: str, params: Any) -> pl.DataFrame:
    with _execute(conn, sql, params) as cur:
        if cur.description is None:
            return pl.DataFrame()
        return typed_frame([(d.name, d.type_code) for d in cur.description], cur.fetchall())


def typed_frame(columns: Sequence[tuple[str, int]], data: Sequence[tuple]) -> pl.DataFrame:
    """Rows as a frame typed by their columns' (name, type OID), also when there are none."""
    names = [name for name, _ in columns]
    types = [_DTYPES.get(oid) for _, oid in columns]
    values = list(zip(*data)) if data else [()] * len(names)
    return pl.DataFrame([pl.Series(n, list(v), dtype=t, strict=False) for n, v, t in zip(names, values, types)])


def _pg_type(dtype: pl.DataType) -> str:
    if dtype == pl.Boolean:
        return "BOOLEAN"
    if dtype in (pl.Int8, pl.Int16, pl.UInt8):
        return "SMALLINT"
    if dtype in (pl.Int32, pl.UInt16):
        return "INTEGER"
    if dtype.is_integer():
        return "BIGINT"
    if dtype.is_float() or dtype.is_decimal():
        return "DOUBLE PRECISION"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMP"
    if dtype == pl.Date:
        return "DATE"
    if dtype == pl.Time:
        return "TIME"
    if isinstance(dtype, pl.Duration):
        return "INTERVAL"
    if isinstance(dtype, (pl.List, pl.Array)):
        return _pg_type(dtype.inner) + "[]"  # type: ignore[arg-type]
    return "TEXT"


def _copyable(df: pl.DataFrame) -> pl.DataFrame:
    """Columns as COPY's CSV reads them: aware times as naive UTC, lists as array literals."""
    out = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        elif isinstance(dtype, (pl.List, pl.Array)):
            col = col.map_elements(_array_literal, return_dtype=pl.String)
        elif isinstance(dtype, (pl.Categorical, pl.Enum, pl.Null)):
            col = col.cast(pl.String)
        out.append(col.alias(name))
    return df.select(out)


def _array_literal(values: Any) -> str:
    def item(v: Any) -> str:
        if v is None:
            return "NULL"
        text = str(v).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'
    return "{" + ",".join(item(v) for v in values) + "}"


#: Rows per CSV slice ``register`` sends: the text of a whole import would be gigabytes.
COPY_ROWS = 200_000


def register(conn: psycopg.Connection, name: str, df: pl.DataFrame) -> None:
    """``df`` as temporary table ``name`` for the rest of this transaction (replacing one of
    that name), filled with one ``COPY`` of polars-written CSV: no Python loop over rows."""
    cols = ", ".join(f'"{c}" {_pg_type(t)}' for c, t in df.schema.items())
    with conn.cursor() as cur:
        cur.execute(f'DROP TABLE IF EXISTS pg_temp."{name}"')  # type: ignore[arg-type]
        cur.execute(f'CREATE TEMP TABLE "{name}" ({cols}) ON COMMIT DROP')  # type: ignore[arg-type]
        if df.height:
            with cur.copy(f"""COPY "{name}" FROM STDIN (FORMAT csv, NULL '\\N')""") as copy:  # type: ignore[arg-type]
                for part in _copyable(df).iter_slices(COPY_ROWS):  # an import's millions: a slice's CSV at a time
                    copy.write(part.write_csv(include_header=False, null_value="\\N",
                                              datetime_format="%Y-%m-%d %H:%M:%S%.f").encode())
        cur.execute(f'ANALYZE "{name}"')  # type: ignore[arg-type]

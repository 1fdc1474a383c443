"""PostgreSQL under the store's DuckDB-shaped helpers: parameters, frames out, frames in.

The store's SQL is written once, with DuckDB's ``?`` and ``$name`` parameters; psycopg wants
``%s`` and ``%(name)s`` (and a literal ``%`` doubled), so statements are translated here, once
each. Frames come out typed from the result's column types even when empty (callers rely on
the dtypes, as DuckDB's Arrow results give them), and go in through ``COPY`` into a temporary
table of the same name, which is what a registered Arrow frame is to DuckDB's SQL.
A large result comes out of ``COPY (query) TO STDOUT`` as CSV that polars parses (``frame``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import polars as pl
import psycopg
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer
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
    """A query's result, typed as ``typed_frame`` types it.

    A query ``COPY`` can wrap comes out of it as CSV that polars parses, its parameters inlined
    as literals and its column types from describing the statement (parsed, not run): psycopg
    building a Python object per value took ~110 ms of a 12.7k-row read, this takes ~15. COPY's
    fixed cost (~0.6 ms: the describe, the CSV reader) is more than a few rows' objects, so a
    query that has only ever returned a few rows (``SMALL_RESULT``) takes psycopg's rows, as do
    statements COPY cannot wrap (``INSERT … RETURNING``, ``SHOW``)."""
    if _LARGEST.get(sql, SMALL_RESULT) >= SMALL_RESULT and (text := _inlined(conn, sql, params)) is not None:
        columns = describe(conn, text)
        if columns:
            result = _copied(conn, text, columns)
            _seen(sql, result.height)
            return result
    with _execute(conn, sql, params) as cur:
        if cur.description is None:
            return pl.DataFrame()
        data = cur.fetchall()
        _seen(sql, len(data))
        return typed_frame([(d.name, d.type_code) for d in cur.description], data)


#: Below this many rows a result is cheaper as psycopg's rows than through COPY (measured: ~150 rows of
#: the comparison page's, ~450 of odds_current's).
SMALL_RESULT = 500

#: The most rows each statement (by its SQL) has returned in this process.
_LARGEST: dict[str, int] = {}


def _seen(sql: str, n: int) -> None:
    if len(_LARGEST) >= 4096 and sql not in _LARGEST:  # SQL written with its values in would grow it forever
        _LARGEST.clear()
    _LARGEST[sql] = max(n, _LARGEST.get(sql, 0))


# A statement COPY can wrap: one query that only reads. Any word that could make it write or
# lock (a data-modifying WITH, SELECT INTO, FOR UPDATE/SHARE), a ``;`` or a ``$1`` sends it to
# psycopg's rows instead; a false alarm (the word in a string) only costs speed.
_QUERY = re.compile(r"\s*(?:--[^\n]*\n\s*)*\(*\s*(?:SELECT|WITH|VALUES|TABLE)\b", re.IGNORECASE)
_NOT_QUERY = re.compile(r"\b(?:INSERT|UPDATE|DELETE|MERGE|INTO|SHARE|COPY)\b|;|\$\d", re.IGNORECASE)


@lru_cache(maxsize=1024)
def _is_query(sql: str) -> bool:
    return bool(_QUERY.match(sql)) and not _NOT_QUERY.search(sql)


def _inlined(conn: psycopg.Connection, sql: str, params: Any) -> str | None:
    """``sql`` with its parameters as literals (COPY takes none), or None when it is no query
    COPY can wrap or its parameters don't fit it (psycopg then runs it, and raises what it raises)."""
    status = conn.info.transaction_status
    in_transaction = status == pq.TransactionStatus.INTRANS or (conn.autocommit and status == pq.TransactionStatus.IDLE)
    if conn.info.encoding != "utf-8" or not in_transaction or not _is_query(sql):  # psycopg would BEGIN first
        return None
    if params is None or (not isinstance(params, dict) and len(params) == 0 and "?" not in sql):
        return sql
    tx = Transformer.from_context(conn)
    named = isinstance(params, dict)
    positional = iter(() if named else params)

    def sub(m: re.Match[str]) -> str:
        if not (m.group(4) or m.group(5)):
            return m.group(0)
        if named != bool(m.group(4)):
            raise LookupError
        return _literal(tx, params[m.group(4)] if named else next(positional))
    try:
        text = _TOKENS.sub(sub, sql)
    except (LookupError, StopIteration, psycopg.ProgrammingError):
        return None
    return text if next(positional, None) is None else None


def _literal(tx: Transformer, value: Any) -> str:
    """A parameter as SQL of the type psycopg binds it as: a bare ``1`` would be an ``integer``
    where the bound value is a ``smallint``, a bare ``1.5`` a ``numeric`` and not a ``float8``."""
    if value is None:
        return "NULL"
    literal = bytes(tx.as_literal(value)).decode()
    oid = tx.get_dumper(value, PyFormat.AUTO).oid
    if not oid:  # unknown, as a string is bound: the server infers it, as it does a quoted literal
        return literal
    info = tx.adapters.types.get(oid)
    if info is None:
        raise LookupError(oid)
    name = info.name if oid < 8192 else info.regtype
    return f"CAST({literal} AS {name}{'[]' if oid == info.array_oid else ''})"


def describe(conn: psycopg.Connection, text: str) -> list[tuple[str, int]]:
    """The statement's result columns (name, type OID), from the server parsing it, not running it."""
    with conn.lock:
        pgconn = conn.pgconn
        result = pgconn.prepare(b"", text.encode())
        if result.status == pq.ExecStatus.COMMAND_OK:
            result = pgconn.describe_prepared(b"")
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise psycopg.errors.error_from_result(result, encoding="utf-8")
    return [(bytes(result.fname(i) or b"").decode(), result.ftype(i)) for i in range(result.nfields)]


def typed_frame(columns: Sequence[tuple[str, int]], data: Sequence[tuple]) -> pl.DataFrame:
    """Rows as a frame typed by their columns' (name, type OID), also when there are none."""
    names = [name for name, _ in columns]
    types = [_DTYPES.get(oid) for _, oid in columns]
    values = list(zip(*data)) if data else [()] * len(names)
    return pl.DataFrame([pl.Series(n, list(v), dtype=t, strict=False) for n, v, t in zip(names, values, types)])


_ISO_TIMESTAMP = "%Y-%m-%d %H:%M:%S%.f"

#: How a column's CSV text becomes its ``_DTYPES`` type in polars, by type OID. Any other type,
#: or a column with a value polars refuses (a BC date, 'infinity'), goes through psycopg's own
#: loader value by value: what the row path would have made of it. Dates and times are read
#: so only in ``DateStyle`` ISO.
_CONVERT: dict[int, Callable[[pl.Expr], pl.Expr]] = {
    **{oid: (lambda e: e) for oid in (18, 19, 25, 1042, 1043, 114, 3802)},
    16: lambda e: e == "t",
    20: lambda e: e.cast(pl.Int64), 21: lambda e: e.cast(pl.Int16), 23: lambda e: e.cast(pl.Int32),
    26: lambda e: e.cast(pl.Int64),
    700: lambda e: e.cast(pl.Float64).cast(pl.Float32),  # rounded from the double, as psycopg's float is
    701: lambda e: e.cast(pl.Float64), 1700: lambda e: e.cast(pl.Float64),
}
_CONVERT_ISO: dict[int, Callable[[pl.Expr], pl.Expr]] = {
    1114: lambda e: e.str.to_datetime(_ISO_TIMESTAMP, time_unit="us"),
    1184: lambda e: e.str.to_datetime(_ISO_TIMESTAMP + "%#z", time_unit="us", time_zone="UTC"),
    1082: lambda e: e.str.to_date("%Y-%m-%d"),
    1083: lambda e: e.str.to_time("%H:%M:%S%.f"),
}
#: Array types by their element's type. One-dimensional arrays none of whose elements needed
#: quoting (so none holds a comma, a brace or a space) split on commas.
_ARRAYS = {1000: 16, 1005: 21, 1007: 23, 1016: 20, 1021: 700, 1022: 701, 1009: 25, 1015: 1043}
_PLAIN_ARRAY = r'^\{[^{}"]*\}$'


def _converter(oid: int, iso: bool, values: pl.Series) -> Callable[[pl.Expr], pl.Expr] | None:
    convert = _CONVERT.get(oid) or (_CONVERT_ISO.get(oid) if iso else None)
    if convert is not None or oid not in _ARRAYS or not values.str.contains(_PLAIN_ARRAY).all():
        return convert
    item, element = _CONVERT[_ARRAYS[oid]], pl.element()
    return lambda e: e.str.strip_prefix("{").str.strip_suffix("}").str.split(",").list.eval(
        item(pl.when(element != "NULL").then(element).filter(element != "")))


def _copied(conn: psycopg.Connection, text: str, columns: Sequence[tuple[str, int]]) -> pl.DataFrame:
    """The query's result through ``COPY … (FORMAT csv)``, whose NULL is an unquoted empty field
    and an empty string a quoted one, as polars reads them."""
    data = _copy_out(conn, f"COPY (\n{text}\n) TO STDOUT (FORMAT csv)")
    if not data:
        return typed_frame(columns, [])
    keys = [f"c{i}" for i in range(len(columns))]
    bom = data.startswith(b"\xef\xbb\xbf")  # polars would take the first value's BOM for the file's: pad a row
    if bom:
        data[:0] = b"," * (len(columns) - 1) + b"\n"
    raw = pl.read_csv(bytes(data), has_header=False, new_columns=keys, infer_schema=False)[int(bom):]
    iso = (conn.info.parameter_status("DateStyle") or "").startswith("ISO")
    fast = {k: c for k, (_, oid) in zip(keys, columns) if (c := _converter(oid, iso, raw[k])) is not None}
    try:
        converted = raw.select(convert(pl.col(k)).alias(k) for k, convert in fast.items())
    except pl.exceptions.PolarsError:
        converted = pl.DataFrame([s for k, convert in fast.items() if (s := _converted(raw, k, convert)) is not None])
    tx = Transformer.from_context(conn)
    series = []
    for key, (name, oid) in zip(keys, columns):
        dtype = _DTYPES.get(oid)
        if key in converted.columns and converted[key].dtype == dtype:
            series.append(converted[key].alias(name))
        else:
            load = tx.get_loader(oid, pq.Format.TEXT).load
            values = [None if v is None else load(v.encode()) for v in raw[key]]
            series.append(pl.Series(name, values, dtype=dtype, strict=False))
    return pl.DataFrame(series)


def _converted(raw: pl.DataFrame, key: str, convert: Callable[[pl.Expr], pl.Expr]) -> pl.Series | None:
    try:
        return raw.select(convert(pl.col(key)).alias(key)).to_series()
    except pl.exceptions.PolarsError:
        return None


def _copy_out(conn: psycopg.Connection, statement: str) -> bytearray:
    """What a ``COPY … TO STDOUT`` sends, straight from libpq (which waits without the GIL):
    the server sends a message a row, and psycopg's ``Copy`` spends ~1.5 µs on each."""
    data = bytearray()
    with conn.lock:
        pgconn = conn.pgconn
        result = pgconn.exec_(statement.encode())
        if result.status == pq.ExecStatus.COPY_OUT:
            while (block := pgconn.get_copy_data(0))[0] > 0:
                data += block[1]
            ends = []
            while (end := pgconn.get_result()) is not None:
                ends.append(end)
            result = next((r for r in ends if r.status != pq.ExecStatus.COMMAND_OK), ends[-1])
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise psycopg.errors.error_from_result(result, encoding="utf-8")
    return data


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

"""``pg.frame`` on a real PostgreSQL server: whichever way a result travels (COPY's CSV for a
query, psycopg's rows otherwise), the frame is what psycopg's rows typed by ``typed_frame``
make of it — the same names, dtypes and values, NULLs, NaNs, times and arrays included — read
inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import polars as pl
import psycopg
import pytest
from polars.testing import assert_frame_equal

from engine.store import pg
from tests.pg_server import drop_database, fresh_database

pytestmark = pytest.mark.postgres

ROWS = 2 * pg.SMALL_RESULT

#: One column of each type the store's frames have, with their awkward values: NULL next to
#: the empty string, text CSV must quote, NaN and infinities, quoted array elements, times
#: with fractions and (in some sessions) odd UTC offsets.
ALL_TYPES = fr"""
SELECT i, (i % 3 = 0) AS b, (i % 7)::int2 AS i2, i::int4 AS i4, i::int8 * 1000000007 AS i8, i::oid AS o,
  CASE i % 5 WHEN 0 THEN 'NaN'::float4 ELSE i / 3.0 END::float4 AS f4,
  CASE i % 6 WHEN 0 THEN 'NaN'::float8 WHEN 1 THEN 'Infinity' WHEN 2 THEN '-Infinity' WHEN 3 THEN -0.0
       ELSE i / 7.0 END::float8 AS f8,
  CASE WHEN i % 4 = 0 THEN 'NaN'::numeric ELSE i / 7.0 END::numeric(20, 9) AS num,
  CASE i % 10 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN 'a,b' WHEN 3 THEN 'q"r' WHEN 4 THEN E'x\ny\r\nz'
       WHEN 5 THEN E'\\N' WHEN 6 THEN E'back\\slash' WHEN 7 THEN E'\ufeffbom' WHEN 8 THEN 'Ünïcødé ⚽'
       ELSE ' spaced ' END AS t,
  ('v' || i)::varchar(10) AS v, 'c'::char(3) AS bp, 'nm'::name AS nm,
  CASE WHEN i % 2 = 0 THEN json_build_object('i', i, 's', 'x,"y"') END AS j, jsonb_build_object('k', i) AS jb,
  timestamp '2024-01-01 00:00:00' + i * interval '1 second 123 microseconds' AS ts,
  CASE WHEN i % 3 <> 0 THEN timestamptz '1899-12-25 12:00:00+00' + i * interval '37 days 1.5 seconds' END AS tstz,
  date '2024-02-28' + i AS d, time '00:00:00' + i * interval '1 minute 0.25 second' AS tm,
  i * interval '1 hour 1 second' AS iv,
  CASE i % 4 WHEN 0 THEN ARRAY[]::int[] WHEN 1 THEN ARRAY[i, NULL, -i] WHEN 2 THEN NULL ELSE ARRAY[i] END AS ai4,
  ARRAY[i::int2] AS ai2, ARRAY[i::int8, 2] AS ai8, ARRAY[i % 2 = 0, NULL] AS ab,
  ARRAY[i / 3.0, 'NaN', '-Infinity']::float8[] AS af8, ARRAY[i / 3.0]::float4[] AS af4,
  CASE i % 5 WHEN 0 THEN ARRAY['a', 'b c'] WHEN 1 THEN ARRAY['NULL', NULL, ''] WHEN 2 THEN ARRAY[]::text[]
       WHEN 3 THEN ARRAY['x'] ELSE ARRAY['q"', E'b\\s', '{{}}', 'a,b'] END AS at,
  ARRAY['bet9ja', 'betpawa']::varchar[] AS av
FROM generate_series(1, {ROWS}) AS i ORDER BY i
"""


@pytest.fixture
def conn(pg_admin_url: str) -> Iterator[psycopg.Connection]:
    url = fresh_database(pg_admin_url)
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        pg.configure(conn)
        yield conn
    drop_database(pg_admin_url, url)


def read_only(conn: psycopg.Connection) -> None:
    """A read as the store opens one."""
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def psycopg_rows(conn: psycopg.Connection, sql: str, params=None) -> pl.DataFrame:
    """The contract: psycopg's rows of the statement, parameters bound by the server."""
    cur = conn.execute(pg.translate(sql) if params else sql, params)  # type: ignore[arg-type]
    assert cur.description is not None
    return pg.typed_frame([(d.name, d.type_code) for d in cur.description], cur.fetchall())


@pytest.mark.parametrize("timezone,datestyle", [("UTC", "ISO, MDY"), ("Asia/Kolkata", "ISO, DMY"),
                                                ("America/St_Johns", "ISO"), ("Europe/Amsterdam", "ISO, YMD")])
def test_a_large_result_is_what_psycopgs_rows_make_of_it(conn, timezone, datestyle):
    conn.execute(f"SET TimeZone = '{timezone}'")  # type: ignore[arg-type]
    conn.execute(f"SET DateStyle = '{datestyle}'")  # type: ignore[arg-type]
    read_only(conn)

    got = pg.frame(conn, ALL_TYPES, None)

    assert_frame_equal(got, psycopg_rows(conn, ALL_TYPES))
    assert got.height == ROWS
    assert got.schema["ts"] == pl.Datetime("us") and got.schema["tstz"] == pl.Datetime("us", "UTC")
    assert got.schema["num"] == pl.Float64 and got.schema["j"] == pl.String and got.schema["b"] == pl.Boolean
    assert got.schema["av"] == pl.List(pl.String) and got.schema["ai4"] == pl.List(pl.Int32)
    first = got.row(0, named=True)
    assert first["t"] == "" and got.row(9, named=True)["t"] is None and got.row(3, named=True)["t"] == "x\ny\r\nz"
    if timezone != "Europe/Amsterdam":  # its 1900 offset has seconds, which the rows' path misplaces too
        assert first["tstz"] == datetime(1900, 1, 31, 12, 0, 1, 500000, tzinfo=UTC)
    assert first["at"] == ["NULL", None, ""] and got.row(3, named=True)["ai4"] == []
    assert first["f8"] == float("inf") and first["j"] is None
    assert got.row(1, named=True)["j"] == '{"i" : 2, "s" : "x,\\"y\\""}'
    assert first["av"] == ["bet9ja", "betpawa"] and first["d"] == date(2024, 2, 29)


def test_an_empty_result_is_typed_from_its_columns(conn):
    read_only(conn)
    sql = ALL_TYPES.replace("ORDER BY i", "WHERE i < 0")

    got = pg.frame(conn, sql, None)

    assert got.height == 0
    assert got.schema == psycopg_rows(conn, sql).schema
    assert got.schema["tstz"] == pl.Datetime("us", "UTC") and got.schema["af4"] == pl.List(pl.Float32)


def test_a_small_result_is_the_same_however_often_it_is_read(conn):
    read_only(conn)
    sql = ALL_TYPES.replace("ORDER BY i", "WHERE i BETWEEN ? AND ? ORDER BY i")
    expected = psycopg_rows(conn, sql, [3, 7])

    for _ in range(3):  # the first read finds the result small, the next ones take the rows
        assert_frame_equal(pg.frame(conn, sql, [3, 7]), expected)


def test_parameters_mean_what_they_mean_bound(conn):
    read_only(conn)
    positional = f"""
SELECT ? AS small, ? AS negative, ? AS big, ? AS f, ? AS nan, ? AS s, ? AS nothing, ? AS at, ? AS day, ? AS flag,
       x, x % ? AS rest, '? $x %s' AS quoted, 7 % 4 AS percent
FROM generate_series(1, {ROWS}) AS x WHERE x::text = ANY(?) OR x > ? -- a ? and a $y in a comment
ORDER BY x"""
    values = [1, -5, 2**40, 1.1, float("nan"), "it's", None, datetime(2024, 5, 1, 12, 30, 0, 250),
              date(2024, 5, 1), True, 7, ["1", "2"], 3]
    got = pg.frame(conn, positional, values)
    assert_frame_equal(got, psycopg_rows(conn, positional, values))
    assert got.schema["small"] == pl.Int16 and got.schema["f"] == pl.Float64 and got.schema["nothing"] == pl.String
    assert got.drop("nan").row(0) == (1, -5, 2**40, 1.1, "it's", None, datetime(2024, 5, 1, 12, 30, 0, 250),
                                      date(2024, 5, 1), True, 1, 1, "? $x %s", 3)
    assert got["nan"].is_nan().all() and got["x"].to_list()[:3] == [1, 2, 4]

    named = f"SELECT x, $label AS label FROM generate_series(1, {ROWS}) AS x WHERE x <= $n AND $label <> 'x?'"
    params = {"label": "100% sure", "n": ROWS - 1}
    assert_frame_equal(pg.frame(conn, named, params), psycopg_rows(conn, named, params))
    assert pg.frame(conn, named, params)["label"][0] == "100% sure"


def test_statements_copy_cannot_wrap_keep_working(conn):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
    inserted = pg.frame(conn, "INSERT INTO t SELECT x, 'n' || x FROM generate_series(1, ?) AS x RETURNING id",
                        [ROWS])
    assert inserted.schema == {"id": pl.Int32} and inserted.height == ROWS

    moved = pg.frame(conn, "WITH u AS (UPDATE t SET name = upper(name) WHERE id <= ? RETURNING id, name) "
                           "SELECT count(*) AS n, min(name) AS first FROM u", [2])
    assert moved.row(0) == (2, "N1")
    assert pg.frame(conn, "SELECT id FROM t WHERE id = ? FOR UPDATE", [1])["id"].to_list() == [1]
    assert pg.frame(conn, "SHOW TimeZone", None).columns == ["TimeZone"]
    assert pg.frame(conn, "SET LOCAL work_mem = '8MB'", None).is_empty()


def test_reads_see_the_callers_transaction(conn, pg_admin_url):
    conn.execute("CREATE TABLE t (id int)")
    conn.execute("INSERT INTO t SELECT generate_series(1, %s)", [ROWS])
    conn.commit()
    read_only(conn)
    assert pg.frame(conn, "SELECT id FROM t ORDER BY id", None).height == ROWS

    with psycopg.connect(conn.info.dsn, autocommit=True) as other:
        other.execute("INSERT INTO t SELECT generate_series(1, %s)", [ROWS])

    again = pg.frame(conn, "SELECT id FROM t ORDER BY id", None)
    assert again.height == ROWS, "one snapshot for the whole read"
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("DELETE FROM t")
    conn.rollback()
    assert pg.frame(conn, "SELECT id FROM t", None).height == 2 * ROWS

    conn.execute("CREATE TEMP TABLE mine AS SELECT generate_series(1, %s) AS x", [ROWS])  # not committed
    assert pg.frame(conn, "SELECT sum(x) AS s FROM mine", None)["s"].to_list() == [ROWS * (ROWS + 1) // 2]


def test_a_failing_query_raises_the_servers_error(conn):
    read_only(conn)
    with pytest.raises(psycopg.errors.DivisionByZero):
        pg.frame(conn, f"SELECT 1 / (x - {ROWS}) AS y FROM generate_series(1, {ROWS}) AS x", None)
    conn.rollback()
    with pytest.raises(psycopg.errors.UndefinedTable):
        pg.frame(conn, "SELECT * FROM no_such_table", None)
    conn.rollback()
    with pytest.raises(psycopg.errors.SyntaxError):
        pg.frame(conn, "SELECT FROM WHERE", None)
    conn.rollback()
    read_only(conn)
    assert pg.frame(conn, f"SELECT x FROM generate_series(1, {ROWS}) AS x", None).height == ROWS

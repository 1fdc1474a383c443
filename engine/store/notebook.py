"""The SQL notebook's own DuckDB connection: the connection itself enforces what the notebook may do.

A notebook query is arbitrary text from an analyst, so safety cannot rest on reading that text.
Each query gets a fresh connection, under the store's shared lock like every reader, set up so
DuckDB refuses by itself:

* writes to the store (``read_only=True``; ATTACH inherits it, so another file cannot be opened
  for writing either);
* any file or URL outside the store (``enable_external_access=false``: no ``read_csv('/etc/…')``,
  no COPY TO, no ATTACH of another file, no INSTALL/LOAD) — except the history archive folder,
  the one place the notebook is meant to read (``allowed_directories``), exposed as the view
  ``odds_history_archive``;
* changing any of that back (``lock_configuration=true``: ``SET enable_external_access`` fails).

DuckDB's allow-list does not tell reading from writing, so a COPY/EXPORT *into* the archive
folder would pass the connection; those two statement types are refused before running (the
page has download buttons for getting results out). Multiple statements are refused too, so a
result is always the one statement's.

DuckDB has no statement timeout: a timer ``interrupt()``s the connection after ``timeout_s``.
The shared lock is held while the query runs, so the timeout also bounds how long a notebook
query can hold back the scheduler's next write. Results are fetched through ``LIMIT row_limit+1``
on the statement's relation (pushed down for a SELECT), so a careless
``SELECT * FROM odds_history`` never pulls a hundred million rows into the app.

PostgreSQL
==========
The server enforces the same, on a connection of its own per query that logs in as the store's
notebook role (``<database>_notebook``: LOGIN, no other attribute, member of nothing, SELECT on
the store's tables and views but ``store_state``), in a ``READ ONLY`` transaction with a
``statement_timeout``, closed after the one statement. It is a separate *login*, not ``SET
ROLE`` on the app's session, on purpose: when the app's role is a superuser, a statement can
undo a ``SET ROLE`` itself (``set_config('role', 'postgres', true)``, then
``query_to_xml('select pg_read_file(…)')`` runs as the superuser), while a session that
authenticated as an unprivileged role cannot become anyone else. So files (``pg_read_file``,
``COPY … TO/FROM`` a file or a program, ``lo_import``) are refused by privilege, writes by
``READ ONLY`` and by privilege, other sessions (``pg_terminate_backend``) by role, and anything
a statement leaves behind (settings, session advisory locks) ends with its connection.

The role is made on first use by ``provision`` (it needs CREATEROLE, or a DBA runs the
equivalent), with a random password stored in ``store_state`` (which the role cannot read) and
sent to the server as a SCRAM verifier, never as text a log could keep. psycopg's stream (the
extended protocol) refuses several statements by itself and fetches the rows in chunks, so the
row limit bounds the app's memory here too; the archive view is DuckDB-only (its files are
local to the app).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import polars as pl
import psycopg
import sqlalchemy as sa
from psycopg import errors as pg_errors
from psycopg import sql as pg_sql

from engine.store import pg
from engine.store.archive import archive_dir, archive_glob
from engine.store.db import Database, rows, run as run_sql, utc_frame, utcnow

ROW_LIMIT = 10_000
TIMEOUT_S = 15.0
#: The notebook runs inside the app process: a runaway join must not take the app's memory.
MEMORY_LIMIT = "1GB"
ARCHIVE_VIEW = "odds_history_archive"

#: Statement types refused before running: they write files, which the archive allowance would let through.
_WRITES_FILES = {"COPY": "COPY writes files — use the download buttons",
                 "EXPORT": "EXPORT writes files — use the download buttons"}


class NotebookRefusal(ValueError):
    """A statement the notebook refuses before running it; the message says why."""


class NotebookTimeout(RuntimeError):
    """The statement ran past the notebook's time limit and was interrupted."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"stopped after {seconds:g} s (the notebook's time limit); "
                         "narrow the query (filter by event or time, aggregate, add a LIMIT)")
        self.seconds = seconds


@dataclass(frozen=True)
class NotebookResult:
    frame: pl.DataFrame
    truncated: bool  # more than ``row_limit`` rows: ``frame`` holds the first ``row_limit``


def _text(sql: str) -> str:
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise NotebookRefusal("the query is empty")
    return text


def single_statement(sql: str) -> str:
    """The one statement in ``sql`` (trailing semicolons allowed), or NotebookRefusal.

    DuckDB's own parser splits the text (no database is opened); a syntax error propagates as
    DuckDB's ``ParserException``."""
    text = _text(sql)
    statements = duckdb.extract_statements(text)
    if len(statements) != 1:
        raise NotebookRefusal(f"one statement at a time ({len(statements)} given)")
    kind = statements[0].type.name
    if kind in _WRITES_FILES:
        raise NotebookRefusal(f"{kind} is not allowed in the notebook ({_WRITES_FILES[kind]})")
    return text


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@contextmanager
def connect(db: Database) -> Iterator[duckdb.DuckDBPyConnection]:
    """A locked-down read-only connection to the store, under the shared lock, closed on exit."""
    db.ensure_schema()
    folder = archive_dir(db.path)
    has_archive = folder.is_dir() and any(folder.glob("date=*/*.parquet"))
    with db.lock.shared():
        conn = duckdb.connect(str(db.path), read_only=True, config={
            "autoinstall_known_extensions": False, "autoload_known_extensions": False,
            "memory_limit": MEMORY_LIMIT,
        })
        try:
            if has_archive:
                conn.execute("SET allowed_directories = $1", [[f"{folder}/"]])
            conn.execute("SET enable_external_access = false")
            conn.execute("SET lock_configuration = true")
            if has_archive:
                conn.execute(f"CREATE TEMP VIEW {ARCHIVE_VIEW} AS SELECT * FROM read_parquet("
                             f"{_literal(archive_glob(db.path))}, hive_partitioning = true, union_by_name = true)")
            yield conn
        finally:
            conn.close()


def run(db: Database, sql: str, row_limit: int = ROW_LIMIT, timeout_s: float = TIMEOUT_S) -> NotebookResult:
    """One notebook statement: at most ``row_limit`` rows, interrupted after ``timeout_s``."""
    if db.postgres:
        return run_postgres(db, sql, row_limit, timeout_s)
    text = single_statement(sql)
    with connect(db) as conn:
        timer = threading.Timer(timeout_s, conn.interrupt)
        timer.daemon = True
        timer.start()
        try:
            rel = conn.sql(text)
            frame = pl.DataFrame() if rel is None else rel.limit(row_limit + 1).pl()
        except duckdb.InterruptException:
            raise NotebookTimeout(timeout_s) from None
        finally:
            timer.cancel()
            rel = None  # a relation kept alive (say, by a traceback) would keep the file open
    return NotebookResult(utc_frame(frame.head(row_limit)), frame.height > row_limit)


# --- PostgreSQL ---------------------------------------------------------------------------------

#: ``store_state`` key of the notebook role's login (JSON: role, password).
LOGIN_KEY = "notebook_login"
#: Rows asked of the server at a time (libpq 17+; older ones stream a row at a time).
_CHUNK = 1000
_provisioned: dict[str, tuple[str, str | None]] = {}
_provision_lock = threading.Lock()


def notebook_role(database: str) -> str:
    """The notebook's role for one database (roles are the server's, databases share them)."""
    return f"{database}_notebook"[:63]


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802/7677), so ``CREATE ROLE``
    carries no password a statement log could keep."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored)}:{b64(server)}"


def provision(db: Database, again: bool = False) -> tuple[str, str | None]:
    """The notebook role's login (role, password), made or repaired if needed: the role exists
    with LOGIN and nothing else, and may SELECT every table and view of the store's schema but
    ``store_state``. Once per process (``again``: the cached login failed); a write transaction
    only when something is missing. A role an administrator made, that the app may not alter,
    logs in without a password from here (libpq's ``~/.pgpass`` then has it)."""
    key = db.label
    with _provision_lock:
        if key in _provisioned and not again:
            return _provisioned[key]
        with db.read() as conn:
            role, ready, password = _check(conn)
        if not ready or password is None:
            try:
                with db.write() as conn:
                    password = _repair(conn, role, password)
            except pg_errors.InsufficientPrivilege as exc:
                if not ready:
                    raise NotebookRefusal(
                        f"the SQL notebook needs its own PostgreSQL role {role!r} and the app's role may not make "
                        f"it ({exc.diag.message_primary}): give the app's role CREATEROLE, or have an administrator "
                        f"run CREATE ROLE {role} LOGIN PASSWORD '…'; GRANT USAGE ON SCHEMA public TO {role}; "
                        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}; REVOKE ALL ON store_state FROM "
                        f"{role}; and put that password in the app's ~/.pgpass") from None
        _provisioned[key] = (role, password)
        return role, password


_MISSING_GRANTS = """
SELECT count(*) FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'v', 'p')
  AND c.relname <> 'store_state' AND NOT has_table_privilege(?, c.oid, 'SELECT')
"""
_PARENTS = """SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
              JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = ?"""


def _check(conn: sa.Connection) -> tuple[str, bool, str | None]:
    """(role, whether it is as ``provision`` leaves it, its stored password or None)."""
    role = notebook_role(rows(conn, "SELECT current_database()")[0][0])
    found = rows(conn, """SELECT rolcanlogin AND NOT (rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication
                                 OR rolbypassrls) FROM pg_roles WHERE rolname = ?""", [role])
    ready = bool(found and found[0][0] and not rows(conn, _MISSING_GRANTS, [role])[0][0]
                 and not rows(conn, _PARENTS, [role]))
    stored = rows(conn, "SELECT value FROM store_state WHERE key = ?", [LOGIN_KEY])
    login = json.loads(stored[0][0]) if stored else {}
    return role, ready, login.get("password") if login.get("role") == role else None


def _repair(conn: sa.Connection, role: str, password: str | None) -> str:
    """Make the role as ``provision`` wants it, keeping its stored password (other app processes
    hold it) or storing a new one; its password."""
    password = password or secrets.token_urlsafe(24)
    name = pg_sql.Identifier(role)
    attributes = pg_sql.SQL("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS "
                            "CONNECTION LIMIT 16 PASSWORD {}").format(pg_sql.Literal(scram_verifier(password)))
    verb = "ALTER" if rows(conn, "SELECT 1 FROM pg_roles WHERE rolname = ?", [role]) else "CREATE"
    schema = pg_sql.Identifier(rows(conn, "SELECT current_schema()")[0][0])
    with conn.connection.driver_connection.cursor() as cur:
        cur.execute(pg_sql.SQL(verb + " ROLE {} WITH {}").format(name, attributes))
        for (parent,) in rows(conn, _PARENTS, [role]):
            cur.execute(pg_sql.SQL("REVOKE {} FROM {}").format(pg_sql.Identifier(parent), name))
        cur.execute(pg_sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, name))
        cur.execute(pg_sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(schema, name))
        cur.execute(pg_sql.SQL("REVOKE ALL ON store_state FROM {}").format(name))
    run_sql(conn, "DELETE FROM store_state WHERE key = ?", [LOGIN_KEY])
    run_sql(conn, "INSERT INTO store_state (key, value, updated_at) VALUES (?, ?, ?)",
            [LOGIN_KEY, json.dumps({"role": role, "password": password}), utcnow()])
    return password


def connect_postgres(db: Database, timeout_s: float) -> psycopg.Connection:
    """A new connection logged in as the notebook role, in a READ ONLY transaction with a
    statement timeout; the caller closes it (which ends whatever the statement left behind)."""
    url = db.url
    params = {"host": url.host, "port": url.port, "dbname": url.database, "connect_timeout": 10,
              **{k: v for k, v in url.query.items() if isinstance(v, str)}}
    role, password = provision(db)
    try:
        conn = psycopg.connect(**params, user=role, password=password, application_name="oddsdesk notebook",
                               options="-c default_transaction_read_only=on")
    except psycopg.OperationalError:  # the role changed since this process provisioned it
        role, password = provision(db, again=True)
        conn = psycopg.connect(**params, user=role, password=password, application_name="oddsdesk notebook",
                               options="-c default_transaction_read_only=on")
    pg.configure(conn)
    conn.read_only = True
    conn.execute(pg_sql.SQL("SET LOCAL statement_timeout = {}").format(pg_sql.Literal(max(1, int(timeout_s * 1000)))))
    return conn


def run_postgres(db: Database, sql: str, row_limit: int, timeout_s: float) -> NotebookResult:
    """One statement as the notebook role: at most ``row_limit`` + 1 rows ever reach the app
    (streamed, the query cancelled once it has them); the server stops it after ``timeout_s``
    (and the app cancels it a second later should the server not)."""
    text = _text(sql)
    conn = connect_postgres(db, timeout_s)
    timer = threading.Timer(timeout_s + 1, conn.cancel_safe)
    timer.daemon = True
    data: list[tuple] = []
    columns: list[tuple[str, int]] = []
    try:
        timer.start()
        with conn.cursor() as cur:
            stream = cur.stream(text, size=_CHUNK if psycopg.pq.version() >= 170000 else 1)
            try:
                for row in stream:
                    data.append(row)
                    if len(data) > row_limit:
                        break
            finally:
                stream.close()
            columns = [(d.name, d.type_code) for d in cur.description] if data else pg.describe(conn, text)
    except pg_errors.QueryCanceled:
        raise NotebookTimeout(timeout_s) from None
    except pg_errors.SyntaxError as exc:
        if "multiple commands" in str(exc):
            raise NotebookRefusal("one statement at a time (several given)") from None
        raise
    except psycopg.ProgrammingError as exc:
        if "didn't produce a result" not in str(exc):
            raise
    finally:
        timer.cancel()
        conn.close()
    frame = pg.typed_frame(columns, data) if columns else pl.DataFrame()
    return NotebookResult(utc_frame(frame.head(row_limit)), frame.height > row_limit)

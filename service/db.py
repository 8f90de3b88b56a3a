"""Opening the one database (SQLite by default, PostgreSQL for scale), its clock and its locks."""
import collections
import contextlib
import hashlib
import logging
import os
import select
import sqlite3
import stat
import threading
import time
from urllib.parse import unquote, urlparse

import peewee

from service.models import TABLES, database

log = logging.getLogger(__name__)
PRIVATE_FOLDER, PRIVATE_FILE = 0o700, 0o600


def private_file(path):
    """Make `path` (and its folder) private before anything writes it: password and token
    hashes live there. SQLite gives its -wal and -shm files the database file's mode."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        os.makedirs(folder, mode=PRIVATE_FOLDER)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE))
    except FileExistsError:
        pass


def sqlite_path(url):
    """The file of a sqlite:/// url, or None (another scheme, or :memory:)."""
    scheme, _, rest = url.partition("://")
    return rest[1:] if scheme == "sqlite" and rest[1:] != ":memory:" else None


def fix_modes(paths):
    """Take group and other access off the given files and folders; returns what changed."""
    fixed = []
    for path in paths:
        try:
            mode = stat.S_IMODE(os.lstat(path).st_mode)
        except FileNotFoundError:
            continue
        private = PRIVATE_FOLDER if os.path.isdir(path) else PRIVATE_FILE
        if mode & 0o077:
            os.chmod(path, mode & private)
            fixed.append(f"{path}: {mode:04o} -> {mode & private:04o}")
    return fixed


class Budget(threading.local):
    """A per-thread time budget for queries: the API gives each request one, so no single
    request holds the database (or a thread) for long; workers set none."""
    deadline = None

    @contextlib.contextmanager
    def limit(self, seconds):
        self.deadline = time.monotonic() + seconds if seconds else None
        try:
            yield
        finally:
            self.deadline = None

    def spent(self):
        """SQLite's progress handler: a true answer interrupts the statement."""
        return self.deadline is not None and time.monotonic() > self.deadline


budget = Budget()
_PROGRESS_STEPS = 20000   # SQLite virtual-machine steps between looks at the clock (~1 ms)


class _WholeCursor(sqlite3.Cursor):
    """A cursor that reads all of a statement's rows in `execute`. A statement SQLite is still
    stepping through holds a read snapshot, and while any snapshot is held the WAL cannot start
    over: a job looping over a query while it copied a tree for minutes let the `-wal` file grow
    by everything written meanwhile. Read this way, a read outside a transaction lasts one
    statement (and, in a request, its budget)."""
    _rows = ()

    def execute(self, sql, parameters=()):
        super().execute(sql, parameters)
        self._rows = collections.deque(super().fetchall() if self.description else ())
        return self

    def fetchone(self):
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size=None):
        return [self._rows.popleft() for _ in range(min(size or self.arraysize, len(self._rows)))]

    def fetchall(self):
        rows, self._rows = list(self._rows), collections.deque()
        return rows

    def __iter__(self):
        return self

    def __next__(self):
        row = self.fetchone()
        if row is None:
            raise StopIteration
        return row


class _Connection(sqlite3.Connection):
    def cursor(self, factory=_WholeCursor):
        return super().cursor(factory)


class _SqliteDatabase(peewee.SqliteDatabase):
    def _add_conn_hooks(self, conn):
        super()._add_conn_hooks(conn)
        conn.set_progress_handler(budget.spent, _PROGRESS_STEPS)


WAL_LIMIT = 8 << 20     # bytes of WAL past which it is checkpointed and truncated; a reset WAL is cut back to it


def checkpoint(wait):
    """Copy SQLite's write-ahead log into the database and truncate it, when it has grown past
    WAL_LIMIT (a no-op on PostgreSQL). SQLite's own checkpoints, at every commit, cannot start
    the log over while readers overlap without pause; this one holds writers off and waits up
    to `wait` seconds (longer than any request's reads, server.query_budget) for the readers
    that began before it. Returns False when it had to give up (the next one tries again)."""
    if not isinstance(database.obj, peewee.SqliteDatabase):
        return True
    try:
        if os.path.getsize(database.database + "-wal") <= WAL_LIMIT:
            return True
    except FileNotFoundError:
        return True
    with database.connection_context():
        database.execute_sql(f"PRAGMA busy_timeout = {int(wait * 1000)}")
        busy, _, _ = database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not busy


class _Kept(threading.local):
    """What a thread knows of the connection it keeps: the SQLite file it opened."""
    identity = None


_kept = _Kept()


def _file_identity(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def _still_good():
    """Can the thread's open connection serve one more request? SQLite: its file is still the
    database's path (renamed away or replaced, the path is what counts: a request then opens
    it again, or fails). PostgreSQL: the server has not closed it (a closed or restarted server
    leaves the socket readable at once; a live idle one sends nothing)."""
    obj = database.obj
    if isinstance(obj, peewee.SqliteDatabase):
        return obj.database == ":memory:" or _file_identity(obj.database) == _kept.identity
    conn = database.connection()
    if getattr(conn, "closed", 0):
        return False
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


@contextlib.contextmanager
def kept_connection():
    """The thread's database connection for one request or one job run: opened once and kept
    (the API's request threads and the workers' job threads are few and long-lived), checked
    before each use, closed when the database was found unavailable so that the next use opens
    a new one. Replaces opening a connection (and its PRAGMAs) each time; behaves the same when
    the database moves, locks or goes away."""
    if not database.is_closed() and not _still_good():
        _drop()
    if database.is_closed():
        database.connect()
        obj = database.obj
        if isinstance(obj, peewee.SqliteDatabase) and obj.database != ":memory:":
            _kept.identity = _file_identity(obj.database)
    try:
        yield
    except peewee.PeeweeException as exc:
        if unavailable(exc):
            _drop()
        raise
    finally:
        if database.in_transaction():       # never kept across uses (a handler or job ends its own)
            _drop()


def _drop():
    """Close the thread's connection, whatever state it is in."""
    state = database._state
    try:
        if state.conn is not None:
            state.conn.close()
    except Exception:   # already broken: nothing more to close
        pass
    state.reset()
    _kept.identity = None


def over_budget(exc):
    """Was `exc` a statement the request's budget stopped?"""
    text = str(exc).lower()
    return "interrupted" in text or "statement timeout" in text or "canceling statement" in text


def unavailable(exc):
    """Is `exc` the database being out of reach (locked, read-only, not openable, down or
    restarting, the connection cut) rather than anything wrong with the request or the data?
    Those are answered 503 with Retry-After: they pass by themselves."""
    if isinstance(exc, (peewee.OperationalError, peewee.InterfaceError)):
        return not over_budget(exc)
    # PostgreSQL in recovery, or a read-only standby: SQLSTATE 25006
    return isinstance(exc, peewee.InternalError) and getattr(exc.__context__, "pgcode", None) == "25006"


def open_database(url, statement_timeout=None):
    """Bind the models to the database named by `url` and return it. `statement_timeout`
    (seconds) bounds each statement on PostgreSQL; on SQLite the per-request `budget` does,
    and twice it bounds the wait for a lock (else 30 s): a checkpoint may hold writers off for
    one budget."""
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite":
        path = rest[1:]
        if path != ":memory:":
            private_file(path)
        # WAL lets readers go on while a worker writes; IMMEDIATE takes the write
        # lock up front so two writers wait for each other (busy_timeout) instead
        # of failing at the upgrade from a read lock.
        wait = 2 * statement_timeout if statement_timeout else 30     # for a lock, from the first statement on
        db = _SqliteDatabase(
            path, lock_type="IMMEDIATE", factory=_Connection, timeout=wait,
            pragmas={"journal_mode": "wal", "busy_timeout": int(wait * 1000), "foreign_keys": 1,
                     "synchronous": "normal", "journal_size_limit": WAL_LIMIT})
    else:
        parts = urlparse(url)
        db = peewee.PostgresqlDatabase(
            parts.path.lstrip("/") or "postgres", user=unquote(parts.username or "") or None,
            password=unquote(parts.password or "") or None, host=parts.hostname,
            port=parts.port, autorollback=True,
            **({"options": f"-c statement_timeout={int(statement_timeout * 1000)}"} if statement_timeout else {}))
    if isinstance(db, peewee.SqliteDatabase):
        from service.api.query import register_sqlite_functions
        register_sqlite_functions(db)   # $regex through RE2, not peewee's backtracking re
    database.initialize(db)
    return db


def create_tables(say=log.info):
    """A new database made, or an existing one migrated to this release's schema
    (service/migrations); returns the steps applied."""
    from service import migrations
    return migrations.upgrade(say)


def clock(seconds=0):
    """The database's current time in UTC, to the millisecond, plus `seconds`, as an SQL expression.

    Job liveness is judged by this one clock, never by a worker's: every heartbeat stores it and
    every sweep compares against it. On PostgreSQL it is the server's clock; SQLite, which all
    processes share on one host, reads that host's clock. Both give naive UTC in the format
    peewee stores datetimes in, so stored values and this expression compare correctly."""
    seconds = int(seconds)
    if isinstance(database.obj, peewee.PostgresqlDatabase):
        return peewee.SQL(f"(date_trunc('milliseconds', CURRENT_TIMESTAMP AT TIME ZONE 'UTC') "
                          f"+ INTERVAL '{seconds} seconds')")
    # 'YYYY-MM-DD HH:MM:SS.SSS': ordered like the values peewee stores (whole seconds are a prefix)
    return peewee.fn.strftime("%Y-%m-%d %H:%M:%f", "now", f"{seconds:+d} seconds")


def lock(name):
    """Serialise, until the end of the current transaction, every transaction that locks `name`.

    PostgreSQL: a transaction-level advisory lock on a stable 64-bit hash of the name.
    SQLite: nothing to do — the connection begins transactions IMMEDIATE, so a transaction
    holds the database's one write lock from its BEGIN and writers already run one at a time."""
    if database.transaction_depth() == 0:
        raise RuntimeError(f"lock({name!r}) outside a transaction would hold nothing")
    if isinstance(database.obj, peewee.PostgresqlDatabase):
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (key,))

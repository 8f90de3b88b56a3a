"""Opening the one database (SQLite by default, PostgreSQL for scale)."""
import os
import stat
from urllib.parse import unquote, urlparse

import peewee

from service.models import TABLES, database


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


def open_database(url):
    """Bind the models to the database named by `url` and return it."""
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite":
        path = rest[1:]
        if path != ":memory:":
            private_file(path)
        # WAL lets readers go on while a worker writes; IMMEDIATE takes the write
        # lock up front so two writers wait for each other (busy_timeout) instead
        # of failing at the upgrade from a read lock.
        db = peewee.SqliteDatabase(
            path, regexp_function=True, lock_type="IMMEDIATE",
            pragmas={"journal_mode": "wal", "busy_timeout": 30000, "foreign_keys": 1,
                     "synchronous": "normal"})
    else:
        parts = urlparse(url)
        db = peewee.PostgresqlDatabase(
            parts.path.lstrip("/") or "postgres", user=unquote(parts.username or "") or None,
            password=unquote(parts.password or "") or None, host=parts.hostname,
            port=parts.port, autorollback=True)
    database.initialize(db)
    return db


def create_tables():
    with database.connection_context():
        database.create_tables(TABLES, safe=True)

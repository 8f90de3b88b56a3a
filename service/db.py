"""Opening the one database (SQLite by default, PostgreSQL for scale)."""
from pathlib import Path
from urllib.parse import unquote, urlparse

import peewee

from service.models import TABLES, database


def open_database(url):
    """Bind the models to the database named by `url` and return it."""
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite":
        path = rest[1:]
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
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

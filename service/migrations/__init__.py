"""Versioned schema migrations: the database says which it has, the code which it needs.

Table `schema_migration` holds one row per step applied. A new database is made from the
models and marked with every step; an existing one is brought forward by
`pixstor-mgmt migrate` (and `init`), one step at a time, each in its own transaction with
the migration lock held, so two processes migrating at once apply each step once.
`serve`, `worker` and the other commands refuse a database that is behind (or ahead of)
the code, with one line saying what to do.

Step 1 is release 0.2.0, the last without this table: a database without the table is
taken to be 0.2.0 (or older: step 1 completes it from the frozen 0.2.0 DDL kept beside
this file). Steps are in service/migrations/steps.py, written against the tables as they
were at that step — never against today's models, which move on.
"""
import datetime
import logging
import re
from pathlib import Path

import peewee
from playhouse.migrate import SchemaMigrator, migrate

from service.models import TABLES, database

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
STEPS = []          # (version, name, function(migrator)) in order; filled by steps.py
LOCK = "pixstor: schema migration"


class SchemaMigration(peewee.Model):
    version = peewee.IntegerField(primary_key=True)
    name = peewee.CharField(max_length=255)
    applied = peewee.DateTimeField()

    class Meta:
        database = database
        table_name = "schema_migration"


class SchemaMismatch(Exception):
    """The database's schema is not the one this code needs; the message says what to run."""


def step(version, name):
    """Register `function(migrator)` as schema step `version`."""
    def register(function):
        assert not STEPS or STEPS[-1][0] == version - 1, "steps are numbered one after another"
        STEPS.append((version, name, function))
        return function
    return register


def latest():
    return STEPS[-1][0]


def applied():
    """The highest step applied: 0 for an empty database, 1 for a 0.2.0 one without the table."""
    tables = set(database.get_tables())
    if SchemaMigration._meta.table_name in tables:
        return SchemaMigration.select(peewee.fn.MAX(SchemaMigration.version)).scalar() or 0
    return 1 if "job" in tables else 0


def upgrade(say=log.info):
    """Make a new database, or apply the steps it lacks; returns the steps applied."""
    from service.db import lock
    done = []
    with database.connection_context():
        with database.atomic():
            lock(LOCK)
            if applied() == 0:
                database.create_tables(TABLES + [SchemaMigration], safe=True)
                SchemaMigration.insert_many([{"version": v, "name": n, "applied": _now()} for v, n, _ in STEPS]).execute()
                say(f"created the tables at schema version {latest()}")
                return [v for v, _, _ in STEPS]
            # a database without the table is 0.2.0 or older: step 1 runs on it and completes it
            database.create_tables([SchemaMigration], safe=True)
        for version, name, function in STEPS:
            with database.atomic():
                lock(LOCK)
                if SchemaMigration.get_or_none(SchemaMigration.version == version):
                    continue
                say(f"migrating to schema version {version}: {name}")
                function(SchemaMigrator.from_database(database.obj))
                SchemaMigration.create(version=version, name=name, applied=_now())
            done.append(version)
    return done


def check():
    """Raise SchemaMismatch unless the database has exactly the steps this code knows."""
    with database.connection_context():
        have = applied()
    if have < latest():
        raise SchemaMismatch(f"the database is at schema version {have}, this release needs {latest()}: "
                             "run `pixstor-mgmt migrate` (with the same --config) first"
                             if have else "the database has no tables: run `pixstor-mgmt init` first")
    if have > latest():
        raise SchemaMismatch(f"the database is at schema version {have}, newer than this release knows "
                             f"({latest()}): run the release that migrated it")


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


# Helpers for steps -----------------------------------------------------------------------

def columns(table):
    return {c.name for c in database.get_columns(table)}


def add_columns(migrator, table, fields):
    """Add the columns of {name: peewee field} the table lacks (idempotent)."""
    present = columns(table)
    operations = [migrator.add_column(table, name, field) for name, field in fields.items() if name not in present]
    if operations:
        migrate(*operations)


def widen(table, column, length):
    """A varchar column made at least `length` wide (PostgreSQL enforces widths; SQLite does not)."""
    if not isinstance(database.obj, peewee.PostgresqlDatabase):
        return
    width = database.execute_sql(
        "SELECT character_maximum_length FROM information_schema.columns WHERE table_name = %s "
        "AND column_name = %s AND table_schema = current_schema()", (table, column)).fetchone()
    if width and width[0] is not None and width[0] < length:
        log.warning("widening %s.%s to %d characters", table, column, length)
        database.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE VARCHAR({int(length)})')


def dialect():
    return "postgresql" if isinstance(database.obj, peewee.PostgresqlDatabase) else "sqlite"


def baseline_statements():
    """The 0.2.0 DDL for this database: CREATE TABLE and CREATE INDEX statements."""
    text = (HERE / f"baseline-0.2.0.{dialect()}.sql").read_text()
    return [s.strip() for s in text.split(";\n") if s.strip()]


_TABLE = re.compile(r'CREATE TABLE IF NOT EXISTS "(\w+)" \((.*)\)$', re.S)


def table_columns(statement):
    """(table, {column: its DDL}) of a CREATE TABLE statement; constraints are left out."""
    match = _TABLE.match(statement.rstrip(";"))
    parts, depth, current = [], 0, ""
    for char in match[2]:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return match[1], {p.split('"')[1]: p for p in parts if p.startswith('"')}


def complete_to_baseline():
    """Bring a database made before 0.2.0 to it: missing tables, columns (nullable unless the
    DDL gives a default), varchar widths, then indexes (an index on a column not yet there
    fails on PostgreSQL)."""
    statements = baseline_statements()
    tables = [s for s in statements if s.startswith("CREATE TABLE")]
    for statement in tables:
        database.execute_sql(statement)
    for statement in tables:
        table, wanted = table_columns(statement)
        present = columns(table)
        for name, ddl in wanted.items():
            if name not in present:
                if "NOT NULL" in ddl and "DEFAULT" not in ddl:
                    ddl = ddl.replace(" NOT NULL", "")
                log.warning("adding the missing column %s.%s", table, name)
                database.execute_sql(f'ALTER TABLE "{table}" ADD COLUMN {ddl.replace(" PRIMARY KEY", "")}')
            width = re.search(r"VARCHAR\((\d+)\)", ddl)
            if width:
                widen(table, name, int(width[1]))
    for statement in statements:
        if not statement.startswith("CREATE TABLE"):
            database.execute_sql(statement)


from service.migrations import steps  # noqa: E402,F401  (registers the steps)

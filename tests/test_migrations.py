"""Versioned schema migrations (service/migrations): a database as release 0.2.0 left it —
its DDL frozen beside the migrations, its rows in tests/fixtures — is refused by `serve` and
`worker` until `pixstor-mgmt migrate` brings it forward; then every item is intact, the schema
is the one a new database gets, and the API serves the items."""
from pathlib import Path

import peewee
import pytest

from service import db, migrations
from service.models import database
from tests.harness import Server, data_of, postgres_database, require

DATA = Path(__file__).parent / "fixtures" / "release-0.2.0-data.sql"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/old.db"
        return
    url, drop = postgres_database()
    require(url, drop)
    try:
        yield url
    finally:
        drop()


def load_release_0_2_0(url):
    """A database with the 0.2.0 tables and rows, as that release left it."""
    db.open_database(url)
    with database.connection_context():
        for statement in migrations.baseline_statements():
            database.execute_sql(statement)
        for line in DATA.read_text().splitlines():
            if line.startswith("INSERT"):
                database.execute_sql(line)
        if isinstance(database.obj, peewee.PostgresqlDatabase):   # the serials, as inserts made them
            for table in ("space_template_through", "space_exposer_through"):
                database.execute_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT MAX(id) FROM {table}))")
    database.close()


def rows(url, statements):
    """Every row of every 0.2.0 table, in the 0.2.0 columns, in key order."""
    db.open_database(url)
    found = {}
    with database.connection_context():
        for statement in statements:
            if statement.startswith("CREATE TABLE"):
                table, columns = migrations.table_columns(statement)
                names = ", ".join(f'"{c}"' for c in columns)
                found[table] = database.execute_sql(f'SELECT {names} FROM "{table}" ORDER BY 1').fetchall()
    database.close()
    return found


def schema(url):
    """{table: ({column: (type, nullable)}, {index: columns})} as the database reports them."""
    db.open_database(url)
    sqlite = url.startswith("sqlite")

    def kind(column):     # SQLite keeps a varchar's declared width but never enforces it
        return column.data_type.lower().split("(")[0] if sqlite else column.data_type.lower()
    with database.connection_context():
        found = {t: ({c.name: (kind(c), c.null) for c in database.get_columns(t)},
                     {i.name: tuple(i.columns) for i in database.get_indexes(t)}) for t in database.get_tables()}
    database.close()
    return found


def test_a_release_0_2_0_database_is_refused_then_migrated_intact(tmp_path, database_url):
    load_release_0_2_0(database_url)
    before = rows(database_url, migrations.baseline_statements())
    server = Server(tmp_path, database=database_url, worker=False)
    for command in ("serve", "worker", "usage"):
        refused = server.cli(command, check=False)
        assert refused.returncode == 1
        assert refused.stderr == (f"pixstor-mgmt: the database is at schema version 1, this release needs "
                                  f"{migrations.latest()}: run `pixstor-mgmt migrate` (with the same --config) "
                                  "first\n"), refused.stderr
    migrated = server.cli("migrate")
    assert migrated.stdout.splitlines() == [f"migrating to schema version {v}: {name}"
                                            for v, name, _ in migrations.STEPS]
    assert server.cli("migrate").stdout == f"the database is at schema version {migrations.latest()}: nothing to do\n"
    assert rows(database_url, migrations.baseline_statements()) == before
    db.open_database(database_url)
    with database.connection_context():
        paths = database.execute_sql("SELECT name, mountpoint, path FROM exposer").fetchall()
    database.close()
    assert paths == [("mmfs1", "/mmfs1", "/mmfs1")]
    # the API serves what 0.2.0 recorded
    server.serve()
    try:
        server.cli("user", "add", "checker", "--role", "readonly", "--password-stdin", input="checker-pass\n")
        session = server.session("checker", "checker-pass")
        space = data_of(session.get(server.url + "/spaces/22222222-2222-4222-8222-222222222222").json())
        assert (space["name"], space["used"], space["fileset"]) == ("sleepy-snake", 12345, "sas1-sleepy-snake")
        assert space["templates"] == ["/templates/11111111-1111-4111-8111-111111111111"]
        snapshot = data_of(session.get(server.url + "/snapshots/44444444-4444-4444-8444-444444444444").json())
        assert snapshot["space"] == "/spaces/22222222-2222-4222-8222-222222222222"
        job = session.get(server.url + "/jobs/77777777-7777-4777-8777-777777777777/stderr")
        assert job.text == "ERROR:service.job:cannot create fileset"
    finally:
        server.stop()


def test_a_migrated_database_has_the_schema_of_a_new_one(tmp_path, database_url):
    load_release_0_2_0(database_url)
    db.open_database(database_url)
    db.create_tables()
    database.close()
    if database_url.startswith("sqlite"):
        fresh = f"sqlite:///{tmp_path}/fresh.db"
        drop = None
    else:
        fresh, drop = postgres_database()
    try:
        db.open_database(fresh)
        db.create_tables()
        database.close()
        assert schema(database_url) == schema(fresh)
    finally:
        if drop:
            drop()


def test_a_database_ahead_of_the_code_is_refused(tmp_path):
    server = Server(tmp_path)
    server.cli("init")
    db.open_database(f"sqlite:///{tmp_path}/var/pixstor.db")
    with database.connection_context():
        migrations.SchemaMigration.create(version=migrations.latest() + 1, name="from a newer release",
                                          applied=migrations._now())
    database.close()
    refused = server.cli("serve", check=False)
    assert (refused.returncode, refused.stderr) == (1, (
        f"pixstor-mgmt: the database is at schema version {migrations.latest() + 1}, newer than this release "
        f"knows ({migrations.latest()}): run the release that migrated it\n"))

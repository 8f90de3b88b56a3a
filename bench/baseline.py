"""The floor of this stack: a bare Bottle + Peewee app answering the benchmark's requests with
the same queries on the same database, under the same waitress settings, with none of the
service's work (no auth, no Collection+JSON, no relations, no jobs). Peewee keeps one
connection per thread, opened once.

    python -m bench.baseline DATABASE_URL PORT THREADS
"""
import json
import logging
import sys
import uuid

import bottle
import peewee
import waitress

from service.models import Space, database


def open_database(url):
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite":
        return peewee.SqliteDatabase(rest[1:], pragmas={"journal_mode": "wal", "busy_timeout": 30000,
                                                       "foreign_keys": 1, "synchronous": "normal"})
    from urllib.parse import urlparse
    parts = urlparse(url)
    return peewee.PostgresqlDatabase(parts.path.lstrip("/"), user=parts.username, host=parts.hostname,
                                     port=parts.port, autorollback=True)


def rows(select):
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
            for row in select.dicts()]


def make_app():
    app = bottle.Bottle()

    @app.get("/ping")
    def ping():
        return "ok"

    @app.get("/spaces/<item_id>")
    def item(item_id):
        found = rows(Space.select().where(Space.id == item_id))
        if not found:
            bottle.abort(404)
        bottle.response.content_type = "application/json"
        return json.dumps(found[0])

    @app.route("/spaces/", "OPTIONS")
    def options():
        bottle.response.set_header("Allow", "HEAD, GET, POST, OPTIONS")
        return ""

    @app.get("/spaces/")
    def listing():
        select = Space.select()
        where = bottle.request.query.get("where")
        if where:
            select = select.where(Space.name == json.loads(where)["name"])
        # COUNT(*) of the table with the where, as a bare app would ask it (peewee's count() wraps
        # the query as a subquery, which SQLite cannot answer from an index)
        counted = Space.select(peewee.fn.COUNT(peewee.SQL("*")))
        if where:
            counted = counted.where(Space.name == json.loads(where)["name"])
        bottle.response.set_header("X-Total-Count", str(counted.scalar()))
        bottle.response.content_type = "application/json"
        return json.dumps(rows(select.order_by(Space.created, Space.id).limit(25)))

    @app.post("/spaces/")
    def create():
        body = json.load(bottle.request.body)
        with database.atomic():
            item_id = str(uuid.uuid4())
            Space.insert(id=item_id, name=body["name"], relativepath=body["relativepath"],
                         profile=body["profile"].rsplit("/", 1)[-1], size=body["size"], status="NEW").execute()
        bottle.response.status = 202
        bottle.response.content_type = "application/json"
        return json.dumps({"id": item_id})

    return app


def main():
    url, port, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    logging.getLogger("waitress").setLevel(logging.ERROR)     # "task queue depth": the load's doing
    database.initialize(open_database(url))
    waitress.serve(make_app(), host="127.0.0.1", port=port, threads=threads, ident="baseline", _quiet=True)


if __name__ == "__main__":
    main()

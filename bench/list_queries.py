"""Collection GET cost as the table grows: a page of 25 spaces out of 2,000
against the same page out of 25, through the real WSGI app on SQLite, in one
run.  A ratio near 1 means listing cost follows the page, not the table
(paging in SQL, one query per relation per page).  `--quick` is the smoke run."""
import argparse
import io
import sys
import tempfile
import time
from pathlib import Path
from wsgiref.util import setup_testing_defaults

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service import config, context, db  # noqa: E402
from service.api import auth  # noqa: E402
from service.api.app import make_app  # noqa: E402
from service.models import Datastore, Exposer, Profile, Space, SpaceExposer, User, database  # noqa: E402


def get(app, path, query, token):
    environ = {"PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": "GET",
               "HTTP_AUTHORIZATION": f"Bearer {token}", "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    status = []
    body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
    assert status[0].startswith("200"), (status, body[:200])
    return body


def fill(count):
    with database.atomic():
        ds = Datastore.create(name="sas1", pool="sas1", filesystem="mmfs1")
        profile = Profile.create(name="mmfs1-sas1", datastore=ds)
        exposer = Exposer.create(name="mmfs1", type="gpfsnative", mountpoint="/mmfs1")
        rows = [dict(name=f"s{n:05d}", relativepath=f"p/s{n}", profile=profile, size=1 << 30,
                     fileset=f"sas1-s{n:05d}", path=f"/mmfs1/p/s{n}") for n in range(count)]
        for chunk in range(0, count, 200):
            Space.insert_many(rows[chunk:chunk + 200]).execute()
        SpaceExposer.insert_many([{"space": s.id, "exposer": exposer.id} for s in Space.select(Space.id)]).execute()


def timed(app, token, repeat):
    start = time.perf_counter()
    for _ in range(repeat):
        get(app, "/spaces/", 'where={"size": {"$gt": 1}}&sort=name', token)
    return (time.perf_counter() - start) / repeat


def run(count, repeat):
    with tempfile.TemporaryDirectory() as folder:
        settings = config.load(None, environ={"PIXSTOR_DATABASE_URL": f"sqlite:///{folder}/db.sqlite",
                                              "PIXSTOR_QUEUE_URL": f"sqlite:///{folder}/q.sqlite"})
        context.setup(settings)
        db.open_database(settings.database.url)
        db.create_tables()
        with database.connection_context():
            fill(count)
            user = User.create(name="bench", role="admin", password_hash=auth.hash_password("benchmark"))
            token = auth.issue_token(user, 3600)
        from service import tasks
        tasks.configure(settings)
        app = make_app(settings)
        get(app, "/spaces/", "", token)    # warm up
        return timed(app, token, repeat)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    big, repeat = (300, 5) if args.quick else (2000, 50)
    small_cost = run(25, repeat)
    big_cost = run(big, repeat)
    print(f"GET /spaces/ page of 25: {small_cost * 1000:.2f} ms with 25 spaces, {big_cost * 1000:.2f} ms with "
          f"{big}; ratio {big_cost / small_cost:.2f}x")


if __name__ == "__main__":
    main()

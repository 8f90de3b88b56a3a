"""Bounded growth for months unattended: old jobs pruned (the latest job of every item kept), job
logs capped, the job list served by indexes, and SQLite's write-ahead log kept small while
readers and writers overlap without pause."""
import datetime
import os
import sqlite3
import threading
import time
import uuid

import pytest
import requests

from service import db
from service.models import Job, Template, database, now
from service.tasks import runner, upkeep
from tests.harness import (CJ, Server, cj_body, data_of, make_model, postgres_database, require, wait_for,
                           wait_status)

WAL_BOUND = 32 << 20    # what README.md states for the -wal file under this load
WAL_SECONDS = 50        # of continuous overlapping reads and writes
PREFILL = 50_000        # finished jobs, so that an unindexed scan of them overlaps the next one


def _refs(session, url):
    profile = session.get(url + "/profiles/", params={"where": '{"name": "mmfs1-sas1"}'}).json()
    exposer = session.get(url + "/exposers/", params={"where": '{"type": "gpfsnative"}'}).json()
    return profile["collection"]["items"][0]["href"], exposer["collection"]["items"][0]["href"]


def _prefill(path, count):
    """`count` finished jobs of items long gone, written while no server runs."""
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO job (id, status, action, resource_type, resource_id, created, finished, attempt, stdout, "
            "stderr) VALUES (?, 'COMPLETED', 'create', 'spaces', ?, datetime('now', ?), datetime('now', ?), 1, '', "
            "'INFO:service.job:done\n')",
            [(str(uuid.uuid4()), str(uuid.uuid4()), f"-{n} seconds", f"-{n} seconds") for n in range(count)])
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0


# The write-ahead log ----------------------------------------------------------------------

def test_the_wal_stays_bounded_while_reads_and_writes_overlap(tmp_path):
    """Six clients read without pause — each read a scan of 50 000 jobs that takes about a
    second under this load, so that some read is always in flight — while four clients create,
    resize and delete spaces (jobs run by the embedded worker). SQLite's own checkpoints cannot
    start the log over while readers overlap like this: without the worker's checkpoint the
    -wal file grew by about a megabyte a second for as long as the load lasted (45 MiB here;
    reads slowed down past their budget). With it (default settings) the peak was 11 MiB."""
    srv = Server(tmp_path).start()
    srv.stop()
    _prefill(tmp_path / "var" / "pixstor.db", PREFILL)
    srv.serve()
    wal = tmp_path / "var" / "pixstor.db-wal"
    session = srv.session()
    profile, exposer = _refs(session, srv.url)
    stop = threading.Event()
    reads, writes, failures = [], [], []

    def reader():
        client = requests.Session()
        client.auth = session.auth
        while not stop.is_set():
            start = time.monotonic()
            answer = client.get(srv.url + "/jobs/", timeout=60, params={
                "where": '{"action": {"$regex": "^upd"}}', "max_results": 5})
            reads.append((start, time.monotonic()))
            if answer.status_code != 200:
                failures.append(f"GET {answer.status_code} {answer.text[:300]}")

    def writer(number):
        client = requests.Session()
        client.auth = session.auth
        count = 0
        while not stop.is_set():
            count += 1
            name = f"w{number}-{count}"
            answer = client.post(srv.url + "/spaces/", headers=CJ, timeout=60, json=cj_body(
                name=name, relativepath=f"load/{name}", exposers=exposer, profile=profile, size=1 << 30))
            href = answer.json()["collection"]["items"][0]["href"] if answer.status_code == 202 else None
            for step in ("resize", "delete"):
                if href is None or wait_status(client, srv.url + href, timeout=60) != "ACTIVE":
                    failures.append(f"{name}: {answer.status_code} {answer.text[:300]}")
                    return
                answer = (client.patch(srv.url + href, json={"size": 2 << 30}, timeout=60) if step == "resize"
                          else client.delete(srv.url + href, timeout=60))
                writes.append(answer.status_code)
            assert wait_status(client, srv.url + href, timeout=60) is None

    threads = [threading.Thread(target=reader) for _ in range(6)]
    threads += [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    peak, start = 0, time.monotonic()
    try:
        for thread in threads:
            thread.start()
        while time.monotonic() - start < WAL_SECONDS and not failures:
            peak = max(peak, wal.stat().st_size if wal.exists() else 0)
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    assert failures == []
    # what the test is about was really happening: reads overlapped all along, writes went on
    busy = _covered([(max(a, start + 5), min(b, start + WAL_SECONDS)) for a, b in reads], start + 5,
                    start + WAL_SECONDS)
    assert busy > 0.95, f"reads were in flight only {busy:.0%} of the time"
    assert len(writes) >= 40 and set(writes) == {202}, writes
    print(f"-wal peak {peak / 2**20:.1f} MiB over {WAL_SECONDS} s, {len(reads)} reads, {len(writes)} writes")
    assert peak < WAL_BOUND, f"-wal reached {peak / 2**20:.1f} MiB"


def _covered(intervals, start, end):
    """The fraction of [start, end] covered by the intervals."""
    covered, reach = 0.0, start
    for a, b in sorted(intervals):
        if b > reach:
            covered += b - max(a, reach)
            reach = b
    return covered / (end - start)


def test_a_job_looping_over_a_query_does_not_hold_the_wal(tmp_path):
    """A statement SQLite is still stepping through holds a read snapshot, and the WAL cannot
    start over while one is held: a job looping over a query while it copied a tree let the -wal
    file grow by everything written meanwhile. The service's cursors read whole results at once."""
    db.open_database(f"sqlite:///{tmp_path}/loop.db")
    db.create_tables()
    try:
        with database.connection_context():
            for name in ("a", "b"):
                Template.create(name=name, type="filesystemtemplate", template_location="/x")

        def write_a_lot():     # ~40 MB, from another connection, while the loop below is inside its query
            with database.connection_context():
                for _ in range(4000):
                    Job.create(action="create", resource_type="templates", resource_id="x", stdout="x" * 10_000)

        with database.connection_context():
            for template in Template.select():
                writer = threading.Thread(target=write_a_lot)
                writer.start()
                writer.join()
                size = os.path.getsize(tmp_path / "loop.db-wal")
                break
        assert template.name == "a"
        assert size < 8 << 20, f"-wal grew to {size / 2**20:.1f} MiB during the loop"
    finally:
        database.close()


# The job list's indexes ---------------------------------------------------------------------

@pytest.mark.parametrize("where, sort", [
    (None, None),                                               # GET /jobs/: created, id
    (None, "-created"),
    (None, '[("created", 1)]'),
    ('{"resource_type": "spaces", "resource_id": "x"}', None),  # an item's Jobs link
    ('resource_id=="x"', "-created"),
])
def test_the_job_list_is_read_in_index_order(tmp_path, where, sort):
    """The list's query, as the API builds it, needs no sort step on SQLite: an index gives its order."""
    from service.api import query
    from service.api.registry import VIEWS
    db.open_database(f"sqlite:///{tmp_path}/plan.db")
    db.create_tables()
    try:
        view = VIEWS["jobs"]
        select = Job.select()
        if where:
            select = select.where(query.parse_where(where, Job, view.queryable))
        select = select.order_by(*query.stable_order(Job, query.parse_sort(sort, Job, view.queryable)))
        sql, params = select.paginate(1, 25).sql()
        with database.connection_context():
            plan = " / ".join(row[-1] for row in database.execute_sql("EXPLAIN QUERY PLAN " + sql, params))
        assert "TEMP B-TREE" not in plan and "USING INDEX job_" in plan, plan
    finally:
        database.close()


# Job logs ---------------------------------------------------------------------------------

MARKER = r"\[\.\.\. (\d+) bytes cut here: a job log keeps its first and last (\d+) bytes \(\[queue\] max_log\) \.\.\.\]"


@pytest.mark.parametrize("writes", [
    ["line %05d of a chatty job\n" % n for n in range(2000)],
    ["é" * 3000 + "\n", "ünïcode " * 500 + "\n", "end\n"],        # multi-byte characters across the cuts
    ["one line without an end " * 400],
])
def test_a_capped_log_keeps_its_first_and_last_lines(writes):
    import re
    log = runner.CappedLog(4096)
    for text in writes:
        log.write(text)
    whole = "".join(writes)
    value = log.getvalue()
    marker = re.search(MARKER, value)
    assert marker and int(marker[2]) == 2048
    head, tail = value[:marker.start()], value[marker.end() + 1:]
    if not whole.startswith(head):
        head = head[:-1]    # the line break before the marker is its own
    assert whole.startswith(head) and whole.endswith(tail)
    assert len(value.encode()) <= 4096 + len(marker[0]) + 2   # and its two line breaks
    # what was cut is said exactly
    assert int(marker[1]) == len(whole.encode()) - len(head.encode()) - len(tail.encode())
    small = runner.CappedLog(4096)
    small.write("a short log\n")
    assert small.getvalue() == "a short log\n"


def test_a_job_log_is_capped_with_a_marker(tmp_path):
    """A template build logs a line per dependent fileset of its model: 300 of them overflow a
    4 KiB cap; the job's stderr keeps its first and last lines and says what it cut."""
    import re
    srv = Server(tmp_path, env={"PIXSTOR_QUEUE_MAX_LOG": "4096"}).start()
    try:
        session = srv.session()
        model = make_model(srv.mountpoint / "models" / "chatty")
        for n in range(300):
            (model / f"fileset-{n:03d}").mkdir()
            (model / f"fileset-{n:03d}" / ".pixstor-fileset").write_text("sata1\n")
        answer = session.post(srv.url + "/templates/", headers=CJ, json=cj_body(
            name="chatty", type="filesystemtemplate", template_location=str(model)))
        assert wait_status(session, answer.headers["Location"], timeout=60) == "ACTIVE"
        job_id = answer.links["job"]["url"].rsplit("/", 1)[1]
        stderr = session.get(srv.url + f"/jobs/{job_id}/stderr")
        text = stderr.text
        marker = re.search(MARKER, text)
        assert marker and int(marker[1]) > 20_000 and int(marker[2]) == 2048, text
        assert len(stderr.content) <= 4096 + len(marker[0]) + 2   # and its two line breaks
        lines = text.splitlines()
        assert lines[0].startswith(f"DEBUG:service.job:job {job_id}: run 1 taken by ")
        assert lines[1:3] == [f"DEBUG:service.job:job {job_id}: parameters {{}}",
                              f"INFO:service.job:job {job_id}: create /templates/{data_of(answer.json())['id']} (run 1)"]
        assert lines[-1] == f"INFO:service.job:job {job_id} completed"
        assert all(line.startswith(("INFO:", "DEBUG:")) or re.fullmatch(MARKER, line) for line in lines), lines
    finally:
        srv.stop()


# Retention ------------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request, tmp_path):
    drop = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/prune.db"
    else:
        url, drop = postgres_database()
        require(url, drop)
    db.open_database(url)
    db.create_tables()
    yield
    database.close()
    if drop:
        drop()


def _jobs_made_at(base):
    """A function making a job `days_ago` days before `base` (one "now" for a whole test)."""
    def job(item_id, status, days_ago, action="create", resource_type="templates"):
        when = base - datetime.timedelta(days=days_ago)
        finished = when if status in ("COMPLETED", "ERRORED") else None
        return Job.create(action=action, resource_type=resource_type, resource_id=item_id, status=status,
                          created=when, finished=finished).id
    return job


def test_old_jobs_are_pruned_and_the_latest_of_every_item_kept(any_database, monkeypatch):
    monkeypatch.setattr(upkeep, "PRUNE_BATCH", 3)   # several rounds of deletes
    _job = _jobs_made_at(now())
    with database.connection_context():
        one, two, three, four, five = (
            Template.create(name=n, type="filesystemtemplate", template_location="/x").id
            for n in ("one", "two", "three", "four", "five"))
        kept = {
            _job(five, "COMPLETED", 50), _job(five, "ERRORED", 50, "update"),     # the latest second: both
            _job(one, "ERRORED", 40, "update"),         # the latest of an item, however old
            _job(two, "COMPLETED", 1, "update"),        # recent
            _job(three, "COMPLETED", 400),              # the only one of its item
            _job("gone-2", "COMPLETED", 2, "delete"),   # recent, of an item that is gone
            _job(four, "PENDING", 35, "update"),        # not finished: never pruned
            _job("gone-3", "INPROGRESS", 50),
        }
        pruned = {
            _job(one, "COMPLETED", 41),                 # older than the item's latest
            _job(two, "COMPLETED", 45),
            _job("gone-1", "COMPLETED", 60),            # of an item that is gone: all of them
            _job("gone-1", "COMPLETED", 59, "delete"),
            _job("gone-2", "COMPLETED", 90),
            _job(four, "COMPLETED", 36),
        } | {_job(f"gone-{n}", "ERRORED", 31, resource_type="spaces") for n in range(10, 17)}
        assert upkeep.prune_jobs(30) == len(pruned)
        assert {j.id for j in Job.select(Job.id)} == kept
        assert upkeep.prune_jobs(30) == 0
        assert upkeep.prune_jobs(0) == 0        # 0: kept for ever
        assert upkeep.prune_jobs(1) == 1        # the 2-day-old delete of gone-2


def test_a_worker_prunes_old_jobs_when_it_starts(tmp_path):
    """Real jobs, made old: a worker prunes them at its start, keeping each item's latest."""
    srv = Server(tmp_path, worker=False).start()
    try:
        session = srv.session()
        profile, exposer = _refs(session, srv.url)
        hrefs = {}
        for name in ("kept", "deleted"):
            answer = session.post(srv.url + "/spaces/", headers=CJ, json=cj_body(
                name=name, relativepath=f"p/{name}", exposers=exposer, profile=profile, size=1 << 30))
            hrefs[name] = answer.json()["collection"]["items"][0]["href"]
        with srv.standalone_worker():
            assert wait_status(session, srv.url + hrefs["kept"]) == "ACTIVE"
            assert wait_status(session, srv.url + hrefs["deleted"]) == "ACTIVE"
            resize = session.patch(srv.url + hrefs["kept"], json={"size": 2 << 30})
            assert session.delete(srv.url + hrefs["deleted"]).status_code == 202
            assert wait_status(session, srv.url + hrefs["kept"]) == "ACTIVE"
            assert wait_status(session, srv.url + hrefs["deleted"]) is None
        assert len(session.get(srv.url + "/jobs/").json()["collection"]["items"]) == 4
        with sqlite3.connect(tmp_path / "var" / "pixstor.db") as connection:    # 40 days pass
            connection.execute("UPDATE job SET created = datetime('now', '-41 days'), finished = datetime('now', "
                               "'-41 days') WHERE action = 'create'")
            connection.execute("UPDATE job SET created = datetime('now', '-40 days'), finished = datetime('now', "
                               "'-40 days') WHERE action != 'create'")
        with srv.standalone_worker() as worker:
            wait_for(lambda: "pruned 3 job(s)" in worker.log_path.read_text(), timeout=20,
                     what="the worker to prune")
        jobs = session.get(srv.url + "/jobs/").json()
        assert [data_of(jobs, i)["id"] for i in range(len(jobs["collection"]["items"]))] == [
            resize.links["job"]["url"].rsplit("/", 1)[1]]
    finally:
        srv.stop()

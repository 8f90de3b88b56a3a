"""One fenced run per item, with real worker processes: a worker with a skewed clock, a
worker paused past the liveness limit and resumed, and a space's jobs against its snapshots'.

The workers beat every second and a job silent for 3 s (by the database's clock) is taken for
dead. Jobs are made slow with many files (a copy is real work), and each test checks that what
it meant to catch was really happening (a job still running when the next step came) before it
draws a conclusion."""
import datetime
import glob
import os
import signal
from pathlib import Path

import psycopg2
import pytest
import redis

from tests.harness import CJ, Server, cj_body, data_of, redis_queue, require, wait_for, wait_status

FAST = {"PIXSTOR_QUEUE_HEARTBEAT": "1", "PIXSTOR_QUEUE_STALE_AFTER": "3"}
FILES = 50000       # a copy of this many files takes seconds, under load too (20,000 once ended before a sweep)
# the library itself, preloaded into the worker (the `faketime` command would stand between
# the test and the worker: a signal to it does not reach the worker)
LIBFAKETIME = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
                               + glob.glob("/usr/lib/faketime/libfaketime.so.1"))), None)
SHIM = str(Path(__file__).parent / "faketime")     # sitecustomize.py: time.sleep under faketime


def refs_of(srv, session):
    return {
        "profile": session.get(srv.url + "/profiles/", params={"where": '{"name": "mmfs1-sas1"}'}).json()
        ["collection"]["items"][0]["href"],
        "exposer": session.get(srv.url + "/exposers/", params={"where": '{"type": "gpfsnative"}'}).json()
        ["collection"]["items"][0]["href"],
    }


def post(session, srv, collection, **values):
    return session.post(srv.url + f"/{collection}/", json=cj_body(**values), headers=CJ)


def job_of(answer):
    return answer.links["job"]["url"].rsplit("/", 1)[1]


def error_of(answer):
    return answer.json()["collection"]["error"]


def test_a_space_and_its_snapshots_have_one_job_at_a_time(tmp_path):
    """Without a worker the jobs stay queued: a space's DELETE and PATCH wait for its snapshot's
    job (409 naming it), a snapshot waits for its space's job."""
    srv = Server(tmp_path, worker=False).start()
    try:
        session = srv.session()
        refs = refs_of(srv, session)
        space = post(session, srv, "spaces", name="s", relativepath="p/s", exposers=refs["exposer"],
                     profile=refs["profile"], size=1 << 20)
        href = space.json()["collection"]["items"][0]["href"]
        with srv.standalone_worker():
            assert wait_status(session, srv.url + href) == "ACTIVE"
        snap = post(session, srv, "snapshots", name="n", type="gpfsspacesnapshot", space=href)
        assert snap.status_code == 202, snap.text
        for answer in (session.delete(srv.url + href, params={"force": "true"}),
                       session.patch(srv.url + href, json={"size": 1 << 21})):
            assert answer.status_code == 409
            assert f"/jobs/{job_of(snap)}" in error_of(answer)["message"]
        assert data_of(session.get(srv.url + href).json())["status"] == "ACTIVE"
        with srv.standalone_worker():
            assert wait_status(session, snap.headers["Location"]) == "ACTIVE"
        resize = session.patch(srv.url + href, json={"size": 1 << 21})
        assert resize.status_code == 202
        other = post(session, srv, "snapshots", name="m", type="gpfsspacesnapshot", space=href)
        assert other.status_code == 409
        assert f"/spaces/{href.rsplit('/', 1)[1]} is PENDING: wait for its job /jobs/{job_of(resize)}" in \
            error_of(other)["message"]
        with srv.standalone_worker():
            assert wait_status(session, srv.url + href) == "ACTIVE"
        assert session.delete(srv.url + href, params={"force": "true"}).status_code == 202
    finally:
        srv.stop()


# Real workers, PostgreSQL + Redis -----------------------------------------------------------

@pytest.fixture
def cluster(tmp_path, postgres, redis_url):
    """An API process without a worker on PostgreSQL + Redis; the tests start their own workers."""
    srv = Server(tmp_path, database=postgres, queue=redis_url, worker=False, env=FAST).start()
    srv.database_url, srv.queue_url = postgres, redis_url
    yield srv
    srv.stop()


def sql(srv, statement, *args):
    with psycopg2.connect(srv.database_url) as connection, connection.cursor() as cursor:
        cursor.execute(statement, args)
        return cursor.fetchall() if cursor.description else None


def many_files(root, count):
    root = Path(root)
    for n in range(count):
        folder = root / f"d{n // 500}"
        if n % 500 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{n}").write_bytes(b"frame %d\n" % n)
    return root


def files_in(path, skip=()):
    """Entries that are not folders, below `path` (links not followed), leaving out folders named in `skip`."""
    found = 0
    for folder, folders, files in os.walk(path):
        folders[:] = [f for f in folders if f not in skip]
        found += len(files)
    return found


def job(session, srv, job_id):
    return data_of(session.get(srv.url + f"/jobs/{job_id}").json())


def job_href(answer):
    return answer.links["job"]["url"].rsplit("/", 1)[1]


def refs_and_session(srv):
    session = srv.session()
    return session, refs_of(srv, session)


def running(session, srv, job_id, attempt):
    data = job(session, srv, job_id)
    assert data["status"] != "ERRORED", data
    return data["status"] == "INPROGRESS" and data["attempt"] == attempt


def test_a_worker_whose_clock_runs_ahead_leaves_a_live_job_alone(cluster, request):
    require(LIBFAKETIME, "libfaketime is not installed (make test installs faketime with apt as root)")
    srv = cluster
    session, refs = refs_and_session(srv)
    # a job whose worker died: INPROGRESS, its queue message gone, silent since 10 s ago
    canary = post(session, srv, "templates", name="canary", type="filesystemtemplate",
                  template_location=str(many_files(srv.mountpoint / "models" / "canary", 3)))
    for key in redis.Redis.from_url(srv.queue_url).scan_iter("huey.*"):
        redis.Redis.from_url(srv.queue_url).delete(key)
    # The skewed worker only sweeps here: it takes jobs from a queue of its own, so that the
    # live job below is run by the worker with the right clock (a requeued job would still
    # run twice: the skewed worker would take it from its own queue).
    own_queue, release = redis_queue()
    require(own_queue, release)
    request.addfinalizer(release)
    skewed_env = {"PIXSTOR_QUEUE_URL": own_queue, "LD_PRELOAD": LIBFAKETIME, "FAKETIME": "+90s",
                  "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                  "PYTHONPATH": os.pathsep.join(p for p in (SHIM, os.environ.get("PYTHONPATH")) if p)}
    with srv.standalone_worker("skewed", env=skewed_env) as skewed, \
            srv.standalone_worker("trusting", env={"PIXSTOR_QUEUE_STALE_AFTER": "3600"}):
        started = wait_for(lambda: [line for line in skewed.log_path.read_text().splitlines()
                                    if "consumer started" in line], timeout=20, what="the skewed worker")[0]
        its_clock = datetime.datetime.strptime(started[:19], "%Y-%m-%d %H:%M:%S")
        assert (its_clock - datetime.datetime.now()).total_seconds() > 80, started
        model = many_files(srv.mountpoint / "models" / "big", FILES)
        live = post(session, srv, "templates", name="big", type="filesystemtemplate", template_location=str(model))
        live_job = job_href(live)
        wait_for(lambda: running(session, srv, live_job, 1), timeout=20, what="the live job to start")
        canary_job = job_href(canary)
        sql(srv, "UPDATE job SET status = 'INPROGRESS', attempt = 1, heartbeat = "
                 "date_trunc('second', CURRENT_TIMESTAMP AT TIME ZONE 'UTC') - INTERVAL '10 seconds' WHERE id = %s",
            canary_job)
        # the skewed worker sweeps: it takes the dead job, and leaves the live one
        wait_for(lambda: not running(session, srv, canary_job, 1), timeout=10, what="the dead job to be taken")
        now = job(session, srv, live_job)
        assert now["status"] != "COMPLETED", "inconclusive: the live job ended before a sweep; raise FILES"
        assert (now["status"], now["attempt"]) == ("INPROGRESS", 1), "the skewed worker took a live job"
        assert wait_status(session, live.headers["Location"], timeout=120) == "ACTIVE"
        assert wait_status(session, canary.headers["Location"], timeout=30) == "ACTIVE"
    done = job(session, srv, live_job)
    assert (done["status"], done["attempt"]) == ("COMPLETED", 1)
    log = session.get(srv.url + f"/jobs/{live_job}/stderr").text
    assert log.count(f"job {live_job}: create") == 1 and "(run 1)" in log
    assert live_job not in skewed.log_path.read_text()
    assert (job(session, srv, canary_job)["status"], job(session, srv, canary_job)["attempt"]) == ("COMPLETED", 2)
    assert files_in(srv.folder / "var" / "templates" / data_of(live.json())["id"]) == FILES


def test_a_paused_worker_resumed_after_a_newer_run_writes_nothing(cluster):
    srv = cluster
    session, refs = refs_and_session(srv)
    with srv.standalone_worker("paused") as paused:
        model = many_files(srv.mountpoint / "models" / "big", FILES)
        template = post(session, srv, "templates", name="big", type="filesystemtemplate",
                        template_location=str(model))
        assert wait_status(session, template.headers["Location"], timeout=120) == "ACTIVE"
        space = post(session, srv, "spaces", name="s", relativepath="projects/s", exposers=refs["exposer"],
                     profile=refs["profile"], templates=template.json()["collection"]["items"][0]["href"],
                     size=1 << 30)
        space_job, folder = job_href(space), srv.mountpoint / "projects" / "s"
        def copying():
            data = job(session, srv, space_job)
            assert data["status"] in ("PENDING", "INPROGRESS") and data["attempt"] <= 1, \
                f"inconclusive: the job ended before the pause (raise FILES): {data}"
            return data["status"] == "INPROGRESS" and files_in(folder) > 0
        wait_for(copying, timeout=30, what="the copy into the space to start")
        paused.send_signal(signal.SIGSTOP)
        assert running(session, srv, space_job, 1), "inconclusive: the job ended before the pause; raise FILES"
        with srv.standalone_worker("next"):
            # silent for 3 s: the next worker's sweeper queues it again, and a second run completes it
            wait_for(lambda: job(session, srv, space_job)["status"] == "COMPLETED", timeout=120,
                     what="the second run")
            done = job(session, srv, space_job)
            logs = [session.get(srv.url + f"/jobs/{space_job}/{s}").text for s in ("stdout", "stderr")]
            assert done["attempt"] == 2 and "(run 2)" in logs[1] and "(run 1)" not in logs[1]
            paused.send_signal(signal.SIGCONT)
            wait_for(lambda: f"job {space_job}: run 1 was superseded" in paused.log_path.read_text(), timeout=60,
                     what="the resumed worker to find its run superseded")
        assert job(session, srv, space_job) == done
        assert [session.get(srv.url + f"/jobs/{space_job}/{s}").text for s in ("stdout", "stderr")] == logs
    assert "its writes were refused" in paused.log_path.read_text()
    assert data_of(session.get(space.headers["Location"]).json())["status"] == "ACTIVE"
    assert files_in(folder) == FILES


def test_a_forced_delete_waits_for_the_snapshot_of_its_space(cluster):
    srv = cluster
    session, refs = refs_and_session(srv)
    with srv.standalone_worker("one") as one, srv.standalone_worker("two") as two:
        workers = (one, two)
        space = post(session, srv, "spaces", name="s", relativepath="projects/s", exposers=refs["exposer"],
                     profile=refs["profile"], size=1 << 30)
        href = space.json()["collection"]["items"][0]["href"]
        assert wait_status(session, srv.url + href) == "ACTIVE"
        folder = srv.mountpoint / "projects" / "s"
        many_files(folder / "shots", 5000)

        def pause(signum):
            for worker in workers:
                worker.send_signal(signum)

        def delete_is_refused(snapshot_job):
            answer = session.delete(srv.url + href, params={"force": "true"})
            assert answer.status_code == 409, answer.text
            assert f"/jobs/{snapshot_job}" in error_of(answer)["message"]

        pause(signal.SIGSTOP)           # queued: no worker can take it
        snapshot = post(session, srv, "snapshots", name="n", type="gpfsspacesnapshot", space=href)
        assert snapshot.status_code == 202, snapshot.text
        snapshot_job = job_href(snapshot)
        delete_is_refused(snapshot_job)
        pause(signal.SIGCONT)
        wait_for(lambda: running(session, srv, snapshot_job, 1), timeout=20, what="the snapshot to run")
        pause(signal.SIGSTOP)           # running: held where it is while the DELETE comes
        assert running(session, srv, snapshot_job, 1), "inconclusive: the snapshot ended first; add files"
        delete_is_refused(snapshot_job)
        pause(signal.SIGCONT)
        assert wait_status(session, snapshot.headers["Location"], timeout=60) == "ACTIVE"
        taken = data_of(session.get(srv.url + snapshot.json()["collection"]["items"][0]["href"]).json())
        assert job(session, srv, snapshot_job)["attempt"] == 1
        assert files_in(taken["path"]) == files_in(folder, skip=(".snapshots",)) == 5000
        answer = session.delete(srv.url + href, params={"force": "true"})
        assert answer.status_code == 202, answer.text
        assert wait_status(session, srv.url + href, timeout=60) is None
    assert not folder.exists()

"""Nothing stuck: a job whose queue message is lost (the queue file removed, Redis flushed, the
process that made the job dead before it queued it, a worker dead after it took the message)
is queued again by a worker's sweeper, and runs once."""
import datetime
import os

import psycopg2
import redis

from service.models import Job, Template, database, now
from service.tasks import runner
from tests.harness import CJ, Server, cj_body, data_of, make_model, wait_status
from tests.test_runner import job_db  # noqa: F401  (a fixture)

QUICK = {"PIXSTOR_QUEUE_REQUEUE_AFTER": "2", "PIXSTOR_QUEUE_HEARTBEAT": "1", "PIXSTOR_QUEUE_STALE_AFTER": "3"}


def _waiting(template, seconds, **columns):
    """A PENDING job of `template`, last queued `seconds` ago."""
    return Job.create(action="create", resource_type="templates", resource_id=template.id,
                      queued=now() - datetime.timedelta(seconds=seconds), **columns)


def test_a_job_without_a_queue_message_is_queued_again_once(job_db):  # noqa: F811
    handlers, template, first = job_db
    with database.connection_context():
        Job.delete().execute()
        Template.update(status="NEW").execute()     # as a crash between the insert and the queueing leaves it
        lost = _waiting(template, runner.REQUEUE_AFTER + 5, queued_by="admin")
        in_queue = _waiting(template, runner.REQUEUE_AFTER + 5)     # a backlog: its message is there
        recent = _waiting(template, 10)                              # still in its grace period
        old_row = Job.create(action="create", resource_type="templates", resource_id=template.id,
                             created=now() - datetime.timedelta(days=1))     # made before `queued` existed
    submitted, asked = [], []

    def queued():
        asked.append(True)
        return {in_queue.id}
    # oldest first
    assert runner.requeue_lost(lambda job: submitted.append(job.id), queued) == [old_row.id, lost.id]
    assert submitted == [old_row.id, lost.id] and len(asked) == 1
    with database.connection_context():
        again = Job.get_by_id(lost.id)
        assert (again.status, again.queued_by, again.attempt) == ("PENDING", runner.SWEEPER, 0)
        assert Template.get_by_id(template.id).status == "PENDING"
        assert Job.get_by_id(recent.id).queued_by is None and Job.get_by_id(in_queue.id).queued_by is None
    # queued again just now: not again before another grace period (nor by a second worker's sweeper)
    assert runner.requeue_lost(lambda job: submitted.append(job.id), queued) == []
    assert submitted == [old_row.id, lost.id]


def test_the_queue_is_not_read_while_no_job_is_overdue(job_db):  # noqa: F811
    handlers, template, job = job_db
    with database.connection_context():
        Job.update(queued=now()).execute()

    def queued():
        raise AssertionError("the queue was read")
    assert runner.requeue_lost(lambda job: None, queued) == []


def test_a_lost_queue_file_is_made_good_embedded(tmp_path):
    """Jobs queued while only the API ran; the queue file is lost before the service starts
    again with its worker: the worker's sweeper queues the waiting jobs again."""
    srv = Server(tmp_path, worker=False, env=QUICK).start()
    try:
        session = srv.session()
        answer = session.post(srv.url + "/templates/", headers=CJ, json=cj_body(
            name="t", type="filesystemtemplate", template_location=str(make_model(srv.mountpoint / "m"))))
        assert answer.status_code == 202 and data_of(answer.json())["status"] == "PENDING"
        srv.stop()
        queue = tmp_path / "var" / "queue.db"
        for path in (queue, queue.with_name("queue.db-wal"), queue.with_name("queue.db-shm")):
            if path.exists():
                os.remove(path)
        srv.worker = True
        srv.serve()
        assert wait_status(session, answer.headers["Location"], timeout=30) == "ACTIVE"
        job = data_of(session.get(answer.links["job"]["url"]).json())
        assert (job["status"], job["attempt"], job["owner"], job["queued_by"]) == (
            "COMPLETED", 1, "admin", runner.SWEEPER)
        assert "without a queue message (queued by admin): queued again" in srv.log()
    finally:
        srv.stop()


def test_a_flushed_redis_is_made_good_standalone_worker(tmp_path, postgres, redis_url):
    """PostgreSQL + Redis, a standalone worker: one job's message is flushed away with Redis's
    data, another's was taken by a worker that died before it started the job. Both items end
    ACTIVE, each job run once."""
    srv = Server(tmp_path, database=postgres, queue=redis_url, worker=False, env=QUICK).start()
    try:
        session = srv.session()
        model = make_model(srv.mountpoint / "m")
        answers = [session.post(srv.url + "/templates/", headers=CJ, json=cj_body(
            name=name, type="filesystemtemplate", template_location=str(model))) for name in ("a", "b")]
        assert [a.status_code for a in answers] == [202, 202]
        client = redis.Redis.from_url(redis_url)
        queue_key = next(key for key in client.scan_iter("huey.*") if client.type(key) == b"list")
        assert client.llen(queue_key) == 2
        assert client.rpop(queue_key)       # what a worker that took a message and died leaves
        owner = client.get("pixstor-tests:owner")
        client.flushdb()                    # and Redis loses the rest
        client.set("pixstor-tests:owner", owner, ex=3600)
        with srv.standalone_worker() as worker:
            for answer in answers:
                assert wait_status(session, answer.headers["Location"], timeout=30) == "ACTIVE"
            log = worker.log_path.read_text()
        assert log.count("without a queue message") == 2, log
        with psycopg2.connect(postgres) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT status, attempt, queued_by FROM job ORDER BY created")
            assert cursor.fetchall() == [("COMPLETED", 1, runner.SWEEPER)] * 2
    finally:
        srv.stop()

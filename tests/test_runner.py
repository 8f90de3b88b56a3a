"""The job runner in-process on a real SQLite database: status transitions and
where a job's prints and logging end up."""
import logging
import sys

import pytest

from service import db
from service.models import Job, Template, database
from service.tasks import runner


@pytest.fixture
def job_db(tmp_path, monkeypatch):
    db.open_database(f"sqlite:///{tmp_path}/jobs.db")
    db.create_tables()
    handlers = dict(runner.HANDLERS)
    monkeypatch.setattr(runner, "HANDLERS", handlers)
    with database.connection_context():
        template = Template.create(name="t", type="filesystemtemplate", template_location="/x", status="PENDING")
        job = Job.create(action="create", resource_type="templates", resource_id=template.id)
    yield handlers, template, job
    database.close()


def test_prints_go_to_stdout_and_logging_to_stderr(job_db):
    handlers, template, job = job_db

    def body(item, params):
        print("copied 3 folders")
        logging.getLogger("service.tasks.templates").debug("walking %s", item.template_location)

    handlers[("templates", "create")] = body
    runner.install_log_capture()    # here: pytest swaps sys.stdout per test phase
    runner.execute(job.id)
    with database.connection_context():
        done = Job.get_by_id(job.id)
        assert done.status == "COMPLETED" and done.started and done.finished >= done.started
        assert done.stdout == "copied 3 folders\n"
        assert "DEBUG:service.tasks.templates:walking /x" in done.stderr
        assert Template.get_by_id(template.id).status == "ACTIVE"
    # outside a job, print goes where it always went
    assert isinstance(sys.stdout, runner._JobStdout)


def test_a_failing_job_errors_its_item_with_one_line(job_db):
    handlers, template, job = job_db

    def body(item, params):
        raise OSError("mmcrfileset: exit 1\nmore detail on the next line")

    handlers[("templates", "create")] = body
    runner.execute(job.id)
    with database.connection_context():
        failed = Job.get_by_id(job.id)
        assert failed.status == "ERRORED" and failed.message == "mmcrfileset: exit 1"
        assert "Traceback" in failed.stderr and "more detail on the next line" in failed.stderr
        item = Template.get_by_id(template.id)
        assert item.status == "ERRORED" and item.status_message == "mmcrfileset: exit 1"


def test_a_completed_job_never_runs_again(job_db):
    handlers, template, job = job_db
    runs = []
    handlers[("templates", "create")] = lambda item, params: runs.append(item.id)
    runner.execute(job.id)
    runner.execute(job.id)
    assert runs == [template.id]


def test_a_delete_of_what_is_gone_completes(job_db):
    handlers, template, job = job_db
    with database.connection_context():
        gone = Job.create(action="delete", resource_type="templates", resource_id="no-such-id")
    runner.execute(gone.id)
    with database.connection_context():
        assert Job.get_by_id(gone.id).status == "COMPLETED"


def test_running_jobs_beat_and_stale_ones_are_queued_again(job_db, monkeypatch):
    import datetime
    import threading

    from service.models import now
    from tests.harness import wait_for
    handlers, template, job = job_db
    monkeypatch.setattr(runner, "HEARTBEAT", 0.05)
    release = threading.Event()

    def body(item, params):
        release.wait(10)

    handlers[("templates", "create")] = body
    worker = threading.Thread(target=runner.execute, args=(job.id,))
    worker.start()
    try:
        def beats():
            with database.connection_context():
                row = Job.get_by_id(job.id)
                return row.status == "INPROGRESS" and row.heartbeat and row.heartbeat > row.started
        # the heartbeat column has whole seconds: wait for one beat in a later second
        wait_for(beats, timeout=5, what="a heartbeat after the start")
        # a live job is left alone
        assert runner.requeue_stale(lambda j: None) == []
    finally:
        release.set()
        worker.join()
    with database.connection_context():
        lost = Job.create(action="create", resource_type="templates", resource_id=template.id, status="INPROGRESS",
                          started=now(), heartbeat=now() - datetime.timedelta(seconds=runner.STALE + 5))
    queued = []
    assert runner.requeue_stale(queued.append) == [lost.id]
    assert [j.id for j in queued] == [lost.id]
    assert runner.requeue_stale(queued.append) == []     # taken once only
    with database.connection_context():
        assert Job.get_by_id(lost.id).status == "PENDING"

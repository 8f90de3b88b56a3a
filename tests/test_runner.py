"""The job runner in-process on a real SQLite database: status transitions and
where a job's prints and logging end up."""
import datetime
import logging
import sys
import threading

import pytest

from service import db
from service.models import Job, Template, database
from service.tasks import runner
from tests.harness import wait_for


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


@pytest.fixture
def fast_beats(monkeypatch):
    monkeypatch.setattr(runner, "HEARTBEAT", 0.05)


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


def test_running_jobs_beat_and_stale_ones_are_queued_again(job_db, fast_beats):
    from service.models import now
    handlers, template, job = job_db
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
        # the heartbeat is the database's time (UTC), whatever this process's clock says
        with database.connection_context():
            database_now = datetime.datetime.fromisoformat(
                database.execute_sql("SELECT CURRENT_TIMESTAMP").fetchone()[0])
            assert abs((Job.get_by_id(job.id).heartbeat - database_now).total_seconds()) <= 2
        # a live job is left alone: the sweeper compares with the database's time too
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


# One fenced run per job -------------------------------------------------------------

def _job(job_id):
    with database.connection_context():
        return Job.get_by_id(job_id)


def _run_taken_over(handlers, job, before, after, **newer):
    """Run `job` with a body that calls before(item), lets a newer run take the job (with the
    job columns `newer`), then calls after(item); returns the Superseded messages raised."""
    raised = []

    def body(item, params):
        before(item)
        Job.update(attempt=Job.attempt + 1, **newer).where(Job.id == job.id).execute()
        try:
            after(item)
        except runner.Superseded as exc:
            raised.append(str(exc))
            raise
    handlers[("templates", "create")] = body
    runner.execute(job.id)
    return raised


def test_a_run_takes_its_job_with_the_next_attempt_and_a_live_one_is_left_alone(job_db):
    handlers, template, job = job_db
    attempts = []

    def body(item, params):
        attempts.append(_job(job.id).attempt)
        runner.execute(job.id)      # the same job delivered again while this run holds it: nothing
    handlers[("templates", "create")] = body
    runner.execute(job.id)
    assert attempts == [1]
    done = _job(job.id)
    assert (done.status, done.attempt) == ("COMPLETED", 1)
    assert done.stderr.count(f"job {job.id}: create") == 1 and "(run 1)" in done.stderr


def test_a_superseded_run_writes_nothing(job_db):
    """A newer run takes the job while this one works: this one's status, item and logs are refused."""
    handlers, template, job = job_db
    # between the checks, what the sweeper and a second worker do while this run is taken for dead
    seen = _run_taken_over(handlers, job, lambda item: runner.check_fence(), lambda item: runner.check_fence(),
                           status="INPROGRESS", message="run 2 owns me")
    assert seen == [f"job {job.id}: run 1 was superseded by a newer run"]
    after = _job(job.id)
    assert (after.status, after.attempt, after.message, after.stdout, after.stderr, after.finished) == (
        "INPROGRESS", 2, "run 2 owns me", "", "", None)
    with database.connection_context():
        assert Template.get_by_id(template.id).status == "INPROGRESS"


def test_a_run_that_finishes_after_losing_its_job_writes_nothing(job_db):
    """Even without a check in the body, the final writes are conditioned on the run's attempt."""
    handlers, template, job = job_db

    def body(item, params):
        Job.update(status="COMPLETED", attempt=Job.attempt + 1, message="done by run 2").where(
            Job.id == job.id).execute()
        raise OSError("disk full")      # this run's failure must not overwrite run 2's success
    handlers[("templates", "create")] = body
    runner.execute(job.id)
    after = _job(job.id)
    assert (after.status, after.attempt, after.message) == ("COMPLETED", 2, "done by run 2")
    with database.connection_context():
        assert Template.get_by_id(template.id).status == "INPROGRESS"


def test_the_heartbeat_finds_the_job_taken_and_fenced_stops_the_run(job_db, fast_beats):
    handlers, template, job = job_db

    def noticed(item):
        wait_for(lambda: runner._current.run.lost.is_set(), timeout=5, what="the heartbeat to notice")
        runner.fenced()
    # before: the cheap check, nothing known yet
    assert len(_run_taken_over(handlers, job, lambda item: runner.fenced(), noticed)) == 1
    after = _job(job.id)
    assert (after.status, after.attempt, after.finished) == ("INPROGRESS", 2, None)
    assert runner._current.run is None      # nothing left behind for the thread's next job


def test_rerun_refuses_a_live_job_and_takes_a_failed_one(job_db):
    handlers, template, job = job_db
    with database.connection_context():
        Job.update(status="INPROGRESS", attempt=1, heartbeat=runner.clock()).where(Job.id == job.id).execute()
        assert "is running" in runner.rerun(job.id)
        Job.update(status="ERRORED").where(Job.id == job.id).execute()
        assert runner.rerun(job.id) is None
        assert (Job.get_by_id(job.id).status, Template.get_by_id(template.id).status) == ("PENDING", "PENDING")
        Job.update(status="COMPLETED").where(Job.id == job.id).execute()
        assert "has completed" in runner.rerun(job.id)


# The database: transactions, clock, missing columns ------------------------------------

def test_sqlite_transactions_begin_immediate(job_db):
    """The outermost atomic() takes SQLite's write lock at BEGIN: writers run one at a time,
    so a check and the insert after it, in one transaction, cannot interleave with another's."""
    statements = []
    with database.connection_context():
        database.connection().set_trace_callback(statements.append)
        with database.atomic():
            with database.atomic():
                Job.select().count()
        database.connection().set_trace_callback(None)
    assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT"


OLD_JOB_TABLE = ('CREATE TABLE job (id VARCHAR(36) PRIMARY KEY, status VARCHAR(255) NOT NULL, action VARCHAR(255) '
                 'NOT NULL, resource_type VARCHAR(255) NOT NULL, resource_id VARCHAR(255) NOT NULL, created {ts} '
                 'NOT NULL, started {ts}, finished {ts}, heartbeat {ts}, message TEXT, params TEXT, stdout TEXT '
                 'NOT NULL, stderr TEXT NOT NULL)')


def _old_database_gains_attempt(ts):
    database.execute_sql(OLD_JOB_TABLE.format(ts=ts))
    database.execute_sql("INSERT INTO job VALUES ('j1', 'COMPLETED', 'create', 'spaces', 's1', "
                         "'2026-01-01 00:00:00', NULL, NULL, NULL, NULL, NULL, '', '')")
    db.create_tables()
    db.create_tables()      # again: nothing more to add
    with database.connection_context():
        assert "attempt" in [c.name for c in database.get_columns("job")]
        assert Job.get_by_id("j1").attempt == 0
        # an older process that does not know the column still inserts jobs
        database.execute_sql("INSERT INTO job (id, status, action, resource_type, resource_id, created, stdout, "
                             "stderr) VALUES ('j2', 'PENDING', 'create', 'spaces', 's2', '2026-01-01 00:00:00', "
                             "'', '')")
        assert Job.get_by_id("j2").attempt == 0


def test_a_database_without_job_attempt_gains_it_sqlite(tmp_path):
    db.open_database(f"sqlite:///{tmp_path}/old.db")
    try:
        _old_database_gains_attempt("DATETIME")
    finally:
        database.close()


def test_a_database_without_job_attempt_gains_it_postgresql():
    from tests.harness import postgres_database, require
    url, drop = postgres_database()
    require(url, drop)
    try:
        db.open_database(url)
        _old_database_gains_attempt("TIMESTAMP")
        with database.connection_context():
            # the clock is UTC, to the millisecond, whatever the session's time zone
            database.execute_sql("SET TIME ZONE 'America/New_York'")
            utc = database.execute_sql("SELECT CURRENT_TIMESTAMP AT TIME ZONE 'UTC'").fetchone()[0]
            value = Job.select(db.clock(-60).alias("c")).where(Job.id == "j1").scalar()
            assert value.microsecond % 1000 == 0 and 59 <= (utc - value).total_seconds() <= 62
    finally:
        database.close()
        drop()


def test_a_narrower_relativepath_column_is_widened_postgresql():
    from tests.harness import postgres_database, require
    url, drop = postgres_database()
    require(url, drop)
    try:
        db.open_database(url)
        db.create_tables()
        with database.connection_context():
            # as a database made before schema versions had it
            database.execute_sql('ALTER TABLE "space" ALTER COLUMN "relativepath" TYPE VARCHAR(1024)')
            database.execute_sql('DROP TABLE "schema_migration"')
        db.create_tables()
        with database.connection_context():
            width = database.execute_sql(
                "SELECT character_maximum_length FROM information_schema.columns WHERE table_name = 'space' "
                "AND column_name = 'relativepath' AND table_schema = current_schema()").fetchone()[0]
        assert width == 4096
    finally:
        database.close()
        drop()


def test_a_body_writes_only_while_its_run_holds_the_job(job_db):
    handlers, template, job = job_db

    def write(path):
        def written(item):
            with runner.fenced_write():
                Template.update(store_path=path).where(Template.id == item.id).execute()
        return written
    assert len(_run_taken_over(handlers, job, write("/store/first"), write("/store/second"))) == 1
    with database.connection_context():
        assert Template.get_by_id(template.id).store_path == "/store/first"

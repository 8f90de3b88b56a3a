"""Running one job: status transitions of the job and its item, and the job's logs.

Python logging during a job goes to the job's stderr log, print() to its
stdout log; both are kept in the database so any API process can serve them.
"""
import contextlib
import datetime
import io
import json
import logging
import sys
import threading
import time

from service.models import BY_COLLECTION, Job, database, now

log = logging.getLogger("service.job")
HEARTBEAT = 10              # seconds between a running job's heartbeats
STALE = 6 * HEARTBEAT       # silence after which a running job's worker is taken for dead
HANDLERS = {}
_current = threading.local()


def handles(collection, action):
    """Register `fn(item, params)` as the body of (collection, action) jobs."""
    def register(fn):
        HANDLERS[(collection, action)] = fn
        return fn
    return register


class _JobLogHandler(logging.Handler):
    def emit(self, record):
        buffers = getattr(_current, "buffers", None)
        if buffers is not None:
            buffers[1].write(self.format(record) + "\n")


class _JobStdout(io.TextIOBase):
    """sys.stdout that sends a job thread's prints to that job's log."""

    def __init__(self, real):
        self.real = real

    def write(self, text):
        buffers = getattr(_current, "buffers", None)
        return (buffers[0] if buffers is not None else self.real).write(text)

    def flush(self):
        self.real.flush()


def install_log_capture():
    """Route job threads' logging and prints into their jobs' logs (once per process)."""
    root = logging.getLogger()
    if not any(isinstance(h, _JobLogHandler) for h in root.handlers):
        handler = _JobLogHandler(logging.DEBUG)
        handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        root.addHandler(handler)
    logging.getLogger("service").setLevel(logging.DEBUG)
    if not isinstance(sys.stdout, _JobStdout):
        sys.stdout = _JobStdout(sys.stdout)


@contextlib.contextmanager
def _captured():
    _current.buffers = (io.StringIO(), io.StringIO())
    try:
        yield _current.buffers
    finally:
        _current.buffers = None


@contextlib.contextmanager
def _heartbeat(job_id):
    """Tell the database, every HEARTBEAT seconds, that this job's worker is alive."""
    stop = threading.Event()

    def beat():
        while not stop.wait(HEARTBEAT):
            try:
                with database.connection_context():
                    Job.update(heartbeat=now()).where(Job.id == job_id).execute()
            except Exception:   # one missed beat is fine; a dead beat thread would get the job run twice
                log.warning("job %s: heartbeat not recorded", job_id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def requeue_stale(submit):
    """Queue again the jobs a dead worker left INPROGRESS (silent for STALE seconds).

    The conditional UPDATE lets only one of several sweeping workers take each job;
    job bodies are retry-safe, so running one again finishes what was cut off."""
    cutoff = now() - datetime.timedelta(seconds=STALE)
    requeued = []
    with database.connection_context():
        stale = Job.select().where(Job.status == "INPROGRESS",
                                   (Job.heartbeat < cutoff) | Job.heartbeat.is_null())
        for job in stale:
            taken = Job.update(status="PENDING").where(
                Job.id == job.id, Job.status == "INPROGRESS", Job.heartbeat == job.heartbeat).execute()
            if taken:
                log.warning("job %s lost its worker (last heartbeat %s): queued again", job.id, job.heartbeat)
                submit(job)
                requeued.append(job.id)
    return requeued


def start_sweeper(submit, interval=STALE):
    """A daemon thread that runs requeue_stale now and every `interval` seconds."""
    def sweep():
        while True:
            try:
                requeue_stale(submit)
            except Exception:   # a database hiccup must not end the sweeping
                log.exception("sweeping for stale jobs failed")
            time.sleep(interval)
    threading.Thread(target=sweep, name="stale-job-sweeper", daemon=True).start()


class Superseded(Exception):
    """This run no longer holds its job (a newer run took over): it must write nothing more."""
    superseded = True


def check_fence():
    """Called by job bodies between storage steps: raises Superseded when this thread's run
    has lost its job. Outside a run (task bodies called directly) there is nothing to check."""
    fence = getattr(_current, "fence", None)
    if fence is not None:
        fence()


def one_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]


def execute(job_id):
    """The Huey task: run job `job_id` once; a COMPLETED job is never run again."""
    with database.connection_context():
        job = Job.get_or_none(Job.id == job_id)
        if job is None or job.status == "COMPLETED":
            return
        model = BY_COLLECTION[job.resource_type]
        item = model.get_or_none(model.id == job.resource_id)
        Job.update(status="INPROGRESS", started=now(), heartbeat=now()).where(Job.id == job.id).execute()
        if item is not None:
            model.update(status="INPROGRESS").where(model.id == item.id).execute()
            item.status = "INPROGRESS"
        with _captured() as (stdout, stderr), _heartbeat(job.id):
            try:
                if item is None and job.action == "delete":
                    # deleted by an earlier run of this job (or a concurrent one): done
                    log.info("job %s: /%s/%s is already gone", job.id, job.resource_type, job.resource_id)
                elif item is None:
                    raise LookupError(f"/{job.resource_type}/{job.resource_id} no longer exists")
                else:
                    log.info("job %s: %s /%s/%s", job.id, job.action, job.resource_type, item.id)
                    HANDLERS[(job.resource_type, job.action)](item, json.loads(job.params or "{}"))
                log.info("job %s completed", job.id)
                status, message = "COMPLETED", None
            except Exception as exc:
                log.exception("job %s failed: %s", job.id, one_line(exc))
                status, message = "ERRORED", one_line(exc)
        with database.atomic():
            Job.update(status=status, finished=now(), message=message, stdout=stdout.getvalue(),
                       stderr=stderr.getvalue()).where(Job.id == job.id).execute()
            if status == "ERRORED" and item is not None:
                model.update(status="ERRORED", status_message=message, updated=now()).where(
                    model.id == item.id).execute()
            elif job.action != "delete" and item is not None:
                model.update(status="ACTIVE", status_message=None, updated=now()).where(
                    model.id == item.id).execute()

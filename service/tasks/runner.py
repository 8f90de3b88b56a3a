"""Running one job: status transitions of the job and its item, and the job's logs.

Python logging during a job goes to the job's stderr log, print() to its
stdout log; both are kept in the database so any API process can serve them.

One fenced run per job
----------------------
A run takes its job with one conditional UPDATE (PENDING, or INPROGRESS but silent for
STALE seconds, becomes INPROGRESS with `attempt` one higher) and remembers that attempt
number: its fencing token. Every later write of the run — heartbeats, the item's status,
the job's final status, message and logs — is conditioned on the job still being INPROGRESS
with that attempt, so a run presumed dead (paused, partitioned, on a host whose clock is
wrong) can never write after a newer run took over. Liveness is judged by the database's
clock (service.db.clock), never by a worker's own: heartbeats store it, sweeps compare to it.

Job bodies (service/tasks/*) cooperate between storage steps:

- ``check_fence()`` asks the database whether this thread's run still holds its job and
  raises ``Superseded`` when it does not. Call it before each step that changes storage or
  the database (and before any clean-up after a failure: the newer run owns what is there).
- ``fenced()`` is the cheap variant for tight loops (long file walks): no query, it raises
  ``Superseded`` when the heartbeat thread has already found the job taken by a newer run.
- ``with fenced_write():`` wraps a body's own database writes in a transaction that first
  locks and checks the job's row, so they commit only while the run holds the job.

A run that is superseded ends without writing anything: ``Superseded`` (and any failure
after the job was taken away) is logged on the worker's own stderr only.
"""
import contextlib
import io
import json
import logging
import os
import socket
import sys
import threading
import time

import peewee

from service.db import clock, kept_connection
from service.models import BY_COLLECTION, Job, database
from service.storage.confined import watch

log = logging.getLogger("service.job")
HEARTBEAT = 10      # seconds between a running job's heartbeats ([queue] heartbeat)
STALE = 60          # silence after which a running job's worker is taken for dead ([queue] stale_after)
REQUEUE_AFTER = 300     # seconds a PENDING job waits without a queue message before it is queued again
MAX_LOG = 1 << 20       # bytes kept of each of a job's two logs ([queue] max_log)
SWEEPER = "system:sweeper"      # Job.queued_by of what the sweeper queues again
HANDLERS = {}
WORKER = f"{socket.gethostname()}:{os.getpid()}"     # who runs a job, as its log says
_current = threading.local()


def configure(heartbeat, stale_after, requeue_after=REQUEUE_AFTER, max_log=MAX_LOG):
    global HEARTBEAT, STALE, REQUEUE_AFTER, MAX_LOG
    HEARTBEAT, STALE, REQUEUE_AFTER, MAX_LOG = heartbeat, stale_after, requeue_after, max_log


def handles(collection, action):
    """Register `fn(item, params)` as the body of (collection, action) jobs; what it returns,
    when a string, becomes the message of the completed job."""
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


def install_log_capture(level="DEBUG"):
    """Route job threads' logging (from `level` up: [log] job_level) and prints into their
    jobs' logs (once per process)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _JobLogHandler)), None)
    if handler is None:
        handler = _JobLogHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        root.addHandler(handler)
    handler.setLevel(level.upper())
    logging.getLogger("service").setLevel(logging.DEBUG)
    if not isinstance(sys.stdout, _JobStdout):
        sys.stdout = _JobStdout(sys.stdout)


class CappedLog(io.TextIOBase):
    """One of a job's logs, kept within `limit` bytes however much the job writes: its first
    and last halves, whole lines, with one marker line in place of what was cut."""

    def __init__(self, limit):
        self.half = limit // 2
        self.head, self.tail, self.cut = bytearray(), bytearray(), 0

    def write(self, text):
        data = text.encode("utf-8", "replace")
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        if len(self.tail) > 2 * self.half:      # trimmed now and then, not at every write
            drop = len(self.tail) - self.half
            del self.tail[:drop]
            self.cut += drop
        return len(text)

    def getvalue(self):
        head, tail = bytes(self.head), bytes(self.tail[-self.half:])
        cut = self.cut + len(self.tail) - len(tail)
        if not cut:
            return (head + tail).decode("utf-8", "replace")
        # whole lines (or at least whole characters) on both sides of the marker
        head = (head[:head.rfind(b"\n") + 1] or head).decode("utf-8", "ignore")
        tail = (tail[tail.find(b"\n") + 1:] if b"\n" in tail else tail).decode("utf-8", "ignore")
        cut += len(self.head) + min(len(self.tail), self.half) - len(head.encode()) - len(tail.encode())
        return (f"{head}{'' if head.endswith(chr(10)) else chr(10)}[... {cut} bytes cut here: a job log keeps "
                f"its first and last {self.half} bytes ([queue] max_log) ...]\n{tail}")


@contextlib.contextmanager
def _captured():
    _current.buffers = (CappedLog(MAX_LOG), CappedLog(MAX_LOG))
    try:
        yield _current.buffers
    finally:
        _current.buffers = None


class Superseded(Exception):
    """This run no longer holds its job (a newer run took over, or the job was reset): it
    must write nothing more, and clean nothing up — what is on storage is the newer run's."""
    superseded = True


class _Run:
    """One run of a job: its fencing token, and whether it is known to have lost the job."""

    def __init__(self, job_id, attempt):
        self.job_id, self.attempt = job_id, attempt
        self.lost = threading.Event()

    def holds(self):
        """The condition of every write this run makes."""
        return (Job.id == self.job_id) & (Job.attempt == self.attempt) & (Job.status == "INPROGRESS")

    def superseded(self):
        self.lost.set()
        return Superseded(f"job {self.job_id}: run {self.attempt} was superseded by a newer run")


def check_fence():
    """Raise Superseded unless this thread's run still holds its job (one query).
    Outside a run (a task body called directly) there is nothing to check."""
    run = getattr(_current, "run", None)
    if run is None:
        return
    if run.lost.is_set() or not Job.select().where(run.holds()).exists():
        raise run.superseded()


def fenced():
    """Raise Superseded when the heartbeat thread found this run's job taken over (no query)."""
    run = getattr(_current, "run", None)
    if run is not None and run.lost.is_set():
        raise run.superseded()


@contextlib.contextmanager
def fenced_write():
    """A transaction for a job body's own database writes (a fileset recorded on its space, a
    snapshot row removed), atomic with the fence: the job's row is locked and checked first, so
    a newer run cannot take the job between the check and the commit. Raises Superseded."""
    with database.atomic():
        run = getattr(_current, "run", None)
        if run is not None:
            held = Job.select(Job.id).where(run.holds())
            if isinstance(database.obj, peewee.PostgresqlDatabase):
                held = held.for_update()    # SQLite: the transaction holds the write lock already
            if run.lost.is_set() or held.first() is None:
                raise run.superseded()
        yield


def _silent():
    """Jobs whose last heartbeat is older than STALE seconds by the database's clock."""
    return (Job.heartbeat < clock(-STALE)) | Job.heartbeat.is_null()


@contextlib.contextmanager
def _heartbeat(run):
    """Tell the database, every HEARTBEAT seconds, that this run is alive and holds its job;
    when the job is no longer this run's, mark the run superseded and stop beating."""
    stop = threading.Event()

    def beat():
        while not stop.wait(HEARTBEAT):
            try:
                with database.connection_context():
                    held = Job.update(heartbeat=clock()).where(run.holds()).execute()
            except Exception:   # one missed beat is fine; a dead beat thread would get the job run twice
                log.warning("job %s: heartbeat not recorded", run.job_id, exc_info=True)
                continue
            if not held:
                log.warning("job %s: run %d no longer holds the job (a newer run took it over)",
                            run.job_id, run.attempt)
                run.lost.set()
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{run.job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def requeue_stale(submit):
    """Queue again the jobs a dead worker left INPROGRESS (silent for STALE seconds by the
    database's clock). Setting them PENDING fences the silent run at once; the conditional
    UPDATE lets only one of several sweeping workers take each job. Job bodies are
    retry-safe, so running one again finishes what was cut off."""
    requeued = []
    with database.connection_context():
        stale = Job.select(Job.id, Job.attempt, Job.heartbeat).where(Job.status == "INPROGRESS", _silent())
        for job in stale:
            taken = Job.update(status="PENDING", queued=clock(), queued_by=SWEEPER).where(
                Job.id == job.id, Job.status == "INPROGRESS", Job.attempt == job.attempt, _silent()).execute()
            if taken:
                log.warning("job %s lost its worker (run %d, last heartbeat %s UTC): queued again",
                            job.id, job.attempt, job.heartbeat)
                submit(job)
                requeued.append(job.id)
    return requeued


LOST_BATCH = 500    # overdue jobs looked at per sweep


def requeue_lost(submit, queued):
    """Queue again the PENDING jobs that have waited REQUEUE_AFTER seconds (by the database's
    clock) since they were last queued and whose message the queue does not hold: the queue
    lost it (its file removed, Redis restarted or flushed), the process that inserted the job
    died before it queued it, or a worker took the message and died (or lost its database)
    before it took the job. `queued()` gives the job ids the queue holds; it is asked only when
    some job is overdue. A message delivered twice is harmless: _take's conditional claim runs
    the job once; the conditional UPDATE here lets one of several sweeping workers queue it."""
    overdue = (Job.status == "PENDING") & (peewee.fn.COALESCE(Job.queued, Job.created) < clock(-REQUEUE_AFTER))
    requeued = []
    with database.connection_context():
        waiting = list(Job.select(Job.id, Job.resource_type, Job.resource_id, Job.queued_by).where(overdue)
                       .order_by(Job.created).limit(LOST_BATCH))
        held = queued() if waiting else ()
        for job in waiting:
            if job.id in held or not Job.update(queued=clock(), queued_by=SWEEPER).where(
                    Job.id == job.id, overdue).execute():
                continue
            model = BY_COLLECTION[job.resource_type]
            model.update(status="PENDING").where(model.id == job.resource_id, model.status == "NEW").execute()
            log.warning("job %s of /%s/%s waited over %d s without a queue message (queued by %s): queued again",
                        job.id, job.resource_type, job.resource_id, REQUEUE_AFTER, job.queued_by or "?")
            submit(job)
            requeued.append(job.id)
    return requeued


def start_sweeper(submit, queued, interval=None):
    """A daemon thread that, now and every `interval` (HEARTBEAT) seconds, queues again the jobs
    of dead workers and lost messages, looks at the snapshot schedule (service.tasks.schedule)
    and does the database's upkeep (service.tasks.upkeep)."""
    from service.tasks import schedule, upkeep
    sweeps = (("sweeping for stale jobs", lambda: requeue_stale(submit)),
              ("sweeping for lost queue messages", lambda: requeue_lost(submit, queued)),
              ("looking at the snapshot schedule", lambda: schedule.look(submit, interval or HEARTBEAT)))

    def sweep():
        while True:
            for what, chore in (*sweeps, *upkeep.due()):
                try:
                    chore()
                except Exception as exc:   # a database or queue hiccup must not end the sweeping
                    log.warning("%s failed: %s: %s", what, type(exc).__name__, one_line(exc))
                    log.debug("%s failed", what, exc_info=True)
            time.sleep(interval or HEARTBEAT)
    threading.Thread(target=sweep, name="stale-job-sweeper", daemon=True).start()
    upkeep.start_wal_watch()


def rerun(job_id, by="cli"):
    """Make a job that failed or lost its worker PENDING again (`pixstor-mgmt job rerun`), queued
    by `by`. Returns None, or why not: it completed, or it (or another job of its item) is running."""
    with database.atomic():
        job = Job.get_or_none(Job.id == job_id)
        if job is None:
            return f"no job {job_id}"
        other = (Job.select(Job.id).where(Job.resource_id == job.resource_id, Job.id != job.id,
                                          Job.status.in_(("PENDING", "INPROGRESS"))).first())
        if other is not None:
            return f"job {other.id} of /{job.resource_type}/{job.resource_id} is queued or running; wait for it"
        reset = Job.update(status="PENDING", started=None, finished=None, message=None, queued=clock(),
                           queued_by=by).where(
            Job.id == job.id, Job.status.in_(("PENDING", "ERRORED")) | ((Job.status == "INPROGRESS") & _silent())
        ).execute()
        if not reset:
            job = Job.get_by_id(job_id)
            return (f"job {job.id} has completed; nothing to run again" if job.status == "COMPLETED" else
                    f"job {job.id} is running (heartbeat {job.heartbeat} UTC); wait for it")
        model = BY_COLLECTION[job.resource_type]
        model.update(status="PENDING", status_message=None).where(model.id == job.resource_id).execute()
    return None


def one_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]


def _take(job_id):
    """Claim the job for a new run: (job, item, run), or None when it is done or another
    live run holds it. The item is marked INPROGRESS in the same transaction."""
    with database.atomic():
        taken = Job.update(status="INPROGRESS", attempt=Job.attempt + 1, started=clock(), heartbeat=clock(),
                           finished=None).where(
            Job.id == job_id, (Job.status == "PENDING") | ((Job.status == "INPROGRESS") & _silent())).execute()
        if not taken:
            return None
        job = Job.get_by_id(job_id)
        model = BY_COLLECTION[job.resource_type]
        item = model.get_or_none(model.id == job.resource_id)
        if item is not None:
            model.update(status="INPROGRESS").where(model.id == item.id).execute()
            item.status = "INPROGRESS"
    return job, item, _Run(job.id, job.attempt)


def _finish(run, job, item, status, message, stdout, stderr):
    """Write the outcome, if this run still holds the job; False when it does not."""
    model = type(item) if item is not None else None
    with database.atomic():
        # the job row first: its conditional UPDATE is the fence for the item's write too
        if not Job.update(status=status, finished=clock(), message=message, stdout=stdout,
                          stderr=stderr).where(run.holds()).execute():
            return False
        if item is None:
            pass
        elif status == "ERRORED":
            model.update(status="ERRORED", status_message=message, updated=clock()).where(
                model.id == item.id).execute()
        elif job.action != "delete":
            model.update(status="ACTIVE", status_message=None, updated=clock()).where(
                model.id == item.id).execute()
    return True


def execute(job_id):
    """The Huey task: run job `job_id`, unless it is done or a live run holds it."""
    with kept_connection():
        taken = _take(job_id)
        if taken is None:
            log.info("job %s: done, or held by another live run: nothing to do", job_id)
            return
        job, item, run = taken
        _current.run = run
        watch(fenced)     # long file walks of this run stop once it lost its job
        try:
            with _captured() as (stdout, stderr), _heartbeat(run):
                try:
                    check_fence()
                    outcome = None
                    if item is None and job.action == "delete":
                        # deleted by an earlier run of this job (or a concurrent one): done
                        log.info("job %s: /%s/%s is already gone", job.id, job.resource_type, job.resource_id)
                    elif item is None:
                        raise LookupError(f"/{job.resource_type}/{job.resource_id} no longer exists")
                    else:
                        log.debug("job %s: run %d taken by %s, thread %s; asked by %s, queued %s by %s",
                                  job.id, run.attempt, WORKER, threading.current_thread().name, job.owner,
                                  job.queued, job.queued_by)
                        log.debug("job %s: parameters %s", job.id, job.params or "{}")
                        log.info("job %s: %s /%s/%s (run %d)", job.id, job.action, job.resource_type, item.id,
                                 run.attempt)
                        outcome = HANDLERS[(job.resource_type, job.action)](item, json.loads(job.params or "{}"))
                    check_fence()
                    log.info("job %s completed", job.id)
                    # a body may return one line worth saying (the job's message)
                    status, message = "COMPLETED", outcome if isinstance(outcome, str) else None
                except Exception as exc:
                    if not getattr(exc, "superseded", False):
                        log.exception("job %s failed: %s", job.id, one_line(exc))
                    status, message = "ERRORED", one_line(exc)
            if run.lost.is_set() or not _finish(run, job, item, status, message, stdout.getvalue(),
                                                stderr.getvalue()):
                log.warning("job %s: run %d was superseded by a newer run; its writes were refused "
                            "(it would have ended %s%s)", job.id, run.attempt, status,
                            f": {message}" if message and status != "COMPLETED" else "")
        finally:
            _current.run = None
            watch(None)

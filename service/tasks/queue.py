"""The Huey queue: SqliteHuey by default, RedisHuey for scale-out.

One Huey task runs every job by id; what a job does is looked up in the job
row itself (service/tasks/runner.py), so the queue carries nothing but ids.
"""
import logging
import os
import signal
import threading

from huey import RedisHuey, SqliteHuey
from huey.consumer import Consumer
from huey.storage import SqliteStorage

from service.db import private_file

log = logging.getLogger(__name__)
_huey = None
_run_job = None


def configure(settings):
    """Create the queue named by settings.queue.url and register the job task."""
    global _huey, _run_job
    # imported here, not at the top: the job bodies register themselves with the runner
    from service.tasks import exposers, policies, profiles, runner, snapshots, spaces, templates, upkeep  # noqa: F401

    scheme, _, rest = settings.queue.url.partition("://")
    if scheme == "sqlite":
        private_file(rest[1:])
        _huey = SqliteHuey("pixstor", filename=rest[1:], results=False, utc=True, storage_class=_RingingStorage)
    else:
        # blocking: the worker waits on the Redis list instead of polling it
        _huey = RedisHuey("pixstor", url=settings.queue.url, results=False, utc=True, blocking=True)
    _run_job = _huey.task(name="pixstor.run_job")(runner.execute)
    runner.configure(settings.queue.heartbeat, settings.queue.stale_after, settings.queue.requeue_after,
                     settings.queue.max_log)
    upkeep.configure(settings.queue.keep_jobs_days, settings.server.query_budget)
    return _huey


def submit(job):
    _run_job(job.id)


def queued():
    """The ids of the jobs whose messages the queue holds (read whole: the sweeper asks only
    when a job waited suspiciously long)."""
    return {message.args[0] for message in _huey.pending() if message.args}


LOOK = 0.02         # seconds between looks at the queue file for messages of other processes while busy,
LOOK_IDLE = 0.2     # ... backing off to this after a quiet spell
IDLE_WAIT = 10.0    # seconds a worker waits for the doorbell before it reads the queue anyway


class _Doorbell:
    """Wakes idle workers when a message arrives, instead of each polling the queue: a message
    queued by this process rings it at once; one of another process (an API process without a
    worker, `job rerun`) changes the SQLite queue's files, which one watcher thread looks at
    every LOOK seconds (a stat, no query). Idle workers cost nearly nothing and pick a job up
    within milliseconds (another process's message: within LOOK_IDLE seconds)."""

    def __init__(self, filename):
        self.files = [filename, filename + "-wal"]
        self.cond = threading.Condition()
        self.rings = 0
        self.watcher = None
        self.closed = False

    def ring(self, everyone=False):
        with self.cond:
            self.rings += 1
            self.cond.notify_all() if everyone else self.cond.notify()

    def wait(self, seen):
        """Until a ring after `seen` (or IDLE_WAIT seconds, or the doorbell is closed);
        returns the rings so far."""
        self._watch()
        with self.cond:
            if self.rings == seen and not self.closed:
                self.cond.wait(IDLE_WAIT)
            return self.rings

    def close(self):
        """The consumer stops: every waiting worker wakes now, and none waits again (a graceful
        stop joins the workers, and an idle one would keep it waiting IDLE_WAIT seconds)."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def _watch(self):
        if self.watcher is None:
            with self.cond:
                if self.watcher is None:
                    self.watcher = threading.Thread(target=self._look, name="queue-doorbell", daemon=True)
                    self.watcher.start()

    def _signature(self):
        found = []
        for name in self.files:
            try:
                st = os.stat(name)
                found.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError:
                found.append(None)
        return found

    def _look(self):
        last = self._signature()
        pause = LOOK
        stop = threading.Event()
        while not stop.wait(pause):
            current = self._signature()
            if current != last:
                last, pause = current, LOOK
                self.ring(everyone=True)
            else:
                pause = min(pause * 1.1, LOOK_IDLE)


class _RingingStorage(SqliteStorage):
    """SqliteHuey's storage, blocking like Redis's: a dequeue with nothing to take waits for the
    doorbell (above) rather than the consumer sleeping and polling with a backoff."""
    blocking = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.doorbell = _Doorbell(self.filename)

    def _create_connection(self):
        # WAL with synchronous NORMAL, as the database: a message survives a crash of any
        # process; one lost to a power cut is queued again by the sweeper (queue.requeue_after)
        conn = super()._create_connection()
        conn.execute("pragma synchronous=1")
        return conn

    def enqueue(self, data, priority=None):
        super().enqueue(data, priority=priority)
        self.doorbell.ring()

    def dequeue(self):
        seen = self.doorbell.rings
        message = super().dequeue()
        if message is None:
            self.doorbell.wait(seen)
            message = super().dequeue()
        return message


class _Consumer(Consumer):
    """SIGTERM (what `systemctl stop` sends) and SIGINT both stop gracefully: running jobs get
    the grace period (shutdown_timeout) to finish; a second signal interrupts them. A job cut
    off is found by the next worker's sweeper and run again (job bodies are retry-safe)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._signal_actions.update({signal.SIGTERM: (False, True), signal.SIGINT: (False, True)})

    def stop(self, graceful=False):
        self.stop_flag.set()        # before the doorbell: a worker it wakes must see the flag
        doorbell = getattr(self.huey.storage, "doorbell", None)
        if doorbell is not None:
            doorbell.close()
        super().stop(graceful=graceful)


class _QuietConsumer(_Consumer):
    """A consumer that leaves signal handling to its host process (serve)."""

    def _set_signal_handlers(self):
        pass


def consumer(workers, embedded=False, grace=30):
    """A consumer that picks a job up within milliseconds: Redis blocks on its list, SQLite
    waits for the doorbell (_RingingStorage); neither polls while idle."""
    cls = _QuietConsumer if embedded else _Consumer
    # no task is ever scheduled for later (no eta, no periodic task): the scheduler's look at the
    # schedule table is needed rarely, not every second
    return cls(_huey, workers=workers, periodic=False, initial_delay=0.01, backoff=1.15, max_delay=0.05,
               worker_type="thread", shutdown_timeout=grace, scheduler_interval=60)

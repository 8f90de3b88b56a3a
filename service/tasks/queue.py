"""The Huey queue: SqliteHuey by default, RedisHuey for scale-out.

One Huey task runs every job by id; what a job does is looked up in the job
row itself (service/tasks/runner.py), so the queue carries nothing but ids.
"""
import logging
import signal

from huey import RedisHuey, SqliteHuey
from huey.consumer import Consumer

from service.db import private_file

log = logging.getLogger(__name__)
_huey = None
_run_job = None


def configure(settings):
    """Create the queue named by settings.queue.url and register the job task."""
    global _huey, _run_job
    # imported here, not at the top: the job bodies register themselves with the runner
    from service.tasks import exposers, profiles, runner, snapshots, spaces, templates, upkeep  # noqa: F401

    scheme, _, rest = settings.queue.url.partition("://")
    if scheme == "sqlite":
        private_file(rest[1:])
        _huey = SqliteHuey("pixstor", filename=rest[1:], results=False, utc=True)
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


class _Consumer(Consumer):
    """SIGTERM (what `systemctl stop` sends) and SIGINT both stop gracefully: running jobs get
    the grace period (shutdown_timeout) to finish; a second signal interrupts them. A job cut
    off is found by the next worker's sweeper and run again (job bodies are retry-safe)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._signal_actions.update({signal.SIGTERM: (False, True), signal.SIGINT: (False, True)})


class _QuietConsumer(_Consumer):
    """A consumer that leaves signal handling to its host process (serve)."""

    def _set_signal_handlers(self):
        pass


def consumer(workers, embedded=False, grace=30):
    """A consumer that picks a job up within tens of milliseconds: the default
    backoff to 10 s between polls would leave jobs waiting seconds after a lull."""
    cls = _QuietConsumer if embedded else _Consumer
    return cls(_huey, workers=workers, periodic=False, initial_delay=0.01, backoff=1.15, max_delay=0.05,
               worker_type="thread", shutdown_timeout=grace)

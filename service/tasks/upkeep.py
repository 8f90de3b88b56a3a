"""The database's upkeep, done by every worker's sweeper (service.tasks.runner.start_sweeper):
old jobs pruned (at the worker's start, then hourly), SQLite's write-ahead log checkpointed
when it has grown (looked at every WAL_LOOK seconds, on a thread of its own: a look is one stat,
and tied to the sweep's pace the log grew for a whole sweep interval between looks). Several
workers doing the same is harmless."""
import threading
import logging
import time

import peewee

from service import db
from service.models import BY_COLLECTION, FINISHED_JOBS, Job, database

log = logging.getLogger("service.upkeep")
KEEP_JOBS_DAYS = 30     # finished jobs older than this are pruned; 0 keeps them ([queue] keep_jobs_days)
PRUNE_EVERY = 3600      # seconds between prunings
CHECKPOINT_WAIT = 11    # seconds a checkpoint waits for older readers: longer than a request's reads
PRUNE_BATCH = 500       # jobs deleted per statement: a short write lock at a time
WAL_LOOK = 2            # seconds between looks at the size of SQLite's write-ahead log
_last = {}


def configure(keep_jobs_days, query_budget):
    global KEEP_JOBS_DAYS, CHECKPOINT_WAIT
    KEEP_JOBS_DAYS, CHECKPOINT_WAIT = keep_jobs_days, query_budget + 1


def prune_jobs(days=None):
    """Delete the jobs that finished more than `days` (KEEP_JOBS_DAYS) days ago, by the
    database's clock, except the latest job of every item that still exists (what its Jobs link
    and a retried create read; `created` has whole seconds, so the latest are all made in its
    last second). Returns how many were deleted."""
    days = KEEP_JOBS_DAYS if days is None else days
    if not days:
        return 0
    pruned = 0
    with database.connection_context():
        for collection, model in BY_COLLECTION.items():
            if model is Job:
                continue
            newer = Job.alias()     # strictly newer: jobs made in the same second as the latest all stay
            superseded = peewee.fn.EXISTS(newer.select(peewee.SQL("1")).where(
                newer.resource_id == Job.resource_id, newer.created > Job.created))
            gone = ~peewee.fn.EXISTS(model.select(peewee.SQL("1")).where(model.id == Job.resource_id))
            prunable = (Job.resource_type == collection, Job.status.in_(FINISHED_JOBS),
                        peewee.fn.COALESCE(Job.finished, Job.created) < db.clock(-days * 86400), superseded | gone)
            while True:
                # found without the write lock, deleted by id (checked again: a rerun may have taken one)
                ids = [job.id for job in Job.select(Job.id).where(*prunable).limit(PRUNE_BATCH)]
                if ids:
                    pruned += Job.delete().where(Job.id.in_(ids), *prunable).execute()
                if len(ids) < PRUNE_BATCH:
                    break
    if pruned:
        log.info("pruned %d job(s) that finished over %d day(s) ago", pruned, days)
    return pruned


def checkpoint():
    if not db.checkpoint(CHECKPOINT_WAIT):
        log.warning("WAL checkpoint gave up after %d s: a reader held an older snapshot; trying again "
                    "shortly", CHECKPOINT_WAIT)


def start_wal_watch():
    """A daemon thread that checkpoints SQLite's write-ahead log once it has grown (no-op on
    PostgreSQL)."""
    if not isinstance(database.obj, peewee.SqliteDatabase):
        return

    def watch():
        while True:
            try:
                checkpoint()
            except Exception as exc:   # a locked or missing database must not end the watching
                log.warning("checkpointing the WAL failed: %s: %s", type(exc).__name__, exc)
            time.sleep(WAL_LOOK)
    threading.Thread(target=watch, name="wal-watch", daemon=True).start()


def due():
    """(what, chore) for each chore whose time has come."""
    now = time.monotonic()
    if _last.get(prune_jobs) is None or now - _last[prune_jobs] >= PRUNE_EVERY:
        _last[prune_jobs] = now
        yield "pruning old jobs", prune_jobs

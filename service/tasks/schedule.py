"""The snapshot scheduler: deletes expired snapshots (and, service.tasks.policies, takes and
prunes the snapshots of policies), each as a normal job owned by system:scheduler.

Every worker (the embedded one of `serve`, and each `pixstor-mgmt worker`) looks from its
sweeper thread, every [queue] heartbeat seconds (10 s by default, so well within a minute);
only the worker holding the database lease row `snapshot scheduler` acts. The holder renews
it at each look; a holder silent for LEASE_LOOKS looks (by the database's clock) loses it to
the next worker that looks. Not Huey's periodic tasks: those run in every consumer. Each act
is also a conditional write that only one process can win (an ACTIVE snapshot claimed for
its delete; a policy's slot recorded), so even two holders, one paused past its lease, never
make the same job twice.

"Now" is service.lifecycle.now(): the real UTC clock, which tests alone replace."""
import json
import logging
import uuid

import peewee

from service import lifecycle
from service.db import clock
from service.models import Job, Lease, Snapshot, Space, database, now
from service.tasks import runner

log = logging.getLogger("service.scheduler")
OWNER = "system:scheduler"      # Job.owner and queued_by of the scheduler's jobs
LEASE = "snapshot scheduler"
LEASE_LOOKS = 3                 # looks (sweeps) a lease outlives its last renewal by
HOLDER = f"{runner.WORKER}:{uuid.uuid4().hex[:8]}"
BUSY = ("NEW", "PENDING", "INPROGRESS")
BATCH = 200                     # expired snapshots handled per look
POLICY_WORK = []                # functions(moment, submit) run at each look by the holder (policies)


class Skip(Exception):
    """Roll back this item's claim: its space is busy; the next look tries again."""


def hold_lease(seconds):
    """True when this process holds the scheduler's lease (taken or renewed for `seconds`)."""
    with database.atomic():
        if Lease.update(holder=HOLDER, until=clock(seconds)).where(
                Lease.name == LEASE, (Lease.holder == HOLDER) | (Lease.until < clock())).execute():
            return True
    try:
        with database.atomic():
            Lease.insert(name=LEASE, holder=HOLDER, until=clock(seconds)).execute()
        log.info("snapshot scheduler: this worker (%s) holds the lease", HOLDER)
        return True
    except peewee.IntegrityError:
        return False


def look(submit, interval):
    """One look, if this worker holds the lease: expired snapshots deleted, policies' work done."""
    with database.connection_context():
        if not hold_lease(max(LEASE_LOOKS * interval, 3)):
            return
        moment = lifecycle.now()
        expire(moment, submit)
        for work in POLICY_WORK:
            work(moment, submit)


def expire(moment, submit):
    """A delete job for each ACTIVE snapshot whose `expires` has come (an ERRORED one is left for
    a person: its failed job tells why)."""
    due = (Snapshot.select().where(Snapshot.expires <= moment, Snapshot.status == "ACTIVE")
           .order_by(Snapshot.expires, Snapshot.id).limit(BATCH))
    for snapshot in due:
        delete_job(snapshot, f"snapshot {snapshot.name} expired at {snapshot.expires:%Y-%m-%dT%H:%M:%SZ} "
                             f"(now {moment:%Y-%m-%dT%H:%M:%SZ})", submit)


def new_job(action, snapshot_id, params):
    return Job.create(action=action, resource_type="snapshots", resource_id=snapshot_id, owner=OWNER,
                      queued=clock(), queued_by=OWNER, params=json.dumps(params))


def hold_space(space_id):
    """As SnapshotView.guard: no snapshot job while its space's own job is queued or running."""
    if space_id and not Space.update(status=Space.status).where(
            Space.id == space_id, Space.status.not_in(BUSY)).execute():
        raise Skip()


def queue(job, model_id, submit):
    """Hand a job made above to the queue; one that cannot be queued now is queued again by the
    sweeper (runner.requeue_lost), as any job whose message was lost."""
    try:
        submit(job)
    except Exception as exc:
        log.warning("job %s could not be queued now (%s); the sweeper queues it again later", job.id,
                    runner.one_line(exc))
        return
    Snapshot.update(status="PENDING").where(Snapshot.id == model_id, Snapshot.status == "NEW").execute()


def delete_job(snapshot, why, submit):
    """A delete job of `snapshot`, if it is still ACTIVE and its space is not busy; returns the job."""
    try:
        with database.atomic():
            if not Snapshot.update(status="NEW", status_message=None, updated=now()).where(
                    Snapshot.id == snapshot.id, Snapshot.status == "ACTIVE").execute():
                return None
            hold_space(snapshot.space_id)
            job = new_job("delete", snapshot.id, {"force": False, "why": why})
    except Skip:
        log.info("%s; its space is busy: deleted at a later look", why)
        return None
    log.info("%s: deleting it, job %s", why, job.id)
    queue(job, snapshot.id, submit)
    return job

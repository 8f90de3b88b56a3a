"""Snapshot policies: their jobs (recorded and removed; no storage work), and the scheduler's
work for them (service.tasks.schedule runs `take_and_prune` at each look of the lease holder).

At each look, for every ACTIVE policy and every ACTIVE space listing it: the policy's latest
slot at or before now (service.lifecycle.Schedule) is taken unless it was taken already for
that space — so slots missed while no worker ran are taken once, as the latest one, not once
each; a space that newly lists a policy gets its latest slot at once. Taking a slot is one
transaction: the slot recorded in the space's PolicyRun row by a conditional write (one look
alone wins it), the snapshot `{prefix}-{slot, UTC}` inserted with `expires` = slot +
retain_duration, and its create job. Then the space's snapshots made by the policy beyond the
newest retain_count are deleted, each by a job (ACTIVE ones; the others at a later look)."""
import logging

import peewee

from service import lifecycle
from service.models import PolicyRun, Snapshot, SnapshotPolicy, Space, SpaceSnapshotPolicy, database
from service.tasks import schedule
from service.tasks.runner import check_fence, fenced_write, handles

log = logging.getLogger("service.scheduler")


@handles("snapshotpolicies", "create")
def create_policy(policy, params):
    check_fence()
    return f"policy {policy.name} recorded: snapshots at '{policy.schedule}' (UTC) of the spaces that list it"


@handles("snapshotpolicies", "delete")
def delete_policy(policy, params):
    """The policy goes; the snapshots it took stay (no longer pruned by it), spaces stop listing it."""
    check_fence()
    with fenced_write():
        kept = Snapshot.update(policy=None).where(Snapshot.policy == policy.id).execute()
        SpaceSnapshotPolicy.delete().where(SpaceSnapshotPolicy.snapshotpolicy == policy.id).execute()
        PolicyRun.delete().where(PolicyRun.policy == policy.id).execute()
        policy.delete_instance()
    return f"policy {policy.name} deleted; the {kept} snapshot(s) it took are kept"


def slot_name(policy, slot):
    return f"{policy.prefix}-{slot.strftime(lifecycle.SLOT_FORMAT)}"


def take_and_prune(moment, submit):
    for policy in SnapshotPolicy.select().where(SnapshotPolicy.status == "ACTIVE").order_by(SnapshotPolicy.id):
        slot = lifecycle.Schedule(policy.schedule).latest(moment)
        spaces = (Space.select().join(SpaceSnapshotPolicy, on=(SpaceSnapshotPolicy.space == Space.id))
                  .where(SpaceSnapshotPolicy.snapshotpolicy == policy.id, Space.status == "ACTIVE")
                  .order_by(Space.id))
        for space in spaces:
            if slot is not None:
                take(policy, space, slot, submit)
            prune(policy, space, submit)


def _claim_slot(policy, space, slot):
    """Record `slot` as taken for (policy, space), if no look did already: True when this one did."""
    if PolicyRun.update(last_slot=slot).where(PolicyRun.policy == policy.id, PolicyRun.space == space.id,
                                              PolicyRun.last_slot < slot).execute():
        return True
    if PolicyRun.select().where(PolicyRun.policy == policy.id, PolicyRun.space == space.id).exists():
        return False
    try:
        with database.atomic():
            PolicyRun.insert(policy=policy.id, space=space.id, last_slot=slot).execute()
        return True
    except peewee.IntegrityError:
        return False


def take(policy, space, slot, submit):
    name = slot_name(policy, slot)
    expires = slot + lifecycle.parse_duration(policy.retain_duration) if policy.retain_duration else None
    try:
        with database.atomic():
            if not _claim_slot(policy, space, slot):
                return None
            schedule.hold_space(space.id)
            try:
                with database.atomic():
                    snapshot = Snapshot.create(name=name, type="gpfsspacesnapshot", space=space.id,
                                               policy=policy.id, expires=expires, status="NEW")
            except peewee.IntegrityError:
                log.warning("policy %s: space %s already has a snapshot named %s: slot %s skipped", policy.name,
                            space.name, name, slot)
                return None
            job = schedule.new_job("create", snapshot.id, {})
    except schedule.Skip:
        log.info("policy %s: space %s is busy; its slot %s is taken at a later look", policy.name, space.name, slot)
        return None
    log.info("policy %s: snapshot %s of space %s, job %s", policy.name, name, space.name, job.id)
    schedule.queue(job, snapshot.id, submit)
    return job


def prune(policy, space, submit):
    if not policy.retain_count:
        return
    made = (Snapshot.select().where(Snapshot.policy == policy.id, Snapshot.space == space.id)
            .order_by(Snapshot.name.desc()).offset(policy.retain_count))
    for old in made:
        if old.status == "ACTIVE":
            schedule.delete_job(old, f"snapshot {old.name} pruned: policy {policy.name} keeps the newest "
                                     f"{policy.retain_count} of space {space.name}", submit)


schedule.POLICY_WORK.append(take_and_prune)

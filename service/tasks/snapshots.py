"""Snapshot jobs: of a space's fileset, or of a whole filesystem (fileset None)."""
import logging

from service import context
from service.models import Snapshot, Space
from service.tasks.spaces import placement
from service.tasks.runner import check_fence, fenced_write, handles

log = logging.getLogger(__name__)


def target(snapshot):
    """(filesystem, fileset or None) the snapshot is of."""
    if snapshot.space_id:
        fs, _, _ = placement(snapshot.space)
        return fs, snapshot.space.fileset
    return context.filesystem(snapshot.exposer.name), None


@handles("snapshots", "create")
def create_snapshot(snapshot, params):
    fs, fileset = target(snapshot)
    check_fence()
    log.info("snapshotting %s as %s", fileset or f"filesystem {fs.name}", snapshot.name)
    path = context.driver().create_snapshot(fs, fileset, snapshot.name)
    with fenced_write():
        Snapshot.update(path=path).where(Snapshot.id == snapshot.id).execute()


@handles("snapshots", "delete")
def delete_snapshot(snapshot, params):
    fs, fileset = target(snapshot)
    check_fence()
    if params.get("why"):       # the scheduler's: expired, or pruned by its policy's retention
        log.info("%s", params["why"])
    log.info("deleting snapshot %s of %s", snapshot.name, fileset or f"filesystem {fs.name}")
    context.driver().delete_snapshot(fs, fileset, snapshot.name)
    with fenced_write():
        forget_source(snapshot)
        snapshot.delete_instance()


def forget_source(snapshot):
    """Spaces made from the snapshot no longer name it (the column has no constraint to)."""
    Space.update(source_snapshot=None).where(Space.source_snapshot == snapshot.id).execute()

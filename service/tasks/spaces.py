"""Space jobs: the fileset, its quota, its templates; resize; delete.

A job checks again, when it acts, what the request checked: the tree may have changed while
the job was queued. Storage is touched only through the driver and the confined primitives
(service/storage/confined.py), so a link planted on the way stops the job instead of
steering it.
"""
import logging
import os
import secrets

from service import context, security
from service.api.spaces import normalise_relativepath, overlap_message, overlapping_space, space_path
from service.models import Snapshot, Space, SpaceExposer, SpaceTemplate, Template
from service.storage import StorageError, tree
from service.storage.confined import Root, inside
from service.tasks.exposers import shares_inside, withdraw
from service.tasks.profiles import after_space_change
from service.tasks.runner import check_fence, fenced_write, handles

log = logging.getLogger(__name__)


def soft_limit(size):
    """The soft quota: 90 % of the hard limit, rounded down (as PixStor sets it)."""
    return size * 9 // 10


def placement(space):
    """(filesystem, pool, fileset name) for a space, from its profile."""
    datastore = space.profile.datastore
    return context.filesystem(datastore.filesystem), datastore.pool, f"{datastore.pool}-{space.name}"


def checked_path(space, fs):
    """The space's junction, with the request's rules checked again now."""
    try:
        relativepath = normalise_relativepath(space.relativepath)
    except ValueError as exc:
        raise StorageError(f"relativepath {space.relativepath}: {exc}") from None
    path = space_path(fs.mountpoint, relativepath)
    for exposer in space.exposers:
        if not inside(path, exposer.mountpoint, strict=True):
            raise StorageError(f"{path} leaves the mountpoint of exposer {exposer.name}")
    other = overlapping_space(relativepath, fs.name, space.id)
    if other is not None:
        raise StorageError(overlap_message(relativepath, other))
    store = context.settings.storage.template_store
    if inside(path, store) or inside(store, path):
        raise StorageError(f"{path} overlaps the template store {store}")
    return path


def ordered_templates(space):
    return (Template.select().join(SpaceTemplate, on=(SpaceTemplate.template == Template.id))
            .where(SpaceTemplate.space == space.id).order_by(SpaceTemplate.id))


def apply_template(driver, fs, template, space, fileset, path):
    log.info("applying template %s from %s", template.name, template.store_path)
    store = context.settings.storage.template_store
    with Root(store) as root, root.folder(template.store_path) as model:
        dependents = tree.dependent_order(tree.marked_folders(model))
    for relative, pool in dependents.items():
        check_fence()
        target = os.path.join(path, relative)
        existing = driver.fileset_at(fs, target)
        if existing:    # made by an earlier try of this job
            log.info("dependent fileset %s already at %s", existing, target)
            continue
        name = f"{pool}-{space.name}-{secrets.token_hex(4)}"
        log.info("creating dependent fileset %s at %s in pool %s", name, target, pool)
        driver.create_fileset(fs, name, target, pool, parent=fileset)
    check_fence()
    driver.copy_tree(template.store_path, path, src_root=store, dst_root=fs.mountpoint)


def wanted_access(values):
    """The owner, group, permissions and acl of `values` (a space or a dict of its fields) as a
    plan, every name resolved again now: a user or group gone since the request fails the job
    here, before anything is changed."""
    fields = {name: values[name] if isinstance(values, dict) else getattr(values, name) for name in security.FIELDS}
    try:
        return security.plan(**fields)
    except ValueError as exc:
        raise StorageError(f"{exc}; nothing was changed") from None


def secure(driver, fs, fields, fileset, access, every_file):
    shown = {name: "(as it is)" if value is None else value for name, value in fields.items()}
    if fields["acl"] is not None:
        shown["acl"] = ", ".join(fields["acl"]) or "(none)"
    log.info("securing %s: owner %s, group %s, permissions %s, acl %s", fileset, *(shown[n] for n in security.FIELDS))
    check_fence()
    log.info("secured %s: %s", fileset, driver.secure_fileset(fs, fileset, access, every_file))


def security_fields(space):
    return {name: getattr(space, name) for name in security.FIELDS}


@handles("spaces", "create")
def create_space(space, params):
    driver = context.driver()
    fs, pool, fileset = placement(space)
    path = checked_path(space, fs)
    access = wanted_access(space)
    made_here = space.fileset == fileset or driver.fileset_info(fs, fileset) is None
    source = source_of(space, fs) if space.source_snapshot_id else None
    try:
        if source is None:
            log.info("creating independent fileset %s at %s in pool %s", fileset, path, pool)
            driver.create_fileset(fs, fileset, path, pool)
        else:
            log.info("creating independent fileset %s at %s in pool %s from snapshot %s of %s", fileset, path,
                     pool, source.name, source.space.fileset)
            driver.create_fileset_from_snapshot(fs, fileset, path, pool, source.space.fileset, source.name)
        # recorded as soon as it exists: a later failure leaves nothing unrecorded
        with fenced_write():
            Space.update(fileset=fileset, path=path).where(Space.id == space.id).execute()
        log.info("setting quota on %s: hard %d, soft %d bytes", fileset, space.size, soft_limit(space.size))
        driver.set_quota(fs, fileset, space.size, soft_limit(space.size))
        for template in ordered_templates(space):
            if not template.store_path:
                raise StorageError(f"template {template.name} has not been built")
            apply_template(driver, fs, template, space, fileset, path)
        # last: a copy (of templates, of a snapshot) gives the root its source's mode and owner
        secure(driver, fs, security_fields(space), fileset, access, every_file=True)
        used = driver.usage(fs, fileset)
        with fenced_write():
            Space.update(used=used).where(Space.id == space.id).execute()
        after_space_change(Space.get_by_id(space.id))   # its profile's rules name its fileset
    except Exception as exc:
        if made_here and not getattr(exc, "superseded", False):
            _take_back(driver, fs, space, fileset)
        raise


def source_of(space, fs):
    """The snapshot a new space starts from, with the request's rules checked again now."""
    snapshot = Snapshot.get_or_none(Snapshot.id == space.source_snapshot_id)
    if snapshot is None:
        raise StorageError(f"snapshot /snapshots/{space.source_snapshot_id} no longer exists")
    if snapshot.status != "ACTIVE" or snapshot.space is None or not snapshot.space.fileset:
        raise StorageError(f"snapshot {snapshot.name} is {snapshot.status}, not an ACTIVE snapshot of a space")
    if placement(snapshot.space)[0].name != fs.name:
        raise StorageError(f"snapshot {snapshot.name} is on filesystem {placement(snapshot.space)[0].name}, "
                           f"not {fs.name}")
    return snapshot


def _take_back(driver, fs, space, fileset):
    """A create that failed removes what it made, so a retry (or a delete) starts clean —
    unless a newer run took the job over: then what is there is that run's."""
    try:
        check_fence()
        if driver.fileset_info(fs, fileset) is not None:
            log.info("removing fileset %s, made by this failed create", fileset)
            driver.delete_fileset(fs, fileset, force=True)
        with fenced_write():
            Space.update(fileset=None, path=None, used=None).where(Space.id == space.id).execute()
    except Exception as exc:    # the job's own failure is the one to report (or: superseded)
        log.error("not removing what the failed create made: %s", exc)


@handles("spaces", "update")
def update_space(space, params):
    """A resize, and a new owner, group, permissions or acl: all four applied again to the
    whole space (the root, every folder, the files that had its group). The item takes the
    new values once storage has them."""
    changes = {name: params[name] for name in params if name in Space._meta.fields}
    wanted = dict(security_fields(space), **{n: v for n, v in changes.items() if n in security.FIELDS})
    # set to null: recorded only, what is on disk stays (as the API says)
    access = wanted_access(wanted) if any(changes.get(n) is not None for n in security.FIELDS) else None
    if space.fileset:
        fs, _, _ = placement(space)
        driver = context.driver()
        if "size" in changes:
            size = changes["size"]
            check_fence()
            log.info("resizing %s: hard %d, soft %d bytes", space.fileset, size, soft_limit(size))
            driver.set_quota(fs, space.fileset, size, soft_limit(size))
        if access is not None:
            secure(driver, fs, wanted, space.fileset, access, every_file=False)
        changes["used"] = driver.usage(fs, space.fileset)
    # never made on storage: the values are used when its create is retried
    with fenced_write():
        Space.update(**changes).where(Space.id == space.id).execute()


@handles("spaces", "revert")
def revert_space(space, params):
    """The space's content becomes its snapshot's (the driver's revert_fileset: whole, or not at
    all, as its users see it). Checked again now: the snapshot exists, is ACTIVE and is this
    space's, and the space has its fileset."""
    snapshot = Snapshot.get_or_none(Snapshot.id == params.get("snapshot"))
    if snapshot is None:
        raise StorageError(f"snapshot /snapshots/{params.get('snapshot')} no longer exists; nothing was reverted")
    if snapshot.space_id != space.id:
        raise StorageError(f"snapshot {snapshot.name} is not a snapshot of space {space.name}; nothing was reverted")
    if snapshot.status != "ACTIVE":
        raise StorageError(f"snapshot {snapshot.name} is {snapshot.status}, not ACTIVE; nothing was reverted")
    if not space.fileset:
        raise StorageError(f"space {space.name} has no fileset (its create did not finish); nothing was reverted")
    fs, _, _ = placement(space)
    checked_path(space, fs)
    driver = context.driver()
    fields = security_fields(space)
    access = wanted_access(fields) if any(value is not None for value in fields.values()) else None
    check_fence()
    log.info("reverting %s to snapshot %s (taken %s UTC)%s", space.fileset, snapshot.name, snapshot.created,
             ", forced: every change since is lost" if params.get("force") else "")
    driver.revert_fileset(fs, space.fileset, snapshot.name)
    if access is not None:      # the snapshot's root had the owner and mode of its day: the space's, again
        secure(driver, fs, fields, space.fileset, access, every_file=False)
    used = driver.usage(fs, space.fileset)
    with fenced_write():
        Space.update(used=used).where(Space.id == space.id).execute()
    return f"space {space.name} holds the content of snapshot {snapshot.name}"


@handles("spaces", "delete")
def delete_space(space, params):
    force = bool(params.get("force"))
    snapshots = list(space.snapshots)
    if snapshots and not force:
        raise StorageError(f"space has snapshots ({', '.join(s.name for s in snapshots)}); delete with force")
    shared = shares_inside(space)
    if shared and not force:
        raise StorageError(f"space is shared ({', '.join(f'{e.type} {e.name}' for e in shared)}); delete with force")
    for exposer in shared:      # no share may outlive the folder it serves
        withdraw(exposer)
    if space.fileset:
        fs, _, _ = placement(space)
        driver = context.driver()
        for snapshot in snapshots:
            check_fence()
            log.info("deleting snapshot %s of %s", snapshot.name, space.fileset)
            driver.delete_snapshot(fs, space.fileset, snapshot.name)
            with fenced_write():
                Space.update(source_snapshot=None).where(Space.source_snapshot == snapshot.id).execute()
                snapshot.delete_instance()
        check_fence()
        log.info("deleting fileset %s%s", space.fileset, " and its data (forced)" if force else "")
        driver.delete_fileset(fs, space.fileset, force=force)
    with fenced_write():
        SpaceTemplate.delete().where(SpaceTemplate.space == space.id).execute()
        SpaceExposer.delete().where(SpaceExposer.space == space.id).execute()
        space.delete_instance(recursive=True)
    if space.fileset:
        after_space_change(space)      # its fileset is gone from its profile's rules

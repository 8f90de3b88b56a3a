"""Space jobs: the fileset, its quota, its templates; resize; delete."""
import logging
import os
import secrets

from service import context
from service.api.spaces import space_path
from service.models import Space, SpaceExposer, SpaceTemplate, Template, database
from service.storage import StorageError
from service.storage.tree import marked_folders
from service.tasks.runner import handles

log = logging.getLogger(__name__)


def soft_limit(size):
    """The soft quota: 90 % of the hard limit, rounded down (as PixStor sets it)."""
    return size * 9 // 10


def placement(space):
    """(filesystem, pool, fileset name) for a space, from its profile."""
    datastore = space.profile.datastore
    return context.filesystem(datastore.filesystem), datastore.pool, f"{datastore.pool}-{space.name}"


def ordered_templates(space):
    return (Template.select().join(SpaceTemplate, on=(SpaceTemplate.template == Template.id))
            .where(SpaceTemplate.space == space.id).order_by(SpaceTemplate.id))


def template_filesets(store_path):
    """Dependent filesets of a built template: {relative path: pool}, shallowest first
    (a nested one needs its enclosing folder to exist)."""
    found = marked_folders(store_path)
    return dict(sorted(found.items(), key=lambda kv: (kv[0].count(os.sep), kv[0])))


def apply_template(driver, fs, template, space, fileset, path):
    log.info("applying template %s from %s", template.name, template.store_path)
    for relative, pool in template_filesets(template.store_path).items():
        target = os.path.join(path, relative)
        existing = driver.fileset_at(fs, target)
        if existing:    # made by an earlier try of this job
            log.info("dependent fileset %s already at %s", existing, target)
            continue
        name = f"{pool}-{space.name}-{secrets.token_hex(4)}"
        log.info("creating dependent fileset %s at %s in pool %s", name, target, pool)
        driver.create_fileset(fs, name, target, pool, parent=fileset)
    driver.copy_tree(template.store_path, path)


@handles("spaces", "create")
def create_space(space, params):
    driver = context.driver()
    fs, pool, fileset = placement(space)
    path = space_path(fs.mountpoint, space.relativepath)
    log.info("creating independent fileset %s at %s in pool %s", fileset, path, pool)
    driver.create_fileset(fs, fileset, path, pool)
    # recorded as soon as it exists: a later failure leaves nothing unrecorded
    Space.update(fileset=fileset, path=path).where(Space.id == space.id).execute()
    log.info("setting quota on %s: hard %d, soft %d bytes", fileset, space.size, soft_limit(space.size))
    driver.set_quota(fs, fileset, space.size, soft_limit(space.size))
    for template in ordered_templates(space):
        if not template.store_path:
            raise StorageError(f"template {template.name} has not been built")
        apply_template(driver, fs, template, space, fileset, path)
    Space.update(used=driver.usage(fs, fileset)).where(Space.id == space.id).execute()


@handles("spaces", "update")
def resize_space(space, params):
    size = params.get("size", space.size)
    if space.fileset:
        fs, _, _ = placement(space)
        log.info("resizing %s: hard %d, soft %d bytes", space.fileset, size, soft_limit(size))
        context.driver().set_quota(fs, space.fileset, size, soft_limit(size))
        Space.update(size=size, used=context.driver().usage(fs, space.fileset)).where(
            Space.id == space.id).execute()
    else:   # never made on storage: the size is used when its create is retried
        Space.update(size=size).where(Space.id == space.id).execute()


@handles("spaces", "delete")
def delete_space(space, params):
    force = bool(params.get("force"))
    snapshots = list(space.snapshots)
    if snapshots and not force:
        raise StorageError(f"space has snapshots ({', '.join(s.name for s in snapshots)}); delete with force")
    if space.fileset:
        fs, _, _ = placement(space)
        driver = context.driver()
        for snapshot in snapshots:
            log.info("deleting snapshot %s of %s", snapshot.name, space.fileset)
            driver.delete_snapshot(fs, space.fileset, snapshot.name)
            snapshot.delete_instance()
        log.info("deleting fileset %s%s", space.fileset, " and its data (forced)" if force else "")
        driver.delete_fileset(fs, space.fileset, force=force)
    with database.atomic():
        SpaceTemplate.delete().where(SpaceTemplate.space == space.id).execute()
        SpaceExposer.delete().where(SpaceExposer.space == space.id).execute()
        space.delete_instance(recursive=True)

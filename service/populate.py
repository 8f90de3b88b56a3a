"""Populate: record what storage has — an exposer per filesystem, a datastore
per pool and a default `{filesystem}-{pool}` profile per pool, and the NFS and SMB shares
the service's own files hold (other shares are left alone).

Ids are uuid5 of type and name, so running it again updates in place; a share keeps the id
its file is named after.
"""
from service import shares
from service.models import Datastore, Exposer, Profile, database, stable_id


def _upsert(model, key, keep=False, **values):
    """Add the item, or bring it in line with storage (unless `keep`: an admin's to change)."""
    item_id = stable_id(model._meta.collection, key)
    item = model.get_or_none(model.id == item_id)
    if item is None:
        model.create(id=item_id, **values)
        return "added"
    if not keep and any(item.__data__.get(k) != v for k, v in values.items()):
        model.update(**values).where(model.id == item_id).execute()
        return "updated"
    return None


def populate(driver, settings=None):
    """Yield one line per change or problem found."""
    yield from _filesystems(driver)
    if settings is not None:
        yield from _shares(settings)


def _shares(settings):
    for share_type in shares.SHARE_TYPES:
        backend = shares.backend(settings, share_type)
        published = backend.published() if backend is not None else {}
        with database.atomic():
            for item_id, definition in published.items():
                values = {k: v for k, v in definition.items() if k not in ("id", "type")}
                if Exposer.get_or_none(Exposer.id == item_id) is not None:
                    continue
                twin = Exposer.get_or_none(Exposer.type == share_type, Exposer.name == definition["name"])
                if twin is not None:
                    yield (f"warning: {share_type} share {definition['name']} of {item_id}'s file is recorded "
                           f"with another id (/exposers/{twin.id}): left as it is")
                else:
                    Exposer.create(id=item_id, type=share_type, mountpoint=definition["path"], **values)
                    yield f"added {share_type} exposer {definition['name']} ({definition['path']})"


def _filesystems(driver):
    with database.atomic():
        for fs in driver.discover():
            change = _upsert(Exposer, f"gpfsnative:{fs.name}", name=fs.name, type="gpfsnative",
                             mountpoint=fs.mountpoint, path=fs.mountpoint)
            if change:
                yield f"{change} exposer {fs.name} ({fs.mountpoint})"
            for pool in fs.pools:
                datastore_id = stable_id("datastores", f"{fs.name}:{pool}")
                change = _upsert(Datastore, f"{fs.name}:{pool}", name=pool, pool=pool, filesystem=fs.name)
                if change:
                    yield f"{change} datastore {pool} on {fs.name}"
                name = f"{fs.name}-{pool}"
                # a default profile's placement is the admin's once it exists
                change = _upsert(Profile, name, keep=True, name=name, datastore=datastore_id)
                if change:
                    yield f"{change} profile {name}"
            missing = getattr(driver, "missing_placement_rules", None)
            for rule in (missing(fs) if missing else []):
                yield (f"warning: {fs.name} has no placement rule for pool {rule}: run "
                       "`pixstor-mgmt policy install default`")

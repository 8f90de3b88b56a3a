"""Populate: record what storage has — an exposer per filesystem, a datastore
per pool and a default `{filesystem}-{pool}` profile per pool.

Ids are uuid5 of type and name, so running it again updates in place.
"""
from service.models import Datastore, Exposer, Profile, database, stable_id


def _upsert(model, key, **values):
    item_id = stable_id(model._meta.collection, key)
    item = model.get_or_none(model.id == item_id)
    if item is None:
        model.create(id=item_id, **values)
        return "added"
    if any(item.__data__.get(k) != v for k, v in values.items()):
        model.update(**values).where(model.id == item_id).execute()
        return "updated"
    return None


def populate(driver):
    """Yield one line per change or problem found."""
    with database.atomic():
        for fs in driver.discover():
            change = _upsert(Exposer, f"gpfsnative:{fs.name}", name=fs.name, type="gpfsnative",
                             mountpoint=fs.mountpoint)
            if change:
                yield f"{change} exposer {fs.name} ({fs.mountpoint})"
            for pool in fs.pools:
                datastore_id = stable_id("datastores", f"{fs.name}:{pool}")
                change = _upsert(Datastore, f"{fs.name}:{pool}", name=pool, pool=pool, filesystem=fs.name)
                if change:
                    yield f"{change} datastore {pool} on {fs.name}"
                name = f"{fs.name}-{pool}"
                change = _upsert(Profile, name, name=name, datastore=datastore_id)
                if change:
                    yield f"{change} profile {name}"
            missing = getattr(driver, "missing_placement_rules", None)
            for rule in (missing(fs) if missing else []):
                yield (f"warning: {fs.name} has no placement rule for pool {rule}: run "
                       "`pixstor-mgmt policy install default`")

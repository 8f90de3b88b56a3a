"""Snapshots of a space's fileset (gpfsspacesnapshot) or of a whole filesystem
(gpfsfilesystemsnapshot, named by its exposer)."""
from service.api.cj import ApiError, invalid
from service.api.views import BUSY, View, busy
from service.models import Space

NEEDS = {"gpfsspacesnapshot": ("space", "exposer"), "gpfsfilesystemsnapshot": ("exposer", "space")}


class SnapshotView(View):
    collection_methods = ("GET", "POST")
    item_methods = ("GET", "PATCH", "DELETE")

    def check_create(self, values, retried=None):
        needed, unwanted = NEEDS[values["type"]]
        errors = {}
        if not values.get(needed):
            errors[needed] = f"required for a {values['type']}"
        elif needed == "space" and values["space"].status in BUSY:
            raise busy(f"/spaces/{values['space'].id}", values["space"].status, "spaces", values["space"].id)
        elif values[needed].status != "ACTIVE":
            errors[needed] = f"{values[needed].name} is {values[needed].status}, not ACTIVE"
        if values.get(unwanted):
            errors[unwanted] = f"not used by a {values['type']}"
        if errors:
            raise invalid(errors)
        values.setdefault(unwanted, None)

    def guard(self, action, values, item):
        """No snapshot job (create or delete) while its space's own job is queued or running:
        a conditional UPDATE of the space's row, in the claim's transaction, takes the row's
        lock, so on PostgreSQL a concurrent DELETE or PATCH of the space waits for this
        transaction and then finds the snapshot's job (SpaceView.guard), or this one waits and
        finds the space busy."""
        space = values.get("space") if action == "create" else item.space
        if space is None:       # a filesystem snapshot
            return
        held = Space.update(status=Space.status).where(Space.id == space.id, Space.status.not_in(BUSY)).execute()
        if not held:
            current = Space.get_or_none(Space.id == space.id)
            if current is None:
                raise ApiError(404, f"space /spaces/{space.id} is gone")
            raise busy(f"/spaces/{space.id}", current.status, "spaces", space.id)

"""Snapshots of a space's fileset (gpfsspacesnapshot) or of a whole filesystem
(gpfsfilesystemsnapshot, named by its exposer). A snapshot may expire: `expires` (ISO 8601),
or `retain_for` (7d, 12h) on create, from which `expires` is set; the worker's scheduler
(service.tasks.schedule) deletes it once that time has come."""
from service import lifecycle
from service.api.cj import ApiError, invalid
from service.api.views import BUSY, View, active_job, busy
from service.models import Space

NEEDS = {"gpfsspacesnapshot": ("space", "exposer"), "gpfsfilesystemsnapshot": ("exposer", "space")}


class SnapshotView(View):
    collection_methods = ("GET", "POST")
    item_methods = ("GET", "PATCH", "DELETE")

    def parse(self, values, item=None):
        """`retain_for` (create only) becomes `expires`; an `expires` must be in the future (a
        snapshot to go now is DELETEd)."""
        values, errors = dict(values), {}
        if "retain_for" in values:
            retain = values.pop("retain_for")
            if item is not None:
                errors["retain_for"] = "only on create; PATCH expires to change when the snapshot goes"
            elif values.get("expires") not in (None, ""):
                errors["retain_for"] = "give expires or retain_for, not both"
            elif retain not in (None, ""):
                try:
                    values["expires"] = (lifecycle.now() + lifecycle.parse_duration(retain)).isoformat() + "Z"
                except ValueError as exc:
                    errors["retain_for"] = str(exc)
        try:
            clean = super().parse(values, item)
        except ApiError as exc:
            exc.details = {**errors, **(exc.details or {})}
            raise
        if clean.get("expires") is not None and clean["expires"] <= lifecycle.now():
            errors["expires"] = (f"{clean['expires']:%Y-%m-%dT%H:%M:%SZ} is not in the future; DELETE the "
                                 "snapshot to remove it now")
        if errors:
            raise invalid(errors)
        return clean

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
        if action == "delete":
            # spaces being made from the snapshot copy it until their create is done
            job = active_job("spaces", Space.select(Space.id).where(Space.source_snapshot == item.id))
            if job is not None and job.action == "create":
                raise ApiError(409, f"space /spaces/{job.resource_id} is being made from snapshot {item.name} by job "
                                    f"/jobs/{job.id}; wait for it to finish, nothing was deleted")
        space = values.get("space") if action == "create" else item.space
        if space is None:       # a filesystem snapshot
            return
        held = Space.update(status=Space.status).where(Space.id == space.id, Space.status.not_in(BUSY)).execute()
        if not held:
            current = Space.get_or_none(Space.id == space.id)
            if current is None:
                raise ApiError(404, f"space /spaces/{space.id} is gone")
            raise busy(f"/spaces/{space.id}", current.status, "spaces", space.id)

"""Snapshots of a space's fileset (gpfsspacesnapshot) or of a whole filesystem
(gpfsfilesystemsnapshot, named by its exposer)."""
from service.api.cj import invalid
from service.api.views import View

NEEDS = {"gpfsspacesnapshot": ("space", "exposer"), "gpfsfilesystemsnapshot": ("exposer", "space")}


class SnapshotView(View):
    collection_methods = ("GET", "POST")
    item_methods = ("GET", "DELETE")

    def check_create(self, values, retried=None):
        needed, unwanted = NEEDS[values["type"]]
        errors = {}
        if not values.get(needed):
            errors[needed] = f"required for a {values['type']}"
        elif values[needed].status != "ACTIVE":
            errors[needed] = f"{values[needed].name} is {values[needed].status}, not ACTIVE"
        if values.get(unwanted):
            errors[unwanted] = f"not used by a {values['type']}"
        if errors:
            raise invalid(errors)
        values.setdefault(unwanted, None)

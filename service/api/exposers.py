"""Exposers: the filesystems themselves (gpfsnative, recorded by populate) and the NFS and
SMB shares of folders on them (nfs, cifs), published by jobs through service/shares."""
import hashlib

from service import context, shares
from service.api.cj import ApiError, invalid
from service.api.views import View
from service.db import lock
from service.models import Exposer
from service.shares import rules
from service.tasks.exposers import folder_problem, spaces_using

EXPORT_IDS = range(100, 65536)      # NFS-Ganesha keeps 0 for its pseudo root; low ids for hand-made exports


def other_type_fields(kind, values):
    """422 details for the fields of another share type given a value."""
    foreign = {name for fields in shares.TYPE_FIELDS.values() for name in fields} - set(
        shares.TYPE_FIELDS.get(kind, ()))
    return {name: f"not used by a{'n' if kind[0] in 'aeiou' else ''} {kind} exposer"
            for name in sorted(foreign) if values.get(name) is not None}


def export_id(name):
    """The first free export id from a stable start derived from the share's name."""
    start = int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(EXPORT_IDS)
    taken = {i for (i,) in Exposer.select(Exposer.export_id).where(Exposer.export_id.is_null(False)).tuples()}
    for step in range(len(EXPORT_IDS)):
        candidate = EXPORT_IDS[(start + step) % len(EXPORT_IDS)]
        if candidate not in taken:
            return candidate
    raise ApiError(507, "every NFS export id is taken")


class ExposerView(View):
    collection_methods = ("GET", "POST")
    item_methods = ("GET", "PATCH", "DELETE")

    def check_create(self, values, retried=None):
        kind = values["type"]
        if kind not in shares.SHARE_TYPES:
            raise invalid({"type": "gpfsnative exposers are the configured filesystems, recorded by "
                                   "`pixstor-mgmt populate`; create nfs or cifs exposers"})
        self._check_serving(kind, lambda why: invalid({"type": why}))
        errors = other_type_fields(kind, values)
        for name in shares.REQUIRED[kind]:
            if values.get(name) is None:
                errors[name] = f"required for an {kind} exposer"
        if kind == "cifs":
            try:
                rules.share_name(values["name"])
            except ValueError as exc:
                errors["name"] = str(exc)
        if values.get("path") is None:
            errors["path"] = f"required for an {kind} exposer"
        elif "path" not in errors:
            why = folder_problem(values["path"])
            if why:
                errors["path"] = why
        if errors:
            raise invalid(errors)
        for name, value in shares.DEFAULTS[kind].items():
            if values.get(name) is None:
                values[name] = value
        values["mountpoint"] = values["path"]

    def guard(self, action, values, item):
        if action != "create":
            return
        # names compared without case (Samba's share names are) and export ids handed out one
        # request at a time, from here to the commit, in every API process
        lock("pixstor: exposer names and export ids")
        kind, exclude = values["type"], item.id if item else ""
        same = [e for e in Exposer.select().where(Exposer.type == kind, Exposer.id != exclude)
                if e.name.lower() == values["name"].lower()]
        if same:
            raise ApiError(409, f"{kind} exposer {same[0].name} (/exposers/{same[0].id}) has the same name up to case",
                           {"name": "already in use"})
        if kind == "nfs":
            twin = Exposer.get_or_none(Exposer.type == "nfs", Exposer.path == values["path"], Exposer.id != exclude)
            if twin is not None:
                raise ApiError(409, f"{values['path']} is already exported by nfs exposer {twin.name} "
                                    f"(/exposers/{twin.id}): change its clients instead", {"path": "already exported"})
            values["export_id"] = item.export_id if item and item.export_id else export_id(values["name"])

    def check_update(self, item, values):
        if item.type not in shares.SHARE_TYPES:
            errors = {name: "a gpfsnative exposer's only writable fields are comment and extras"
                      for name in values if name not in ("comment", "extras")}
            if errors:
                raise invalid(errors)
            return False
        errors = other_type_fields(item.type, values)
        errors.update({name: f"required for an {item.type} exposer: it cannot be emptied"
                       for name in shares.REQUIRED[item.type] if name in values and values[name] is None})
        if errors:
            raise invalid(errors)
        changed = [name for name in shares.TYPE_FIELDS[item.type]
                   if name in values and values[name] != getattr(item, name)]
        if changed:
            self._check_serving(item.type, lambda why: ApiError(409, f"{why}: nothing was changed"))
        return bool(changed)

    def check_delete(self, item, force):
        if item.type not in shares.SHARE_TYPES:
            raise ApiError(409, f"exposer {item.name} is filesystem {item.name} itself: it is recorded by "
                                "`pixstor-mgmt populate` from the configuration, not deleted through the API")
        users = spaces_using(item)
        if users and not force:
            named = ", ".join(f"{s.name} (/spaces/{s.id})" for s in users)
            raise ApiError(409, f"{item.type} exposer {item.name} is used by spaces {named}: nothing was deleted; "
                                "delete with ?force=true to withdraw the share anyway")
        self._check_serving(item.type, lambda why: ApiError(409, f"{why}: nothing was deleted"))

    @staticmethod
    def _check_serving(kind, error):
        if shares.backend_name(context.settings, kind) == "none":
            raise error(f"{kind} shares are turned off on this server ([shares] {shares.SETTING[kind]} = \"none\")")


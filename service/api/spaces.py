"""Spaces: an independent fileset at {mountpoint}/{relativepath}, placed by its
profile's pool, laid out from templates, capped by a quota."""
import os
import weakref

import bottle
import peewee

from service import context, inputs, security
from service.api.cj import ApiError, invalid
from service.api.views import BUSY, Action, View, active_job, busy
from service.db import lock
from service.models import Datastore, Profile, Snapshot, Space, database
from service.storage.tree import SERVICE_FOLDER, SNAPSHOTS
from service.tasks.exposers import shares_inside

HIDDEN_FOLDERS = {SNAPSHOTS, SERVICE_FOLDER}


def normalise_relativepath(text):
    """'projects//x/./y/' -> 'projects/x/y'; ValueError for anything leaving the mountpoint."""
    if text.startswith("/"):
        raise ValueError("must be relative to the exposers' mountpoint (no leading /)")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError("must not contain '..'")
    if not parts:
        raise ValueError("must name a folder below the mountpoint")
    if HIDDEN_FOLDERS & set(parts):
        raise ValueError(f"must not use the reserved folder names {', '.join(sorted(HIDDEN_FOLDERS))}")
    inputs.path_components(parts)
    return "/".join(parts)


def space_path(mountpoint, relativepath):
    return os.path.join(mountpoint, relativepath)


def overlapping_space(relativepath, filesystem, exclude_id=""):
    """The space on `filesystem` whose relativepath is `relativepath`, or lies inside or
    around it (one fileset inside another's tree), or None. The one overlap rule."""
    ancestors = ["/".join(relativepath.split("/")[:n]) for n in range(1, relativepath.count("/") + 1)]
    if _code_point_order():
        # exactly the paths starting with "relativepath/" ("/" is just below "0"), a range the
        # relativepath index answers
        inside = (Space.relativepath > relativepath + "/") & (Space.relativepath < relativepath + "0")
    else:
        # LIKE (not ILIKE) so that an index can serve it where the collation allows; its
        # wildcards in the path only widen the match, decided exactly below
        inside = peewee.Expression(Space.relativepath, peewee.OP.LIKE, relativepath + "/%")
    # the spaces by path first (the relativepath index; a join with the filesystem let
    # PostgreSQL start from the profile and filter every space of it), then their filesystems
    clash = [other for other in Space.select(Space.id, Space.name, Space.relativepath, Space.profile)
             .where(Space.relativepath.in_(ancestors + [relativepath]) | inside, Space.id != exclude_id)
             if other.relativepath in ancestors + [relativepath] or other.relativepath.startswith(relativepath + "/")]
    if not clash:
        return None
    profiles = {profile_id for (profile_id,) in Profile.select(Profile.id).join(
        Datastore, on=(Profile.datastore == Datastore.id)).where(
        Profile.id.in_([other.profile_id for other in clash]), Datastore.filesystem == filesystem).tuples()}
    return next((other for other in clash if other.profile_id in profiles), None)


_ORDERS = weakref.WeakKeyDictionary()


def _code_point_order():
    """Does the database compare text by code point (SQLite; PostgreSQL with a C collation),
    so that a prefix is a range of its index? Asked once per database."""
    obj = database.obj
    if obj not in _ORDERS:
        if isinstance(obj, peewee.SqliteDatabase):
            _ORDERS[obj] = True
        else:
            collation = database.execute_sql(
                "SELECT datcollate FROM pg_database WHERE datname = current_database()").fetchone()[0]
            _ORDERS[obj] = collation.split(".")[0] in ("C", "POSIX") and collation.split(".")[-1].lower() in (
                "c", "posix", "utf8", "utf-8")
    return _ORDERS[obj]


def overlap_message(relativepath, other):
    how = "is already used by" if other.relativepath == relativepath else "overlaps"
    return f"relativepath {relativepath} {how} space {other.name} ({other.relativepath}, /spaces/{other.id})"


IEC_UNITS = (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def show_size(size):
    """'4GiB' for 4294967296; bytes when no binary unit divides it."""
    for unit, factor in IEC_UNITS:
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size} bytes"


def size_below_minimum(size):
    """Why `size` is refused as below storage.min_size, or None. A number below 1 MiB is no
    quota anyone means in bytes: the message then names the unit the user probably left out,
    the smallest binary unit that makes the number at least 1 GiB and the minimum (4 -> 4GiB,
    2000 -> 2000MiB)."""
    minimum = context.settings.storage.min_size
    if size is None or size >= minimum:
        return None
    meant = next((unit for unit, factor in reversed(IEC_UNITS)
                  if size * factor >= max(minimum, 1 << 30)), None) if size < 1 << 20 else None
    hint = f"; a size without a unit is bytes: did you mean {size}{meant}?" if meant else ""
    return f"{size} bytes is below the minimum space size of {show_size(minimum)} ({minimum} bytes){hint}"


def hold_snapshot(snapshot):
    """The snapshot a new space starts from stays while the space's create is written: a
    conditional UPDATE of its row, in the write's transaction, unless a job of its own holds it
    (its delete: then 409). A snapshot's delete refuses while the space's job runs
    (SnapshotView.guard)."""
    held = Snapshot.update(status=Snapshot.status).where(Snapshot.id == snapshot.id,
                                                         Snapshot.status.not_in(BUSY)).execute()
    if not held:
        current = Snapshot.get_or_none(Snapshot.id == snapshot.id)
        if current is None:
            raise invalid({"source_snapshot": f"snapshot /snapshots/{snapshot.id} is gone"})
        raise busy(f"/snapshots/{snapshot.id}", current.status, "snapshots", snapshot.id)


def force_requested():
    return bottle.request.query.get("force", "false").lower() in ("1", "true", "yes")


class SpaceView(View):
    collection_methods = ("GET", "POST")
    item_methods = ("GET", "PATCH", "DELETE")

    def check_create(self, values, retried=None):
        errors = {}
        too_small = size_below_minimum(values.get("size"))
        if too_small:
            errors["size"] = too_small
        profile = values["profile"]
        filesystem = profile.datastore.filesystem
        longest = max(len(p) for p in context.filesystem(filesystem).pools)
        if len(values["name"]) + longest + len("--12345678") > inputs.NAME_BYTES:
            # fileset names {pool}-{name} and {pool}-{name}-{8 hex} must stay within 255 bytes
            errors["name"] = (f"must be at most {inputs.NAME_BYTES - longest - 10} characters on filesystem "
                              f"{filesystem}, so that its fileset names fit in {inputs.NAME_BYTES} bytes")
        try:
            values["relativepath"] = normalise_relativepath(values["relativepath"])
        except ValueError as exc:
            errors["relativepath"] = str(exc)
        native = [e for e in values["exposers"] if e.type == "gpfsnative"]
        if not any(e.name == filesystem for e in native):
            errors["exposers"] = (f"must include the gpfsnative exposer of filesystem {filesystem}, "
                                  f"where profile {profile.name} places data")
        elif len(native) > 1:
            errors["exposers"] = "a space lives on one filesystem: give one gpfsnative exposer"
        else:
            idle = [e.name for e in values["exposers"] if e.status != "ACTIVE"]
            if idle:
                errors["exposers"] = f"exposer {idle[0]} is not ACTIVE"
        for template in values.get("templates") or []:
            if template.status != "ACTIVE":
                errors["templates"] = f"template {template.name} is {template.status}, not ACTIVE"
        source = values.get("source_snapshot")
        if source is not None:
            if values.get("templates"):
                errors["source_snapshot"] = ("a space starts from a snapshot or from templates, not both: give "
                                             "source_snapshot or templates")
            elif source.space is None:
                errors["source_snapshot"] = f"snapshot {source.name} is of a filesystem, not of a space"
            elif source.status != "ACTIVE":
                errors["source_snapshot"] = f"snapshot {source.name} is {source.status}, not ACTIVE"
            elif source.space.profile.datastore.filesystem != filesystem:
                errors["source_snapshot"] = (f"snapshot {source.name} is on filesystem "
                                             f"{source.space.profile.datastore.filesystem}; the space is made on "
                                             f"{filesystem}, where profile {profile.name} places data")
        if values.get("permissions") is None:
            values["permissions"] = security.DEFAULT_PERMISSIONS
        if not errors:
            self._check_place(values, filesystem, retried, errors)
        if errors:
            raise invalid(errors)

    def _check_place(self, values, filesystem, retried, errors):
        # here as fast feedback, and first: a path another space took is 409, not "already exists"
        self._refuse_overlap(values, filesystem, retried)
        for exposer in values["exposers"]:
            root = os.path.realpath(exposer.mountpoint)
            path = space_path(exposer.mountpoint, values["relativepath"])
            if os.path.commonpath([root, os.path.realpath(path)]) != root:
                errors["relativepath"] = f"leaves the mountpoint of exposer {exposer.name}"
            elif os.path.lexists(path) and not (retried and retried.fileset and context.driver().fileset_at(
                    context.filesystem(filesystem), path) == retried.fileset):
                errors["relativepath"] = f"{path} already exists"
                # the folder of a space created since the check above
                self._refuse_overlap(values, filesystem, retried)

    @staticmethod
    def _refuse_overlap(values, filesystem, retried):
        other = overlapping_space(values["relativepath"], filesystem, retried.id if retried else "")
        if other is not None:
            raise ApiError(409, overlap_message(values["relativepath"], other), {"relativepath": "already in use"})

    def guard(self, action, values, item):
        if action == "create":
            # the overlap check and the insert as one step: creates of spaces on one filesystem
            # run one at a time from here to their commit, in every API process
            filesystem = values["profile"].datastore.filesystem
            lock(f"pixstor: space placement on filesystem {filesystem}")
            self._refuse_overlap(values, filesystem, item)
            if values.get("source_snapshot") is not None:
                hold_snapshot(values["source_snapshot"])
            return
        # a space and its snapshots: one job at a time (a snapshot's job locks the space's row
        # with its claim, see SnapshotView.guard; this one has claimed the space's row already)
        job = active_job("snapshots", Snapshot.select(Snapshot.id).where(Snapshot.space == item.id))
        if job is not None:
            raise ApiError(409, f"space {item.name} has a snapshot job queued or running: /jobs/{job.id} "
                                f"({job.action} of /snapshots/{job.resource_id}); wait for it to finish, "
                                f"nothing was {'deleted' if action == 'delete' else 'changed'}")

    # POST /spaces/{id}/revert: service.api.app's item actions
    actions = {"revert": Action(
        summary="make the space's content its snapshot's (a job; every change since the snapshot is lost)",
        fields={"snapshot": "href or id of an ACTIVE snapshot of this space"},
        force="revert a space that changed since the snapshot was taken (else 409)")}

    def check_action(self, action, item, fields, force):
        """A revert's job parameters: {"snapshot": id, "force": bool}. 422 for a body without one
        snapshot of this space; 409 when the space is not ACTIVE, or changed since the snapshot
        was taken and `force` is not given (a revert loses every change since)."""
        unknown = set(fields) - set(self.actions[action].fields)
        if unknown:
            raise invalid({name: "unknown field; a revert takes snapshot only" for name in unknown})
        try:
            snapshot = self.plain(self.visible["source_snapshot"], fields.get("snapshot"))
        except ValueError as exc:
            raise invalid({"snapshot": str(exc)}) from None
        if snapshot.space_id != item.id:
            raise invalid({"snapshot": f"snapshot {snapshot.name} is not a snapshot of space {item.name}"})
        if snapshot.status != "ACTIVE":
            raise invalid({"snapshot": f"snapshot {snapshot.name} is {snapshot.status}, not ACTIVE"})
        if item.status != "ACTIVE" or not item.fileset:
            raise ApiError(409, f"space {item.name} is {item.status}, not ACTIVE: only an ACTIVE space is reverted; "
                                "nothing was changed")
        if not force:
            fs = context.filesystem(item.profile.datastore.filesystem)
            changed = context.driver().changed_since(fs, item.fileset, snapshot.name)
            if changed is not None:
                what = "its folder" if changed == "." else changed
                raise ApiError(409, f"space {item.name} changed since snapshot {snapshot.name} was taken ({what} "
                                    "did): a revert loses every change made since; nothing was changed; revert "
                                    "with ?force=true to lose them", {"snapshot": "the space changed since"})
        return {"snapshot": snapshot.id, "force": force}

    def check_update(self, item, values):
        if "permissions" in values and values["permissions"] is None:
            raise invalid({"permissions": f"cannot be emptied: give octal permissions (default "
                                          f"{security.DEFAULT_PERMISSIONS})"})
        # a new owner, group, permissions or acl is a job that applies all four to the whole space;
        # an owner, group or acl set to null is recorded only (what is on disk stays)
        secured = any(values.get(name) is not None and values[name] != getattr(item, name) for name in security.FIELDS)
        return self._check_resize(item, values) or secured

    def _check_resize(self, item, values):
        if "size" not in values or values["size"] == item.size:
            return False
        size = values["size"]
        too_small = size_below_minimum(size)
        if too_small:
            raise invalid({"size": too_small})
        if None not in (size, item.used) and size < item.used and not force_requested():
            raise ApiError(409, f"space {item.name} uses {item.used} bytes ({show_size(item.used)}, as last "
                                f"measured): a size of {size} bytes ({show_size(size)}) is below that; nothing "
                                "was changed; resize with ?force=true to shrink it anyway",
                           {"size": f"below the {item.used} bytes used"})
        return True

    def check_delete(self, item, force):
        if force:
            return
        shared = shares_inside(item)
        if shared:
            named = ", ".join(f"{e.type} {e.name} (/exposers/{e.id})" for e in shared)
            raise ApiError(409, f"space {item.name} is shared by exposers {named}: delete them first, or delete "
                                "with ?force=true to withdraw those shares with the space")
        snapshots = [s.name for s in item.snapshots]
        if snapshots:
            raise ApiError(409, f"space {item.name} has snapshots ({', '.join(sorted(snapshots))}): delete them "
                                "first, or delete with ?force=true")
        if item.fileset:
            fs = context.filesystem(item.profile.datastore.filesystem)
            if context.driver().holds_data(fs, item.fileset):
                raise ApiError(409, f"space {item.name} holds data: nothing was deleted; delete with "
                                    "?force=true to remove it with its data")

"""Share jobs (nfs and cifs exposers): publish a share, publish its changed access, withdraw it.

The folder a share exposes is checked again when the job runs (it may have been swapped for
a link meanwhile), walked from its filesystem's mountpoint without following links. The
backend (service/shares) writes the share's file and reloads the server, or puts the file
back and reloads again: a failed job leaves served what was served before.
"""
import logging

from service import context, shares
from service.models import Exposer, Space, SpaceExposer
from service.storage import StorageError
from service.storage.confined import Root, components, inside
from service.storage.tree import SERVICE_FOLDER
from service.tasks.runner import check_fence, fenced_write, handles

log = logging.getLogger(__name__)


def folder_problem(path):
    """Why `path` may not be shared, or None: it must be a real folder inside a filesystem's
    mountpoint, reached without a link, outside the service's own folders. The request and
    the job both ask."""
    filesystems = [e for e in Exposer.select().where(Exposer.type == "gpfsnative") if inside(path, e.mountpoint)]
    if not filesystems:
        known = ", ".join(sorted(e.mountpoint for e in Exposer.select().where(Exposer.type == "gpfsnative")))
        return f"{path} is not inside the mountpoint of a filesystem (gpfsnative exposer: {known or 'none'})"
    mountpoint = max((e.mountpoint for e in filesystems), key=len)
    if SERVICE_FOLDER in components(path, mountpoint):
        return f"{path} is inside the service's own folder {SERVICE_FOLDER}"
    try:
        with Root(mountpoint) as root, root.folder(path):
            return None
    except FileNotFoundError:
        return f"{path} is not a directory"
    except StorageError as exc:
        return str(exc)


def spaces_using(exposer):
    """The spaces that list `exposer` among their exposers, or that hold the folder it shares."""
    linked = Space.select().join(SpaceExposer, on=(SpaceExposer.space == Space.id)).where(
        SpaceExposer.exposer == exposer.id)
    found = {space.id: space for space in linked}
    if exposer.path and exposer.type in shares.SHARE_TYPES:
        parts = exposer.path.split("/")
        around = ["/".join(parts[:n]) for n in range(2, len(parts) + 1)]
        found.update((space.id, space) for space in Space.select().where(Space.path.in_(around)))
    return sorted(found.values(), key=lambda space: space.name)


def shares_inside(space):
    """The nfs and cifs exposers of folders at or below the space's path."""
    if not space.path:
        return []
    candidates = Exposer.select().where(Exposer.type.in_(shares.SHARE_TYPES),
                                        (Exposer.path == space.path) | Exposer.path.startswith(space.path + "/"))
    # LIKE treats _ as a wildcard: the rule decides
    return sorted((e for e in candidates if inside(e.path, space.path)), key=lambda e: (e.type, e.name))


def serving(exposer):
    backend = shares.backend(context.settings, exposer.type)
    if backend is None:
        raise StorageError(f"{exposer.type} shares are turned off on this server "
                           f"([shares] {shares.SETTING[exposer.type]} = \"none\")")
    return backend


def publish(exposer, changes=None):
    why = folder_problem(exposer.path)
    if why:
        raise StorageError(f"not sharing {exposer.path}: {why}")
    check_fence()
    log.info("publishing %s share %s of %s", exposer.type, exposer.name, exposer.path)
    serving(exposer).publish(shares.definition(exposer, changes))


def withdraw(exposer):
    check_fence()
    log.info("withdrawing %s share %s of %s", exposer.type, exposer.name, exposer.path)
    serving(exposer).withdraw(shares.definition(exposer))
    with fenced_write():
        SpaceExposer.delete().where(SpaceExposer.exposer == exposer.id).execute()
        exposer.delete_instance()


@handles("exposers", "create")
def create_exposer(exposer, params):
    publish(exposer)


@handles("exposers", "update")
def update_exposer(exposer, params):
    access = {name: value for name, value in params.items() if name in shares.TYPE_FIELDS[exposer.type]}
    publish(exposer, access)
    with fenced_write():
        Exposer.update(**params).where(Exposer.id == exposer.id).execute()


@handles("exposers", "delete")
def delete_exposer(exposer, params):
    users = spaces_using(exposer)
    if users and not params.get("force"):   # a space made since the request was checked
        raise StorageError(f"used by spaces {', '.join(s.name for s in users)}; delete with force")
    withdraw(exposer)

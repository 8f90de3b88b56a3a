"""Template jobs: build (copy the model into the template store) and delete.

The model is checked again when the build runs (it may have been swapped after the request)
and walked from its allowed root without following links; the copy is built aside and
renamed into place, so the store never holds half a template.
"""
import logging
import os

from service import context, inputs
from service.models import Space, Template
from service.storage import MARKER, StorageError
from service.storage.confined import Root, below, inside, write_text_at
from service.storage.tree import SERVICE_FOLDER, copy_into
from service.tasks.runner import check_fence, fenced_write, handles

log = logging.getLogger(__name__)
BUILDING = ".building"


def allowed_roots():
    """Where a model may live: the filesystems' mountpoints and the configured template sources."""
    storage = context.settings.storage
    return [os.path.normpath(fs.mountpoint) for fs in storage.filesystems] + [
        os.path.normpath(s) for s in storage.template_sources]


def model_problem(location):
    """Why `location` may not be a template model (by its path), or None. The request and
    the job both ask; the job then walks it without following links."""
    storage = context.settings.storage
    mountpoints = [os.path.normpath(fs.mountpoint) for fs in storage.filesystems]
    if not isinstance(location, str) or not os.path.isabs(location):
        return "must be an absolute path on the server"
    location = os.path.normpath(location)
    try:
        inputs.path_components(location.split("/"))
    except ValueError as exc:
        return str(exc)
    if not any(inside(location, root) for root in allowed_roots()):
        return ("must lie inside a filesystem mountpoint or a configured template source: "
                + ", ".join(allowed_roots()))
    if inside(location, storage.template_store) or inside(storage.template_store, location):
        return "must not contain, or lie inside, the template store"   # a copy into itself
    for mountpoint in mountpoints:
        if inside(mountpoint, location):
            return f"must not be, or hold, the mountpoint {mountpoint} (it would copy every space)"
        if inside(location, os.path.join(mountpoint, SERVICE_FOLDER)):
            return "must not lie inside the service's own folder"
    # a model around a space would copy that project's data into every space made from it
    candidates = Space.select(Space.name, Space.path).where(
        (Space.path == location) | Space.path.startswith(location.rstrip("/") + "/"))
    held = next((s for s in candidates if inside(s.path, location)), None)   # LIKE's _ is a wildcard
    if held is not None:
        return f"must not hold space {held.name} ({held.path})"
    return None


def model_root(location):
    """The allowed root a model is walked from: the deepest one holding it."""
    roots = [r for r in allowed_roots() if inside(os.path.normpath(location), r)]
    return max(roots, key=len)


def _model_filesystem(location):
    """The populated filesystem a model lives in, or None for a template source outside them."""
    for fs in context.settings.storage.filesystems:
        if inside(os.path.normpath(location), fs.mountpoint):
            return context.filesystem(fs.name)
    return None


@handles("templates", "create")
def build_template(template, params):
    store = context.settings.storage.template_store
    destination = os.path.join(store, template.id)
    with Root(store) as root:
        if template.store_path and root.is_folder(destination):
            log.info("template %s is already built at %s", template.name, destination)
            return
        source = template.template_location
        problem = model_problem(source)
        if problem:
            raise StorageError(f"template_location {source} {problem}")
        driver = context.driver()
        building = destination + BUILDING
        root.remove(building)   # what an interrupted or failed build left
        try:
            with Root(model_root(source)) as sources, sources.folder(source) as model, \
                    root.folder(building, create=True, mode=0o700) as copy:
                log.info("copying model %s into the template store", source)
                copy_into(model, copy, driver.keep_setid)
                check_fence()
                for relative, pool in driver.model_filesets(_model_filesystem(source), source,
                                                            model_root(source)).items():
                    log.info("model folder %s is a dependent fileset in pool %s", relative, pool)
                    with below(copy, relative) as folder:
                        write_text_at(folder, MARKER, pool + "\n")
            check_fence()
            root.remove(destination)
            root.rename(building, destination)
        except Exception as exc:
            if not getattr(exc, "superseded", False):
                check_fence()           # a newer run's .building is that run's
                root.remove(building)   # a failed build leaves nothing to block the next one
            raise
    with fenced_write():
        Template.update(store_path=destination, template_location=None).where(Template.id == template.id).execute()
    log.info("template %s built at %s", template.name, destination)


@handles("templates", "delete")
def delete_template(template, params):
    store = context.settings.storage.template_store
    destination = os.path.join(store, template.id)
    log.info("removing %s from the template store", destination)
    with Root(store) as root:
        for leftover in (destination, destination + BUILDING):
            check_fence()
            root.remove(leftover)
    with fenced_write():
        template.delete_instance()

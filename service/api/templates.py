"""Templates: a model directory tree copied into the template store by a builder job."""
import os

from service import context
from service.api.cj import ApiError, invalid
from service.api.views import View


def allowed_roots():
    """Where a model may live: the filesystems' mountpoints and the configured template sources."""
    roots = [fs.mountpoint for fs in context.settings.storage.filesystems]
    return [os.path.realpath(r) for r in roots + list(context.settings.storage.template_sources)]


class TemplateView(View):
    collection_methods = ("GET", "POST")
    item_methods = ("GET", "DELETE")

    def check_create(self, values, retried=None):
        location = values["template_location"]
        roots = allowed_roots()
        if not os.path.isabs(location):
            why = "must be an absolute path on the server"
        elif not any(os.path.commonpath([r, os.path.realpath(location)]) == r for r in roots):
            why = "must lie inside a filesystem mountpoint or a configured template source: " + ", ".join(roots)
        elif not os.path.isdir(location):
            why = f"{location} is not a directory"
        elif _overlaps(os.path.realpath(location), os.path.realpath(context.settings.storage.template_store)):
            # copying a tree into itself would never end
            why = "must not contain, or lie inside, the template store"
        else:
            return
        raise invalid({"template_location": why})

    def check_delete(self, item, force):
        users = [s.name for s in item.spaces]
        if users:
            raise ApiError(409, f"template {item.name} is applied to spaces ({', '.join(sorted(users))}); "
                                "delete those spaces first")


def _overlaps(a, b):
    return os.path.commonpath([a, b]) in (a, b)

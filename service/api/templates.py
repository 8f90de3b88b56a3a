"""Templates: a model directory tree copied into the template store by a builder job."""
from service.api.cj import ApiError, invalid
from service.api.views import View
from service.storage import StorageError
from service.storage.confined import Root
from service.tasks.templates import model_problem, model_root


class TemplateView(View):
    collection_methods = ("GET", "POST")
    item_methods = ("GET", "PATCH", "DELETE")

    def check_create(self, values, retried=None):
        # the builder job asks the same again when it runs: the model may change meanwhile
        location = values["template_location"]
        why = model_problem(location)
        if why is None:
            try:
                with Root(model_root(location)) as root, root.folder(location):
                    return
            except FileNotFoundError:
                why = f"{location} is not a directory"
            except StorageError as exc:
                why = str(exc)
        raise invalid({"template_location": why})

    def check_delete(self, item, force):
        users = [s.name for s in item.spaces]
        if users:
            raise ApiError(409, f"template {item.name} is applied to spaces ({', '.join(sorted(users))}); "
                                "delete those spaces first")

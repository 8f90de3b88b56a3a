"""Template jobs: build (copy the model into the template store) and delete."""
import logging
import os
import shutil

from service import context
from service.models import Template
from service.storage import MARKER
from service.tasks.runner import handles

log = logging.getLogger(__name__)


def _model_filesystem(location):
    """The populated filesystem a model lives in, or None for a template source outside them."""
    real = os.path.realpath(location)
    for fs in context.settings.storage.filesystems:
        root = os.path.realpath(fs.mountpoint)
        if os.path.commonpath([root, real]) == root:
            return context.filesystem(fs.name)
    return None


@handles("templates", "create")
def build_template(template, params):
    destination = os.path.join(context.settings.storage.template_store, template.id)
    if template.store_path and os.path.isdir(destination):
        log.info("template %s is already built at %s", template.name, destination)
        return
    source = template.template_location
    if not os.path.isdir(source):
        raise FileNotFoundError(f"template model {source} is not a directory")
    driver = context.driver()
    # build beside the store entry and rename: a crash never leaves a half-built template
    building = destination + ".building"
    shutil.rmtree(building, ignore_errors=True)
    os.makedirs(building)
    log.info("copying model %s into the template store", source)
    driver.copy_tree(source, building)
    for relative, pool in driver.model_filesets(_model_filesystem(source), source).items():
        log.info("model folder %s is a dependent fileset in pool %s", relative, pool)
        with open(os.path.join(building, relative, MARKER), "w") as marker:
            marker.write(pool + "\n")
    shutil.rmtree(destination, ignore_errors=True)
    os.rename(building, destination)
    Template.update(store_path=destination, template_location=None).where(Template.id == template.id).execute()
    log.info("template %s built at %s", template.name, destination)


@handles("templates", "delete")
def delete_template(template, params):
    if template.store_path:
        log.info("removing %s from the template store", template.store_path)
        shutil.rmtree(template.store_path, ignore_errors=True)
    template.delete_instance()

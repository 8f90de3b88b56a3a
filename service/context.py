"""This process's settings and storage driver, set once at start-up by the CLI."""
from service import storage
from service.models import Datastore, Exposer

settings = None
_driver = None


def setup(new_settings):
    global settings, _driver
    settings, _driver = new_settings, None


def driver():
    global _driver
    if _driver is None:
        _driver = storage.get_driver(settings.storage)
    return _driver


def filesystem(name):
    """The driver's view of a populated filesystem, from what populate recorded."""
    exposer = Exposer.get(Exposer.name == name, Exposer.type == "gpfsnative")
    pools = [d.pool for d in Datastore.select().where(Datastore.filesystem == name).order_by(Datastore.name)]
    return storage.Filesystem(name=name, mountpoint=exposer.mountpoint, pools=tuple(pools))

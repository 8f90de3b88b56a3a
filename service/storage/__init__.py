"""Storage drivers behind one interface (see base.Driver): posix, btrfs, gpfs."""
from __future__ import annotations

from .base import MARKER, SNAPSHOTS, Driver, Filesystem, FilesetInfo, NotEmpty, StorageError
from .btrfs import BtrfsDriver
from .gpfs import GpfsDriver
from .posix import PosixDriver

DRIVERS: dict[str, type[Driver]] = {"posix": PosixDriver, "btrfs": BtrfsDriver, "gpfs": GpfsDriver}

__all__ = ["MARKER", "SNAPSHOTS", "DRIVERS", "Driver", "Filesystem", "FilesetInfo", "NotEmpty",
           "StorageError", "get_driver"]


def get_driver(settings) -> Driver:
    """The driver named by settings.driver."""
    cls = DRIVERS.get(settings.driver)
    if cls is None:
        raise ValueError(f"unknown storage driver {settings.driver!r}; "
                         f"choose one of: {', '.join(sorted(DRIVERS))}")
    return cls(settings)

"""Shared fixtures for the storage driver tests."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

# `tests.btrfs_fixture` must import however pytest was started (it puts only this folder on
# sys.path); the repository root makes `tests` importable.
ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from service.storage import get_driver  # noqa: E402
from tests.btrfs_fixture import btrfs_mount, btrfs_support  # noqa: E402,F401

POOLS = ("sas1", "sata1")


def make_settings(driver: str, mountpoint: str, **gpfs) -> SimpleNamespace:
    return SimpleNamespace(
        driver=driver,
        template_store=os.path.join(mountpoint, ".templates"),
        filesystems=[SimpleNamespace(name="mmfs1", mountpoint=mountpoint, pools=list(POOLS))],
        gpfs=SimpleNamespace(command_prefix=gpfs.get("command_prefix", "/usr/lpp/mmfs/bin"),
                             timeout=gpfs.get("timeout", 300), sudo=gpfs.get("sudo", False)),
    )


@pytest.fixture(params=["posix", pytest.param("btrfs", marks=pytest.mark.btrfs)])
def local(request, tmp_path):
    """(driver, filesystem) for each driver that keeps filesets on this machine."""
    if request.param == "btrfs":
        mountpoint = request.getfixturevalue("btrfs_mount")
    else:
        mountpoint = str(tmp_path / "mmfs1")
        os.makedirs(mountpoint)
    driver = get_driver(make_settings(request.param, mountpoint))
    return driver, driver.discover()[0]

"""Shared fixtures for the storage driver tests."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# `tests.btrfs_fixture` must import however pytest was started (it puts only this folder on
# sys.path); the repository root makes `tests` importable.
ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from service.storage import get_driver  # noqa: E402
from tests.btrfs_fixture import btrfs_mount, btrfs_support  # noqa: E402,F401
from tests.storage.helpers import make_settings  # noqa: E402


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

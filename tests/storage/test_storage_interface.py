"""get_driver and the pieces of the interface the service relies on."""
from __future__ import annotations

import dataclasses
import json
import os

import pytest

from service.storage import (MARKER, SNAPSHOTS, Driver, Filesystem, NotEmpty, StorageError,
                             get_driver)
from service.storage.btrfs import BtrfsDriver
from service.storage.gpfs import GpfsDriver
from service.storage.posix import PosixDriver
from tests.storage.helpers import make_settings


@pytest.mark.parametrize("name, cls", [("posix", PosixDriver), ("btrfs", BtrfsDriver), ("gpfs", GpfsDriver)])
def test_get_driver_by_name(tmp_path, name, cls):
    driver = get_driver(make_settings(name, str(tmp_path)))
    assert type(driver) is cls and driver.name == name and isinstance(driver, Driver)


def test_unknown_driver_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match="'zfs'.*btrfs, gpfs, posix"):
        get_driver(make_settings("zfs", str(tmp_path)))


def test_interface_constants_and_types(tmp_path):
    assert (MARKER, SNAPSHOTS) == (".pixstor-fileset", ".snapshots")
    assert issubclass(NotEmpty, StorageError)
    fs = get_driver(make_settings("posix", str(tmp_path) + "/")).discover()[0]
    assert fs == Filesystem(name="mmfs1", mountpoint=str(tmp_path), pools=("sas1", "sata1"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fs.name = "other"
    error = StorageError("one line", details="the whole\nstory")
    assert str(error) == "one line" and error.details == "the whole\nstory"
    assert StorageError("alone").details == "alone"


def test_posix_records_are_plain_json_beside_the_data(tmp_path):
    driver = get_driver(make_settings("posix", str(tmp_path)))
    fs = driver.discover()[0]
    driver.create_fileset(fs, "sas1-a", str(tmp_path / "a"), "sas1")
    driver.set_quota(fs, "sas1-a", 1000, 900)
    folder = tmp_path / ".pixstor" / "filesets"
    assert os.listdir(folder) == ["sas1-a.json"]  # no temporary files left behind
    assert json.loads((folder / "sas1-a.json").read_text()) == {
        "name": "sas1-a", "path": str(tmp_path / "a"), "pool": "sas1", "parent": None,
        "hard": 1000, "soft": 900, "made": []}
    # the service's folders are its own: a member cannot replace or write them
    for path in (tmp_path / ".pixstor", folder):
        assert oct(os.stat(path).st_mode & 0o777) == oct(0o700)


def test_posix_snapshot_cleans_up_an_interrupted_copy(tmp_path):
    driver = get_driver(make_settings("posix", str(tmp_path)))
    fs = driver.discover()[0]
    space = tmp_path / "a"
    driver.create_fileset(fs, "sas1-a", str(space), "sas1")
    (space / "f").write_text("data")
    partial = space / SNAPSHOTS / ".s.partial"
    partial.mkdir(parents=True)
    (partial / "junk").write_text("half")
    snap = driver.create_snapshot(fs, "sas1-a", "s")
    assert sorted(os.listdir(space / SNAPSHOTS)) == [".s.modes", "s"]   # the snapshot and its modes
    assert sorted(os.listdir(snap)) == ["f"]

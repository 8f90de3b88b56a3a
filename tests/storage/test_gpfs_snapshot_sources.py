"""gpfs: a revert is IBM's mmrestorefs of the fileset snapshot; a new space from a snapshot is a
copy from the snapshot's path; when a snapshot was taken is mmlssnapshot's `created`. Exact
command lines, against the fake mm* commands."""
from __future__ import annotations

import os
import time

import pytest

from service.storage import StorageError
from tests.storage.test_gpfs_driver import (ASSETS, LIST, SNAKE, fake, gpfs, junction, mm,  # noqa: F401
                                            mountpoint)
from tests.storage.helpers import write


def test_revert_is_mmrestorefs_of_the_fileset_snapshot(gpfs, fake):  # noqa: F811
    driver, fs = gpfs
    fake.filesets(SNAKE)
    fake.snapshots("snake-snap")
    driver.revert_fileset(fs, SNAKE, "snake-snap")
    assert fake.calls() == [LIST, mm("mmlssnapshot", "mmfs1", "-Y"),
                            mm("mmrestorefs", "mmfs1", "snake-snap", "-j", SNAKE)]


def test_revert_to_a_snapshot_the_fileset_lacks_runs_nothing(gpfs, fake):  # noqa: F811
    driver, fs = gpfs
    fake.filesets(SNAKE)
    fake.snapshots("nightly-2025-03-05")     # a global snapshot, not the fileset's
    with pytest.raises(StorageError, match=f"fileset {SNAKE} has no snapshot nightly-2025-03-05"):
        driver.revert_fileset(fs, SNAKE, "nightly-2025-03-05")
    assert [c[0] for c in fake.calls()] == [LIST[0], mm("mmlssnapshot")[0]]


def test_a_failed_mmrestorefs_fails_the_revert_with_its_words(gpfs, fake):  # noqa: F811
    driver, fs = gpfs
    fake.filesets(SNAKE)
    fake.snapshots("snake-snap")
    fake.reply("mmrestorefs", err="mmrestorefs: Fileset sas1-sleepy-snake is not linked.\n", rc=1)
    with pytest.raises(StorageError, match="is not linked"):
        driver.revert_fileset(fs, SNAKE, "snake-snap")


def test_when_a_snapshot_was_taken_is_mmlssnapshots_created(gpfs, fake):  # noqa: F811
    driver, fs = gpfs
    fake.filesets(SNAKE)
    fake.snapshots("snake-snap")
    expected = int(time.mktime(time.strptime("Wed Mar 5 11:02:45 2025", "%a %b %d %H:%M:%S %Y"))) * 10 ** 9
    assert driver.snapshot_taken(fs, SNAKE, "snake-snap") == expected
    assert fake.calls()[-1] == mm("mmlssnapshot", "mmfs1", "-Y")


def test_changed_since_names_what_changed_after_the_snapshot(gpfs, fake, mountpoint):  # noqa: F811
    driver, fs = gpfs
    fake.filesets(SNAKE)
    fake.snapshots("snake-snap")
    os.makedirs(junction(mountpoint))
    old = time.mktime(time.strptime("Tue Mar 4 10:00:00 2025", "%a %b %d %H:%M:%S %Y"))
    os.utime(junction(mountpoint), (old, old))
    # ctime cannot be set back: everything made now is newer than the 2025 snapshot
    assert driver.changed_since(fs, SNAKE, "snake-snap") == "."


def test_a_new_fileset_from_a_snapshot_copies_the_snapshot_path(gpfs, fake, mountpoint):  # noqa: F811
    """The new fileset (linked by an earlier run) gets a copy of {junction}/.snapshots/{name},
    links copied as links."""
    driver, fs = gpfs
    fake.filesets(SNAKE, ASSETS)
    snapshot = junction(mountpoint, ".snapshots", "snake-snap")
    write(os.path.join(snapshot, "shots", "plate.txt"), "plate\n")
    os.symlink("/etc", os.path.join(snapshot, "shots", "etc"))
    os.makedirs(junction(mountpoint, "assets"))
    driver.create_fileset_from_snapshot(fs, ASSETS, junction(mountpoint, "assets"), "sata1", SNAKE, "snake-snap")
    with open(junction(mountpoint, "assets", "shots", "plate.txt")) as f:
        assert f.read() == "plate\n"
    assert os.readlink(junction(mountpoint, "assets", "shots", "etc")) == "/etc"
    assert not any(c[0].endswith(("mmcrfileset", "mmlinkfileset")) for c in fake.calls())

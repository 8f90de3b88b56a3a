"""btrfs only: what the kernel enforces (quota, read-only snapshots) and what is left behind."""
from __future__ import annotations

import os
import subprocess

import pytest

from service.storage import MARKER, StorageError, get_driver
from service.storage.btrfs import is_subvolume

from tests.storage.helpers import make_settings

pytestmark = pytest.mark.btrfs
MiB = 1 << 20


@pytest.fixture
def btrfs_space(btrfs_mount):
    driver = get_driver(make_settings("btrfs", btrfs_mount))
    fs = driver.discover()[0]
    path = os.path.join(btrfs_mount, "projects", "sleepy_snake")
    driver.create_fileset(fs, "sas1-sleepy-snake", path, "sas1")
    return driver, fs, path


def dd(target: str, mib: int) -> subprocess.CompletedProcess:
    return subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={mib}", "conv=fsync"],
                          capture_output=True, text=True)


def subvolume_paths(mountpoint: str) -> list[str]:
    listing = subprocess.run(["btrfs", "subvolume", "list", mountpoint], capture_output=True,
                             text=True, check=True).stdout
    return [line.split(" path ", 1)[1] for line in listing.splitlines() if " path " in line]


def test_fileset_is_a_subvolume_and_a_dependent_one_nests(btrfs_space):
    driver, fs, path = btrfs_space
    driver.create_fileset(fs, "sata1-dep", os.path.join(path, "assets"), "sata1", parent="sas1-sleepy-snake")
    assert is_subvolume(path) and is_subvolume(os.path.join(path, "assets"))
    assert sorted(subvolume_paths(fs.mountpoint)) == ["projects/sleepy_snake", "projects/sleepy_snake/assets"]


def test_writes_past_the_quota_fail_until_it_is_raised(btrfs_space):
    driver, fs, path = btrfs_space
    driver.set_quota(fs, "sas1-sleepy-snake", 8 * MiB, 7 * MiB)
    assert driver.quota(fs, "sas1-sleepy-snake") == (8 * MiB, 7 * MiB)
    refused = dd(os.path.join(path, "big"), 16)
    assert refused.returncode != 0 and "Disk quota exceeded" in refused.stderr
    driver.set_quota(fs, "sas1-sleepy-snake", 64 * MiB, 57 * MiB)
    allowed = dd(os.path.join(path, "big"), 16)
    assert allowed.returncode == 0, allowed.stderr
    assert 16 * MiB <= driver.usage(fs, "sas1-sleepy-snake") < 17 * MiB


def test_quota_is_enabled_on_first_need(btrfs_space):
    driver, fs, path = btrfs_space
    subprocess.run(["btrfs", "quota", "disable", fs.mountpoint], check=True)
    with open(os.path.join(path, "existing"), "wb") as f:
        f.write(b"e" * MiB)
    assert MiB <= driver.usage(fs, "sas1-sleepy-snake") < 2 * MiB  # rescanned: old data counts
    driver.set_quota(fs, "sas1-sleepy-snake", 4 * MiB, 3 * MiB)
    assert "Disk quota exceeded" in dd(os.path.join(path, "big"), 8).stderr


def test_snapshot_keeps_the_old_bytes(btrfs_space):
    driver, fs, path = btrfs_space
    assert dd(os.path.join(path, "plate.exr"), 2).returncode == 0
    snap = driver.create_snapshot(fs, "sas1-sleepy-snake", "before")
    with open(os.path.join(path, "plate.exr"), "r+b") as f:
        f.write(b"\xff" * 4096)
    with open(os.path.join(snap, "plate.exr"), "rb") as f:
        assert f.read(4096) == b"\0" * 4096
    assert subprocess.run(["btrfs", "property", "get", "-ts", snap, "ro"], capture_output=True,
                          text=True, check=True).stdout.strip() == "ro=true"


def test_forced_delete_leaves_no_subvolume(btrfs_space):
    driver, fs, path = btrfs_space
    driver.create_fileset(fs, "sata1-dep", os.path.join(path, "assets"), "sata1", parent="sas1-sleepy-snake")
    assert dd(os.path.join(path, "assets", "data"), 1).returncode == 0
    driver.create_snapshot(fs, "sas1-sleepy-snake", "one")
    driver.create_snapshot(fs, "sas1-sleepy-snake", "two")
    assert len(subvolume_paths(fs.mountpoint)) == 6  # space, dependent, 2 snapshots of each
    driver.delete_fileset(fs, "sas1-sleepy-snake", force=True)
    assert not [p for p in subvolume_paths(fs.mountpoint) if p.startswith("projects/sleepy_snake")]
    assert not os.path.lexists(path)


def test_interrupted_snapshot_is_taken_again(btrfs_space):
    driver, fs, path = btrfs_space
    with open(os.path.join(path, "f"), "w") as f:
        f.write("now")
    os.makedirs(os.path.join(path, ".snapshots"))
    # A crash after the snapshot but before it was made read-only leaves a writable one.
    subprocess.run(["btrfs", "subvolume", "snapshot", path, os.path.join(path, ".snapshots", "s")],
                   check=True, capture_output=True)
    snap = driver.create_snapshot(fs, "sas1-sleepy-snake", "s")
    with pytest.raises(OSError, match="Read-only file system"):
        open(os.path.join(snap, "f"), "w").close()


def test_create_adopts_an_empty_subvolume_from_an_interrupted_attempt(btrfs_mount):
    driver = get_driver(make_settings("btrfs", btrfs_mount))
    fs = driver.discover()[0]
    path = os.path.join(btrfs_mount, "half")
    subprocess.run(["btrfs", "subvolume", "create", path], check=True, capture_output=True)
    driver.create_fileset(fs, "sas1-half", path, "sas1")
    assert driver.fileset_at(fs, path) == "sas1-half" and subvolume_paths(btrfs_mount) == ["half"]


def test_model_filesets_are_subvolumes_or_markers(btrfs_mount):
    driver = get_driver(make_settings("btrfs", btrfs_mount))
    fs = driver.discover()[0]
    model = os.path.join(btrfs_mount, "project_template")
    os.makedirs(os.path.join(model, "maya"))
    subprocess.run(["btrfs", "subvolume", "create", os.path.join(model, "assets")], check=True,
                   capture_output=True)
    subprocess.run(["btrfs", "subvolume", "create", os.path.join(model, "cache")], check=True,
                   capture_output=True)
    with open(os.path.join(model, "cache", MARKER), "w") as f:
        f.write("sata1\n")
    os.makedirs(os.path.join(model, "renders"))
    with open(os.path.join(model, "renders", MARKER), "w") as f:
        f.write("sata1")
    assert driver.model_filesets(fs, model) == {"assets": "sas1", "cache": "sata1", "renders": "sata1"}


def test_discover_refuses_a_mountpoint_that_is_not_btrfs(tmp_path, btrfs_support):
    driver = get_driver(make_settings("btrfs", str(tmp_path)))
    with pytest.raises(StorageError, match="not a mounted btrfs"):
        driver.discover()


def test_copy_tree_shares_extents_on_btrfs(btrfs_space):
    """copy_tree clones (reflinks) file data where the filesystem can: no bytes are copied."""
    driver, fs, path = btrfs_space
    model = os.path.join(fs.mountpoint, "model")
    os.makedirs(model)
    assert dd(os.path.join(model, "plate.exr"), 4).returncode == 0
    driver.copy_tree(model, path)
    du = subprocess.run(["btrfs", "filesystem", "du", "--raw", os.path.join(path, "plate.exr")],
                        capture_output=True, text=True, check=True).stdout.splitlines()
    total, exclusive = du[-1].split()[:2]
    assert int(total) == 4 * MiB and int(exclusive) == 0

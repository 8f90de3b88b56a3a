"""The btrfs_mount fixture's rules: when it skips, when CI makes a skip a failure, and that a
mount never outlives its test."""
from __future__ import annotations

import os

import pytest

from tests import btrfs_fixture
from tests.btrfs_fixture import Unavailable, give_up


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_kernel_refusal_skips_even_in_ci(monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="refuses a loop mount"):
        give_up(Unavailable("the kernel or sandbox refuses a loop mount: EPERM", refused=True))


def test_a_missing_prerequisite_skips_locally_and_fails_in_ci(monkeypatch):
    missing = Unavailable("btrfs-progs is not installed", refused=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="btrfs-progs is not installed"):
        give_up(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true allows no such skip"):
        give_up(missing)


@pytest.mark.parametrize("lack, reason", [("root", "needs root"), ("tools", "btrfs-progs is not installed")])
def test_probe_names_a_missing_prerequisite(monkeypatch, lack, reason):
    if lack == "root":
        monkeypatch.setattr(btrfs_fixture.os, "geteuid", lambda: 1000)
    else:
        monkeypatch.setattr(btrfs_fixture.os, "geteuid", lambda: 0)
        monkeypatch.setattr(btrfs_fixture, "_tool", lambda name: None)
    btrfs_fixture.probe.cache_clear()
    try:
        problem = btrfs_fixture.probe()
    finally:
        btrfs_fixture.probe.cache_clear()  # the real answer is probed again when next needed
    assert problem is not None and not problem.refused and reason in problem.reason


@pytest.mark.btrfs
def test_the_mount_is_fresh_btrfs_with_quotas_and_goes_away(btrfs_mount):
    mounts = open("/proc/self/mounts").read().split("\n")
    assert any(line.split()[1:3] == [btrfs_mount, "btrfs"] for line in mounts if line)
    assert os.listdir(btrfs_mount) == []
    assert btrfs_fixture._run("btrfs", "qgroup", "show", btrfs_mount).returncode == 0


@pytest.mark.btrfs
def test_cleanup_after_a_failure_inside(btrfs_support, tmp_path):
    with pytest.raises(RuntimeError):
        with btrfs_fixture.mounted_btrfs(str(tmp_path)) as mountpoint:
            open(os.path.join(mountpoint, "busy"), "w").close()
            raise RuntimeError("the test failed")
    assert mountpoint not in open("/proc/self/mounts").read()
    assert os.listdir(tmp_path) == ["mnt"]  # the image is gone, the empty mountpoint stays

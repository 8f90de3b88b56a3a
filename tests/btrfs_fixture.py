"""pytest plugin: `btrfs_mount`, the path of a freshly made, loop-mounted btrfs with quotas on.

Use it with `pytest_plugins = ["tests.btrfs_fixture"]` in a top-level conftest, or import the
fixtures (`from tests.btrfs_fixture import btrfs_mount, btrfs_support`) into a conftest.

Whether the kernel lets us loop-mount at all is probed once per run. A refusal by the kernel
or the sandbox skips the tests with its reason, even in CI. Any other reason not to run them
(not root, btrfs-progs missing) skips them locally but fails them when CI=true.
"""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

IMAGE_SIZE = 1 << 30   # sparse: only what the tests write takes disk space
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _tool(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *_SBIN]))


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _detail(result: subprocess.CompletedProcess) -> str:
    text = (result.stderr or result.stdout).strip().splitlines()
    return f"{' '.join(result.args)}: exit {result.returncode}: {text[-1] if text else 'no output'}"


class Unavailable(Exception):
    """`refused` tells a kernel/sandbox refusal from a missing prerequisite."""

    def __init__(self, reason: str, refused: bool):
        super().__init__(reason)
        self.reason, self.refused = reason, refused


def make_filesystem(folder: str) -> str:
    """Make and mount a btrfs image in `folder`; returns the mountpoint. Raises Unavailable."""
    image, mountpoint = os.path.join(folder, "btrfs.img"), os.path.join(folder, "mnt")
    os.makedirs(mountpoint, exist_ok=True)
    with open(image, "wb") as f:
        f.truncate(IMAGE_SIZE)
    made = _run(_tool("mkfs.btrfs") or "mkfs.btrfs", "-q", image)
    if made.returncode:
        raise Unavailable(f"cannot make a btrfs image: {_detail(made)}", refused=False)
    mounted = _run(_tool("mount") or "mount", "-o", "loop", image, mountpoint)
    if mounted.returncode:
        raise Unavailable(f"the kernel or sandbox refuses a loop mount: {_detail(mounted)}", refused=True)
    quota = _run(_tool("btrfs") or "btrfs", "quota", "enable", mountpoint)
    if quota.returncode:
        unmount(mountpoint)
        raise Unavailable(f"the kernel refuses btrfs quotas: {_detail(quota)}", refused=True)
    return mountpoint


def unmount(mountpoint: str) -> None:
    """Unmount, lazily when something still holds it busy, so no mount outlives the test."""
    if _run(_tool("umount") or "umount", mountpoint).returncode:
        _run(_tool("umount") or "umount", "--lazy", mountpoint)


@functools.cache
def probe() -> Unavailable | None:
    """Once per run: can this machine make, loop-mount and use a btrfs? None when it can."""
    if os.geteuid() != 0:
        return Unavailable("loop-mounting a btrfs image needs root", refused=False)
    missing = [t for t in ("mkfs.btrfs", "btrfs") if _tool(t) is None]
    if missing:
        return Unavailable(f"btrfs-progs is not installed ({', '.join(missing)} not found; "
                           "apt-get install btrfs-progs)", refused=False)
    folder = tempfile.mkdtemp(prefix="btrfs-probe-")
    try:
        unmount(make_filesystem(folder))
    except Unavailable as exc:
        return exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return None


def give_up(problem: Unavailable) -> None:
    """Skip the calling test; fail it instead in CI unless the kernel or sandbox refused."""
    if in_ci() and not problem.refused:
        pytest.fail(f"btrfs tests cannot run: {problem.reason} (CI=true allows no such skip)",
                    pytrace=False)
    pytest.skip(f"btrfs tests skipped: {problem.reason}")


def require_btrfs() -> None:
    """Skip (or, in CI, fail) the calling test when no btrfs can be loop-mounted here."""
    problem = probe()
    if problem is not None:
        give_up(problem)


@pytest.fixture(scope="session")
def btrfs_support() -> None:
    """Depend on this to skip/fail early, without paying for a mount."""
    require_btrfs()


@contextlib.contextmanager
def mounted_btrfs(folder: str) -> Iterator[str]:
    """Make and mount a btrfs image in `folder`; unmount and delete it however the block ends."""
    mountpoint = make_filesystem(folder)
    try:
        yield mountpoint
    finally:
        unmount(mountpoint)
        os.unlink(os.path.join(folder, "btrfs.img"))


@pytest.fixture
def btrfs_mount(btrfs_support, tmp_path_factory) -> Iterator[str]:
    """A fresh btrfs (1 GiB sparse image, quotas enabled) mounted for this test only."""
    try:
        with mounted_btrfs(str(tmp_path_factory.mktemp("btrfs"))) as mountpoint:
            yield mountpoint
    except Unavailable as exc:  # raised only while mounting, before the test runs
        give_up(exc)

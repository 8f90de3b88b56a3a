"""btrfs driver: a fileset is a subvolume, its hard quota a qgroup limit the kernel enforces.

Records, checks and retries are the posix driver's; only the hooks differ. btrfs has no soft
limit, so the soft value lives in the record only.
"""
from __future__ import annotations

import os
import re

from .base import MARKER, SNAPSHOTS, StorageError, depth
from .commands import raise_for_status, run
from .posix import PosixDriver
from .records import RecordStore

_SUBVOLUME_ROOT_INODE = 256   # BTRFS_FIRST_FREE_OBJECTID: the inode of every subvolume's root
_QUOTA_OFF = re.compile(r"quotas? not enabled", re.IGNORECASE)


def is_subvolume(path: str) -> bool:
    try:
        st = os.lstat(path)
        parent = os.lstat(os.path.dirname(os.path.normpath(path)))
    except FileNotFoundError:
        return False
    # Each subvolume also has a device number of its own, unlike a plain folder.
    return st.st_ino == _SUBVOLUME_ROOT_INODE and st.st_dev != parent.st_dev


def subvolumes_below(top: str) -> list[str]:
    """Subvolumes strictly inside `top`, deepest first."""
    found = [os.path.join(folder, d) for folder, dirs, _ in os.walk(top) for d in dirs
             if is_subvolume(os.path.join(folder, d))]
    return sorted(found, key=depth, reverse=True)


def enclosing_subvolume(path: str) -> str:
    folder = os.path.dirname(path)
    while not is_subvolume(folder) and folder != os.path.dirname(folder):
        folder = os.path.dirname(folder)
    return folder


def btrfs(*args: str, check: bool = True):
    return run(["btrfs", *args], check=check)


class BtrfsDriver(PosixDriver):
    name = "btrfs"

    def discover(self):
        for fs in self.filesystems:
            kind = run(["stat", "--file-system", "--format=%T", fs.mountpoint]).stdout.strip()
            if kind != "btrfs":
                raise StorageError(f"{fs.name}: {fs.mountpoint} is {kind}, not a mounted btrfs")
        return list(self.filesystems)

    # -- quotas ----------------------------------------------------------------------------
    def _quota_command(self, *args: str) -> str:
        """Run a qgroup command; enable quotas on the filesystem the first time one is needed."""
        result = btrfs(*args, check=False)
        if result.returncode and _QUOTA_OFF.search(result.stderr):
            btrfs("quota", "enable", args[-1])
            btrfs("quota", "rescan", "-w", args[-1])  # account for data already there
            result = btrfs(*args, check=False)
        return raise_for_status(result).stdout

    def _qgroup(self, path: str) -> tuple[int, int]:
        """(referenced bytes, referenced limit or 0) of the subvolume at `path`."""
        output = self._quota_command("qgroup", "show", "-reF", "--raw", path)
        qgroup = f"0/{btrfs('inspect-internal', 'rootid', path).stdout.strip()}"
        for line in output.splitlines():
            fields = line.split()
            # With -re the columns are: qgroupid, rfer, excl, max_rfer, max_excl[, path]
            if fields and fields[0] == qgroup:
                return int(fields[1]), 0 if fields[3] == "none" else int(fields[3])
        raise StorageError(f"no qgroup {qgroup} for {path}", details=output)

    def apply_quota(self, path, hard):
        self._quota_command("qgroup", "limit", str(hard) if hard else "none", path)

    def quota(self, fs, fileset):
        record = self._record(RecordStore(fs), fs, fileset)
        return self._qgroup(record.path)[1], record.soft

    def usage(self, fs, fileset):
        path = self.require_fileset(fs, fileset).path
        btrfs("filesystem", "sync", path)  # qgroup numbers move at transaction commit
        return self._qgroup(path)[0]

    # -- templates -------------------------------------------------------------------------
    def model_filesets(self, fs, model_path):
        found = {os.path.relpath(p, model_path): self.default_pool(fs)
                 for p in subvolumes_below(model_path)
                 if SNAPSHOTS not in os.path.relpath(p, model_path).split(os.sep)}
        found.update(self.model_markers(fs, model_path))
        return found

    # -- hooks -----------------------------------------------------------------------------
    def make_junction(self, path):
        if is_subvolume(path):
            return
        if os.path.isdir(path):  # an empty folder (checked by the caller) becomes the subvolume
            marker = os.path.join(path, MARKER)
            if os.path.exists(marker):
                os.unlink(marker)
            os.rmdir(path)
        btrfs("subvolume", "create", path)

    def remove_junction(self, path):
        if not os.path.lexists(path):
            return
        # The kernel refuses to delete a subvolume that still holds others (deepest first,
        # then), or one inside a read-only subvolume (snapshots: make their holders writable).
        nested = subvolumes_below(path)
        for holder in sorted({enclosing_subvolume(s) for s in nested}, key=depth):
            btrfs("property", "set", "-ts", holder, "ro", "false")
        for subvolume in nested:
            btrfs("subvolume", "delete", "--commit-after", subvolume)
        if is_subvolume(path):
            btrfs("subvolume", "delete", "--commit-after", path)
        else:
            super().remove_junction(path)

    def snapshot_complete(self, target):
        return is_subvolume(target) and btrfs(
            "property", "get", "-ts", target, "ro").stdout.strip() == "ro=true"

    def make_snapshot(self, src, target, dependents):
        if not dependents:
            btrfs("subvolume", "snapshot", "-r", src, target)
            return
        # A btrfs snapshot stops at nested subvolumes, leaving empty stand-ins. Take it
        # writable, snapshot each dependent into its stand-in, then make them all read-only.
        btrfs("subvolume", "snapshot", src, target)
        taken = [target]
        for dependent in sorted(dependents, key=depth):
            place = os.path.join(target, os.path.relpath(dependent, src))
            os.rmdir(place)
            btrfs("subvolume", "snapshot", dependent, place)
            taken.append(place)
        for subvolume in reversed(taken):
            btrfs("property", "set", "-ts", subvolume, "ro", "true")

    def remove_snapshot(self, target):
        self.remove_junction(target)

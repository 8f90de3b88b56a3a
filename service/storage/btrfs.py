"""btrfs driver: a fileset is a subvolume, its hard quota a qgroup limit the kernel enforces.

Records, checks and retries are the posix driver's; only the hooks differ. btrfs has no soft
limit, so the soft value lives in the record only. Subvolumes are made, snapshotted and
flagged through the kernel's ioctls on descriptors the confined walk opened, so no path is
resolved again; the qgroup commands get `/proc/self/fd/N` of such a descriptor.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import struct

from . import tree
from .base import SNAPSHOTS, StorageError
from .commands import raise_for_status, run
from .confined import Root, below
from .posix import PosixDriver
from .records import RecordStore

_SUBVOLUME_ROOT_INODE = 256   # BTRFS_FIRST_FREE_OBJECTID: the inode of every subvolume's root
_QUOTA_OFF = re.compile(r"quotas? not enabled", re.IGNORECASE)

# linux/btrfs.h
_ARGS_V2 = struct.Struct("=qQQ32s4040s")        # struct btrfs_ioctl_vol_args_v2 (4096 bytes)
_ARGS = struct.Struct("=q4088s")                # struct btrfs_ioctl_vol_args (4096 bytes)
_RDONLY = 1 << 1                                # BTRFS_SUBVOL_RDONLY


def _iow(nr: int, size: int) -> int:
    return (1 << 30) | (size << 16) | (0x94 << 8) | nr


def _ior(nr: int, size: int) -> int:
    return (2 << 30) | (size << 16) | (0x94 << 8) | nr


_SNAP_CREATE_V2 = _iow(23, _ARGS_V2.size)
_SUBVOL_CREATE = _iow(14, _ARGS.size)
_SUBVOL_GETFLAGS = _ior(25, 8)
_SUBVOL_SETFLAGS = _iow(26, 8)


def _name(name: str) -> bytes:
    raw = os.fsencode(name)
    if not raw or b"/" in raw or len(raw) > 255:
        raise StorageError(f"invalid subvolume name {name!r}")
    return raw


def create_subvolume(dir_fd: int, name: str) -> None:
    fcntl.ioctl(dir_fd, _SUBVOL_CREATE, bytearray(_ARGS.pack(0, _name(name))))


def snapshot_subvolume(src_fd: int, dir_fd: int, name: str, read_only: bool) -> None:
    """Snapshot the subvolume open as `src_fd` as `name` in folder `dir_fd`."""
    fcntl.ioctl(dir_fd, _SNAP_CREATE_V2, bytearray(
                _ARGS_V2.pack(src_fd, 0, _RDONLY if read_only else 0, b"", _name(name))))


def is_read_only(fd: int) -> bool:
    flags = bytearray(8)
    fcntl.ioctl(fd, _SUBVOL_GETFLAGS, flags)
    return bool(struct.unpack("=Q", flags)[0] & _RDONLY)


def set_read_only(fd: int, read_only: bool) -> None:
    flags = bytearray(8)
    fcntl.ioctl(fd, _SUBVOL_GETFLAGS, flags)
    current = struct.unpack("=Q", flags)[0]
    wanted = current | _RDONLY if read_only else current & ~_RDONLY
    if wanted != current:
        fcntl.ioctl(fd, _SUBVOL_SETFLAGS, struct.pack("=Q", wanted))


def is_subvolume_root(st: os.stat_result) -> bool:
    return stat.S_ISDIR(st.st_mode) and st.st_ino == _SUBVOLUME_ROOT_INODE


def is_subvolume(path: str) -> bool:
    """Is `path` (itself, not followed) a subvolume's root? For reports and tests."""
    try:
        st = os.lstat(path)
        parent = os.lstat(os.path.dirname(os.path.normpath(path)))
    except FileNotFoundError:
        return False
    return is_subvolume_root(st) and st.st_dev != parent.st_dev


def subvolumes_below(fd: int) -> list[str]:
    """Relative paths of the subvolumes strictly inside folder `fd` (each also has a device
    number of its own, unlike a plain folder), outside snapshot folders."""
    found = []
    for folder, rel, _, st in tree.walk(fd, tree.skipping(())):
        if is_subvolume_root(st) and st.st_dev != os.fstat(folder).st_dev:
            found.append(rel)
    return found


def _outermost(paths: list[str]) -> list[str]:
    """The paths not inside another of them."""
    return [p for p in paths if not any(p.startswith(other + "/") for other in paths)]


def _writable_subvolume(fd: int) -> None:
    """Walk hook of a removal: a read-only subvolume (a snapshot) is made writable to be emptied."""
    if is_subvolume_root(os.fstat(fd)) and is_read_only(fd):
        set_read_only(fd, False)


def fd_path(fd: int) -> str:
    """A path a command can open that is exactly the folder open as `fd` (pass_fds=[fd])."""
    return f"/proc/self/fd/{fd}"


def btrfs(*args: str, check: bool = True, fds: tuple[int, ...] = ()):
    return run(["btrfs", *args], check=check, pass_fds=fds)


class BtrfsDriver(PosixDriver):
    name = "btrfs"

    def discover(self):
        for fs in self.filesystems:
            kind = run(["stat", "--file-system", "--format=%T", fs.mountpoint]).stdout.strip()
            if kind != "btrfs":
                raise StorageError(f"{fs.name}: {fs.mountpoint} is {kind}, not a mounted btrfs")
        return list(self.filesystems)

    # -- quotas ----------------------------------------------------------------------------
    def _quota_command(self, fd: int, *args: str) -> str:
        """Run a qgroup command on the subvolume open as `fd`; enable quotas on the filesystem
        the first time one is needed."""
        result = btrfs(*args, fd_path(fd), check=False, fds=(fd,))
        if result.returncode and _QUOTA_OFF.search(result.stderr):
            btrfs("quota", "enable", fd_path(fd), fds=(fd,))
            btrfs("quota", "rescan", "-w", fd_path(fd), fds=(fd,))  # account for data already there
            result = btrfs(*args, fd_path(fd), check=False, fds=(fd,))
        return raise_for_status(result).stdout

    def _qgroup(self, fd: int) -> tuple[int, int]:
        """(referenced bytes, referenced limit or 0) of the subvolume open as `fd`."""
        output = self._quota_command(fd, "qgroup", "show", "-reF", "--raw")
        qgroup = f"0/{btrfs('inspect-internal', 'rootid', fd_path(fd), fds=(fd,)).stdout.strip()}"
        for line in output.splitlines():
            fields = line.split()
            # With -re the columns are: qgroupid, rfer, excl, max_rfer, max_excl[, path]
            if fields and fields[0] == qgroup:
                return int(fields[1]), 0 if fields[3] == "none" else int(fields[3])
        raise StorageError(f"no qgroup {qgroup} for the subvolume", details=output)

    def apply_quota(self, fd, hard):
        self._quota_command(fd, "qgroup", "limit", str(hard) if hard else "none")

    def quota(self, fs, fileset):
        with self._subvolume(fs, fileset) as (fd, record):
            return self._qgroup(fd)[1], record.soft

    def usage(self, fs, fileset):
        with self._subvolume(fs, fileset) as (fd, _):
            btrfs("filesystem", "sync", fd_path(fd), fds=(fd,))  # qgroup numbers move at transaction commit
            return self._qgroup(fd)[0]

    @contextlib.contextmanager
    def _subvolume(self, fs, fileset):
        """(descriptor, record) of a fileset's subvolume."""
        with Root(fs.mountpoint) as root:
            record = self._record(RecordStore(root), fs, fileset)
            with root.folder(record.path) as fd:
                yield fd, record

    # -- templates -------------------------------------------------------------------------
    def model_filesets(self, fs, model_path, model_root=None):
        with self.opened(model_path, model_root) as fd:
            found = {rel: self.default_pool(fs) for rel in subvolumes_below(fd)}
            found.update(self.model_markers(fs, fd))
        return found

    # -- snapshots as sources ----------------------------------------------------------------
    def create_fileset_from_snapshot(self, fs, name, path, pool, source, snapshot):
        """The new subvolume is a writable snapshot of the snapshot: made at once, sharing every
        extent until either side changes it."""
        with Root(fs.mountpoint) as root, self.snapshot_folder(root, self.linked_path(fs, source), snapshot) as snap:
            self.create_fileset(fs, name, path, pool, seed=snap)

    def build_from_snapshot(self, snap, dir_fd, name):
        """A writable snapshot of the snapshot, with writable snapshots of the subvolumes nested
        in it (its dependents) in their places."""
        snapshot_subvolume(snap, dir_fd, name, read_only=False)
        with below(dir_fd, name) as target:
            for rel in sorted(subvolumes_below(snap), key=lambda p: p.count("/")):
                parent, leaf = os.path.split(rel)
                with below(snap, rel) as nested, below(target, parent) as place:
                    os.rmdir(leaf, dir_fd=place)    # the empty stand-in a snapshot leaves
                    snapshot_subvolume(nested, place, leaf, read_only=False)

    def restore_modes(self, root, source, snapshot, fd):
        """Nothing to give back: a btrfs snapshot is read-only as a subvolume, its entries keep
        their modes, and so do its copies (writable snapshots of it)."""

    def move_snapshots(self, src, dst):
        """A read-only subvolume keeps its place: each snapshot is made writable for its move and
        read-only again in `dst` (again, for one a run cut short moved)."""
        moved = []
        for name, st in tree.scan(src):
            if is_subvolume_root(st):
                with below(src, name) as fd:
                    set_read_only(fd, False)
            os.rename(name, name, src_dir_fd=src, dst_dir_fd=dst)
            moved.append(name)
        # a btrfs folder's descriptor lists only the entries it had when it was opened: the ones
        # moved in just now are named, not scanned for
        for name in sorted({name for name, _ in tree.scan(dst)} | set(moved)):
            st = tree.lstat_at(dst, name)
            if st is not None and is_subvolume_root(st) and not name.endswith(".partial"):
                with below(dst, name) as fd:
                    set_read_only(fd, True)

    # -- hooks -----------------------------------------------------------------------------
    def make_junction(self, dir_fd, name, seed=None):
        st = tree.lstat_at(dir_fd, name)
        if st is None or not is_subvolume_root(st):
            if st is not None:  # an empty folder (checked by the caller) becomes the subvolume
                tree.remove_entry(dir_fd, name)
            if seed is None:
                create_subvolume(dir_fd, name)
                return
            snapshot_subvolume(seed, dir_fd, name, read_only=False)
        if seed is not None:
            # nested subvolumes of the snapshot (its dependents) are left as empty stand-ins: their
            # data comes as reflinked copies (again, when a run was cut short: copies merge)
            with below(dir_fd, name) as target:
                tree.remove_entry(target, SNAPSHOTS)    # the source's snapshots, as empty stand-ins
                for rel in _outermost(subvolumes_below(seed)):
                    with below(seed, rel) as nested, below(target, rel) as place:
                        tree.copy_into(nested, place, keep_setid=True)

    def remove_junction(self, root, path):
        # Emptied by descriptor, read-only subvolumes made writable on the way; an empty
        # subvolume goes with rmdir like a folder.
        try:
            with root.parent(path) as (fd, name):
                tree.remove_entry(fd, name, enter=_writable_subvolume)
        except FileNotFoundError:
            pass

    def snapshot_complete(self, snaps, name):
        st = tree.lstat_at(snaps, name)
        if st is None or not is_subvolume_root(st):
            return False
        with below(snaps, name) as fd:
            return is_read_only(fd)

    def make_snapshot(self, src, snaps, name, dependents):
        if not dependents:
            snapshot_subvolume(src, snaps, name, read_only=True)
            return
        # A btrfs snapshot stops at nested subvolumes, leaving empty stand-ins. Take it
        # writable, snapshot each dependent into its stand-in, then make them all read-only.
        snapshot_subvolume(src, snaps, name, read_only=False)
        with below(snaps, name) as target:
            taken = []
            for rel in sorted(dependents, key=lambda p: p.count("/")):
                parent, leaf = os.path.split(rel)
                with below(src, rel) as dependent, below(target, parent) as place:
                    os.rmdir(leaf, dir_fd=place)
                    snapshot_subvolume(dependent, place, leaf, read_only=False)
                taken.append(rel)
            for rel in sorted(taken, key=lambda p: p.count("/"), reverse=True):
                with below(target, rel) as fd:
                    set_read_only(fd, True)
            set_read_only(target, True)

    def remove_snapshot(self, snaps, name):
        tree.remove_entry(snaps, name, enter=_writable_subvolume)


__all__ = ["BtrfsDriver", "SNAPSHOTS"]

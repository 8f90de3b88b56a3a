"""The storage driver interface every backend (posix, btrfs, gpfs) implements.

A *fileset* is the unit the service manages: a space's independent fileset, or a dependent
fileset inside it that came from a template. Every operation is idempotent, so a job that
crashed half-way can simply be run again.
"""
from __future__ import annotations

import abc
import contextlib
import logging
import os
import re
import stat
from dataclasses import dataclass

from . import tree
from .access import Access
from .confined import Root, below, inside
from .errors import NotEmpty, StorageError, Unsafe  # noqa: F401  (part of this module's interface)
from .tree import MARKER, SERVICE_FOLDER, SNAPSHOTS  # noqa: F401  (part of this module's interface)

log = logging.getLogger(__name__)

# Fileset and snapshot names end up as command arguments and file names: no path separators,
# and never a leading "-" that a command could read as an option.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")


@dataclass(frozen=True)
class Filesystem:
    name: str                 # e.g. "mmfs1"
    mountpoint: str           # absolute path, e.g. "/mmfs1"
    pools: tuple[str, ...]    # e.g. ("sas1", "sata1")


@dataclass(frozen=True)
class FilesetInfo:
    """What a driver knows about one fileset."""
    name: str
    path: str | None           # junction path; None when the fileset is not linked
    parent: str | None = None  # owner of the inode space for a dependent fileset, else None
    pool: str | None = None


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise StorageError(f"invalid {kind} name {name!r}: use letters, digits, '_', '.', '-' "
                           "(not first), at most 255 characters")
    return name


def filesystem_from_config(entry) -> Filesystem:
    return Filesystem(name=entry.name, mountpoint=os.path.normpath(entry.mountpoint),
                      pools=tuple(entry.pools))


def check_limits(hard: int, soft: int) -> None:
    if not (isinstance(hard, int) and isinstance(soft, int)) or hard < 0 or soft < 0:
        raise StorageError(f"quota limits must be whole numbers of bytes >= 0, got {hard}, {soft}")
    if hard and soft > hard:
        raise StorageError(f"soft limit {soft} is above hard limit {hard}")


def is_below(path: str, top: str) -> bool:
    """True when `path` lies strictly inside `top` (both absolute paths)."""
    return inside(path, top, strict=True)


def depth(path: str) -> int:
    return path.rstrip("/").count("/")


def find(filesets: list[FilesetInfo], name: str) -> FilesetInfo | None:
    return next((f for f in filesets if f.name == name), None)


class Driver(abc.ABC):
    name: str

    def __init__(self, settings):
        self.settings = settings
        self.filesystems = [filesystem_from_config(e) for e in getattr(settings, "filesystems", [])]

    # -- what every backend provides -------------------------------------------------------
    @abc.abstractmethod
    def discover(self) -> list[Filesystem]:
        """The filesystems (and their data pools) this driver manages."""

    @abc.abstractmethod
    def list_filesets(self, fs: Filesystem) -> list[FilesetInfo]:
        """Every fileset of `fs` this driver knows of."""

    @abc.abstractmethod
    def create_fileset(self, fs: Filesystem, name: str, path: str, pool: str,
                       parent: str | None = None) -> None:
        """Create fileset `name` linked at `path`; independent when parent is None."""

    @abc.abstractmethod
    def set_quota(self, fs: Filesystem, fileset: str, hard: int, soft: int) -> None:
        """Apply a block quota in bytes."""

    @abc.abstractmethod
    def quota(self, fs: Filesystem, fileset: str) -> tuple[int, int]:
        """(hard, soft) in bytes, as recorded/applied."""

    @abc.abstractmethod
    def usage(self, fs: Filesystem, fileset: str) -> int:
        """Bytes charged to the fileset, measured now."""

    @abc.abstractmethod
    def delete_fileset(self, fs: Filesystem, name: str, force: bool = False) -> None:
        """Remove the fileset; NotEmpty when it holds data and force is False."""

    @abc.abstractmethod
    def create_snapshot(self, fs: Filesystem, fileset: str | None, name: str) -> str:
        """Snapshot the fileset (the whole filesystem when None); returns the snapshot's path."""

    @abc.abstractmethod
    def delete_snapshot(self, fs: Filesystem, fileset: str | None, name: str) -> None:
        """Remove a snapshot of the fileset (of the filesystem when None); a missing one is fine."""

    @abc.abstractmethod
    def revert_fileset(self, fs: Filesystem, fileset: str, snapshot: str) -> None:
        """Make the fileset hold what its snapshot `snapshot` holds, in one step as its users see
        it (the old content or the new, never a mix); a run cut short is finished by running it
        again. Its snapshots stay."""

    @abc.abstractmethod
    def model_filesets(self, fs: Filesystem | None, model_path: str,
                       model_root: str | None = None) -> dict[str, str]:
        """Dependent filesets inside a template model: {path relative to model: pool}.
        `fs` is the filesystem holding the model, or None when it lies outside them all;
        the model is walked from `model_root` (default: its parent) without following links."""

    # -- shared behaviour ------------------------------------------------------------------
    def fileset_info(self, fs: Filesystem, name: str) -> FilesetInfo | None:
        return find(self.list_filesets(fs), name)

    def require_fileset(self, fs: Filesystem, name: str,
                        filesets: list[FilesetInfo] | None = None) -> FilesetInfo:
        # one fileset looked up by name (posix reads its record alone), never all of them listed
        info = self.fileset_info(fs, name) if filesets is None else find(filesets, name)
        if info is None:
            raise StorageError(f"fileset {name} does not exist on {fs.name}")
        return info

    def snapshot_scope(self, fs: Filesystem, fileset: str | None,
                       filesets: list[FilesetInfo]) -> tuple[str, list[str]]:
        """(folder a snapshot is of, junctions below it the snapshot takes along). A fileset
        must exist, be independent and be linked; None means the whole filesystem."""
        if fileset is None:
            return fs.mountpoint, [f.path for f in filesets if f.path and is_below(f.path, fs.mountpoint)]
        info = self.require_fileset(fs, fileset, filesets)
        if info.parent is not None:
            raise StorageError(f"fileset {fileset} is dependent; snapshot its independent "
                               f"fileset {info.parent} instead")
        if not info.path:
            raise StorageError(f"fileset {fileset} is not linked")
        dependents, _ = self.nested_filesets(info, filesets)
        return info.path, [d.path for d in dependents]

    def check_deletable(self, fs: Filesystem, info: FilesetInfo, filesets: list[FilesetInfo],
                        force: bool) -> list[FilesetInfo]:
        """Refuse a delete that would take other filesets or (unforced) data with it.
        Returns the fileset's dependents, deepest first: they go before it."""
        dependents, others = self.nested_filesets(info, filesets)
        if others:
            raise StorageError(f"cannot delete fileset {info.name}: fileset(s) "
                               f"{', '.join(o.name for o in others)} are linked inside it")
        if not force and self.holds_data_of(fs, info, filesets):
            raise NotEmpty(f"fileset {info.name} holds data; delete it with force to remove the data")
        return dependents

    def fileset_at(self, fs: Filesystem, path: str) -> str | None:
        path = os.path.normpath(path)
        return next((f.name for f in self.list_filesets(fs) if f.path == path), None)

    def fileset_path(self, fs: Filesystem, name: str) -> str | None:
        info = self.fileset_info(fs, name)
        return info.path if info else None

    @staticmethod
    def nested_filesets(info: FilesetInfo, filesets: list[FilesetInfo]
                        ) -> tuple[list[FilesetInfo], list[FilesetInfo]]:
        """Filesets linked below `info`: (its dependents, others), each deepest first."""
        if not info.path:
            return [], []
        below = sorted((f for f in filesets if f.path and is_below(f.path, info.path)),
                       key=lambda f: depth(f.path), reverse=True)
        return ([f for f in below if f.parent == info.name],
                [f for f in below if f.parent != info.name])

    def holds_data(self, fs: Filesystem, fileset: str) -> bool:
        filesets = self.list_filesets(fs)
        info = find(filesets, fileset)
        return info is not None and self.holds_data_of(fs, info, filesets)

    def holds_data_of(self, fs: Filesystem, info: FilesetInfo, filesets: list[FilesetInfo]) -> bool:
        """Anything but folders and markers in the fileset or its dependents (not in other
        filesets linked inside it, nor in snapshots)."""
        if not info.path:
            return False
        _, others = self.nested_filesets(info, filesets)
        with Root(fs.mountpoint) as root:
            try:
                with root.folder(info.path) as fd:
                    return tree.holds_data(fd, tree.skipping(os.path.relpath(o.path, info.path) for o in others))
            except FileNotFoundError:
                return False

    # -- snapshots as sources ----------------------------------------------------------------
    @contextlib.contextmanager
    def snapshot_folder(self, root: Root, source: str, name: str):
        """Descriptor of snapshot `name` of the fileset linked at `source`
        ({source}/.snapshots/{name}), reached from `root` without following links."""
        check_name("snapshot", name)
        try:
            with root.folder(source) as src, below(src, os.path.join(SNAPSHOTS, name), source) as fd:
                yield fd
        except FileNotFoundError:
            raise StorageError(f"snapshot {name} of {source} does not exist") from None

    def linked_path(self, fs: Filesystem, fileset: str) -> str:
        info = self.require_fileset(fs, fileset)
        if not info.path:
            raise StorageError(f"fileset {fileset} is not linked")
        return info.path

    def create_fileset_from_snapshot(self, fs: Filesystem, name: str, path: str, pool: str,
                                     source: str, snapshot: str) -> None:
        """Create the independent fileset `name` at `path` holding what snapshot `snapshot` of
        fileset `source` holds: a copy, reflinked where the filesystem can (btrfs: a writable
        snapshot instead). Filesets nested in the source come as plain folders. Running it
        again finishes a copy cut short."""
        source_path = self.linked_path(fs, source)
        self.create_fileset(fs, name, path, pool)
        with Root(fs.mountpoint) as root, self.snapshot_folder(root, source_path, snapshot) as snap, \
                root.folder(path) as target:
            tree.copy_into(snap, target, keep_setid=True)

    def snapshot_taken(self, fs: Filesystem, fileset: str, snapshot: str) -> int:
        """When the snapshot was taken, in ns since the epoch: the change time of its folder,
        set last when it was renamed into place."""
        with Root(fs.mountpoint) as root, self.snapshot_folder(root, self.linked_path(fs, fileset), snapshot) as fd:
            return os.fstat(fd).st_ctime_ns

    def changed_since(self, fs: Filesystem, fileset: str, snapshot: str) -> str | None:
        """The first entry of the fileset (its own folder ".", its dependents included; its
        snapshots and other filesets linked inside it left out) changed after the snapshot was
        taken — its change time (ctime: any write, chmod, rename, creation, or removal of an
        entry, which changes its folder) is later — or None. A descriptor walk that never
        follows a link, stopping at the first one found."""
        taken = self.snapshot_taken(fs, fileset, snapshot)
        filesets = self.list_filesets(fs)
        info = self.require_fileset(fs, fileset, filesets)
        _, others = self.nested_filesets(info, filesets)
        skip = tree.skipping(os.path.relpath(o.path, info.path) for o in others)
        with Root(fs.mountpoint) as root, root.folder(info.path) as fd:
            if os.fstat(fd).st_ctime_ns > taken:
                return "."
            for _, rel, name, st in tree.walk(fd, skip):
                if name != SNAPSHOTS and st.st_ctime_ns > taken:
                    return rel
        return None

    def secure_fileset(self, fs: Filesystem, fileset: str, access: Access, every_file: bool = False) -> tree.Secured:
        """Give the fileset's folder and what is in it the owner, group, mode and ACLs of
        `access` (see tree.secure; `every_file`: a new space's files all take the group). The
        same POSIX calls on every driver, on descriptors reached from the mountpoint: on gpfs
        they act on the fileset's junction (POSIX ACLs need `mmchfs -k posix` or `all`)."""
        with Root(fs.mountpoint) as root, root.folder(self.linked_path(fs, fileset)) as fd:
            return tree.secure(fd, access, every_file)

    def copy_tree(self, src: str, dst: str, src_root: str | None = None, dst_root: str | None = None) -> None:
        """Merge-copy `src` into `dst`, each walked from its root without following links."""
        tree.copy_tree(src, dst, src_root, dst_root, keep_setid=self.keep_setid)

    @property
    def keep_setid(self) -> bool:
        return bool(getattr(self.settings, "keep_setid", False))

    def check_junction(self, fs: Filesystem, path: str) -> str:
        """Normalise a junction path and make sure it lies inside the filesystem."""
        if not isinstance(path, str) or not os.path.isabs(path):
            raise StorageError(f"junction path {path!r} is not absolute")
        path = os.path.normpath(path)
        if not is_below(path, fs.mountpoint):
            raise StorageError(f"junction path {path} is not inside {fs.name} ({fs.mountpoint})")
        parts = os.path.relpath(path, fs.mountpoint).split(os.sep)
        if parts[0] == SERVICE_FOLDER or SNAPSHOTS in parts:
            raise StorageError(f"junction path {path} lies in a reserved folder")
        return path

    @staticmethod
    def check_existing(name: str, path: str, filesets: list[FilesetInfo]) -> FilesetInfo | None:
        """Fileset `name` if it exists already; refused when it is linked somewhere else."""
        info = find(filesets, name)
        if info is not None and info.path and info.path != path:
            raise StorageError(f"fileset {name} already exists, linked at {info.path}")
        return info

    @staticmethod
    def check_parent(fs: Filesystem, parent: str, filesets: list[FilesetInfo]) -> FilesetInfo:
        """The parent of a new dependent fileset: it must exist and be independent."""
        owner = find(filesets, parent)
        if owner is None:
            raise StorageError(f"parent fileset {parent} does not exist on {fs.name}")
        if owner.parent is not None:
            raise StorageError(f"parent fileset {parent} is itself dependent; "
                               "a dependent fileset needs an independent parent")
        return owner

    @staticmethod
    def check_placement(fs: Filesystem, name: str, path: str, parent: str | None,
                        filesets: list[FilesetInfo]) -> None:
        """Refuse a junction path that is another fileset's, lies inside one (other than the
        parent of a dependent fileset, or the filesystem's root fileset) or would hold one:
        filesets never overlap."""
        for other in filesets:
            if other.name == name or not other.path or other.path == fs.mountpoint:
                continue
            if other.path == path:
                raise StorageError(f"{path} is already the junction of fileset {other.name}")
            if is_below(path, other.path) and other.name != parent:
                raise StorageError(f"{path} lies inside fileset {other.name} ({other.path})")
            if is_below(other.path, path) and other.parent != name:
                raise StorageError(f"{path} would hold fileset {other.name} ({other.path})")

    @staticmethod
    def check_free(root: Root, path: str) -> None:
        """A junction goes where nothing is, or on an empty folder."""
        st = root.lstat(path)
        if st is None:
            return
        if not stat.S_ISDIR(st.st_mode):
            raise StorageError(f"{path} exists and is not a directory")
        with root.folder(path) as fd:
            if tree.has_entries(fd, ignore={MARKER}):
                raise StorageError(f"{path} exists and is not empty")

    def model_markers(self, fs: Filesystem | None, model_fd: int) -> dict[str, str]:
        """Folders of a model marked with MARKER: {relative path: pool}."""
        return {rel: pool or self.default_pool(fs)
                for rel, pool in tree.marked_folders(model_fd).items()}

    @staticmethod
    @contextlib.contextmanager
    def opened(path: str, root: str | None = None):
        """Folder `path` opened from `root` (default: its parent) without following links."""
        with Root(root or os.path.dirname(os.path.normpath(path))) as top, top.folder(path) as fd:
            yield fd

    # Profiles: drivers without pools record placement and run no ILM (gpfs overrides these)
    has_pools = False

    def install_profiles(self, fs: Filesystem, profiles: list) -> bool:
        """Make the filesystem place and migrate as `profiles` say; False: nothing to install."""
        log.info("the %s driver has no pools: profile placement and ILM steps are recorded only", self.name)
        return False

    @staticmethod
    def default_pool(fs: Filesystem | None) -> str:
        """Pool of a model fileset that names none. `fs` is None for a model outside every
        managed filesystem; GPFS's own default pool is then the best guess."""
        return fs.pools[0] if fs is not None and fs.pools else "system"

"""posix driver: a fileset is a directory plus a record; quotas are recorded, not enforced.

The btrfs driver builds on this one and only swaps the hooks at the bottom (how a junction,
a snapshot and a quota are made), so both keep the same records and the same checks.
Everything below the mountpoint is reached through confined.Root: no link is followed.
"""
from __future__ import annotations

import contextlib
import os

from . import tree
from .base import (MARKER, SNAPSHOTS, Driver, Filesystem, StorageError, check_limits, check_name, find,
                   is_below)
from .confined import Root, below, open_service_folder, write_text_at
from .records import Record, RecordStore


class PosixDriver(Driver):
    name = "posix"

    def discover(self) -> list[Filesystem]:
        return list(self.filesystems)

    def list_filesets(self, fs):
        with Root(fs.mountpoint) as root:
            return [r.info() for r in RecordStore(root).all()]

    # Lookups of one fileset and of those near a path read a few records, not all of them
    # (records.py: the junction index), so a create costs the same with 10 or 10,000 filesets.
    def fileset_info(self, fs, name):
        with Root(fs.mountpoint) as root:
            record = RecordStore(root).get(name)
        return record.info() if record else None

    def fileset_at(self, fs, path):
        with Root(fs.mountpoint) as root:
            record = RecordStore(root).at(os.path.normpath(path))
        return record.name if record else None

    def holds_data(self, fs, fileset):
        with Root(fs.mountpoint) as root:
            filesets = _near(RecordStore(root), fileset)
        info = find(filesets, fileset)
        return info is not None and self.holds_data_of(fs, info, filesets)

    # -- filesets --------------------------------------------------------------------------
    def create_fileset(self, fs, name, path, pool, parent=None):
        check_name("fileset", name)
        path = self.check_junction(fs, path)
        with Root(fs.mountpoint) as root:
            store = RecordStore(root)
            # the filesets a check below can name: this one, the parent, those at, above or inside path
            near = {r.name: r for r in store.around(path)}
            for wanted in (name, parent):
                record = store.get(wanted) if wanted is not None and wanted not in near else None
                if record is not None:
                    near[record.name] = record
            filesets = [r.info() for r in near.values()]
            existing = self.check_existing(name, path, filesets)
            if parent is not None:
                owner = self.check_parent(fs, parent, filesets)
                if not is_below(path, owner.path):
                    raise StorageError(f"{path} is not inside parent fileset {parent} ({owner.path})")
            self.check_placement(fs, name, path, parent, filesets)
            if existing is None:
                self.check_free(root, path)
            made: list[str] = []
            try:
                with root.parent(path, create=True, made=made) as (fd, leaf):
                    self.make_junction(fd, leaf)
                    if parent is not None:
                        with below(fd, leaf) as junction:
                            write_text_at(junction, MARKER, f"{pool}\n")
                if existing is None:  # written last: a record means the fileset is complete
                    store.put(Record(name=name, path=path, pool=pool, parent=parent, made=made))
            except BaseException:
                if existing is None:  # take back what this call made
                    with contextlib.suppress(StorageError, OSError):
                        self.remove_junction(root, path)
                        root.remove_empty_folders(made)
                raise

    def delete_fileset(self, fs, name, force=False):
        with Root(fs.mountpoint) as root:
            store = RecordStore(root)
            record = store.get(name)
            if record is None:
                return
            filesets = [record.info()] + [r.info() for r in store.inside(record.path)] if record.path else [record.info()]
            dependents = self.check_deletable(fs, record.info(), filesets, force)
            for dependent in dependents:  # deepest first
                self.remove_junction(root, dependent.path)
                store.delete(dependent.name)
            self.remove_junction(root, record.path)
            root.remove_empty_folders(record.made)
            store.delete(name)  # last, so a retry after a crash still finds what is left

    # -- quotas ----------------------------------------------------------------------------
    def set_quota(self, fs, fileset, hard, soft):
        check_limits(hard, soft)
        with Root(fs.mountpoint) as root:
            store = RecordStore(root)
            record = self._record(store, fs, fileset)
            with root.folder(record.path) as fd:
                self.apply_quota(fd, hard)
            store.put(record.with_quota(hard, soft))

    def quota(self, fs, fileset):
        with Root(fs.mountpoint) as root:
            record = self._record(RecordStore(root), fs, fileset)
        return record.hard, record.soft

    def usage(self, fs, fileset):
        with Root(fs.mountpoint) as root:
            filesets = _near(RecordStore(root), fileset)
        info = self.require_fileset(fs, fileset, filesets)
        dependents, others = self.nested_filesets(info, filesets)
        # Nested filesets keep their own accounting, as on GPFS.
        skip = tree.skipping(os.path.relpath(f.path, info.path) for f in dependents + others)
        with Root(fs.mountpoint) as root, root.folder(info.path) as fd:
            return tree.data_bytes(fd, skip)

    @staticmethod
    def _record(store: RecordStore, fs: Filesystem, name: str) -> Record:
        record = store.get(name)
        if record is None:
            raise StorageError(f"fileset {name} does not exist on {fs.name}")
        return record

    # -- snapshots -------------------------------------------------------------------------
    def create_snapshot(self, fs, fileset, name):
        check_name("snapshot", name)
        with Root(fs.mountpoint) as root:
            store = RecordStore(root)
            source, included = self.snapshot_scope(
                fs, fileset, [r.info() for r in store.all()] if fileset is None else _near(store, fileset))
            with root.folder(source) as src, _service_folder(src, SNAPSHOTS, source, create=True) as snaps:
                if not self.snapshot_complete(snaps, name):
                    for leftover in (_partial(name), name):  # what an interrupted attempt left behind
                        self.remove_snapshot(snaps, leftover)
                    # built aside, renamed into place only once complete
                    self.make_snapshot(src, snaps, _partial(name),
                                       [os.path.relpath(p, source) for p in included])
                    os.rename(_partial(name), name, src_dir_fd=snaps, dst_dir_fd=snaps)
        return os.path.join(source, SNAPSHOTS, name)

    def delete_snapshot(self, fs, fileset, name):
        check_name("snapshot", name)
        with Root(fs.mountpoint) as root:
            source = fs.mountpoint if fileset is None else self.fileset_path(fs, fileset)
            if not source:
                return
            try:
                with root.folder(source) as src, _service_folder(src, SNAPSHOTS, source, create=False) as snaps:
                    self.remove_snapshot(snaps, _partial(name))
                    self.remove_snapshot(snaps, name)
            except FileNotFoundError:
                return

    # -- templates -------------------------------------------------------------------------
    def model_filesets(self, fs, model_path, model_root=None):
        with self.opened(model_path, model_root) as fd:
            return self.model_markers(fs, fd)

    # -- hooks the btrfs driver replaces ---------------------------------------------------
    def make_junction(self, dir_fd: int, name: str) -> None:
        """Make the junction `name` in folder `dir_fd` (an empty folder there is adopted)."""
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=dir_fd)

    def remove_junction(self, root: Root, path: str) -> None:
        root.remove(path)

    def apply_quota(self, fd: int, hard: int) -> None:
        """Nothing to enforce on plain directories: the record is the quota."""

    def snapshot_complete(self, snaps: int, name: str) -> bool:
        # Copies are finished and made read-only under a temporary name, then renamed.
        return tree.lstat_at(snaps, name) is not None

    def make_snapshot(self, src: int, snaps: int, name: str, dependents: list[str]) -> None:
        """Snapshot folder `src` as `name` in folder `snaps`, read-only."""
        os.mkdir(name, 0o700, dir_fd=snaps)
        with below(snaps, name) as target:
            tree.copy_into(src, target, keep_setid=True)  # dependents are plain folders: copied along
            tree.make_read_only(target)

    def remove_snapshot(self, snaps: int, name: str) -> None:
        tree.remove_entry(snaps, name)


def _near(store: RecordStore, name: str) -> list:
    """Fileset `name` and those linked inside it (none when it does not exist)."""
    record = store.get(name)
    if record is None:
        return []
    return [record.info()] + ([r.info() for r in store.inside(record.path)] if record.path else [])


def _partial(name: str) -> str:
    return f".{name}.partial"


@contextlib.contextmanager
def _service_folder(dir_fd: int, name: str, shown: str, create: bool):
    # .snapshots is readable by the space's users (they browse their snapshots), theirs to write never
    fd = open_service_folder(dir_fd, name, shown, create, mode=0o755)
    try:
        yield fd
    finally:
        os.close(fd)

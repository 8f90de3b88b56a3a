"""posix driver: a fileset is a directory plus a record; quotas are recorded, not enforced.

The btrfs driver builds on this one and only swaps the hooks at the bottom (how a junction,
a snapshot and a quota are made), so both keep the same records and the same checks.
"""
from __future__ import annotations

import os

from . import tree
from .base import (MARKER, SNAPSHOTS, Driver, Filesystem, FilesetInfo, StorageError, check_limits,
                   check_name, is_below)
from .records import Record, RecordStore


class PosixDriver(Driver):
    name = "posix"

    def discover(self) -> list[Filesystem]:
        return list(self.filesystems)

    def list_filesets(self, fs: Filesystem) -> list[FilesetInfo]:
        return [r.info() for r in RecordStore(fs).all()]

    # -- filesets --------------------------------------------------------------------------
    def create_fileset(self, fs, name, path, pool, parent=None):
        check_name("fileset", name)
        path = self.check_junction(fs, path)
        filesets = self.list_filesets(fs)
        existing = self.check_existing(name, path, filesets)
        if parent is not None:
            owner = self.check_parent(fs, parent, filesets)
            if not is_below(path, owner.path):
                raise StorageError(f"{path} is not inside parent fileset {parent} ({owner.path})")
        self.check_free(name, path, filesets)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.make_junction(path)
        if parent is not None:
            tree.write_file_atomically(os.path.join(path, MARKER), f"{pool}\n")
        if existing is None:  # written last: a record means the fileset is complete
            RecordStore(fs).put(Record(name=name, path=path, pool=pool, parent=parent))

    def delete_fileset(self, fs, name, force=False):
        store = RecordStore(fs)
        record = store.get(name)
        if record is None:
            return
        filesets = self.list_filesets(fs)
        dependents = self.check_deletable(record.info(), filesets, force)
        for dependent in dependents:  # deepest first
            self.remove_junction(dependent.path)
            store.delete(dependent.name)
        self.remove_junction(record.path)
        store.delete(name)  # last, so a retry after a crash still finds what is left

    # -- quotas ----------------------------------------------------------------------------
    def set_quota(self, fs, fileset, hard, soft):
        check_limits(hard, soft)
        store = RecordStore(fs)
        record = self._record(store, fs, fileset)
        self.apply_quota(record.path, hard)
        store.put(record.with_quota(hard, soft))

    def quota(self, fs, fileset):
        record = self._record(RecordStore(fs), fs, fileset)
        return record.hard, record.soft

    def usage(self, fs, fileset):
        filesets = self.list_filesets(fs)
        info = self.require_fileset(fs, fileset, filesets)
        dependents, others = self.nested_filesets(info, filesets)
        # Nested filesets keep their own accounting, as on GPFS.
        return tree.data_bytes(info.path, roots=[info.path],
                               skip=[f.path for f in dependents + others])

    @staticmethod
    def _record(store: RecordStore, fs: Filesystem, name: str) -> Record:
        record = store.get(name)
        if record is None:
            raise StorageError(f"fileset {name} does not exist on {fs.name}")
        return record

    # -- snapshots -------------------------------------------------------------------------
    def create_snapshot(self, fs, fileset, name):
        check_name("snapshot", name)
        source, included = self.snapshot_scope(fs, fileset, self.list_filesets(fs))
        target = os.path.join(source, SNAPSHOTS, name)
        if not self.snapshot_complete(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            self.remove_snapshot(target)  # what an interrupted attempt left behind
            self.make_snapshot(source, target, included)
        return target

    def delete_snapshot(self, fs, fileset, name):
        check_name("snapshot", name)
        source = fs.mountpoint if fileset is None else self.fileset_path(fs, fileset)
        if source:
            self.remove_snapshot(os.path.join(source, SNAPSHOTS, name))

    # -- templates -------------------------------------------------------------------------
    def model_filesets(self, fs, model_path):
        return self.model_markers(fs, model_path)

    # -- hooks the btrfs driver replaces ---------------------------------------------------
    def make_junction(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def remove_junction(self, path: str) -> None:
        tree.remove_tree(path)

    def apply_quota(self, path: str, hard: int) -> None:
        """Nothing to enforce on plain directories: the record is the quota."""

    @staticmethod
    def _partial(target: str) -> str:
        return os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.partial")

    def snapshot_complete(self, target: str) -> bool:
        # Copies are finished and made read-only under a temporary name, then renamed.
        return os.path.isdir(target)

    def make_snapshot(self, src: str, target: str, dependents: list[str]) -> None:
        partial = self._partial(target)
        tree.remove_tree(partial)
        tree.copy_tree(src, partial)  # dependents are plain folders below src: copied along
        tree.make_read_only(partial)
        os.rename(partial, target)

    def remove_snapshot(self, target: str) -> None:
        tree.remove_tree(self._partial(target))
        tree.remove_tree(target)
